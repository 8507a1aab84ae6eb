"""Backbones (return features) and the output head; `build` assembles a Model.

BACKBONES maps variant strings to backbone constructors (classes or functools.partials
with the variant's sizes filled in); any attribute can still be overridden through
`build(..., **kwargs)`, e.g. `pool_size=None` to run a ResNet at another resolution.

  cnn                        the small demo CNN (any input size)
  resnet20/32/44/56/110      the original's CIFAR ResNet (6n+2, 3x3 stride-2 shortcuts),
                             32x32 inputs
  resnet32_64                the same ResNet-32 with AvgPool 16: ImageNet-200, 64x64
  resnet18/34/50             the original's ImageNet-style ResNet (CUB, OmniArt), 224x224
  densenet121                the original's (kuangliu) CIFAR DenseNet-121, 32x32
  densenet121_64             the ImageNet-200 copy (AvgPool 8), 64x64
  vit_ti4, vit_s4            ViT-Ti/4, ViT-S/4 for 32x32 inputs
  vit_ti16, vit_s16, vit_b16 ViT-Ti/16, S/16, B/16 for 224x224 (checkpoint-compatible;
                             see vit.load_vit_npz)
"""

import functools
from typing import Any, Callable, Optional

import flax.linen as nn
import jax.numpy as jnp

from hyperproto.models import densenet
from hyperproto.models import resnet
from hyperproto.models import vit
from hyperproto.models.cnn import CNN
from hyperproto.models.head import Model
from hyperproto.models.vit import load_vit_npz  # pylint: disable=unused-import

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    'cnn': CNN,
    **{k: functools.partial(resnet.CifarResNet, **v)
       for k, v in resnet.CIFAR_VARIANTS.items()},
    **{k: functools.partial(resnet.ResNet, **v)
       for k, v in resnet.IMAGENET_VARIANTS.items()},
    **{k: functools.partial(densenet.DenseNet, **v) for k, v in densenet.VARIANTS.items()},
    **{k: functools.partial(vit.ViT, **v) for k, v in vit.VARIANTS.items()},
}

# The input size each variant was designed for (H = W); None: any size.
INPUT_SIZES: dict[str, Optional[int]] = {
    'cnn': None,
    **{k: 64 if k.endswith('_64') else 32 for k in resnet.CIFAR_VARIANTS},
    **{k: 224 for k in resnet.IMAGENET_VARIANTS},
    'densenet121': 32, 'densenet121_64': 64,
    'vit_ti4': 32, 'vit_s4': 32, 'vit_ti16': 224, 'vit_s16': 224, 'vit_b16': 224,
}

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def build(name: str, *, output_dim: int, dtype: str = 'float32',
          axis_name: Optional[str] = None, head_init: Optional[str] = None,
          **kwargs: Any) -> Model:
  """Backbone `name` (see BACKBONES) with a Dense head to `output_dim` outputs.

  Args:
    name: a BACKBONES key.
    output_dim: outputs of the head (the prototype dimension d).
    dtype: computation dtype, 'float32' or 'bfloat16'; params stay float32.
    axis_name: mapped axis for synchronised BatchNorm statistics (None outside
      shard_map / pmap).
    head_init: 'pytorch' or 'flax' (see head.Model); default 'pytorch' for the paper's
      networks and ViT (the original's nn.Linear init), 'flax' for the demo CNN.
    **kwargs: backbone attributes overriding the variant's (e.g. pool_size=None).
  """
  if name not in BACKBONES:
    raise ValueError(f'Unknown backbone {name!r}; use one of {sorted(BACKBONES)}.')
  if dtype not in DTYPES:
    raise ValueError(f'Unknown dtype {dtype!r}; use one of {sorted(DTYPES)}.')
  if head_init is None:
    head_init = 'flax' if name == 'cnn' else 'pytorch'
  backbone = BACKBONES[name](dtype=DTYPES[dtype], axis_name=axis_name, **kwargs)
  return Model(backbone=backbone, output_dim=output_dim, head_init=head_init)
