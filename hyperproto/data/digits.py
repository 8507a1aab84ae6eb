"""Rotated digits: the paper's MNIST proof of concept on data that ships with scikit-learn.

scikit-learn's digits (1,797 real 8x8 scans, 10 classes, inside the wheel) are upsampled
(bilinear) to 5/8 of `image_size` and centred on a black `image_size` canvas (as MNIST
puts 20x20 digits in 28x28), so that no rotation cuts them; each is then rotated by its
own angle, drawn uniformly in
[-max_angle, max_angle] degrees from a fixed generator: the task is to predict the digit
(classification) and the angle (regression). The angles and the 80/20 train/test split
(1,438 / 359, stratified by digit) are fixed by `data_seed`, independent of the training
seed.
"""

import functools

import numpy as np
from scipy import ndimage

from hyperproto.data.base import Dataset, DatasetInfo


@functools.lru_cache(maxsize=4)
def load(image_size: int = 32, max_angle: float = 60.0, data_seed: int = 0,
         test_fraction: float = 0.2) -> Dataset:
  """Builds the rotated digits dataset (about a second; no files, no network)."""
  if image_size < 8:
    raise ValueError(f'image_size must be >= 8 (the digits are 8x8), got {image_size}.')
  if not 0.0 < max_angle <= 180.0:
    raise ValueError(f'max_angle must be in (0, 180] degrees, got {max_angle}.')
  from sklearn import datasets as sk_datasets  # pylint: disable=g-import-not-at-top
  digits = sk_datasets.load_digits()
  images = digits.images.astype(np.float64) / 16.0  # 0..16 -> 0..1
  labels = digits.target.astype(np.int32)
  rng = np.random.default_rng(data_seed)
  angles = rng.uniform(-max_angle, max_angle, size=len(labels))
  digit_size = max(8, round(image_size * 5 / 8))
  lo = (image_size - digit_size) // 2
  canvas = np.zeros((image_size, image_size))
  out = np.empty((len(labels), image_size, image_size, 1), np.uint8)
  for i, (image, angle) in enumerate(zip(images, angles)):
    canvas[lo:lo + digit_size, lo:lo + digit_size] = ndimage.zoom(
        image, digit_size / 8.0, order=1, grid_mode=True, mode='grid-constant')
    # Positive angles rotate counter-clockwise; pixels outside the digit stay black.
    rotated = ndimage.rotate(canvas, angle, reshape=False, order=1, mode='constant')
    out[i, ..., 0] = np.round(np.clip(rotated, 0.0, 1.0) * 255.0)

  # Stratified split: the same fraction of each digit in test.
  test = np.zeros(len(labels), bool)
  for c in range(10):
    idx = rng.permutation(np.flatnonzero(labels == c))
    test[idx[:int(round(test_fraction * len(idx)))]] = True
  splits = {
      name: {'image': out[sel], 'label': labels[sel],
             'target': angles[sel].astype(np.float32)}
      for name, sel in (('train', ~test), ('test', test))
  }
  train_pixels = splits['train']['image'] / 255.0
  info = DatasetInfo(
      name='digits', num_classes=10, class_names=tuple(str(c) for c in range(10)),
      image_shape=(image_size, image_size, 1),
      mean=(float(train_pixels.mean()),), std=(float(train_pixels.std()),),
      target_name='angle', target_unit='deg', target_range=(-max_angle, max_angle))
  return Dataset(info=info, splits=splits)
