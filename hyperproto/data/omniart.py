"""OmniArt: creation year (regression) and art style (classification), streamed at 224.

The HPN authors' OmniArt subset is two CSV files, `train_complete.csv` and
`test_complete.csv` (columns `omni_id`, `creation_year`, `century`, `school`; `century`
is unused, as in the original) and the images `train/<omni_id>.jpg`, `test/<omni_id>.jpg`.
As in the original, the style classes are the sorted unique `school` values of the train
CSV, and years are mapped to the regression range 1000-1932.

Real CSVs have rows the original handled silently or wrongly; here each kind is counted,
listed (first few) in the prepare report and info.json, and handled the same way every
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
from absl import logging

from hyperproto.data import sources, store, streaming
from hyperproto.data.base import DatasetInfo

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
YEAR_RANGE = (1000.0, 1932.0)
COLUMNS = ('omni_id', 'creation_year', 'school')
_EXAMPLES = 10  # listed per problem in the report

FILES = """
OmniArt needs the HPN authors' files, in a folder DIR (or DIR/omniart/):
  DIR/train_complete.csv, DIR/test_complete.csv  (columns omni_id, creation_year, century,
                                                  school)
  DIR/train/<omni_id>.jpg, DIR/test/<omni_id>.jpg
"""


def _problem(report: dict, kind: str, detail: str) -> None:
  entry = report.setdefault(kind, {'count': 0, 'examples': []})
  entry['count'] += 1
  if len(entry['examples']) < _EXAMPLES:
    entry['examples'].append(detail)


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
      _problem(report, 'unparsable_rows', f'{split} line {line}: {dict(row)}')
    elif omni_id in seen:
      _problem(report, 'duplicate_ids', f'{split} line {line}: {omni_id}')
    else:
      seen.add(omni_id)
      out.append((line, omni_id, year, school))
  return out


def prepare(manual_dir: str, data_dir: Optional[str] = None) -> dict:
  """Writes the prepared `omniart` from the CSVs and image folders in manual_dir."""
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
  fields = {s: [] for s in parsed}  # (label, year, omni_id) of each stored row

  def records(split):
    """Yields the stored rows' JPEG bytes, recording their fields as it goes."""
    report = reports[split]
    for line, omni_id, year, school in parsed[split]:
      path = os.path.join(root, split, f'{omni_id}.jpg')
      if not os.path.exists(path):
        _problem(report, 'missing_images', f'{split} line {line}: {split}/{omni_id}.jpg')
        continue
      with open(path, 'rb') as f:
        data = f.read()
      try:
        sources.image_size(data)
      except Exception as e:  # pylint: disable=broad-except
        _problem(report, 'unreadable_images', f'{split}/{omni_id}.jpg: {e}')
        continue
      label = index.get(school, -1)
      if label < 0:
        _problem(report, 'unseen_styles', f'{split} line {line}: {school!r}')
      if not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
        _problem(report, 'out_of_range_years', f'{split} line {line}: {year:g}')
      fields[split].append((label, year, omni_id))
      yield data

  info = DatasetInfo(name='omniart', num_classes=len(classes), class_names=tuple(classes),
                     image_shape=(224, 224, 3), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                     target_name='year', target_unit='year', target_range=YEAR_RANGE)
  with store.Writer('omniart', data_dir) as w:
    for split in parsed:
      w.add_blobs(split, records(split))
      f = fields[split]
      w.add_array(split, 'label', np.asarray([x[0] for x in f], np.int32).reshape(-1))
      w.add_array(split, 'target', np.asarray([x[1] for x in f], np.float32).reshape(-1))
      w.add_array(split, 'id', np.asarray([x[2] for x in f], str).reshape(-1))
      reports[split].update(csv_rows=len(parsed[split]) + sum(
          reports[split].get(k, {}).get('count', 0)
          for k in ('unparsable_rows', 'duplicate_ids')), stored=len(f))
    counts = np.bincount([x[0] for x in fields['train'] if x[0] >= 0],
                         minlength=len(classes))
    report = dict(source=root, classes=len(classes), **reports,
                  classes_without_train_images=[c for c, n in zip(classes, counts) if not n])
    w.finish('jpeg_records', info, report)
  return report


def load(data_dir: Optional[str] = None, faithful_random_eval: bool = False,
         unseen_test_styles: str = 'drop', out_of_range_years: str = 'drop',
         **kwargs: Any) -> streaming.StreamingDataset:
  """The prepared OmniArt as a `StreamingDataset`: `label` (style), `target` (year).

  Args:
    data_dir: where it was prepared.
    faithful_random_eval: evaluate on random crops + flips, as the original did.
    unseen_test_styles: 'drop' or 'keep' (label -1) test rows of a style not in train.
    out_of_range_years: 'drop' or 'keep' rows with a year outside 1000-1932.
    **kwargs: StreamingDataset options (image_size, num_workers, prefetch, ...) and
      verify_checksums.
  """
  for name, value in (('unseen_test_styles', unseen_test_styles),
                      ('out_of_range_years', out_of_range_years)):
    if value not in ('drop', 'keep'):
      raise ValueError(f"{name} must be 'drop' or 'keep', got {value!r}.")
  root, meta = store.read_meta('omniart', data_dir, FILES, kind='jpeg_records')
  keep = {}
  for split, entry in meta['splits'].items():
    files = entry['files']
    label = np.load(store.check_file(root, files['label'], False))
    year = np.load(store.check_file(root, files['target'], False))
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
    keep[split] = ok
  return streaming.load('omniart', data_dir, FILES, keep=keep,
                        faithful_random_eval=faithful_random_eval, eval_flip=True, **kwargs)

