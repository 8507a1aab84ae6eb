"""Backbone + output head."""

import jax
import jax.numpy as jnp
import flax.linen as nn

HEAD_INITS = ('pytorch', 'flax')


def torch_linear_bias_init(fan_in: int) -> nn.initializers.Initializer:
  """PyTorch's default nn.Linear bias init, U(+-1/sqrt(fan_in))."""
  bound = 1.0 / float(fan_in) ** 0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


class Model(nn.Module):
  """A backbone followed by a Dense layer (with bias) to `output_dim` outputs.

  For prototypes the output z is left unnormalised, like the original: the losses compute
  cosines in float32. The baselines use the same module with C, 1 or C + 1 outputs.

  Attributes:
    backbone: returns B x F features.
    output_dim: d, the prototype space's dimension (or C, 1, C + 1 for the baselines).
    head_init: 'pytorch' (PyTorch's default nn.Linear init, kernel and bias
      U(+-1/sqrt(F)), which every network of the original code uses) or 'flax' (Flax's
      Dense default: LeCun-normal kernel, zero bias).
  """
  backbone: nn.Module
  output_dim: int
  head_init: str = 'flax'

  @nn.compact
  def __call__(self, x, *, train: bool):
    if self.head_init not in HEAD_INITS:
      raise ValueError(f'Unknown head_init {self.head_init!r}; use one of {HEAD_INITS}.')
    features = self.backbone(x, train=train).astype(jnp.float32)
    kwargs = {}
    if self.head_init == 'pytorch':
      # kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)) = variance_scaling(1/3, uniform).
      kwargs = dict(
          kernel_init=nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform'),
          bias_init=torch_linear_bias_init(features.shape[-1]))
    return nn.Dense(self.output_dim, dtype=jnp.float32, name='head', **kwargs)(features)
