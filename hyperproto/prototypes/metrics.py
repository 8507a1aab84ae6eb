"""Separation metrics of a placement, in float64, in row blocks.

The C x C Gram matrix is never held whole: rows are processed in blocks of
`block_rows`, so C = 10,000 (or 100,000) costs O(block_rows * C) memory. A second pass
over only the rows whose nearest neighbour is within `PAIR_TOL` of the max counts the
pairs at the max.
"""

from typing import Optional

import numpy as np

from hyperproto.prototypes import certificates as certificate_lib

DUPLICATE_COS = 1.0 - 1e-6  # Pairs above this are counted as duplicated prototypes.
PAIR_TOL = 1e-6  # Pairs within this of the max cosine count as "at the max".


def _blocks(num_rows: int, block_rows: int):
  for start in range(0, num_rows, block_rows):
    yield start, min(start + block_rows, num_rows)


def max_cos(protos_CxD: np.ndarray, block_rows: int = 2048) -> float:
  """The max pairwise cosine (float64, blocked)."""
  return nearest_cos(protos_CxD, block_rows).max()


def nearest_cos(protos_CxD: np.ndarray, block_rows: int = 2048) -> np.ndarray:
  """Each row's largest cosine to another row (float64, blocked), shape (C,)."""
  p = certificate_lib.unit_rows(protos_CxD)
  out = np.empty(len(p))
  for a, b in _blocks(len(p), block_rows):
    cos = p[a:b] @ p.T
    cos[np.arange(b - a), np.arange(a, b)] = -np.inf
    out[a:b] = cos.max(axis=1)
  return out


def separation_metrics(protos_CxD: np.ndarray, block_rows: int = 2048) -> dict:
  """Max cosine, min angle (degrees), mean nearest-neighbour cosine, pairs at the max,
  duplicates, norm of the mean, the best lower bound for (C, d) and the gap to it, the
  max |cosine| (`max_abs_cos`: the criterion of Equiangular Basis Vectors, where an
  antipodal pair counts as close), and the certificate (`certificates.certificate`):
  every bound that applies, the best-known value where one is tabulated, and the gaps.
  `certificates.certify` computes the same keys in one symmetric blocked pass (exact for
  integer codes; faster at large C)."""
  p = certificate_lib.unit_rows(protos_CxD)
  num_classes, dim = p.shape
  out = certificate_lib.scan_header(p)
  if num_classes < 2:
    return out
  nearest = np.empty(num_classes)
  duplicates = 0
  max_abs = 0.0
  for a, b in _blocks(num_classes, block_rows):
    cos = p[a:b] @ p.T
    cos[np.arange(b - a), np.arange(a, b)] = -np.inf
    nearest[a:b] = cos.max(axis=1)
    max_abs = max(max_abs, float(np.max(np.abs(cos), where=np.isfinite(cos), initial=0.0)))
    upper = np.arange(num_classes)[None] > np.arange(a, b)[:, None]  # Pairs i < j.
    duplicates += int(np.sum((cos > DUPLICATE_COS) & upper))
  best = float(nearest.max())
  pairs = 0
  rows = np.flatnonzero(nearest >= best - PAIR_TOL)
  for a, b in _blocks(len(rows), block_rows):
    idx = rows[a:b]
    cos = p[idx] @ p.T
    upper = np.arange(num_classes)[None] > idx[:, None]
    pairs += int(np.sum((cos >= best - PAIR_TOL) & upper))
  out.update(certificate_lib.scan_summary(num_classes, dim, nearest, pairs, duplicates,
                                          max_abs))
  return out


def duplicate_pairs(protos_CxD: np.ndarray, block_rows: int = 2048,
                    limit: Optional[int] = 10) -> list[tuple[int, int]]:
  """Index pairs (i < j) of duplicated prototypes (cos > DUPLICATE_COS), at most `limit`."""
  p = certificate_lib.unit_rows(protos_CxD)
  found = []
  for a, b in _blocks(len(p), block_rows):
    cos = p[a:b] @ p.T
    ii, jj = np.nonzero(cos > DUPLICATE_COS)
    ii = ii + a
    for i, j in zip(ii, jj):
      if i < j:
        found.append((int(i), int(j)))
        if limit is not None and len(found) >= limit:
          return found
  return found
