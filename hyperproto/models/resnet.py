"""The original code's ResNets, layer for layer: CIFAR (6n+2) and ImageNet-style (18/34/50).

Why a port rather than Flax's example ResNet: the paper's numbers come from these exact
networks, and they differ from the usual ones in ways that change results.

CIFAR family (`models/cifar/resnet.py`, `models/imagenet200/resnet.py` of psmmettes/hpn):
  - 3x3 stem with 16 channels, no max-pool; three stages of n BasicBlocks (16/32/64 x
    `multiplier` channels), depth = 6n + 2 (ResNet-32: n = 5).
  - The downsampling shortcut is a **3x3 stride-2 conv + BN** (neither the paper's
    option A zero-padding nor torchvision's 1x1 conv): it adds 4,608 + 18,432 weights.
  - Convs: N(0, sqrt(2 / (k * k * out_channels))) = He-normal with fan_out, untruncated.
  - AvgPool2d(8) on CIFAR (32x32 inputs); the ImageNet-200 copy is the same network with
    AvgPool2d(16) for 64x64 inputs.
ImageNet family (`models/cub/resnet.py`, `models/omniart/resnet.py`): torchvision's v1.5
  ResNet (stride in the bottleneck's 3x3 conv, 1x1 downsampling shortcut), 7x7/2 stem +
  3x3/2 max-pool, kaiming_normal_(fan_out, relu), AvgPool2d(7, stride=1) at 224 inputs. No
  zero-init of the last BN, no pretrained weights (trained from scratch in the paper).

Both return features (B x F); the Dense head to d outputs is `head.Model`. Padding is
explicit (PyTorch's symmetric `padding=k//2`), not 'SAME': for stride-2 convs on even inputs
'SAME' pads (0, 1) and shifts every downsampled feature map by one pixel.

PyTorch -> Flax mapping: NCHW -> NHWC; BatchNorm momentum 0.1 -> 0.9, eps 1e-5; module
names follow the PyTorch state_dict (`layer2.0.downsample.0` -> `layer2_0/downsample_conv`).
One known difference: PyTorch updates the running variance with the unbiased batch
variance, Flax with the biased one (a factor n / (n - 1), n = B * H * W; negligible).
"""

import functools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from hyperproto.models import conv

# N(0, sqrt(2 / fan_out)), untruncated: the original's `normal_(0, sqrt(2. / n))` with
# n = k * k * out_channels, and PyTorch's kaiming_normal_(mode='fan_out', 'relu').
CONV_INIT = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def _pad(kernel: int) -> tuple[tuple[int, int], tuple[int, int]]:
  """PyTorch's symmetric `padding=kernel // 2`."""
  p = kernel // 2
  return ((p, p), (p, p))


# BatchNorm's `norm_dtype` options (see _norm), for measuring mixed precision.
NORM_DTYPES = (None, 'float32', 'bfloat16', 'float16')


def _conv(features: int, kernel: int, stride: int, dtype: Any, name: str,
          input_channels: Optional[int] = None) -> nn.Conv:
  conv_fn = (conv.conv_general_dilated if input_channels is None
             else conv.padded_input_channels(input_channels))
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=_pad(kernel), use_bias=False, dtype=dtype,
                 kernel_init=CONV_INIT, name=name, conv_general_dilated=conv_fn)


def _norm(train: bool, dtype: Any, axis_name: Optional[str], name: str,
          norm_dtype: Optional[str] = None) -> nn.BatchNorm:
  """BatchNorm as the original's (momentum 0.1 in PyTorch's terms, eps 1e-5).

  `norm_dtype` None (the default): statistics and normalisation in float32 whatever
  `dtype` (Flax's force_float32_reductions=True), the output in `dtype`. A dtype name
  computes and outputs in it: 'float32' keeps BatchNorm, ReLU and the residual sums of a
  bfloat16 network in float32; 'bfloat16' / 'float16' compute the statistics in it too
  (no float32 casts). Parameters and running statistics stay float32 in every case.
  """
  if norm_dtype is None:
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                        dtype=dtype, axis_name=axis_name, name=name)
  if norm_dtype not in NORM_DTYPES:
    raise ValueError(f'Unknown norm_dtype {norm_dtype!r}; use one of {NORM_DTYPES}.')
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                      dtype=jnp.dtype(norm_dtype), axis_name=axis_name, name=name,
                      force_float32_reductions=norm_dtype == 'float32')


def _check_stem(input_channels: Optional[int]) -> None:
  if input_channels is not None and input_channels < 1:
    raise ValueError(f'stem_channels must be None or a channel count (4 or 8), got '
                     f'{input_channels}.')


def global_pool(x, pool_size: Optional[int], input_hint: str):
  """The original's final AvgPool2d(pool_size), which must cover the whole feature map.

  In PyTorch a larger map gives several pooled positions and the Linear layer fails on the
  flattened size; here that is a clear error instead. `pool_size=None` averages over any
  spatial size (for other resolutions).
  """
  if pool_size is not None and x.shape[1:3] != (pool_size, pool_size):
    raise ValueError(
        f'The final feature map is {x.shape[1]}x{x.shape[2]} but this network pools '
        f'{pool_size}x{pool_size} like the original ({input_hint}). Feed inputs of that '
        'size, or pass pool_size=None for global average pooling at any size.')
  return jnp.mean(x, axis=(1, 2))


class BasicBlock(nn.Module):
  """conv3x3-BN-ReLU-conv3x3-BN, + shortcut, ReLU. `shortcut_kernel` is the downsampling
  conv's size (3 in the CIFAR code, 1 in the ImageNet code); used when shape changes."""
  features: int
  stride: int = 1
  shortcut_kernel: int = 1
  dtype: Any = jnp.float32
  axis_name: Optional[str] = None
  norm_dtype: Optional[str] = None
  expansion = 1

  @nn.compact
  def __call__(self, x, *, train: bool):
    norm = functools.partial(_norm, train, self.dtype, self.axis_name,
                             norm_dtype=self.norm_dtype)
    residual = x
    y = nn.relu(norm('bn1')(_conv(self.features, 3, self.stride, self.dtype, 'conv1')(x)))
    y = norm('bn2')(_conv(self.features, 3, 1, self.dtype, 'conv2')(y))
    if self.stride != 1 or x.shape[-1] != self.features:
      residual = norm('downsample_bn')(_conv(self.features, self.shortcut_kernel,
                                             self.stride, self.dtype,
                                             'downsample_conv')(x))
    return nn.relu(y + residual)


class Bottleneck(nn.Module):
  """1x1-3x3(stride)-1x1 (x4) with BN, torchvision v1.5 (stride on the 3x3 conv)."""
  features: int
  stride: int = 1
  shortcut_kernel: int = 1
  dtype: Any = jnp.float32
  axis_name: Optional[str] = None
  norm_dtype: Optional[str] = None
  expansion = 4

  @nn.compact
  def __call__(self, x, *, train: bool):
    norm = functools.partial(_norm, train, self.dtype, self.axis_name,
                             norm_dtype=self.norm_dtype)
    out_features = self.features * self.expansion
    residual = x
    y = nn.relu(norm('bn1')(_conv(self.features, 1, 1, self.dtype, 'conv1')(x)))
    y = nn.relu(norm('bn2')(_conv(self.features, 3, self.stride, self.dtype, 'conv2')(y)))
    y = norm('bn3')(_conv(out_features, 1, 1, self.dtype, 'conv3')(y))
    if self.stride != 1 or x.shape[-1] != out_features:
      residual = norm('downsample_bn')(_conv(out_features, self.shortcut_kernel,
                                             self.stride, self.dtype,
                                             'downsample_conv')(x))
    return nn.relu(y + residual)


class CifarResNet(nn.Module):
  """The original's CIFAR ResNet (depth 6n + 2, BasicBlocks, 3x3 stride-2 shortcuts).

  Attributes:
    depth: 6n + 2 (20, 32, 44, 56, 110, ...); the paper uses 32.
    multiplier: width multiplier of the 16/32/64 channels (the original's `multiplier`).
    pool_size: final AvgPool size: 8 for 32x32 inputs (CIFAR), 16 for 64x64
      (ImageNet-200); None for global average pooling at any size.
    dtype: computation dtype; params and BatchNorm statistics stay float32.
    axis_name: mapped axis over which BatchNorm statistics are synchronised.
    norm_dtype: BatchNorm's computation dtype (see `_norm`; None: as today, statistics
      in float32, output in `dtype`).
    stem_channels: pad the first convolution's input channels with zeros to this many
      (4 or 8; None: no padding). The same parameters and function, another shape for
      the GPU's convolution kernels (`conv.padded_input_channels`).
  """
  depth: int = 32
  multiplier: int = 1
  pool_size: Optional[int] = 8
  dtype: Any = jnp.float32
  axis_name: Optional[str] = None
  norm_dtype: Optional[str] = None
  stem_channels: Optional[int] = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    if self.depth < 8 or (self.depth - 2) % 6:
      raise ValueError(f'CIFAR ResNet depth must be 6n + 2 with n >= 1 (20, 32, 56, '
                       f'110, ...), got {self.depth}.')
    _check_stem(self.stem_channels)
    n = (self.depth - 2) // 6
    x = x.astype(self.dtype)
    x = _conv(16 * self.multiplier, 3, 1, self.dtype, 'conv1', self.stem_channels)(x)
    x = nn.relu(_norm(train, self.dtype, self.axis_name, 'bn1', self.norm_dtype)(x))
    for i, width in enumerate((16, 32, 64)):
      for j in range(n):
        x = BasicBlock(width * self.multiplier, stride=2 if (i > 0 and j == 0) else 1,
                       shortcut_kernel=3, dtype=self.dtype, axis_name=self.axis_name,
                       norm_dtype=self.norm_dtype,
                       name=f'layer{i + 1}_{j}')(x, train=train)
    hint = f'{4 * self.pool_size}x{4 * self.pool_size} inputs' if self.pool_size else ''
    return global_pool(x, self.pool_size, hint)


class ResNet(nn.Module):
  """The original's ImageNet-style ResNet (CUB, OmniArt), trained from scratch at 224.

  Attributes:
    stage_sizes: blocks per stage ((2, 2, 2, 2) ResNet-18, (3, 4, 6, 3) ResNet-34/50).
    block: 'basic' or 'bottleneck'.
    width: channels of the stem and first stage (64 in the original; smaller only for
      tests of the same code path).
    pool_size: final AvgPool size: 7 for 224x224 inputs; None for global pooling.
    dtype: computation dtype; params and BatchNorm statistics stay float32.
    axis_name: mapped axis over which BatchNorm statistics are synchronised.
    norm_dtype: BatchNorm's computation dtype (see CifarResNet).
    stem_channels: zero-pad the first convolution's input channels (see CifarResNet).
  """
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  block: str = 'basic'
  width: int = 64
  pool_size: Optional[int] = 7
  dtype: Any = jnp.float32
  axis_name: Optional[str] = None
  norm_dtype: Optional[str] = None
  stem_channels: Optional[int] = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    blocks = {'basic': BasicBlock, 'bottleneck': Bottleneck}
    if self.block not in blocks:
      raise ValueError(f'Unknown ResNet block {self.block!r}; use one of {sorted(blocks)}.')
    block = blocks[self.block]
    _check_stem(self.stem_channels)
    x = x.astype(self.dtype)
    x = _conv(self.width, 7, 2, self.dtype, 'conv1', self.stem_channels)(x)
    x = nn.relu(_norm(train, self.dtype, self.axis_name, 'bn1', self.norm_dtype)(x))
    # MaxPool2d(3, 2, padding=1): Flax pads max_pool with -inf, like PyTorch.
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    for i, size in enumerate(self.stage_sizes):
      for j in range(size):
        x = block(self.width * 2**i, stride=2 if (i > 0 and j == 0) else 1,
                  shortcut_kernel=1, dtype=self.dtype, axis_name=self.axis_name,
                  norm_dtype=self.norm_dtype, name=f'layer{i + 1}_{j}')(x, train=train)
    hint = f'{32 * self.pool_size}x{32 * self.pool_size} inputs' if self.pool_size else ''
    return global_pool(x, self.pool_size, hint)


# Variants (registry keys in hyperproto.models.BACKBONES).
CIFAR_VARIANTS = {
    'resnet20': dict(depth=20),
    'resnet32': dict(depth=32),
    'resnet44': dict(depth=44),
    'resnet56': dict(depth=56),
    'resnet110': dict(depth=110),
    # ImageNet-200 (64x64): the original's `-n resnet32` in hpn_imagenet200.py, i.e. the
    # same CIFAR network with AvgPool2d(16).
    'resnet32_64': dict(depth=32, pool_size=16),
}
IMAGENET_VARIANTS = {
    'resnet18': dict(stage_sizes=(2, 2, 2, 2), block='basic'),
    'resnet34': dict(stage_sizes=(3, 4, 6, 3), block='basic'),
    'resnet50': dict(stage_sizes=(3, 4, 6, 3), block='bottleneck'),
}
