r"""Your own data: a folder of images per class, prepared once, trained on by name.

    DIR/train/<class>/<image>     any format PIL reads (.jpg, .png, .bmp, .gif, .tif,
    DIR/test/<class>/<image>      .webp); `val/` or `validation/` splits are kept too
    DIR/targets.csv               optional: a regression target per image, columns
                                  `path,<target name>`, path relative to DIR
                                  (e.g. `train/cat/001.jpg,3.5`)

    python -m hyperproto.data.prepare --dataset=folder --manual_dir=DIR --name=my_birds
    python -m hyperproto.main --config=configs/cub.py \
        --config.data.name=folder:my_birds --workdir=...

The dataset is a TFDS builder of ours (`hyperproto_folder`, one builder config per
`--name`), prepared into the TFDS data directory as `hyperproto_folder/<name>/<version>`,
with the original image bytes. Labels index the sorted class folders of train/ (as
torchvision's ImageFolder); class names are the folder names. Every file is decoded at
prepare time: one that PIL cannot read (corrupt, truncated, not an image) is left out and
listed in the report, never a crash in the middle of an epoch. An empty class folder in
train/ is an error (a class no one can learn); a test class with no train/ folder too.
Per-channel mean and std are measured on the train images at prepare time.

At train time the images become squares of `image_size` pixels (default: the images'
own size where they all share one, else 224): small ones (<= 64) are decoded once,
resized (shorter side) and centre-cropped, and held on the device like CIFAR; larger
ones are streamed with RandomResizedCrop + flip (`generic.load_builder`).
"""

import csv
import os
import re
from typing import Any, Optional

import numpy as np
import tensorflow_datasets as tfds

from hyperproto.data import builder as builder_lib
from hyperproto.data import generic, image_folder, reader, sources

FILES = """
An image-folder dataset needs, in a folder DIR:
  DIR/train/<class>/<image>, DIR/test/<class>/<image> (any image format PIL reads; also
  val/ or validation/), and optionally DIR/targets.csv with columns path,<target name>
  (path relative to DIR, e.g. train/cat/001.jpg) for a regression target per image.
"""
SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff', '.webp')
TARGETS_CSV = 'targets.csv'
_PATTERN = re.compile(
    r'(?:^|/)(train|test|val|validation)/([^/]+)/([^/]+)$')


def _targets(manual_dir: str) -> tuple[Optional[str], dict[str, float]]:
  """(target name, {relative path: target}) from targets.csv, or (None, {})."""
  path = os.path.join(manual_dir, TARGETS_CSV)
  if not os.path.exists(path):
    return None, {}
  with open(path, newline='', encoding='utf-8-sig') as f:
    rows = list(csv.reader(f))
  if not rows or len(rows[0]) != 2 or rows[0][0] != 'path':
    raise ValueError(f'{path}: the first line must be the header "path,<target name>", '
                     f'got {rows[0] if rows else "an empty file"}.')
  out = {}
  for n, row in enumerate(rows[1:], 2):
    try:
      value = float(row[1])
      if not np.isfinite(value):
        raise ValueError
    except (ValueError, IndexError):
      raise ValueError(f'{path} line {n}: {row} is not "<path>,<number>".') from None
    out[row[0].strip().lstrip('./')] = value
  return rows[0][1].strip(), out


def _empty_class_folders(manual_dir: str) -> list[str]:
  train = os.path.join(manual_dir, 'train')
  if not os.path.isdir(train):
    return []
  return sorted(c for c in os.listdir(train) if os.path.isdir(os.path.join(train, c))
                and not any(f.lower().endswith(SUFFIXES)
                            for f in os.listdir(os.path.join(train, c))))


class Folder(builder_lib.Builder):
  """A user's own images, one folder per class (train/<class>/*, test/<class>/*)."""
  name = builder_lib.PREFIX + 'folder'
  DATASET = 'folder'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First version.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = FILES

  def __init__(self, *, with_targets: bool = False, **kwargs: Any):
    self.with_targets = with_targets
    super().__init__(**kwargs)

  def _features(self):
    features = {'image': tfds.features.Image(shape=(None, None, 3)),
                'label': tfds.features.ClassLabel(),
                'path': tfds.features.Text(doc='the file, relative to the folder')}
    if self.with_targets:
      features['target'] = tfds.features.Scalar(dtype=np.float32)
    return tfds.features.FeaturesDict(features)

  def _examples(self, manual_dir):
    empty = _empty_class_folders(manual_dir)
    if empty:
      raise ValueError(f'{manual_dir}/train/ has class folders with no images: {empty}. '
                       'Remove them, or add images.')
    target_name, targets = _targets(manual_dir)
    names, items = image_folder.collect(sources.FileTree(manual_dir), _PATTERN,
                                        suffixes=SUFFIXES)
    self.info.features['label'].names = list(names)
    index = {c: i for i, c in enumerate(names)}
    self.report.update(source=manual_dir, classes=len(names))
    self._stats = np.zeros((3, 3))  # per channel: count, sum, sum of squares
    self._sizes, self._train_targets, self._target_name = set(), [], target_name

    def examples(split, rows):
      for cls, fname, data in rows:
        rel = f'{split}/{cls}/{fname}'
        try:
          pixels = sources.check_image(data)
          size = sources.image_size(data)
        except Exception as e:  # pylint: disable=broad-except
          builder_lib.problem(self.report, 'unreadable', f'{rel}: {e}')
          continue
        example = {'image': data, 'label': index[cls], 'path': rel}
        if self.with_targets:
          if rel not in targets:
            builder_lib.problem(self.report, 'without_target', rel)
            continue
          example['target'] = targets[rel]
        self._sizes.add(size)
        if split == 'train':
          flat = pixels.reshape(-1, 3).astype(np.float64) / 255.0
          self._stats += [np.full(3, len(flat)), flat.sum(0), (flat ** 2).sum(0)]
          if self.with_targets:
            self._train_targets.append(targets[rel])
        yield rel, example

    return {split: examples(split, rows) for split, rows in items.items()}

  def _metadata_after_prepare(self):
    count, total, squares = np.maximum(self._stats, [[1], [0], [0]])
    mean = total / count
    meta = dict(mean=mean.tolist(),
                std=np.sqrt(np.maximum(squares / count - mean ** 2, 0)).tolist())
    (w, h), = self._sizes if len(self._sizes) == 1 else [(None, None)]
    meta['image_size'] = w if w == h else None  # where all images share one square size
    if self._train_targets:
      meta.update(target_name=self._target_name,
                  target_range=[min(self._train_targets), max(self._train_targets)])
    return meta


def prepare_kwargs(manual_dir: str, name: Optional[str]) -> dict[str, Any]:
  """The builder's arguments for `prepare`: its config (the dataset's name) and whether
  it has targets."""
  if not name:
    raise ValueError('--name is required with --dataset=folder: the name to train it '
                     'by (--config.data.name=folder:NAME).')
  if not re.fullmatch(r'[a-z][a-z0-9_]*', name):
    raise ValueError(f'--name={name!r}: use lower-case letters, digits and underscores, '
                     'starting with a letter.')
  return dict(config=tfds.core.BuilderConfig(name=name),
              with_targets=os.path.exists(os.path.join(manual_dir, TARGETS_CSV)))


def load(name: str, data_dir: Optional[str] = None, verify_checksums: bool = False,
         **kwargs: Any):
  """The prepared image folder `name` (see the module docstring for kwargs:
  `generic.load_builder`'s)."""
  b = reader.open_prepared(Folder, data_dir, config=name,
                           verify_checksums=verify_checksums, extra=f' --name={name}')
  keys = ('target',) if 'target' in b.info.features else ()
  return generic.load_builder(b, f'folder:{name}', keys=keys, **kwargs)
