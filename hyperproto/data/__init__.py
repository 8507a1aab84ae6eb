"""Datasets: DATASETS maps a name to a loader returning a `Dataset` (arrays in memory) or
a `streaming.StreamingDataset` (large images, decoded batch by batch).

Every dataset but `digits` is read from files prepared once with
`python -m hyperproto.data.prepare --dataset=NAME --manual_dir=DIR [--data_dir=DIR]`
(see `prepare.py`); loaders take `data_dir` (default: $HYPERPROTO_DATA_DIR, else
~/hyperproto_data) and say what to do when the dataset is not prepared there.
"""

from typing import Any, Callable, Union

from hyperproto.data import cifar, cub, digits, imagenet200, mnist, omniart
from hyperproto.data.base import Dataset, DatasetInfo  # pylint: disable=unused-import
from hyperproto.data.store import NotPreparedError  # pylint: disable=unused-import
from hyperproto.data.streaming import StreamingDataset

DATASETS: dict[str, Callable[..., Union[Dataset, StreamingDataset]]] = {
    'digits': digits.load,
    'mnist': mnist.load,
    'mnist_rotated': mnist.load_rotated,
    'cifar10_jpeg': cifar.load_cifar10_jpeg,
    'cifar100': cifar.load_cifar100,
    'imagenet200': imagenet200.load,
    'tiny_imagenet200': imagenet200.load_tiny,
    'cub': cub.load,
    'omniart': omniart.load,
}


def load(name: str, **kwargs: Any) -> Union[Dataset, StreamingDataset]:
  if name not in DATASETS:
    raise ValueError(f'Unknown dataset {name!r}; use one of {sorted(DATASETS)}.')
  return DATASETS[name](**kwargs)
