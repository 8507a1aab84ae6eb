"""MNIST from LeCun's idx files, plain and rotated (the paper's proof of concept).

`mnist` is the 60,000 / 10,000 digits (28x28x1) with their labels. `mnist_rotated` rotates
each digit by its own angle, uniform in [-max_angle, max_angle] degrees from a fixed
generator (`data_seed`, independent of the training seed), and makes the angle the
regression target: the paper's joint classification + regression proof of concept. The
paper and the original code give no angle range; the default, +-60 degrees, is the one
of the embedded digits demo (`digits.py`), so that a 6 never becomes a 9. MNIST digits
sit in a 20x20 box centred in 28x28, so rotations cut (almost) nothing. Rotating 70,000
images takes a few seconds, so the result is cached next to the prepared files, keyed
by (max_angle, data_seed) and the checksum of the images it came from.

The idx files may be gzip-compressed or not; their checksums are not checked against
the official downloads (recompressed copies differ), only their headers and sizes.
Normalisation: the usual MNIST train statistics 0.1307 / 0.3081.
"""

import os
from typing import Optional

import numpy as np
from scipy import ndimage

from hyperproto.data import sources, store
from hyperproto.data.base import Dataset, DatasetInfo

MEAN, STD = (0.1307,), (0.3081,)

FILES = """
MNIST needs the four idx files (plain or .gz) from http://yann.lecun.com/exdb/mnist/ (or
any copy, e.g. shared/data/mnist), in a folder DIR:
  DIR/train-images-idx3-ubyte[.gz]  DIR/train-labels-idx1-ubyte[.gz]
  DIR/t10k-images-idx3-ubyte[.gz]   DIR/t10k-labels-idx1-ubyte[.gz]
(the names with a '.' before 'idx', e.g. train-images.idx3-ubyte, are accepted too).
"""

_FILES = {('train', 'image'): 'train-images', ('train', 'label'): 'train-labels',
          ('test', 'image'): 't10k-images', ('test', 'label'): 't10k-labels'}


def _find(manual_dir: str, stem: str) -> str:
  kind = 'idx3' if 'images' in stem else 'idx1'
  for sep in ('-', '.'):
    for ext in ('', '.gz'):
      path = os.path.join(manual_dir, f'{stem}{sep}{kind}-ubyte{ext}')
      if os.path.exists(path):
        return path
  raise FileNotFoundError(f'{stem}-{kind}-ubyte[.gz] is missing from {manual_dir}.\n'
                          f'{FILES}')


def prepare(manual_dir: str, data_dir: Optional[str] = None) -> dict:
  """Writes the prepared `mnist` from the idx files in `manual_dir`."""
  arrays: dict[str, dict[str, np.ndarray]] = {'train': {}, 'test': {}}
  report = {}
  for (split, field), stem in _FILES.items():
    path = _find(manual_dir, stem)
    with open(path, 'rb') as f:
      array = sources.read_idx(f.read(), path)
    if array.ndim != (3 if field == 'image' else 1):
      raise ValueError(f'{path} has shape {array.shape}; is it the {stem} file?')
    arrays[split][field] = array[..., None] if field == 'image' else array.astype(np.int32)
    report[f'{split}_{field}_file'] = path
  for split, a in arrays.items():
    if len(a['image']) != len(a['label']):
      raise ValueError(f'MNIST {split}: {len(a["image"])} images but {len(a["label"])} '
                       'labels; the files do not belong together.')
    if a['label'].max() > 9:
      raise ValueError(f'MNIST {split}: labels up to {a["label"].max()}; expected 0-9.')
    report[f'{split}_examples'] = len(a['label'])
  info = DatasetInfo(name='mnist', num_classes=10,
                     class_names=tuple(str(c) for c in range(10)),
                     image_shape=tuple(arrays['train']['image'].shape[1:]),
                     mean=MEAN, std=STD)
  store.write_arrays(info, arrays, report, data_dir)
  return report


def load(data_dir: Optional[str] = None, verify_checksums: bool = True) -> Dataset:
  """The prepared MNIST: `image` (N, 28, 28, 1) uint8 and `label`."""
  return store.load_arrays('mnist', data_dir, FILES, verify_checksums)


def rotate(images: np.ndarray, angles: np.ndarray) -> np.ndarray:
  """Rotates each uint8 NHW1 image counter-clockwise by its angle (degrees; bilinear,
  black outside)."""
  out = np.empty_like(images)
  for i, (image, angle) in enumerate(zip(images, angles)):
    rotated = ndimage.rotate(image[..., 0].astype(np.float32), angle, reshape=False,
                             order=1, mode='constant')
    out[i, ..., 0] = np.round(np.clip(rotated, 0.0, 255.0))
  return out


def load_rotated(data_dir: Optional[str] = None, max_angle: float = 60.0,
                 data_seed: int = 0, verify_checksums: bool = True) -> Dataset:
  """Rotated MNIST with the angle (degrees) as `target`, cached after the first call."""
  if not 0.0 < max_angle <= 180.0:
    raise ValueError(f'max_angle must be in (0, 180] degrees, got {max_angle}.')
  base = load(data_dir, verify_checksums)
  root, meta = store.read_meta('mnist', data_dir, FILES, kind='arrays')
  rng = np.random.default_rng([data_seed, 1])
  splits = {}
  for split in ('train', 'test'):
    arrays = base.splits[split]
    angles = rng.uniform(-max_angle, max_angle, len(arrays['label'])).astype(np.float32)
    digest = meta['splits'][split]['files']['image']['sha256'][:16]
    cache = os.path.join(root, f'rotated_{split}_a{max_angle:g}_s{data_seed}_{digest}.npy')
    if os.path.exists(cache):
      images = np.load(cache)
    else:
      images = rotate(arrays['image'], angles)
      tmp = f'{cache}.tmp-{os.getpid()}.npy'
      np.save(tmp, images)
      os.replace(tmp, cache)
    splits[split] = {'image': images, 'label': arrays['label'], 'target': angles}
  info = DatasetInfo(name='mnist_rotated', num_classes=10,
                     class_names=base.info.class_names, image_shape=base.info.image_shape,
                     mean=MEAN, std=STD, target_name='angle', target_unit='deg',
                     target_range=(-max_angle, max_angle))
  return Dataset(info=info, splits=splits)
