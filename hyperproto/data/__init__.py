"""Datasets: DATASETS maps a name to a loader returning a `Dataset`."""

from typing import Any, Callable

from hyperproto.data import digits
from hyperproto.data.base import Dataset, DatasetInfo  # pylint: disable=unused-import

DATASETS: dict[str, Callable[..., Dataset]] = {
    'digits': digits.load,
}


def load(name: str, **kwargs: Any) -> Dataset:
  if name not in DATASETS:
    raise ValueError(f'Unknown dataset {name!r}; use one of {sorted(DATASETS)}.')
  return DATASETS[name](**kwargs)
