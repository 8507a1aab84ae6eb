"""The original code's DenseNet-121 (`models/cifar/densenet.py` of psmmettes/hpn).

This is kuangliu's CIFAR DenseNet, not torchvision's ImageNet one, and the differences
decide the parameter count and the numbers:
  - stem: one 3x3 conv to 2 x growth channels, no BN/ReLU/max-pool after it;
  - bottleneck layer: BN-ReLU-conv1x1 (4 x growth)-BN-ReLU-conv3x3 (growth), and the new
    features are concatenated **in front** of the input (`torch.cat([out, x], 1)`);
  - transition: BN-ReLU-conv1x1 (floor(0.5 x channels))-AvgPool 2;
  - after the last dense block: BN-ReLU-AvgPool(4) for 32x32 inputs (CIFAR); the
    ImageNet-200 copy pools 8 for 64x64 inputs;
  - no custom initialisation: PyTorch's defaults, i.e. conv weights
    U(+-1 / sqrt(fan_in)) (kaiming_uniform_ with a = sqrt(5)), BN scale 1 / bias 0.
DenseNet-121 here: blocks (6, 12, 24, 16), growth 32, 1,024 output features.
"""

import functools
import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from hyperproto.models import conv
from hyperproto.models.resnet import global_pool

# PyTorch's default Conv2d init: kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)).
TORCH_CONV_INIT = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')


def _conv(features: int, kernel: int, dtype: Any, name: str) -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), padding=kernel // 2, use_bias=False,
                 dtype=dtype, kernel_init=TORCH_CONV_INIT, name=name,
                 conv_general_dilated=conv.conv_general_dilated)


def _norm(train: bool, dtype: Any, axis_name: Optional[str], name: str) -> nn.BatchNorm:
  # Statistics in float32 (Flax's force_float32_reductions); `dtype` is the output's.
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                      dtype=dtype, axis_name=axis_name, name=name)


class DenseLayer(nn.Module):
  """BN-ReLU-conv1x1(4g)-BN-ReLU-conv3x3(g); output [new, x] (the original's order)."""
  growth_rate: int
  dtype: Any = jnp.float32
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    norm = functools.partial(_norm, train, self.dtype, self.axis_name)
    y = _conv(4 * self.growth_rate, 1, self.dtype, 'conv1')(nn.relu(norm('bn1')(x)))
    y = _conv(self.growth_rate, 3, self.dtype, 'conv2')(nn.relu(norm('bn2')(y)))
    return jnp.concatenate([y, x], axis=-1)


class Transition(nn.Module):
  """BN-ReLU-conv1x1(features)-AvgPool 2."""
  features: int
  dtype: Any = jnp.float32
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = _norm(train, self.dtype, self.axis_name, 'bn')(x)
    x = _conv(self.features, 1, self.dtype, 'conv')(nn.relu(x))
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


class DenseNet(nn.Module):
  """kuangliu's DenseNet as used by the original; returns B x F features.

  Attributes:
    blocks: layers per dense block ((6, 12, 24, 16) for DenseNet-121).
    growth_rate: channels each layer adds (32 for DenseNet-121).
    reduction: transition compression (0.5).
    pool_size: final AvgPool size: 4 for 32x32 inputs, 8 for 64x64; None = global.
    dtype: computation dtype; params and BatchNorm statistics stay float32.
    axis_name: mapped axis over which BatchNorm statistics are synchronised.
  """
  blocks: Sequence[int] = (6, 12, 24, 16)
  growth_rate: int = 32
  reduction: float = 0.5
  pool_size: Optional[int] = 4
  dtype: Any = jnp.float32
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    kw = dict(dtype=self.dtype, axis_name=self.axis_name)
    x = _conv(2 * self.growth_rate, 3, self.dtype, 'conv1')(x.astype(self.dtype))
    for i, num_layers in enumerate(self.blocks):
      for j in range(num_layers):
        x = DenseLayer(self.growth_rate, name=f'dense{i + 1}_{j}', **kw)(x, train=train)
      if i < len(self.blocks) - 1:
        out = int(math.floor(x.shape[-1] * self.reduction))
        x = Transition(out, name=f'trans{i + 1}', **kw)(x, train=train)
    x = nn.relu(_norm(train, self.dtype, self.axis_name, 'bn')(x))
    scale = 2 ** (len(self.blocks) - 1)
    hint = f'{scale * self.pool_size}x{scale * self.pool_size} inputs' if self.pool_size else ''
    return global_pool(x, self.pool_size, hint)


VARIANTS = {
    'densenet121': dict(blocks=(6, 12, 24, 16), growth_rate=32, pool_size=4),
    # ImageNet-200 (64x64): `models/imagenet200/densenet.py`, AvgPool 8.
    'densenet121_64': dict(blocks=(6, 12, 24, 16), growth_rate=32, pool_size=8),
}
