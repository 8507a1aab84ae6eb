"""Backbones (return features) and the output head; `build` assembles a Model."""

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from hyperproto.models.cnn import CNN
from hyperproto.models.head import Model

BACKBONES: dict[str, type[nn.Module]] = {
    'cnn': CNN,
}

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def build(name: str, *, output_dim: int, dtype: str = 'float32',
          axis_name: Optional[str] = None, **kwargs: Any) -> Model:
  """Backbone `name` (see BACKBONES) with a Dense head to `output_dim` outputs."""
  if name not in BACKBONES:
    raise ValueError(f'Unknown backbone {name!r}; use one of {sorted(BACKBONES)}.')
  if dtype not in DTYPES:
    raise ValueError(f'Unknown dtype {dtype!r}; use one of {sorted(DTYPES)}.')
  backbone = BACKBONES[name](dtype=DTYPES[dtype], axis_name=axis_name, **kwargs)
  return Model(backbone=backbone, output_dim=output_dim)
