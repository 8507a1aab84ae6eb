"""Vision Transformer backbone with checkpoint-compatible names, and an `.npz` loader.

The original HPN code has no ViT; we add one so that prototypes can sit on top of a
pretrained transformer. Module and parameter names are those of google-research/
vision_transformer (`vit_jax/models_vit.py`) so its published `.npz` checkpoints (and
big_vision's, after the small renames `load_vit_npz` does) load without a mapping table:

  embedding/{kernel,bias}                      patch conv, kernel P x P x 3 x D
  cls                                          1 x 1 x D class token
  Transformer/posembed_input/pos_embedding     1 x (1 + N) x D
  Transformer/encoderblock_{i}/LayerNorm_0, MultiHeadDotProductAttention_0/{query,key,
      value,out}, LayerNorm_1, MlpBlock_0/{Dense_0,Dense_1}
  Transformer/encoder_norm

The backbone returns the class token after `encoder_norm` (B x D); the checkpoint's own
classification `head` (and `pre_logits`) are not part of it: `head.Model` adds the
projection to the prototype space.

Precision: LayerNorm statistics and the attention softmax run in float32 under bfloat16
compute (Flax's force_float32_reductions, `force_fp32_for_softmax=True`); params float32.
"""

from collections.abc import Mapping
from typing import Any, Optional

import flax
import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import scipy.ndimage


class MlpBlock(nn.Module):
  """Dense-GELU-Dense, the vision_transformer initialisers."""
  mlp_dim: int
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    dense = lambda features, name: nn.Dense(
        features, dtype=self.dtype, kernel_init=nn.initializers.xavier_uniform(),
        bias_init=nn.initializers.normal(stddev=1e-6), name=name)
    d = x.shape[-1]
    x = nn.gelu(dense(self.mlp_dim, 'Dense_0')(x))
    x = nn.Dropout(self.dropout)(x, deterministic=not train)
    return nn.Dropout(self.dropout)(dense(d, 'Dense_1')(x), deterministic=not train)


class Encoder1DBlock(nn.Module):
  """Pre-LN transformer layer: x + MHSA(LN(x)), then x + MLP(LN(x))."""
  mlp_dim: int
  num_heads: int
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    y = nn.LayerNorm(dtype=self.dtype, name='LayerNorm_0')(x)
    y = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, dtype=self.dtype,
        kernel_init=nn.initializers.xavier_uniform(), broadcast_dropout=False,
        dropout_rate=self.dropout, deterministic=not train,
        force_fp32_for_softmax=True, name='MultiHeadDotProductAttention_0')(y, y)
    x = x + nn.Dropout(self.dropout)(y, deterministic=not train)
    y = nn.LayerNorm(dtype=self.dtype, name='LayerNorm_1')(x)
    y = MlpBlock(self.mlp_dim, self.dropout, self.dtype, name='MlpBlock_0')(y, train=train)
    return x + y


class AddPositionEmbs(nn.Module):
  """Learned position embeddings, N(0, 0.02) (from BERT), for cls + patch tokens."""

  @nn.compact
  def __call__(self, x):
    pe = self.param('pos_embedding', nn.initializers.normal(stddev=0.02),
                    (1, x.shape[1], x.shape[2]))
    return x + pe.astype(x.dtype)


class Encoder(nn.Module):
  """Position embeddings, `depth` encoder blocks, final LayerNorm."""
  depth: int
  mlp_dim: int
  num_heads: int
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = AddPositionEmbs(name='posembed_input')(x)
    x = nn.Dropout(self.dropout)(x, deterministic=not train)
    for i in range(self.depth):
      x = Encoder1DBlock(self.mlp_dim, self.num_heads, self.dropout, self.dtype,
                         name=f'encoderblock_{i}')(x, train=train)
    return nn.LayerNorm(dtype=self.dtype, name='encoder_norm')(x)


class ViT(nn.Module):
  """ViT with a class token; returns the encoded class token (B x width).

  Attributes:
    patch_size: square patch size (4 for 32x32 CIFAR inputs, 16 for 224x224).
    width, depth, mlp_dim, num_heads: transformer size (see VARIANTS).
    dropout: dropout rate (0 by default, like big_vision; > 0 needs a 'dropout' rng).
    dtype: computation dtype; params float32.
    axis_name: unused (no BatchNorm); accepted so every backbone builds the same way.
  """
  patch_size: int = 16
  width: int = 768
  depth: int = 12
  mlp_dim: int = 3072
  num_heads: int = 12
  dropout: float = 0.0
  dtype: Any = jnp.float32
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    h, w = x.shape[1:3]
    if h % self.patch_size or w % self.patch_size:
      raise ValueError(f'Input {h}x{w} is not a multiple of the patch size '
                       f'{self.patch_size}; resize or crop the images.')
    p = self.patch_size
    x = nn.Conv(self.width, (p, p), strides=(p, p), padding='VALID', dtype=self.dtype,
                name='embedding')(x.astype(self.dtype))
    n, gh, gw, c = x.shape
    x = x.reshape(n, gh * gw, c)
    cls = self.param('cls', nn.initializers.zeros, (1, 1, c))
    x = jnp.concatenate([jnp.tile(cls.astype(x.dtype), (n, 1, 1)), x], axis=1)
    x = Encoder(self.depth, self.mlp_dim, self.num_heads, self.dropout, self.dtype,
                name='Transformer')(x, train=train)
    return x[:, 0]


def _size(name: str) -> dict[str, int]:
  # Table 2 of arXiv 2106.04560 (big_vision's decode_variant).
  return {
      'ti': dict(width=192, depth=12, mlp_dim=768, num_heads=3),
      's': dict(width=384, depth=12, mlp_dim=1536, num_heads=6),
      'b': dict(width=768, depth=12, mlp_dim=3072, num_heads=12),
  }[name]


VARIANTS = {
    # CIFAR-size (32x32 inputs, 8x8 = 64 patches).
    'vit_ti4': dict(patch_size=4, **_size('ti')),
    'vit_s4': dict(patch_size=4, **_size('s')),
    # 224x224 inputs (14x14 = 196 patches): the published checkpoints' sizes.
    'vit_ti16': dict(patch_size=16, **_size('ti')),
    'vit_s16': dict(patch_size=16, **_size('s')),
    'vit_b16': dict(patch_size=16, **_size('b')),
}


def resize_posemb(posemb: np.ndarray, num_tokens: int) -> np.ndarray:
  """Resizes a 1 x (1 + g*g) x D position embedding to 1 x num_tokens x D.

  The class-token embedding is kept; the g x g grid is resampled bilinearly
  (scipy.ndimage.zoom, order 1), as vision_transformer / big_vision do for fine-tuning at
  another resolution.
  """
  tok, grid = posemb[:, :1], posemb[0, 1:]
  gs_old, gs_new = int(round(np.sqrt(len(grid)))), int(round(np.sqrt(num_tokens - 1)))
  if gs_old**2 != len(grid) or gs_new**2 != num_tokens - 1:
    raise ValueError(f'Cannot resize position embeddings from {posemb.shape[1]} to '
                     f'{num_tokens} tokens: both must be 1 + a square grid.')
  grid = grid.reshape(gs_old, gs_old, -1)
  grid = scipy.ndimage.zoom(grid, (gs_new / gs_old, gs_new / gs_old, 1), order=1)
  return np.concatenate([tok, grid.reshape(1, gs_new * gs_new, -1)], axis=1)


def _normalise_keys(flat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Maps the names of the known checkpoint flavours to this module's names."""
  flat = {k[len('params/'):] if k.startswith('params/') else k: v for k, v in flat.items()}
  # Pre-Linen checkpoints (the original ViT release) number submodules globally:
  # LayerNorm_0, MultiHeadDotProductAttention_1, LayerNorm_2, MlpBlock_3.
  from flax.training import checkpoints  # pylint: disable=g-import-not-at-top
  tree = flax.traverse_util.unflatten_dict(flat, sep='/')
  tree = flax.core.unfreeze(checkpoints.convert_pre_linen(tree))
  flat = flax.traverse_util.flatten_dict(tree, sep='/')
  # big_vision keeps the position embedding at the top level.
  if 'pos_embedding' in flat:
    flat['Transformer/posembed_input/pos_embedding'] = flat.pop('pos_embedding')
  # big_vision with scan=True stacks the blocks on a leading axis.
  stacked = [k for k in flat if k.startswith('Transformer/encoderblock/')]
  for key in stacked:
    value = flat.pop(key)
    rest = key[len('Transformer/encoderblock/'):]
    for i in range(value.shape[0]):
      flat[f'Transformer/encoderblock_{i}/{rest}'] = value[i]
  return flat


def load_vit_npz(path: str, params: Any, *, resize_posemb_grid: bool = True) -> Any:
  """Loads a vision_transformer / big_vision `.npz` checkpoint into ViT params.

  Args:
    path: local `.npz` whose keys are '/'-joined parameter paths
      ('Transformer/encoderblock_0/LayerNorm_0/scale', ...). No network access.
    params: an initialised params tree, of the ViT backbone or of a whole `head.Model`
      (then its 'backbone' subtree is loaded and the prototype head is kept).
    resize_posemb_grid: resample the position-embedding grid when the checkpoint was
      trained at another resolution; if False, a grid mismatch is an error.

  Returns:
    A new params tree with the structure, shapes and dtypes of `params`. The checkpoint's
    `head` and `pre_logits` are ignored.

  Raises:
    ValueError: a parameter is missing from the checkpoint or has another shape.
  """
  if isinstance(params, Mapping) and 'backbone' in params:
    return {**flax.core.unfreeze(params), 'backbone': load_vit_npz(path, params['backbone'],
                                               resize_posemb_grid=resize_posemb_grid)}
  with np.load(path, allow_pickle=False) as f:
    ckpt = _normalise_keys({k: f[k] for k in f.files})
  target = flax.traverse_util.flatten_dict(flax.core.unfreeze(params), sep='/')
  missing = sorted(k for k in target if k not in ckpt)
  if missing:
    raise ValueError(f'{path} lacks {len(missing)} parameters of this ViT, e.g. '
                     f'{missing[:3]}; is it a ViT checkpoint of the same depth?')
  loaded = {}
  for key, value in target.items():
    new = ckpt[key]
    if key.endswith('pos_embedding') and new.shape != value.shape and resize_posemb_grid:
      if new.shape[0] != 1 or new.shape[2] != value.shape[2]:
        raise ValueError(f'Shape mismatch for {key}: checkpoint {new.shape}, model '
                         f'{value.shape} (widths differ: pick the matching variant).')
      new = resize_posemb(new, value.shape[1])
    if new.shape != value.shape:
      raise ValueError(f'Shape mismatch for {key}: checkpoint {new.shape}, model '
                       f'{value.shape}. Use the ViT variant (width, patch size, heads) '
                       'the checkpoint was trained with.')
    loaded[key] = jnp.asarray(new, value.dtype)
  return flax.traverse_util.unflatten_dict(loaded, sep='/')
