"""Datasets: `load(name)` gives a `Dataset` (arrays in memory, held on the device) or a
`streaming.StreamingDataset` (large images, decoded batch by batch with grain).

Names:
  * ours: `digits` (built in memory from scikit-learn's copy, no files), and the TFDS
    builders of ours, prepared once with
    `python -m hyperproto.data.prepare --dataset=NAME --manual_dir=DIR [--data_dir=DIR]`:
    mnist (and mnist_rotated), cifar10_jpeg, cifar100, imagenet200, tiny_imagenet200,
    cub, omniart;
  * `folder:NAME`: a user's own image folders, prepared with `--dataset=folder
    --name=NAME` (`folder.py`);
  * `tfds:NAME[/CONFIG][:VERSION]`: any TFDS dataset prepared in array_record format,
    or in tfrecord and converted once with `--dataset=tfds:NAME` (`generic.py`);
  * `synthetic`: random uint8 data of CIFAR-100's shape (sizes in its kwargs), for
    timing the trainer (`synthetic.py`).
Loaders take `data_dir` (default: $TFDS_DATA_DIR, else ~/tensorflow_datasets) and say
what to do when the dataset is not prepared there. No TensorFlow is needed or imported.
"""

import importlib
from typing import Any, Union

from hyperproto.data.base import Dataset, DatasetInfo  # pylint: disable=unused-import
from hyperproto.data.builder import NotPreparedError  # pylint: disable=unused-import
from hyperproto.data.streaming import StreamingDataset

# name -> 'module:function' of hyperproto.data, imported when first loaded (grain's
# worker processes import this package, and need none of them).
DATASETS: dict[str, str] = {
    'digits': 'digits:load',
    'mnist': 'mnist:load',
    'mnist_rotated': 'mnist:load_rotated',
    'cifar10_jpeg': 'cifar:load_cifar10_jpeg',
    'cifar100': 'cifar:load_cifar100',
    'imagenet200': 'imagenet200:load',
    'tiny_imagenet200': 'imagenet200:load_tiny',
    'cub': 'cub:load',
    'omniart': 'omniart:load',
    'synthetic': 'synthetic:load',
}
PREFIXES: dict[str, str] = {'folder': 'folder:load', 'tfds': 'generic:load'}


def _function(target: str):
  module, name = target.split(':')
  return getattr(importlib.import_module(f'hyperproto.data.{module}'), name)


def load(name: str, **kwargs: Any) -> Union[Dataset, StreamingDataset]:
  prefix, sep, rest = name.partition(':')
  if sep and prefix in PREFIXES:
    return _function(PREFIXES[prefix])(rest, **kwargs)
  if name not in DATASETS:
    raise ValueError(f'Unknown dataset {name!r}; use one of {sorted(DATASETS)}, '
                     'folder:NAME (your own images, prepared with --dataset=folder) or '
                     'tfds:NAME (a TFDS dataset in array_record format; tfrecord ones '
                     'are converted with python -m hyperproto.data.prepare '
                     '--dataset=tfds:NAME).')
  return _function(DATASETS[name])(**kwargs)
