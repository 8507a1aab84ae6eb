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
"""

import math

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
