"""CIFAR-100 (python or binary archive) and CIFAR-10 from a folder of JPEGs.

CIFAR-100 prepares from either official archive, packed or unpacked:
`cifar-100-python.tar.gz` (the pickles the original HPN code and torchvision read) or
`cifar-100-binary.tar.gz` (what TFDS's stock builder reads). Both hold the same 50,000 /
10,000 32x32 images with fine (100) and coarse (20) labels; we keep both labels
(`label`, `coarse_label`) and take the class names from the archive itself (`meta`
pickle, or `fine_label_names.txt` / `coarse_label_names.txt`). Normalisation: the
original's constants.

Both are TFDS builders of ours (`hyperproto_cifar100`, `hyperproto_cifar10_jpeg`) whose
images are raw uint8 tensors, read whole and held on the device.

CIFAR-10 JPEG (`cifar10_jpeg`) is the ImageFolder layout `train/<class>/*.jpg`,
`test/<class>/*.jpg` of the re-encoded copy in shared/data; its pixels differ slightly
from official CIFAR-10 (lossy JPEG), so it gets its own name.
"""

import glob
from typing import Optional

import numpy as np
import tensorflow_datasets as tfds

from hyperproto.data import builder as builder_lib
from hyperproto.data import image_folder, reader, sources
from hyperproto.data.base import Dataset

CIFAR100_MEAN = (0.507, 0.487, 0.441)  # the original HPN code's constants
CIFAR100_STD = (0.267, 0.256, 0.276)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # official CIFAR-10 train statistics
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

CIFAR100_FILES = """
CIFAR-100 needs one of the two official archives from
https://www.cs.toronto.edu/~kriz/cifar.html, packed or unpacked, in a folder DIR:
  DIR/cifar-100-python.tar.gz  (or DIR/cifar-100-python/{train,test,meta}), or
  DIR/cifar-100-binary.tar.gz  (or DIR/cifar-100-binary/{train.bin,test.bin,
                                fine_label_names.txt,coarse_label_names.txt}).
"""

CIFAR10_JPEG_FILES = """
CIFAR-10 JPEG needs a folder of JPEGs, train/<class>/*.jpg and test/<class>/*.jpg (e.g.
the CIFAR-10-images repository, as in shared/data/cifar10_jpeg), in a folder DIR:
  DIR/CIFAR-10-images-*.tar.gz (or any .tar.gz/.tgz/.zip holding that tree), or
  DIR/train/<class>/*.jpg and DIR/test/<class>/*.jpg.
"""

_ROW = 2 + 32 * 32 * 3  # CIFAR-100 binary: coarse label, fine label, 3072 pixels


def _planes_to_nhwc(rows: np.ndarray) -> np.ndarray:
  """(N, 3072) rows of R, G, B planes -> (N, 32, 32, 3)."""
  return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _from_python(path: str) -> tuple[dict, tuple, tuple]:
  found = sources.FileTree(path).read_matching(
      {s: rf'(^|/){s}$' for s in ('train', 'test', 'meta')})
  missing = sorted({'train', 'test', 'meta'} - set(found))
  if missing:
    raise FileNotFoundError(f'{path} lacks {missing}: is it cifar-100-python?')
  splits = {}
  for split in ('train', 'test'):
    d = sources.load_pickle(found[split][1])
    data = np.asarray(d['data'], np.uint8)
    fine, coarse = np.asarray(d['fine_labels']), np.asarray(d['coarse_labels'])
    if data.ndim != 2 or data.shape[1] != 3072 or not len(data) == len(fine) == len(coarse):
      raise ValueError(f'{found[split][0]}: data {data.shape}, {len(fine)} fine and '
                       f'{len(coarse)} coarse labels; expected (N, 3072) and N of each.')
    splits[split] = {'image': _planes_to_nhwc(data), 'label': fine.astype(np.int32),
                     'coarse_label': coarse.astype(np.int32)}
  meta = sources.load_pickle(found['meta'][1])
  names = tuple(n.decode() if isinstance(n, bytes) else n
                for n in meta['fine_label_names'])
  coarse_names = tuple(n.decode() if isinstance(n, bytes) else n
                       for n in meta['coarse_label_names'])
  return splits, names, coarse_names


def _from_binary(path: str) -> tuple[dict, tuple, tuple]:
  wanted = {'train': r'(^|/)train\.bin$', 'test': r'(^|/)test\.bin$',
            'fine': r'(^|/)fine_label_names\.txt$',
            'coarse': r'(^|/)coarse_label_names\.txt$'}
  found = sources.FileTree(path).read_matching(wanted)
  missing = sorted(set(wanted) - set(found))
  if missing:
    raise FileNotFoundError(f'{path} lacks {[wanted[m] for m in missing]}: is it '
                            'cifar-100-binary?')
  splits = {}
  for split in ('train', 'test'):
    name, raw = found[split]
    if len(raw) % _ROW:
      hint = (' (3,073-byte rows: this is CIFAR-10 binary)'
              if len(raw) % (_ROW - 1) == 0 else '')
      raise ValueError(f'{name}: {len(raw)} bytes is not a whole number of 3,074-byte '
                       f'CIFAR-100 rows{hint}; the file is truncated or not CIFAR-100.')
    rows = np.frombuffer(raw, np.uint8).reshape(-1, _ROW)
    splits[split] = {'image': _planes_to_nhwc(rows[:, 2:]),
                     'label': rows[:, 1].astype(np.int32),
                     'coarse_label': rows[:, 0].astype(np.int32)}
  names = tuple(found['fine'][1].decode().split())
  coarse_names = tuple(found['coarse'][1].decode().split())
  return splits, names, coarse_names


def _cifar100_source(manual_dir: str, source_format: str) -> tuple[str, str]:
  """(path, 'python' | 'binary') of the archive or folder to read."""
  candidates = {
      'python': sources.find_input(manual_dir, ['cifar-100-python.tar.gz'],
                                   ['cifar-100-python'], contains='meta'),
      'binary': sources.find_input(manual_dir, ['cifar-100-binary.tar.gz'],
                                   ['cifar-100-binary'], contains='train.bin')}
  if source_format == 'auto':
    source_format = 'python' if candidates['python'] else 'binary'
  if source_format not in candidates:
    raise ValueError(f"source_format must be 'auto', 'python' or 'binary', got "
                     f'{source_format!r}.')
  path = candidates[source_format]
  if path is None:
    raise FileNotFoundError(f'No CIFAR-100 {source_format} archive in {manual_dir}.\n'
                            f'{CIFAR100_FILES}')
  return path, source_format


class Cifar100(builder_lib.Builder):
  """CIFAR-100 (Krizhevsky 2009): 50,000 / 10,000 32x32 images, 100 fine and 20 coarse
  classes, from the official python or binary archive."""
  name = builder_lib.PREFIX + 'cifar100'
  DATASET = 'cifar100'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First TFDS version (images as raw uint8 tensors).'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = CIFAR100_FILES
  HOMEPAGE = 'https://www.cs.toronto.edu/~kriz/cifar.html'
  MEAN, STD = CIFAR100_MEAN, CIFAR100_STD

  def __init__(self, *, source_format: str = 'auto', **kwargs):
    self.source_format = source_format
    super().__init__(**kwargs)

  def _features(self):
    return tfds.features.FeaturesDict({
        'image': builder_lib.image_tensor((32, 32, 3)),
        'label': tfds.features.ClassLabel(),
        'coarse_label': tfds.features.ClassLabel()})

  def _examples(self, manual_dir):
    path, source_format = _cifar100_source(manual_dir, self.source_format)
    read = _from_python if source_format == 'python' else _from_binary
    splits, names, coarse_names = read(path)
    for split, arrays in splits.items():
      for field, n in (('label', len(names)), ('coarse_label', len(coarse_names))):
        bad = int(np.sum((arrays[field] < 0) | (arrays[field] >= n)))
        if bad:
          raise ValueError(f'{path}: {bad} {split} {field}s outside [0, {n}).')
    features = self.info.features
    features['label'].names = list(names)
    features['coarse_label'].names = list(coarse_names)
    self.report.update(source=path, source_format=source_format)
    return {split: builder_lib.rows(arrays) for split, arrays in splits.items()}


def _cifar10_jpeg_source(manual_dir: str) -> str:
  path = sources.find_input(manual_dir, [], [], contains='train')
  if path is None:
    archives = sorted(p for p in glob.glob(f'{manual_dir}/*')
                      if p.lower().endswith(sources.ARCHIVE_SUFFIXES))
    if len(archives) != 1:
      raise FileNotFoundError(f'Found {len(archives)} archives and no train/ folder in '
                              f'{manual_dir}.\n{CIFAR10_JPEG_FILES}')
    path = archives[0]
  return path


class Cifar10Jpeg(image_folder.DecodedBuilder):
  """CIFAR-10 re-encoded as 32x32 JPEGs (an ImageFolder tree), decoded to uint8."""
  name = builder_lib.PREFIX + 'cifar10_jpeg'
  DATASET = 'cifar10_jpeg'
  SIZE = 32
  MANUAL_DOWNLOAD_INSTRUCTIONS = CIFAR10_JPEG_FILES
  MEAN, STD = CIFAR10_MEAN, CIFAR10_STD

  def _examples(self, manual_dir):
    path = _cifar10_jpeg_source(manual_dir)
    names, items = image_folder.collect(sources.FileTree(path))
    if 'test' not in items:
      raise FileNotFoundError(f'{path} has train/ but no test/<class>/*.jpg.')
    self.report.update(source=path, classes=len(names))
    return self._decoded(names, items)


def load_cifar100(data_dir: Optional[str] = None, verify_checksums: bool = True) -> Dataset:
  """The prepared CIFAR-100: `image`, `label` (fine), `coarse_label`."""
  b = reader.open_prepared(Cifar100, data_dir, verify_checksums=verify_checksums)
  info = reader.dataset_info(b, 'cifar100', (32, 32, 3))
  return reader.load_resident(b, info, ('image', 'label', 'coarse_label'))


def load_cifar10_jpeg(data_dir: Optional[str] = None,
                      verify_checksums: bool = True) -> Dataset:
  """The prepared CIFAR-10 JPEG copy: `image`, `label`."""
  b = reader.open_prepared(Cifar10Jpeg, data_dir, verify_checksums=verify_checksums)
  return reader.load_resident(b, reader.dataset_info(b, 'cifar10_jpeg', (32, 32, 3)))
