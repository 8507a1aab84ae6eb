"""Separation metrics of a placement, in float64."""

from typing import Optional

import numpy as np

DUPLICATE_COS = 1.0 - 1e-6


def lower_bound(num_classes: int, dim: int) -> Optional[float]:
  """The best possible max cosine where it is known exactly (else None).

  C <= d + 1: the regular simplex, -1/(C-1). d + 1 < C <= 2d: 0 (Rankin; reached by the
  cross-polytope).
  """
  if num_classes <= 1:
    return None
  if num_classes <= dim + 1:
    return -1.0 / (num_classes - 1)
  if num_classes <= 2 * dim:
    return 0.0
  return None


def separation_metrics(protos_CxD: np.ndarray) -> dict:
  """Max cosine, min angle (degrees), mean nearest-neighbour cosine, duplicates, ..."""
  p = np.asarray(protos_CxD, np.float64)
  num_classes, dim = p.shape
  p = p / np.linalg.norm(p, axis=1, keepdims=True)
  out = {'num_classes': int(num_classes), 'dim': int(dim),
         'norm_of_mean': float(np.linalg.norm(p.mean(axis=0)))}
  if num_classes < 2:
    return out
  cos = p @ p.T
  np.fill_diagonal(cos, -np.inf)
  nearest = cos.max(axis=1)
  max_cos = float(nearest.max())
  upper = cos[np.triu_indices(num_classes, 1)]
  out.update(
      max_cos=max_cos,
      min_angle_deg=float(np.degrees(np.arccos(np.clip(max_cos, -1.0, 1.0)))),
      mean_nn_cos=float(nearest.mean()),
      num_pairs_at_max=int(np.sum(upper >= max_cos - 1e-6)),
      num_duplicates=int(np.sum(upper > DUPLICATE_COS)),
  )
  bound = lower_bound(num_classes, dim)
  if bound is not None:
    out['bound'] = bound
    out['gap_to_bound'] = max_cos - bound
  return out
