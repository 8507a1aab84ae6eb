"""Synthetic data of a real dataset's shape, to time the trainer (no files, no network).

`load()` gives CIFAR-100's shape: 50,000 train / 10,000 test uint8 images of 32x32x3,
100 classes, random pixels and labels, CIFAR-100's normalisation constants. The trainer
treats it like the real `cifar100` (held on the device, gathered and augmented inside
the step), so a run of `configs/cifar100.py` with `--config.data.name=synthetic` times
the paper's recipe on any machine: `experiments/gpu_check.py` does this. Nothing can be
learned from it (test accuracy stays at chance).
"""

import functools

import numpy as np

from hyperproto.data.base import Dataset, DatasetInfo

# CIFAR-100's (cifar.py), repeated so that this module needs no TFDS import.
MEAN = (0.507, 0.487, 0.441)
STD = (0.267, 0.256, 0.276)


@functools.lru_cache(maxsize=2)
def load(num_train: int = 50_000, num_test: int = 10_000, image_size: int = 32,
         channels: int = 3, num_classes: int = 100, data_seed: int = 0) -> Dataset:
  """Random uint8 images and labels (about a second for the CIFAR-100 shape)."""
  if min(num_train, num_test, image_size, channels, num_classes) < 1:
    raise ValueError('Every size of the synthetic dataset must be >= 1.')
  rng = np.random.default_rng(data_seed)
  shape = (image_size, image_size, channels)
  splits = {
      split: {'image': rng.integers(0, 256, (n,) + shape, dtype=np.uint8),
              'label': rng.integers(0, num_classes, n).astype(np.int32)}
      for split, n in (('train', num_train), ('test', num_test))}
  mean, std = (MEAN, STD) if channels == 3 else ((0.5,) * channels, (0.25,) * channels)
  info = DatasetInfo(name='synthetic', num_classes=num_classes,
                     class_names=tuple(f'class_{c}' for c in range(num_classes)),
                     image_shape=shape, mean=mean, std=std)
  return Dataset(info=info, splits=splits)
