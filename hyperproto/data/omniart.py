"""OmniArt: creation year (regression) and art style (classification), streamed at 224.

A TFDS builder of ours (`hyperproto_omniart`): the original JPEG bytes, `label` (style;
-1 for a test style with no train images), `target` (year) and `id` (omni_id).

The HPN authors' OmniArt subset is two CSV files, `train_complete.csv` and
`test_complete.csv` (columns `omni_id`, `creation_year`, `century`, `school`; `century`
is unused, as in the original) and the images `train/<omni_id>.jpg`, `test/<omni_id>.jpg`.
As in the original, the style classes are the sorted unique `school` values of the train
CSV, and years are mapped to the regression range 1000-1932.

Real CSVs have rows the original handled silently or wrongly; here each kind is counted,
listed (first few) in the prepare report and metadata.json, and handled the same way every
time:
- unparsable rows (no id, no school, a year that is not a number), duplicate ids, missing
  or unreadable images: not stored;
- test rows whose school is not a train class: stored with label -1 (the original gave
  them -1 too, so they always counted as wrong);
- years outside 1000-1932: stored with their true year.
`load` then decides, and logs how many it set aside: `unseen_test_styles='drop'` (default;
'keep' reproduces the original's accuracy denominator, label -1) and
`out_of_range_years='drop'` (default; 'keep' keeps them, their regression target then
lies outside [-1, 1]).
"""

import csv
import os
from typing import Any, Optional

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from hyperproto.data import builder as builder_lib
from hyperproto.data import reader, sources, streaming

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
YEAR_RANGE = (1000.0, 1932.0)
COLUMNS = ('omni_id', 'creation_year', 'school')

FILES = """
OmniArt needs the HPN authors' files, in a folder DIR (or DIR/omniart/):
  DIR/train_complete.csv, DIR/test_complete.csv  (columns omni_id, creation_year, century,
                                                  school)
  DIR/train/<omni_id>.jpg, DIR/test/<omni_id>.jpg
"""


def _read_csv(path: str) -> list[dict[str, str]]:
  with open(path, newline='', encoding='utf-8-sig') as f:
    reader = csv.DictReader(f)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
      raise ValueError(f'{path} lacks the columns {missing}; it has '
                       f'{reader.fieldnames}. Expected {", ".join(COLUMNS)} (and century).')
    return list(reader)


def _parse(rows: list[dict[str, str]], split: str, report: dict) -> list[tuple]:
  """(line, omni_id, year, school) of the parsable rows; problems go to the report."""
  out, seen = [], set()
  for line, row in enumerate(rows, 2):  # line 1 is the header
    omni_id = (row.get('omni_id') or '').strip()
    school = (row.get('school') or '').strip()
    year_text = (row.get('creation_year') or '').strip()
    try:
      year = float(year_text)
      if not np.isfinite(year):
        raise ValueError
    except ValueError:
      year = None
    if not omni_id or not school or year is None or '/' in omni_id:
      builder_lib.problem(report, 'unparsable_rows', f'{split} line {line}: {dict(row)}')
    elif omni_id in seen:
      builder_lib.problem(report, 'duplicate_ids', f'{split} line {line}: {omni_id}')
    else:
      seen.add(omni_id)
      out.append((line, omni_id, year, school))
  return out


class Omniart(builder_lib.Builder):
  """The HPN authors' OmniArt subset: paintings with creation year and art style."""
  name = builder_lib.PREFIX + 'omniart'
  DATASET = 'omniart'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First TFDS version (the original JPEG bytes).'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = FILES
  MEAN, STD = IMAGENET_MEAN, IMAGENET_STD
  TARGET_NAME, TARGET_UNIT, TARGET_RANGE = 'year', 'year', YEAR_RANGE

  def _features(self):
    return tfds.features.FeaturesDict({
        'image': tfds.features.Image(shape=(None, None, 3)),
        'label': tfds.features.Scalar(
            dtype=np.int64, doc='art style: index into metadata class_names; -1 for a '
            'test style with no train images'),
        'target': tfds.features.Scalar(dtype=np.float32, doc='creation year'),
        'id': tfds.features.Text(doc='omni_id')})

  def _examples(self, manual_dir):
    root = manual_dir
    if not os.path.exists(os.path.join(root, 'train_complete.csv')):
      root = os.path.join(manual_dir, 'omniart')
    missing = [p for p in ('train_complete.csv', 'test_complete.csv', 'train', 'test')
               if not os.path.exists(os.path.join(root, p))]
    if missing:
      raise FileNotFoundError(f'{manual_dir} (or its omniart/) lacks {missing}.\n{FILES}')
    reports = {s: {} for s in ('train', 'test')}
    parsed = {s: _parse(_read_csv(os.path.join(root, f'{s}_complete.csv')), s, reports[s])
              for s in ('train', 'test')}
    classes = sorted({school for _, _, _, school in parsed['train']})
    index = {c: i for i, c in enumerate(classes)}
    self.info.metadata['hyperproto']['class_names'] = classes
    train_labels = []
    self.report.update(source=root, classes=len(classes), **reports)

    def examples(split):
      report = reports[split]
      stored = 0
      for line, omni_id, year, school in parsed[split]:
        path = os.path.join(root, split, f'{omni_id}.jpg')
        if not os.path.exists(path):
          builder_lib.problem(report, 'missing_images',
                              f'{split} line {line}: {split}/{omni_id}.jpg')
          continue
        with open(path, 'rb') as f:
          data = f.read()
        try:
          sources.check_image(data)
        except Exception as e:  # pylint: disable=broad-except
          builder_lib.problem(report, 'unreadable_images', f'{split}/{omni_id}.jpg: {e}')
          continue
        label = index.get(school, -1)
        if label < 0:
          builder_lib.problem(report, 'unseen_styles', f'{split} line {line}: {school!r}')
        if not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
          builder_lib.problem(report, 'out_of_range_years',
                              f'{split} line {line}: {year:g}')
        if split == 'train':
          train_labels.append(label)
        stored += 1
        yield omni_id, {'image': data, 'label': label, 'target': year, 'id': omni_id}
      report.update(stored=stored, csv_rows=len(parsed[split]) + sum(
          report.get(k, {}).get('count', 0) for k in ('unparsable_rows', 'duplicate_ids')))
      if split == 'train':
        counts = np.bincount(train_labels, minlength=len(classes))
        self.report['classes_without_train_images'] = [
            c for c, n in zip(classes, counts) if not n]

    return {s: examples(s) for s in parsed}


def load(data_dir: Optional[str] = None, faithful_random_eval: bool = False,
         unseen_test_styles: str = 'drop', out_of_range_years: str = 'drop',
         verify_checksums: bool = False, **kwargs: Any) -> streaming.StreamingDataset:
  """The prepared OmniArt as a `StreamingDataset`: `label` (style), `target` (year).

  Args:
    data_dir: where it was prepared.
    faithful_random_eval: evaluate on random crops + flips, as the original did.
    unseen_test_styles: 'drop' or 'keep' (label -1) test rows of a style not in train.
    out_of_range_years: 'drop' or 'keep' rows with a year outside 1000-1932.
    verify_checksums: check the records' SHA-256 first (reads every byte).
    **kwargs: StreamingDataset options (image_size, num_workers, prefetch, ...).
  """
  for name, value in (('unseen_test_styles', unseen_test_styles),
                      ('out_of_range_years', out_of_range_years)):
    if value not in ('drop', 'keep'):
      raise ValueError(f"{name} must be 'drop' or 'keep', got {value!r}.")
  b = reader.open_prepared(Omniart, data_dir, verify_checksums=verify_checksums)
  keep = {}
  for split in b.info.splits:
    fields = reader.read_split(b, split, ['label', 'target'],
                               {'image': tfds.decode.SkipDecoding()})
    label, year = np.asarray(fields['label']), np.asarray(fields['target'])
    ok = np.ones(len(label), bool)
    unseen = label < 0
    outside = (year < YEAR_RANGE[0]) | (year > YEAR_RANGE[1])
    if unseen_test_styles == 'drop':
      ok &= ~unseen
    if out_of_range_years == 'drop':
      ok &= ~outside
    if np.any(~ok):
      logging.warning('OmniArt %s: leaving out %d of %d examples (%d of an unseen style, '
                      "%d with a year outside %g-%g); see load()'s options.", split,
                      np.sum(~ok), len(ok), np.sum(unseen & ~ok), np.sum(outside & ~ok),
                      *YEAR_RANGE)
    keep[split] = np.flatnonzero(ok)
  return reader.load_streaming(b, 'omniart', keys=('label', 'target'), indices=keep,
                               faithful_random_eval=faithful_random_eval, eval_flip=True,
                               **kwargs)
