"""Kerdock codes: d^2 + 2d points in R^d at max cos exactly 1/sqrt(d), for d = 4^k.

The code is the standard basis and d/2 further orthonormal bases, all with their
negatives: a maximal set of d/2 + 1 real mutually unbiased bases. 288 points in d = 16 at
1/4, 4,224 in d = 64 at 1/8, 66,048 in d = 256 at 1/16; optimal (Cohn, de Laat and
Leijenhorst 2024, arXiv 2403.16874).

Construction (quadratic forms over GF(2)). Write d = 2^n (n = 2k) and index coordinates
by x in GF(2)^n. A quadratic form Q with alternating polar form B gives the basis
  v_a(x) = (-1)^(Q(x) + a.x) / sqrt(d),  a in GF(2)^n
(a Sylvester-Hadamard matrix with its columns signed by (-1)^Q). Two such bases from Q, Q'
are unbiased exactly when B - B' is nonsingular: then every |sum_x (-1)^((Q - Q')(x) +
c.x)| equals 2^(n/2). A Kerdock set is 2^(n-1) alternating n x n matrices over GF(2) whose
pairwise differences are all nonsingular. With m = n - 1 (odd) and F = GF(2^m), this
module uses, for every c in F, the form on F x GF(2)
  B_c((x, a), (y, b)) = Tr(cxy) + Tr(s x) Tr(s y) + a Tr(s y) + b Tr(s x),  s = sqrt(c),
which is alternating since Tr(c x^2) = Tr(s x). `kerdock_set` checks the Kerdock property
by rank over GF(2) for every pair (8,128 pairs of 8 x 8 matrices at d = 256), so a wrong
set raises instead of returning a worse code. Everything is integer until the final
scaling by 2^-k, which float64 (and float32) represent exactly.
"""

import numpy as np

from hyperproto.prototypes import algebraic

# Primitive polynomials of GF(2^m), m odd, as bit masks including x^m (x + 1 for m = 1).
_FIELD_POLY = {1: 0b11, 3: 0b1011, 5: 0b100101, 7: 0b10000011}
# 4^k for k = 1..4. The next, d = 1024, would be 1,050,624 x 1024 (8.6 GB in float64).
VALID_DIMS = (4, 16, 64, 256)


def _check_dim(dim: int) -> int:
  """k with dim = 4^k, or a ValueError naming the valid dims."""
  if dim not in VALID_DIMS:
    raise ValueError(f'The Kerdock code needs dim = 4^k, one of {list(VALID_DIMS)}; got '
                     f'dim={dim}. Use method="separation" (or "hadamard" for a power '
                     'of 2).')
  return VALID_DIMS.index(dim) + 1


def code_size(dim: int) -> int:
  """Number of points of the Kerdock code in R^dim: dim^2 + 2 dim."""
  _check_dim(dim)
  return dim * dim + 2 * dim


def _gf_mul(a: int, b: int, m: int) -> int:
  """Product in GF(2^m) (elements as bit masks of polynomial coefficients)."""
  poly, out = _FIELD_POLY[m], 0
  while b:
    if b & 1:
      out ^= a
    b >>= 1
    a <<= 1
    if a >> m & 1:
      a ^= poly
  return out


def _gf_trace(a: int, m: int) -> int:
  """Absolute trace a + a^2 + ... + a^(2^(m-1)) in GF(2), as 0 or 1."""
  total = 0
  for _ in range(m):
    total ^= a
    a = _gf_mul(a, a, m)
  if total not in (0, 1):
    raise AssertionError(f'Trace outside GF(2): {total}.')
  return total


def _gf_sqrt(a: int, m: int) -> int:
  """The square root a^(2^(m-1)) (squaring is a bijection in characteristic 2)."""
  for _ in range(m - 1):
    a = _gf_mul(a, a, m)
  return a


def gf2_rank(matrix: np.ndarray) -> int:
  """Rank over GF(2) of a 0/1 integer matrix (Gaussian elimination)."""
  rows = np.asarray(matrix, np.int64).copy() % 2
  rank = 0
  for col in range(rows.shape[1]):
    pivots = np.flatnonzero(rows[rank:, col]) + rank
    if not len(pivots):
      continue
    rows[[rank, pivots[0]]] = rows[[pivots[0], rank]]
    hits = np.flatnonzero(rows[:, col])
    hits = hits[hits != rank]
    rows[hits] ^= rows[rank]
    rank += 1
    if rank == rows.shape[0]:
      break
  return rank


def kerdock_set(n: int) -> np.ndarray:
  """2^(n-1) alternating n x n 0/1 matrices with nonsingular pairwise differences.

  n even, n >= 2. Row order: c = 0, 1, ..., 2^(n-1) - 1 (c = 0 gives the zero matrix).
  Coordinates: i < n - 1 is the bit x_i of x in GF(2^(n-1)); n - 1 is the extra bit.
  """
  m = n - 1
  if n < 2 or n % 2 or m not in _FIELD_POLY:
    raise ValueError('Kerdock sets are built here for even n in '
                     f'2..{max(_FIELD_POLY) + 1}, got n={n}.')
  basis = [1 << i for i in range(m)]
  out = np.zeros((1 << m, n, n), np.int64)
  for c in range(1 << m):
    s = _gf_sqrt(c, m)
    ell = [_gf_trace(_gf_mul(s, x, m), m) for x in basis]  # Tr(s x) on the basis.
    for i, x in enumerate(basis):
      for j, y in enumerate(basis):
        out[c, i, j] = _gf_trace(_gf_mul(c, _gf_mul(x, y, m), m), m) ^ (ell[i] & ell[j])
      out[c, i, m] = out[c, m, i] = ell[i]
  if np.any(out != out.transpose(0, 2, 1)) or np.any(np.diagonal(out, axis1=1, axis2=2)):
    raise AssertionError('Kerdock set matrices are not alternating.')
  for a in range(len(out)):
    for b in range(a):
      if gf2_rank(out[a] ^ out[b]) != n:
        raise AssertionError(f'Kerdock set for n={n}: matrices {a} and {b} differ by a '
                             'singular matrix.')
  return out


def kerdock_signs(dim: int) -> np.ndarray:
  """The code words times sqrt(dim), as integers: shape (dim^2 + 2 dim, dim).

  Blocks of dim rows in the order e, -e, B_1, -B_1, ..., B_{dim/2}, -B_{dim/2}: the first
  two are +-I (not scaled), the others +-1 matrices, each sqrt(dim) times a basis.
  """
  k = _check_dim(dim)
  n = 2 * k
  bits = (np.arange(dim)[:, None] >> np.arange(n)[None]) & 1  # x in GF(2)^n, d x n.
  walsh = algebraic.hadamard_matrix(dim).astype(np.int64)  # (-1)^(a.x), same bit order.
  eye = np.eye(dim, dtype=np.int64)
  blocks = [eye, -eye]
  for alt in kerdock_set(n):
    upper = np.triu(alt, 1)
    q = np.einsum('xi,ij,xj->x', bits, upper, bits) % 2  # Q(x) = sum_{i<j} B_ij x_i x_j.
    basis = walsh * (1 - 2 * q)[None]
    blocks += [basis, -basis]
  return np.concatenate(blocks)


def kerdock(dim: int) -> np.ndarray:
  """The Kerdock code in R^dim (dim = 4^k): (dim^2 + 2 dim, dim) unit rows, float64.

  Pairwise cosines are 0, +-1 (antipodes) and +-2^-k only; max cos exactly 2^-k.
  """
  k = _check_dim(dim)
  signs = kerdock_signs(dim).astype(np.float64)
  signs[2 * dim:] *= 2.0**-k  # 1/sqrt(dim), exact in binary floating point.
  return signs


def kerdock_prototypes(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
  """The first C points of the Kerdock code (the PLACEMENTS entry 'kerdock').

  Points come in the order +-e_i, then +-B_1, +-B_2, ... (each basis beside its
  negatives), so a prefix has max cos 0 for 2 <= C <= 2d (part of the cross polytope:
  optimal for d + 1 < C <= 2d; for smaller C the simplex is better) and exactly
  2^-k = 1/sqrt(d) for 2d < C <= d^2 + 2d (optimal at C = d^2 + 2d).
  """
  del seed
  size = code_size(dim)
  if num_classes > size:
    raise ValueError(f'The Kerdock code has {size} points in dim={dim}, got '
                     f'num_classes={num_classes}. Raise dim or use method="separation".')
  return kerdock(dim)[:num_classes]
