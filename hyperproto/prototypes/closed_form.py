"""Exact constructions."""

import numpy as np


def simplex(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
  """The regular simplex: C unit vectors with every pairwise cosine -1/(C-1).

  Optimal for C <= d + 1 (any d >= C - 1). The C centred basis vectors of R^C span a
  (C-1)-dim subspace; their coordinates in an orthonormal basis of it, padded with zeros,
  give the points in R^d. Deterministic; `seed` is unused (no randomness needed).
  """
  del seed
  if num_classes < 1:
    raise ValueError(f'num_classes must be >= 1, got {num_classes}.')
  if dim < num_classes - 1:
    raise ValueError(
        f'A regular simplex of {num_classes} points needs dim >= {num_classes - 1}, got '
        f'dim={dim}. Use method="auto" (optimises the placement when C > d + 1) or '
        f'raise dim.')
  if num_classes == 1:
    return np.eye(1, dim, dtype=np.float64)
  centred = np.eye(num_classes) - 1.0 / num_classes
  u, s, _ = np.linalg.svd(centred)
  coords = u[:, :num_classes - 1] * s[:num_classes - 1]
  points = np.zeros((num_classes, dim))
  points[:, :num_classes - 1] = coords
  return points / np.linalg.norm(points, axis=1, keepdims=True)
