"""Backbone + output head."""

import flax.linen as nn
import jax.numpy as jnp


class Model(nn.Module):
  """A backbone followed by a Dense layer (with bias) to `output_dim` outputs.

  For prototypes the output z is left unnormalised, like the original: the losses compute
  cosines in float32. The baselines use the same module with C, 1 or C + 1 outputs.
  """
  backbone: nn.Module
  output_dim: int

  @nn.compact
  def __call__(self, x, *, train: bool):
    features = self.backbone(x, train=train)
    return nn.Dense(self.output_dim, dtype=jnp.float32, name='head')(
        features.astype(jnp.float32))
