"""Algebraic spherical codes: many points with a guaranteed max cosine, at no cost.

Baselines for the optimiser at large C, and warm starts for it.

  hadamard  identity + normalised Sylvester-Hadamard basis, with negations: up to 4d
            points (d a power of 2) at max cos 1/sqrt(d). Two orthonormal bases that
            are mutually unbiased (|<e_i, h_j>| = 1/sqrt(d)).
  gold      all cyclic shifts of the Gold sequences of length N = 2^m - 1 (m odd),
            mapped to +-1/sqrt(N): (N + 2) N points in R^N (16,383 in R^127 for m = 7)
            whose cosines take the three values -1/N, -(t)/N, (t - 2)/N with
            t = 2^((m+1)/2) + 1 (Gold 1967), so max cos (t - 2)/N (15/127 = 0.118 for
            m = 7). Zero-padded to d >= N.
  triples   the 8 sign patterns (+-1, +-1, +-1) / sqrt(3) on each triple of coordinates
            of a packing of triples (any two share at most one coordinate): cosines
            are multiples of 1/3, so max cos 1/3 exactly. 8 T points in R^d for a packing
            of T triples (104 points in R^10, 96 in R^9; at most about 4 d^2 / 3).
"""

import itertools
import math
from typing import Optional

import numpy as np

# Primitive polynomials over GF(2) of degree m (taps of x^m + ... + 1, without x^m).
_PRIMITIVE = {3: (1, 0), 5: (2, 0), 7: (1, 0), 9: (4, 0), 11: (2, 0)}


def hadamard_matrix(n: int) -> np.ndarray:
  """Sylvester's n x n Hadamard matrix (entries +-1), n a power of 2."""
  if n < 1 or n & (n - 1):
    raise ValueError(f'Sylvester Hadamard matrices need a power of 2, got {n}.')
  h = np.ones((1, 1))
  while len(h) < n:
    h = np.block([[h, h], [h, -h]])
  return h


def hadamard(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
  """Up to 4d points: +-e_i and +-h_j / sqrt(d); max cos 1/sqrt(d) once C > 2d."""
  del seed
  if dim < 1 or dim & (dim - 1):
    raise ValueError(f'The Hadamard code needs dim a power of 2, got dim={dim}. Use '
                     f'dim={1 << max(dim - 1, 0).bit_length()} or method="separation".')
  if num_classes > 4 * dim:
    raise ValueError(f'The Hadamard code has {4 * dim} points in dim={dim}, got '
                     f'num_classes={num_classes}. Raise dim or use method="gold".')
  eye = np.eye(dim)
  h = hadamard_matrix(dim) / math.sqrt(dim)
  return np.concatenate([eye, h, -eye, -h])[:num_classes]


def m_sequence(m: int) -> np.ndarray:
  """A binary maximal-length sequence of period 2^m - 1 (Fibonacci LFSR)."""
  if m not in _PRIMITIVE:
    raise ValueError(f'No primitive polynomial stored for degree {m}; use one of '
                     f'{sorted(_PRIMITIVE)}.')
  taps = _PRIMITIVE[m]  # x^m + x^taps[0] + 1: s[n+m] = s[n+taps[0]] + s[n].
  n = (1 << m) - 1
  s = np.zeros(n + m, np.int64)
  s[m - 1] = 1
  for i in range(n):
    s[i + m] = (s[i + taps[0]] + s[i + taps[1]]) % 2
  return s[:n]


def gold_sequences(m: int) -> np.ndarray:
  """The N + 2 Gold sequences of length N = 2^m - 1 (m odd), as 0/1 rows."""
  if m % 2 == 0:
    raise ValueError(f'Gold sequences from a preferred pair need odd m, got m={m}.')
  u = m_sequence(m)
  n = len(u)
  v = u[(3 * np.arange(n)) % n]  # Decimation by 2^1 + 1: a preferred pair for odd m.
  rows = [u, v] + [(u + np.roll(v, -k)) % 2 for k in range(n)]
  return np.stack(rows)


def gold(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
  """The first C vectors of the Gold code of the largest length 2^m - 1 <= dim."""
  del seed
  choices = [m for m in sorted(_PRIMITIVE) if m % 2 and (1 << m) - 1 <= dim]
  if not choices:
    raise ValueError(f'The Gold code needs dim >= 7, got dim={dim}.')
  m = choices[-1]
  n = (1 << m) - 1
  if num_classes > (n + 2) * n:
    raise ValueError(f'The Gold code of length {n} has {(n + 2) * n} points, got '
                     f'num_classes={num_classes}. Raise dim to >= {2 * n + 1}.')
  seqs = 1.0 - 2.0 * gold_sequences(m)  # 0/1 -> +1/-1.
  # Shift-major order: the first C points spread over all sequences. Point i is sequence
  # i mod (n + 2) rolled left by i // (n + 2); only the C chosen rows are built.
  shift, seq = np.divmod(np.arange(num_classes), n + 2)
  points = np.zeros((num_classes, dim))
  for start in range(0, num_classes, 4096):  # Bounded index arrays at large C.
    rows = slice(start, start + 4096)
    cols = (shift[rows, None] + np.arange(n)[None]) % n
    points[rows, :n] = seqs[seq[rows, None], cols] / math.sqrt(n)
  return points


def gold_max_cos(dim: int) -> float:
  """The Gold code's guaranteed max cosine, (t - 2) / N, for the length `gold` uses."""
  m = [m for m in sorted(_PRIMITIVE) if m % 2 and (1 << m) - 1 <= dim][-1]
  n = (1 << m) - 1
  t = (1 << ((m + 1) // 2)) + 1
  return (t - 2) / n


def triple_packing(dim: int, limit: Optional[int] = None,
                   nodes: int = 20_000) -> list[tuple[int, int, int]]:
  """Triples of {0..d-1}, any two sharing at most one element: as many as a depth-first
  search in lexicographic order finds within `nodes` nodes (stopping at `limit`).

  Integer-only and deterministic. It finds the maximum packings of d = 9 and 10 (12 and
  13 triples, Schoenheim's bound); elsewhere a packing at least as large as the greedy
  one (its first leaf).
  """
  pairs = dim * (dim - 1) // 2
  used = np.zeros((dim, dim), bool)  # Pairs already in a chosen triple.
  chosen, best = [], []
  visited = 0
  every = list(itertools.combinations(range(dim), 3))

  def search(start: int) -> bool:  # True: stop (limit reached or out of nodes).
    nonlocal visited, best
    visited += 1
    if len(chosen) > len(best):
      best = list(chosen)
    if (limit is not None and len(best) >= limit) or visited >= nodes:
      return True
    if len(chosen) + (pairs - 3 * len(chosen)) // 3 <= len(best):
      return False  # Even one triple per 3 unused pairs cannot beat the best.
    for k in range(start, len(every)):
      a, b, c = every[k]
      if not (used[a, b] or used[a, c] or used[b, c]):
        used[[a, a, b], [b, c, c]] = True
        chosen.append(every[k])
        stop = search(k + 1)
        chosen.pop()
        used[[a, a, b], [b, c, c]] = False
        if stop:
          return True
    return False

  search(0)
  return best[:limit] if limit is not None else best


def triples_bound(dim: int) -> int:
  """Schoenheim's bound on the triples a packing of {0..d-1} can hold."""
  return dim * ((dim - 1) // 2) // 3


def triples(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
  """The first C points of the triples code (see the module docstring): max cos 1/3.

  Two points on one triple have inner product 3 - 2k over 3 (k signs differ: 1/3 at
  most for distinct points), on two triples sharing one coordinate +-1/3, else 0.
  """
  del seed
  needed = -(-num_classes // 8)
  if needed > triples_bound(dim):
    raise ValueError(f'The triples code has at most {8 * triples_bound(dim)} points in '
                     f'dim={dim}, got num_classes={num_classes}. Raise dim or use '
                     f'method="auto".')
  packing = triple_packing(dim, limit=needed)
  if len(packing) < needed:
    raise ValueError(f'The triples code found {8 * len(packing)} points in dim={dim}, '
                     f'got num_classes={num_classes}. Raise dim or use method="auto".')
  signs = np.array(list(itertools.product((1.0, -1.0), repeat=3)))
  points = np.zeros((8 * len(packing), dim))
  for t, triple in enumerate(packing):
    points[8 * t:8 * t + 8, list(triple)] = signs / math.sqrt(3)
  return points[:num_classes]
