"""Prototypes from class-name embeddings: the word2vec baseline and L_PI (privileged info).

`embedding` is the paper's Table 1 baseline: class-name embeddings reduced to d dims
(PCA) and normalised; it keeps semantics but separates poorly. `semantic` is the paper's
privileged-information placement: the separation objective plus w * L_PI, where L_PI
asks each triplet (i, j, k) to keep the embedding's order (j closer to i than k) in the
prototypes' cosines. `pi_weight` trades max cos against semantic agreement, measured by
`semantic_agreement` (Spearman rank correlation of prototype cosines with embedding
cosines over all pairs).

Embeddings come from `embeddings` (a C x E array or a path to a `.npy`), or from
`class_names` (a tuple of names, or a dataset name in `hyperproto.data.class_names`)
through the offline MiniLM text encoder (`text_embed.py`, optional extra `embed`).
"""

from typing import Sequence, Union

import numpy as np
from scipy import stats

from hyperproto.prototypes import separation as separation_lib

EmbeddingSource = Union[None, str, np.ndarray]


def load_embeddings(num_classes: int, embeddings: EmbeddingSource = None,
                    class_names: Union[None, str, Sequence[str]] = None) -> np.ndarray:
  """C x E float64 class-name embeddings from an array, a .npy file or class names."""
  if embeddings is None and class_names is None:
    raise ValueError('Semantic placements need class-name embeddings: pass '
                     'embeddings=<C x E array or FILE.npy> or class_names=<names or a '
                     'dataset name such as "cifar100">.')
  if embeddings is not None:
    if isinstance(embeddings, str):
      embeddings = np.load(embeddings)
    emb = np.asarray(embeddings, np.float64)
  else:
    from hyperproto.prototypes import text_embed  # pylint: disable=g-import-not-at-top
    if isinstance(class_names, str):
      from hyperproto.data import class_names as names_lib  # pylint: disable=g-import-not-at-top
      class_names = names_lib.get(class_names)
    emb = text_embed.embed(list(class_names))
  if emb.ndim != 2 or emb.shape[0] != num_classes:
    raise ValueError(f'Class-name embeddings have shape {emb.shape}; expected '
                     f'({num_classes}, E): one row per class, in label order.')
  if not np.all(np.isfinite(emb)) or np.any(np.linalg.norm(emb, axis=1) == 0):
    raise ValueError('Class-name embeddings contain a zero or non-finite row.')
  return emb


def _unit(x: np.ndarray) -> np.ndarray:
  return x / np.linalg.norm(x, axis=1, keepdims=True)


def embedding(num_classes: int, dim: int, seed: int = 0, *,
              embeddings: EmbeddingSource = None,
              class_names: Union[None, str, Sequence[str]] = None) -> np.ndarray:
  """The word2vec-style baseline: embeddings projected on their top-d principal axes."""
  del seed
  emb = _unit(load_embeddings(num_classes, embeddings, class_names))
  centred = emb - emb.mean(axis=0)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  out = np.zeros((num_classes, dim))
  k = min(dim, vt.shape[0])
  out[:, :k] = centred @ vt[:k].T
  return _unit(out)  # Beyond the principal axes (dim > min(C, E)) columns stay 0.


def triplets_from_embeddings(emb_CxE: np.ndarray, per_class: int = 64,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """`per_class` random triplets (i, j, k) per anchor i, labelled 1 when j is closer."""
  cos = _unit(emb_CxE) @ _unit(emb_CxE).T
  c = len(cos)
  rng = np.random.default_rng(seed)
  i = np.repeat(np.arange(c), per_class)
  # j, k uniform over the other classes, j != k.
  j = (i + rng.integers(1, c, size=i.shape)) % c
  k = (i + rng.integers(1, c - 1, size=i.shape)) % c
  k = np.where(k == j, (i + c - 1) % c, k)
  keep = (k != i) & (k != j)
  i, j, k = i[keep], j[keep], k[keep]
  labels = (cos[i, j] > cos[i, k]).astype(np.float32)
  return np.stack([i, j, k], axis=1).astype(np.int32), labels


def semantic_agreement(protos_CxD: np.ndarray, emb_CxE: np.ndarray) -> float:
  """Spearman correlation of prototype cosines with embedding cosines over pairs."""
  iu = np.triu_indices(len(protos_CxD), 1)
  p = _unit(np.asarray(protos_CxD, np.float64))
  e = _unit(np.asarray(emb_CxE, np.float64))
  return float(stats.spearmanr((p @ p.T)[iu], (e @ e.T)[iu]).statistic)


def semantic(num_classes: int, dim: int, seed: int = 300, *,
             embeddings: EmbeddingSource = None,
             class_names: Union[None, str, Sequence[str]] = None,
             pi_weight: float = 1.0, triplets_per_class: int = 64,
             **separation_kwargs) -> np.ndarray:
  """Separation + pi_weight * L_PI (the paper's privileged information), see above."""
  if num_classes < 3:
    raise ValueError(f'L_PI needs triplets of distinct classes: num_classes >= 3, got '
                     f'{num_classes}.')
  emb = load_embeddings(num_classes, embeddings, class_names)
  triplets, labels = triplets_from_embeddings(emb, triplets_per_class, seed)
  return separation_lib.separation(num_classes, dim, seed, triplets=triplets,
                                   labels=labels, pi_weight=pi_weight,
                                   **separation_kwargs)
