"""A small VGG-style CNN backbone: the demo's network (fast on two CPU cores)."""

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from hyperproto.models import conv as fast_conv


class CNN(nn.Module):
  """Stages of two 3x3 conv-BN-ReLU layers, 2x2 average pooling between stages, then
  global average pooling. Returns features (B x widths[-1]); knows nothing of prototypes.

  Attributes:
    widths: channels per stage.
    dtype: computation dtype; params and BatchNorm statistics stay float32.
    axis_name: mapped axis over which BatchNorm statistics are synchronised (None when
      the model runs outside shard_map / pmap).
  """
  widths: Sequence[int] = (32, 64, 128)
  dtype: Any = jnp.float32
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    conv = lambda w, name: nn.Conv(w, (3, 3), use_bias=False, dtype=self.dtype,
                                   kernel_init=nn.initializers.he_normal(), name=name,
                                   conv_general_dilated=fast_conv.conv_general_dilated)
    norm = lambda name: nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                     dtype=self.dtype, axis_name=self.axis_name,
                                     name=name)
    x = x.astype(self.dtype)
    for i, width in enumerate(self.widths):
      if i > 0:
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
      for j in range(2):
        x = nn.relu(norm(f'bn{i}_{j}')(conv(width, f'conv{i}_{j}')(x)))
    return jnp.mean(x, axis=(1, 2))
