"""Class prototypes on the unit sphere, placed before training.

Prototypes are data, not parameters: `place` is deterministic in its arguments, the
trainer saves the result in the workdir and passes it to the steps as a constant input,
so it is never trained and never weight-decayed.

Methods (PLACEMENTS):
  simplex  exact regular simplex, C <= d + 1 (max cos -1/(C-1)).
  hpn      the original recipe (SGD on the mean row-max cosine, 10k steps, seed 300).
  auto     the exact construction where one exists, else `hpn`.
"""

from typing import Any, Callable

import numpy as np

from hyperproto.prototypes import closed_form
from hyperproto.prototypes import hpn as hpn_lib
from hyperproto.prototypes.metrics import lower_bound, separation_metrics  # pylint: disable=unused-import
from hyperproto.prototypes.store import load, save  # pylint: disable=unused-import


def _auto(num_classes: int, dim: int, seed: int, **kwargs) -> np.ndarray:
  if num_classes <= dim + 1:
    return closed_form.simplex(num_classes, dim, seed)
  return hpn_lib.hpn(num_classes, dim, seed, **kwargs)


PLACEMENTS: dict[str, Callable[..., np.ndarray]] = {
    'simplex': closed_form.simplex,
    'hpn': hpn_lib.hpn,
    'auto': _auto,
}


def place(method: str, num_classes: int, dim: int, seed: int = 300,
          **kwargs: Any) -> np.ndarray:
  """C x D unit vectors (float32) by `method`; see PLACEMENTS."""
  if method not in PLACEMENTS:
    raise ValueError(f'Unknown prototype placement {method!r}; use one of '
                     f'{sorted(PLACEMENTS)}.')
  if num_classes < 1 or dim < 1:
    raise ValueError(f'Need num_classes >= 1 and dim >= 1, got ({num_classes}, {dim}).')
  protos = np.asarray(PLACEMENTS[method](num_classes, dim, seed, **kwargs), np.float64)
  protos /= np.linalg.norm(protos, axis=1, keepdims=True)
  return protos.astype(np.float32)
