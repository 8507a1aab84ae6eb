"""Exact certificates for codes made of signed Walsh-Hadamard bases (the Kerdock codes).

A code in R^d, d = 4^k, whose rows come in aligned blocks of d rows (the last block may
be shorter), each block either
  e-block:  s e_0, s e_1, ..., s e_(r-1)           (the standard basis, sign s = +-1), or
  h-block:  s (-1)^(a.x) t(x) / 2^k, a = 0..r-1    (Sylvester-Hadamard rows with the
            columns signed by t in {+-1}^d, t(0) = 1, and the rows by s),
has every inner product in closed form. For rows a and b of h-blocks (t, s) and (u, s'):
  <v_a, v_b> = s s' sum_x (-1)^((a XOR b).x) t(x) u(x) / d = s s' W_tu(a XOR b) / d,
where W_tu = WHT(t u) is one Walsh-Hadamard transform of length d: the spectrum of a pair
of sign vectors holds all d^2 inner products of their blocks (every row sees all d
values, once each). For e_x and row b of (t, s): s' s (-1)^(b.x) t(x) / 2^k; two
e-blocks: s s' [x = y]. The Kerdock code is e, -e and d/2 h-blocks per sign, with t the
signs (-1)^Q of the quadratic forms of a Kerdock set (kerdock.py); any prefix of it, in
either row order, is such a code.

`layout` reads the blocks off the array and checks them exactly (every entry equal to
the formula, no tolerance; the sign vectors t are the array's own first rows). `WalshScan`
then gives every row's nearest neighbour, the max |cos|, and the pairs at any level from
the F (F + 1) / 2 spectra of the F distinct sign vectors (d log d each) instead of a
Gram scan (C^2 d). At d = 1024 the whole code, 1,050,624 rows (5.5e11 pairs), takes
131,328 transforms of length 1024. Everything is in integers: cos x d.
"""

import dataclasses
from typing import Optional

import numpy as np

from hyperproto.prototypes import algebraic

E = -1  # The family of the standard basis in `Layout.blocks`.


@dataclasses.dataclass(frozen=True)
class Layout:
  """Blocks of d rows, in row order: (family, sign, rows); family E (-1) is the standard
  basis, f >= 0 the h-block of sign vector `signs[f]` (F x d int8, signs[f][0] = 1)."""
  dim: int
  blocks: tuple[tuple[int, int, int], ...]
  signs: np.ndarray


def possible(num_rows: int, dim: int) -> bool:
  """Whether a code of this shape can be Walsh blocks: d = 4^k >= 4 and C > d."""
  n = dim.bit_length() - 1
  return dim >= 4 and dim == 1 << n and n % 2 == 0 and num_rows > dim


def layout(p_CxD: np.ndarray) -> Optional[Layout]:
  """The block structure above, checked exactly on every entry, or None.

  None unless d = 4^k >= 4, C > d, the array is float32 or float64 and there is at least
  one h-block. Reads the array block by block (one d x d block of working memory).
  """
  p = p_CxD
  if not isinstance(p, np.ndarray) or p.ndim != 2 or p.dtype not in (np.float32,
                                                                      np.float64):
    return None
  num_rows, dim = p.shape
  if not possible(num_rows, dim):
    return None
  scale = 2.0**-((dim.bit_length() - 1) // 2)
  walsh = algebraic.hadamard_matrix(dim).astype(p.dtype)
  eye = np.eye(dim, dtype=p.dtype)
  families, blocks = {}, []
  for start in range(0, num_rows, dim):
    block = p[start:start + dim]
    rows, first = len(block), block[0]
    if abs(first[0]) == 1 and not first[1:].any():
      sign = int(first[0])
      if not np.array_equal(block, sign * eye[:rows]):
        return None
      blocks.append((E, sign, rows))
    elif np.all(np.abs(first) == scale):
      if not np.array_equal(block, walsh[:rows] * first):  # Row a: (-1)^(a.x) first(x).
        return None
      t = np.where(first > 0, 1, -1).astype(np.int8)
      sign = int(t[0])
      family = families.setdefault((t * t[0]).tobytes(), len(families))
      blocks.append((family, sign, rows))
    else:
      return None
  if not families:
    return None
  signs = np.frombuffer(b''.join(families), np.int8).reshape(len(families), dim)
  return Layout(dim, tuple(blocks), signs)


def fwht(x_BxD: np.ndarray) -> np.ndarray:
  """Walsh-Hadamard transform of each row (Sylvester order, unnormalised), int32:
  out[i, a] = sum_x (-1)^(popcount(a & x)) x[i, x]."""
  x = np.array(x_BxD, np.int32)
  batch, dim = x.shape
  h = 1
  while h < dim:
    y = x.reshape(batch, dim // (2 * h), 2, h)
    low = y[:, :, 0] + y[:, :, 1]
    y[:, :, 1] = y[:, :, 0] - y[:, :, 1]
    y[:, :, 0] = low
    h *= 2
  return x


class WalshScan:
  """Nearest neighbours, max |cos|, pairs at a level and duplicates of a `Layout` code,
  from the spectra of its sign vectors (module docstring), in integers (cos x d).

  Attributes:
    nearest: each row's largest cos x d to another row (int64, C).
    max_abs: the largest |cos| x d over the pairs.
  """

  def __init__(self, lay: Layout):
    self.dim = d = lay.dim
    self.unit = 1 << ((d.bit_length() - 1) // 2)  # 2^k: cos x d of e_x against an h row.
    self.blocks = lay.blocks
    self.family, self.sign, self.rows = (np.array(column, np.int64)
                                         for column in zip(*lay.blocks))
    self.e_blocks = np.flatnonzero(self.family == E)
    self.h_blocks = np.flatnonzero(self.family != E)
    signs = lay.signs.astype(np.int32)
    walsh = algebraic.hadamard_matrix(d).astype(np.int32)
    # Pair spectra of the sign vectors: their max and min and how often each occurs.
    f = len(signs)
    self.top, self.bot = np.zeros((f, f), np.int64), np.zeros((f, f), np.int64)
    self.ntop, self.nbot = np.zeros((f, f), np.int64), np.zeros((f, f), np.int64)
    for i in range(f):
      spectra = fwht(signs[i:] * signs[i])
      top, bot = spectra.max(axis=1), spectra.min(axis=1)
      for stat, value in ((self.top, top), (self.bot, bot),
                          (self.ntop, np.sum(spectra == top[:, None], axis=1)),
                          (self.nbot, np.sum(spectra == bot[:, None], axis=1))):
        stat[i, i:] = stat[i:, i] = value
    if np.any(np.diagonal(self.top) != d) or np.any(np.diagonal(self.nbot) != d - 1):
      raise AssertionError('A signed Hadamard block is not an orthogonal basis.')
    # e_x against the h rows of family g: the count of +1 among t_g(x) (-1)^(b.x) over
    # the rows b present (`_e_plus`), and per h row b over the x present (`_h_plus`).
    self.signs, self.walsh = signs, walsh
    plus = self._col_plus(d)
    self.e_plus_full = np.where(signs > 0, plus, d - plus)
    self.h_plus_full = (d + fwht(signs)) // 2  # Row sums of each basis: the spectrum.
    self.partial = -1  # The short last block, if any.
    if self.blocks[-1][2] < d:
      self.partial = len(self.blocks) - 1
      self._prepare_partial(*self.blocks[-1])
    self.nearest = np.concatenate([self._nearest(u) for u in range(len(self.blocks))])
    self.max_abs = self._max_abs()

  def _col_plus(self, rows: int) -> np.ndarray:
    """Per column x: the number of +1 in rows 0..rows-1 of the Hadamard matrix."""
    return np.sum(self.walsh[:rows] > 0, axis=0)

  def _prepare_partial(self, family: int, sign: int, rows: int):
    """What a full block sees of the short last block, per row."""
    del sign
    d = self.dim
    if family == E:  # h rows b against e_x, x < rows: count of +1 over those x.
      self.h_plus_partial = ((rows + self.signs[:, :rows].astype(np.float64)
                              @ self.walsh[:, :rows].T.astype(np.float64)) // 2
                             ).astype(np.int64)
    else:
      t = self.signs[family]
      plus = self._col_plus(rows)
      self.e_plus_partial = np.where(t > 0, plus, rows - plus)
      # Full h rows a of family g against rows b < rows: max and min of W_gp(a XOR b).
      spectra = fwht(self.signs * t)
      index = np.arange(d)[:, None] ^ np.arange(rows)[None]
      self.gather_max = np.empty((len(self.signs), d), np.int64)
      self.gather_min = np.empty((len(self.signs), d), np.int64)
      for g, spectrum in enumerate(spectra):
        seen = spectrum[index]
        self.gather_max[g], self.gather_min[g] = seen.max(axis=1), seen.min(axis=1)

  def _h_vs_h(self, u: int, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max, min) of cos x d between h-block u and each h-block in `others` (as a whole:
    one of the two is a full block, so every row sees the whole spectrum)."""
    f, s, _ = self.blocks[u]
    g, sv = self.family[others], self.sign[others]
    top, bot = self.top[f, g], self.bot[f, g]
    return np.where(s * sv > 0, top, -bot), np.where(s * sv > 0, bot, -top)

  def _e_plus(self, e: int, h: int) -> np.ndarray:
    """Per row x of e-block e: the number of rows of h-block h at cos +2^-k to it."""
    f, s, rows = self.blocks[h]
    plus = self.e_plus_full[f] if rows == self.dim else self.e_plus_partial
    if self.blocks[e][1] * s < 0:
      plus = rows - plus
    return plus[:self.blocks[e][2]]

  def _h_plus(self, h: int, e: int) -> np.ndarray:
    """Per row b of h-block h: the number of rows of e-block e at cos +2^-k to it."""
    f, s, rows = self.blocks[h]
    e_rows = self.blocks[e][2]
    plus = self.h_plus_full[f] if e_rows == self.dim else self.h_plus_partial[f]
    if self.blocks[e][1] * s < 0:
      plus = e_rows - plus
    return plus[:rows]

  def _nearest(self, u: int) -> np.ndarray:
    """Each row of block u: its largest cos x d to another row."""
    family, sign, rows = self.blocks[u]
    lowest = np.iinfo(np.int64).min
    near = np.full(rows, 0 if rows >= 2 else lowest)  # Rows of a block are orthogonal.
    for v in self.e_blocks[self.e_blocks != u]:
      _, s, r = self.blocks[v]
      if family == E:  # e_x against s e_y, y < r: s sign d at y = x, 0 at y != x.
        x = np.arange(rows)
        same = np.where(x < r, sign * s * self.dim, lowest)
        near = np.maximum(near, np.where((r >= 2) | (x >= r), np.maximum(same, 0), same))
      else:
        near = np.maximum(near, np.where(self._h_plus(u, v) > 0, self.unit, -self.unit))
    full_h = self.h_blocks[(self.h_blocks != u) & (self.h_blocks != self.partial)]
    if family == E:
      for v in self.h_blocks:
        near = np.maximum(near, np.where(self._e_plus(u, v) > 0, self.unit, -self.unit))
      return near
    if len(full_h):
      near = np.maximum(near, self._h_vs_h(u, full_h)[0].max())
    if self.partial >= 0 and u != self.partial:
      g, s, _ = self.blocks[self.partial]
      if g != E:  # This full block's rows against the short block's rows b < r.
        seen = self.gather_max[family] if sign * s > 0 else -self.gather_min[family]
        near = np.maximum(near, seen)
    return near

  def _max_abs(self) -> int:
    """The largest |cos| x d over all pairs."""
    out = self.dim if len(self.e_blocks) >= 2 else 0  # e_x and +-e_x.
    if len(self.e_blocks):
      out = max(out, self.unit)
    for i, u in enumerate(self.h_blocks[:-1]):
      high, low = self._h_vs_h(u, self.h_blocks[i + 1:])
      out = max(out, int(high.max()), int(-low.min()))
    return out

  def pairs_at(self, level: int) -> int:
    """The number of pairs i < j with cos x d == level, an integer at or above the max
    (each spectrum's count of its top value; 0 above the max)."""
    if level < self.nearest.max():
      raise ValueError(f'pairs_at counts pairs at the max ({self.nearest.max()}) or '
                       f'above, got level {level}.')
    total = 0
    if level == 0:  # Within a block.
      total += int(np.sum(self.rows * (self.rows - 1) // 2))
    for i, u in enumerate(self.h_blocks[:-1]):
      others = self.h_blocks[i + 1:]
      f, s, r = self.blocks[u]
      g, sv = self.family[others], self.sign[others]
      hits = np.where(s * sv > 0, np.where(self.top[f, g] == level, self.ntop[f, g], 0),
                      np.where(-self.bot[f, g] == level, self.nbot[f, g], 0))
      # One of the two blocks is full: the other's rows each see the whole spectrum.
      total += int(np.sum(np.minimum(r, self.rows[others]) * hits))
    for i, u in enumerate(self.e_blocks):
      _, sign, r = self.blocks[u]
      for v in self.e_blocks[i + 1:]:
        _, s, rv = self.blocks[v]
        same = min(r, rv)
        total += {sign * s * self.dim: same, 0: r * rv - same}.get(level, 0)
      if abs(level) == self.unit:
        for v in self.h_blocks:
          plus = int(np.sum(self._e_plus(u, v)))
          total += plus if level > 0 else r * self.blocks[v][2] - plus
    return total
