"""MNIST from LeCun's idx files, plain and rotated (the paper's proof of concept).

`mnist` is the 60,000 / 10,000 digits (28x28x1) with their labels. `mnist_rotated` rotates
each digit by its own angle, uniform in [-max_angle, max_angle] degrees from a fixed
generator (`data_seed`, independent of the training seed), and makes the angle the
regression target: the paper's joint classification + regression proof of concept. The
paper and the original code give no angle range; the default, +-60 degrees, is the one
of the embedded digits demo (`digits.py`), so that a 6 never becomes a 9. MNIST digits
sit in a 20x20 box centred in 28x28, so rotations cut (almost) nothing. Rotating 70,000
images takes a few seconds, so the result is cached ($HYPERPROTO_CACHE/mnist_rotated),
keyed by (max_angle, data_seed) and the checksum of the records it came from.

The idx files may be gzip-compressed or not; their checksums are not checked against
the official downloads (recompressed copies differ), only their headers and sizes.
Normalisation: the usual MNIST train statistics 0.1307 / 0.3081.
"""

import os
from typing import Optional

import numpy as np
import tensorflow_datasets as tfds
from scipy import ndimage

from hyperproto.data import builder as builder_lib
from hyperproto.data import reader, sources
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


def _read(manual_dir: str, report: dict) -> dict[str, dict[str, np.ndarray]]:
  arrays: dict[str, dict[str, np.ndarray]] = {'train': {}, 'test': {}}
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
    if a['image'].shape[1:] != (28, 28, 1):
      raise ValueError(f'MNIST {split}: images of shape {a["image"].shape[1:3]}; '
                       'expected 28x28.')
    if a['label'].max() > 9:
      raise ValueError(f'MNIST {split}: labels up to {a["label"].max()}; expected 0-9.')
  return arrays


class Mnist(builder_lib.Builder):
  """MNIST (LeCun et al. 1998): 60,000 / 10,000 28x28 grey digits, from the idx files."""
  name = builder_lib.PREFIX + 'mnist'
  DATASET = 'mnist'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First TFDS version (images as raw uint8 tensors).'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = FILES
  HOMEPAGE = 'http://yann.lecun.com/exdb/mnist/'
  MEAN, STD = MEAN, STD

  def _features(self):
    return tfds.features.FeaturesDict({
        'image': builder_lib.image_tensor((28, 28, 1)),
        'label': tfds.features.ClassLabel(names=[str(c) for c in range(10)])})

  def _examples(self, manual_dir):
    return {split: builder_lib.rows(arrays)
            for split, arrays in _read(manual_dir, self.report).items()}


def _open(data_dir: Optional[str], verify_checksums: bool) -> tfds.core.DatasetBuilder:
  return reader.open_prepared(Mnist, data_dir, verify_checksums=verify_checksums)


def load(data_dir: Optional[str] = None, verify_checksums: bool = True,
         _builder: Optional[tfds.core.DatasetBuilder] = None) -> Dataset:
  """The prepared MNIST: `image` (N, 28, 28, 1) uint8 and `label`."""
  b = _builder or _open(data_dir, verify_checksums)
  return reader.load_resident(b, reader.dataset_info(b, 'mnist', (28, 28, 1)))


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
  b = _open(data_dir, verify_checksums)
  base = load(_builder=b)
  files = reader.metadata(b)['files']
  cache_dir = builder_lib.cache_dir('mnist_rotated')
  rng = np.random.default_rng([data_seed, 1])
  splits = {}
  for split in ('train', 'test'):
    arrays = base.splits[split]
    angles = rng.uniform(-max_angle, max_angle, len(arrays['label'])).astype(np.float32)
    digest = builder_lib.digest_of(
        [v['sha256'] for k, v in sorted(files.items()) if f'-{split}.' in k])[:16]
    cache = os.path.join(cache_dir, f'{split}_a{max_angle:g}_s{data_seed}_{digest}.npy')
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
