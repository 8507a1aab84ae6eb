"""Kerdock codes: d^2 + 2d points in R^d at max cos exactly 1/sqrt(d), for d = 4^k.

The code is the standard basis and d/2 further orthonormal bases, all with their
negatives: a maximal set of d/2 + 1 real mutually unbiased bases. 288 points in d = 16 at
1/4, 4,224 in d = 64 at 1/8, 66,048 in d = 256 at 1/16, 1,050,624 in d = 1024 at 1/32;
optimal (Cohn, de Laat and Leijenhorst 2024, arXiv 2403.16874).

Construction (quadratic forms over GF(2)). Write d = 2^n (n = 2k) and index coordinates
by x in GF(2)^n. A quadratic form Q with alternating polar form B gives the basis
  v_a(x) = (-1)^(Q(x) + a.x) / sqrt(d),  a in GF(2)^n
(a Sylvester-Hadamard matrix with its columns signed by (-1)^Q). Two such bases from Q, Q'
are unbiased exactly when B - B' is nonsingular: then every |sum_x (-1)^((Q - Q')(x) +
c.x)| equals 2^(n/2). A Kerdock set is 2^(n-1) alternating n x n matrices over GF(2) whose
pairwise differences are all nonsingular. With m = n - 1 (odd) and F = GF(2^m), this
module uses, for every c in F, the form on F x GF(2)
  B_c((x, a), (y, b)) = Tr(cxy) + Tr(s x) Tr(s y) + a Tr(s y) + b Tr(s x),  s = sqrt(c),
which is alternating since Tr(c x^2) = Tr(s x). `kerdock_set` checks that the field
polynomial is primitive (its powers of x run through every non-zero element) and the
Kerdock property by rank over GF(2) for every pair (130,816 pairs of 10 x 10 matrices at
d = 1024, in one batched elimination), so a wrong set raises instead of returning a worse
code. Everything is integer until the final scaling by 2^-k, which float32 and float64
represent exactly.

Row order. `kerdock_rows` builds any prefix of the code in blocks of d rows, without the
rest: the 1,050,624 x 1024 code is 4.3 GB in float32 and is written block by block into
one array. 'standard' order: e, -e, B_1, -B_1, ..., B_{d/2}, -B_{d/2}; 'antipodes_last':
e, B_1, ..., B_{d/2}, -e, -B_1, ..., -B_{d/2} (one point of every antipodal pair first,
as `codes.py` takes subsets).
"""

import functools

import numpy as np

from hyperproto.prototypes import algebraic

# Primitive polynomials of GF(2^m), m odd, as bit masks including x^m (x + 1 for m = 1);
# m = 9: x^9 + x^4 + 1. `_field` checks that each one is primitive.
_FIELD_POLY = {1: 0b11, 3: 0b1011, 5: 0b100101, 7: 0b10000011, 9: 0b1000010001}
# 4^k for k = 1..5. d = 1024 is 1,050,624 x 1024: 4.3 GB in float32 (8.6 GB in float64).
VALID_DIMS = (4, 16, 64, 256, 1024)
ORDERS = ('standard', 'antipodes_last')


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


@functools.lru_cache(maxsize=None)
def _field(m: int) -> tuple[np.ndarray, np.ndarray, int]:
  """GF(2^m) tables: (exp, log, trace mask), elements as bit masks of polynomials.

  exp[i] = x^i for i < 2 (2^m - 1) (twice the period, so exp[log a + log b] needs no
  mod); log[a] for a != 0. Raises if the polynomial is not primitive (x's powers must
  visit all 2^m - 1 non-zero elements, which also makes it irreducible). Tr(a) is the
  parity of a & mask (the trace is GF(2)-linear; mask holds the traces of 1, x, ...).
  """
  poly, size = _FIELD_POLY[m], 1 << m
  order = size - 1
  exp = np.zeros(2 * order, np.int64)
  a = 1
  for i in range(order):
    exp[i] = a
    a <<= 1
    if a & size:
      a ^= poly
  if a != 1 or len(np.unique(exp[:order])) != order:
    raise AssertionError(f'The field polynomial {poly:#b} of GF(2^{m}) is not primitive.')
  exp[order:] = exp[:order]
  log = np.zeros(size, np.int64)
  log[exp[:order]] = np.arange(order)
  mask = 0
  for i in range(m):  # Tr(x^i) = x^i + x^(2i) + ... + x^(2^(m-1) i), as a field element.
    total, e = 0, i
    for _ in range(m):
      total ^= int(exp[e % order])
      e *= 2
    if total not in (0, 1):
      raise AssertionError(f'Trace outside GF(2): {total}.')
    mask |= total << i
  return exp, log, mask


def _gf_mul(a: np.ndarray, b: np.ndarray, m: int) -> np.ndarray:
  """Elementwise product in GF(2^m) (broadcasting)."""
  exp, log, _ = _field(m)
  a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
  return np.where((a == 0) | (b == 0), 0, exp[log[a] + log[b]])


def _gf_trace(a: np.ndarray, m: int) -> np.ndarray:
  """Absolute trace a + a^2 + ... + a^(2^(m-1)) in GF(2), as 0 or 1 (elementwise)."""
  bits = np.asarray(a, np.int64) & _field(m)[2]
  parity = np.zeros_like(bits)
  for i in range(m):
    parity ^= (bits >> i) & 1
  return parity


def _gf_sqrt(a: np.ndarray, m: int) -> np.ndarray:
  """The square root a^(2^(m-1)) (squaring is a bijection in characteristic 2)."""
  exp, log, _ = _field(m)
  a = np.asarray(a, np.int64)
  order = (1 << m) - 1
  return np.where(a == 0, 0, exp[(log[a] << (m - 1)) % order])


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


def gf2_nonsingular(mats_BxNxN: np.ndarray) -> np.ndarray:
  """Whether each of a batch of square 0/1 matrices is nonsingular over GF(2).

  Gaussian elimination run on the whole batch at once: column by column, a pivot row
  is swapped into place and cleared from every other row. A matrix with no pivot in
  some column is singular (its later steps are garbage, but it is already marked).
  """
  rows = np.asarray(mats_BxNxN, np.uint8) % 2
  batch, n, _ = rows.shape
  ok = np.ones(batch, bool)
  idx = np.arange(batch)
  for col in range(n):
    below = rows[:, col:, col]
    ok &= below.any(axis=1)
    pivot = col + np.argmax(below, axis=1)
    pivot_row = rows[idx, pivot].copy()
    rows[idx, pivot] = rows[idx, col]
    rows[idx, col] = pivot_row
    hit = rows[:, :, col].astype(bool)
    hit[:, col] = False
    rows ^= hit[:, :, None] & pivot_row[:, None, :]
  return ok


@functools.lru_cache(maxsize=None)
def kerdock_set(n: int) -> np.ndarray:
  """2^(n-1) alternating n x n 0/1 matrices with nonsingular pairwise differences.

  n even, n >= 2. Row order: c = 0, 1, ..., 2^(n-1) - 1 (c = 0 gives the zero matrix).
  Coordinates: i < n - 1 is the bit x_i of x in GF(2^(n-1)); n - 1 is the extra bit.
  Cached (read-only).
  """
  m = n - 1
  if n < 2 or n % 2 or m not in _FIELD_POLY:
    raise ValueError('Kerdock sets are built here for even n in '
                     f'2..{max(_FIELD_POLY) + 1}, got n={n}.')
  c = np.arange(1 << m)[:, None, None]
  basis = 1 << np.arange(m)
  ell = _gf_trace(_gf_mul(_gf_sqrt(c[:, :, 0], m), basis[None], m), m)  # Tr(s x_i): c x m
  xy = _gf_mul(basis[:, None], basis[None], m)  # m x m
  out = np.zeros((1 << m, n, n), np.int64)
  quadratic = _gf_trace(_gf_mul(c, xy[None], m), m)  # Tr(c x_i x_j): c x m x m
  out[:, :m, :m] = quadratic ^ (ell[:, :, None] & ell[:, None])
  out[:, :m, m] = out[:, m, :m] = ell
  if np.any(out != out.transpose(0, 2, 1)) or np.any(np.diagonal(out, axis1=1, axis2=2)):
    raise AssertionError('Kerdock set matrices are not alternating.')
  a, b = np.triu_indices(len(out), 1)
  small = out.astype(np.uint8)  # 130,816 pairs of 10 x 10 at n = 10: 13 MB per copy.
  bad = np.flatnonzero(~gf2_nonsingular(small[a] ^ small[b]))
  if len(bad):
    raise AssertionError(f'Kerdock set for n={n}: matrices {a[bad[0]]} and {b[bad[0]]} '
                         'differ by a singular matrix.')
  out.flags.writeable = False
  return out


@functools.lru_cache(maxsize=4)
def quadratic_signs(dim: int) -> np.ndarray:
  """(-1)^(Q_c(x)) for the d/2 forms of the Kerdock set: (d/2, d) int8, cached.

  Q_c(x) = sum_{i<j} B_ij x_i x_j; basis c of the code is v_a(x) = (-1)^(a.x) s_c(x) /
  sqrt(d) with s_c the row c returned here (s_c(0) = 1).
  """
  k = _check_dim(dim)
  n = 2 * k
  bits = (np.arange(dim)[:, None] >> np.arange(n)[None]) & 1  # x in GF(2)^n, d x n.
  upper = np.triu(kerdock_set(n), 1)
  q = np.einsum('xi,cij,xj->cx', bits, upper, bits) % 2
  out = (1 - 2 * q).astype(np.int8)
  out.flags.writeable = False
  return out


def block_layout(dim: int, order: str = 'standard') -> list[tuple[int, int]]:
  """The code's blocks of `dim` rows in `order`: (basis, sign) with basis -1 for the
  standard basis e and c for the basis of form c (see `quadratic_signs`)."""
  if order not in ORDERS:
    raise ValueError(f'Unknown Kerdock row order {order!r}; use one of {ORDERS}.')
  bases = [-1] + list(range(dim // 2))
  if order == 'standard':
    return [(b, s) for b in bases for s in (1, -1)]
  return [(b, s) for s in (1, -1) for b in bases]


def kerdock_rows(dim: int, num_rows: int, order: str = 'standard',
                 dtype=np.float64) -> np.ndarray:
  """The first `num_rows` points of the code in `order`: (num_rows, dim) unit rows.

  Only these rows are built, block by block, into one array (with one d x d block of
  working memory): the whole d = 1024 code in float32 holds 4.3 GB and nothing more.
  Entries are 0, +-1 and +-2^-k, exact in float32 and float64.
  """
  k = _check_dim(dim)
  if not 0 <= num_rows <= code_size(dim):
    raise ValueError(f'The Kerdock code has {code_size(dim)} points in dim={dim}, got '
                     f'num_rows={num_rows}.')
  out = np.empty((num_rows, dim), dtype)
  signs = quadratic_signs(dim).astype(dtype)
  walsh = algebraic.hadamard_matrix(dim).astype(dtype) * np.asarray(2.0**-k, dtype)
  eye = np.eye(dim, dtype=dtype)
  for i, (basis, sign) in enumerate(block_layout(dim, order)):
    start = i * dim
    if start >= num_rows:
      break
    rows = min(dim, num_rows - start)
    if basis < 0:
      np.multiply(eye[:rows], sign, out=out[start:start + rows])
    else:  # One pass: Walsh rows times the signed column signs.
      np.multiply(walsh[:rows], sign * signs[basis], out=out[start:start + rows])
  return out


def kerdock(dim: int, dtype=np.float64) -> np.ndarray:
  """The Kerdock code in R^dim (dim = 4^k): (dim^2 + 2 dim, dim) unit rows.

  Pairwise cosines are 0, +-1 (antipodes) and +-2^-k only; max cos exactly 2^-k. In
  float64 by default (8.6 GB at dim = 1024; pass dtype=np.float32 for 4.3 GB).
  """
  return kerdock_rows(dim, code_size(dim), dtype=dtype)


def kerdock_prototypes(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
  """The first C points of the Kerdock code, float32 (the PLACEMENTS entry 'kerdock').

  Points come in the order +-e_i, then +-B_1, +-B_2, ... (each basis beside its
  negatives), so a prefix has max cos 0 for 2 <= C <= 2d (part of the cross polytope:
  optimal for d + 1 < C <= 2d; for smaller C the simplex is better) and exactly
  2^-k = 1/sqrt(d) for 2d < C <= d^2 + 2d (optimal at C = d^2 + 2d). Float32 holds
  every entry exactly.
  """
  del seed
  size = code_size(dim)
  if num_classes > size:
    raise ValueError(f'The Kerdock code has {size} points in dim={dim}, got '
                     f'num_classes={num_classes}. Raise dim or use method="separation".')
  return kerdock_rows(dim, num_classes, dtype=np.float32)
