"""Certificates: a placement's max cosine next to every lower bound and the best known.

`certify(protos)` measures a placement (the keys of `separation_metrics`, plus the max
|cos|) with one blocked pass over the pairs i < j, and adds `certificate(C, d, ...)`:
every lower bound that applies, the best-known value where one is known, and the gap to
each. It never holds the C x C Gram matrix, and it is exact where it can check that it
is:

  * Orthogonal blocks. Coordinates are grouped by the rows that use them (connected
    components of the row-coordinate incidence): rows in different groups have disjoint
    supports, so their cosine is exactly 0 and is never computed. A direct sum of codes
    (`codes.direct_sum`) splits into its codes.
  * Integer rows. Where every coordinate is an integer multiple of one scale a (the
    smallest non-zero |coordinate|), with max |integer|^2 * d < 2^24, the Gram matrix of
    the integers is computed in float32, which is then exact, and scaled by a^2 in
    float64 (one rounding). Kerdock (a = 2^-k), Hadamard and Gold codes qualify; other
    placements are measured in float64.

  * Cyclic orbits. Where a group's integer rows are s cyclic orbits listed shift-major
    (row i + s is row i rotated by one coordinate, checked on every row), as the Gold
    code is, each cosine is a value of the cyclic cross-correlation of two of the s base
    rows: s FFTs give all of them (`_CyclicScan`), s^2 M log M work instead of N^2 M.
  * Walsh blocks. Where the rows are aligned blocks of d = 4^k rows, each the standard
    basis or a Sylvester-Hadamard basis with signed columns (checked exactly on every
    entry), as the Kerdock codes and their prefixes are, every cosine is a value of the
    Walsh spectrum of the product of two blocks' sign vectors (walsh.py): F^2/2
    transforms of length d for F sign vectors, and the array is never copied. The
    1,050,624-point Kerdock code in R^1024 (5.5e11 pairs) is certified in about 15 s.

Together these certify C = 100,000 points of two 256-d Kerdock codes in R^512 in about
half a minute, and 100,000 Gold-code points in 12 s, where a dense pass takes minutes
(see docs/placement.md).

Bounds (all are lower bounds on the max cos of any C points in R^d, or on the max |cos|):
  simplex      -1/(C-1), any C >= 2 (the Gram matrix is PSD: sum_ij cos_ij >= 0).
  rankin       0, C >= d + 2 (Rankin 1955: d + 2 points always have a pair at cos >= 0).
  levenshtein  Levenshtein's bound (`bounds.levenshtein_bound`).
  welch        on max |cos|: sqrt((C - d) / (d (C - 1))), C > d (Welch 1974).
"""

import math
from typing import Optional

import numpy as np
from scipy.sparse import csgraph

from hyperproto.prototypes import bounds as bounds_lib
from hyperproto.prototypes import kerdock
from hyperproto.prototypes import walsh

DUPLICATE_COS = 1.0 - 1e-6  # As metrics.DUPLICATE_COS.
PAIR_TOL = 1e-6  # As metrics.PAIR_TOL.
BLOCK_ENTRIES = 1 << 24  # Cosines per block (128 MB in float64).

# Best-known max cosines in 3-D (the Tammes problem): N = 3..14 and 24 are the proven
# optima, as (max cos, source). Closed forms where the optimum has one; otherwise the min
# angle in degrees to 7 decimals as tabulated in the Tammes-problem literature (Sloane's
# spherical-code tables; the Wikipedia table), N = 14 also OEIS A383860
# (0.9716347428862 rad). The source names the proof.
_TAMMES_PROVEN = {
    3: (-1 / 2, 'Fejes Toth 1943 (proven): triangle'),
    4: (-1 / 3, 'Fejes Toth 1943 (proven): tetrahedron'),
    5: (0.0, 'Schuette and van der Waerden 1951 (proven)'),
    6: (0.0, 'Fejes Toth 1943 (proven): octahedron'),
    7: (math.cos(math.radians(77.8695421)), 'Schuette and van der Waerden 1951 (proven)'),
    8: (math.cos(math.radians(74.8584922)),
        'Schuette and van der Waerden 1951 (proven): square antiprism'),
    9: (1 / 3, 'Schuette and van der Waerden 1951 (proven)'),
    10: (math.cos(math.radians(66.1468220)), 'Danzer 1963 / Hars 1986 (proven)'),
    11: (1 / math.sqrt(5), 'Danzer 1963 (proven): icosahedron less one point'),
    12: (1 / math.sqrt(5), 'Fejes Toth 1943 (proven): icosahedron'),
    13: (math.cos(math.radians(57.1367031)), 'Musin and Tarasov 2012 (proven)'),
    14: (math.cos(math.radians(55.6705700)), 'Musin and Tarasov 2015 (proven)'),
    24: (math.cos(math.radians(43.6907671)), 'Robinson 1961 (proven): snub cube'),
}

# Best known in 3-D, not proven, N = 15..130 (but 24): the max cos of the putatively
# optimal packings of Hardin, Sloane and Smith (Tables of spherical codes, 1994-,
# neilsloane.com/packings/dim3/pack.3.N.txt), recomputed in float64 from the coordinates
# as mirrored in github.com/josephko91/spherical-code, data/text-files/ (commit 8f0aa27;
# N = 124 is in integer form, coordinates x 2^30, good to ~1e-9). They agree to 1e-7
# degrees with the min angles tabulated on Sloane's index page (N = 15..50 and every 5th
# N to 130, quoted in public code), N = 15 with Cohn's table (0.5926059029...). Later
# searches may have improved some; no N > 130 was found in a source at hand.
_TAMMES_BEST_KNOWN = {
    15: 0.592605903119, 16: 0.612294616594, 17: 0.628094415122, 18: 0.648695832367,
    19: 0.673116887686, 20: 0.676477138212, 21: 0.699498431365, 22: 0.710306258719,
    23: 0.722846985084, 25: 0.747398628774, 26: 0.754278177275, 27: 0.758389210828,
    28: 0.773230262494, 29: 0.780281416181, 30: 0.781551875174, 31: 0.791118613372,
    32: 0.793616614978, 33: 0.806397613652, 34: 0.810984337316, 35: 0.815937771682,
    36: 0.817248185412, 37: 0.824892480359, 38: 0.826583259466, 39: 0.833991322545,
    40: 0.837162072598, 41: 0.841236343124, 42: 0.843331551727, 43: 0.847208865556,
    44: 0.848201378380, 45: 0.854249474198, 46: 0.857534166969, 47: 0.859122362378,
    48: 0.859292295108, 49: 0.866691479133, 50: 0.868173209158, 51: 0.871484365033,
    52: 0.872966708826, 53: 0.876189804061, 54: 0.877004306359, 55: 0.880785046635,
    56: 0.881731578475, 57: 0.884363737662, 58: 0.886555745304, 59: 0.887855737237,
    60: 0.889473567710, 61: 0.892008443369, 62: 0.893496850663, 63: 0.895036180879,
    64: 0.896988167621, 65: 0.898259108649, 66: 0.899195777488, 67: 0.901198227867,
    68: 0.902856921523, 69: 0.903831506358, 70: 0.905043036892, 71: 0.906396736784,
    72: 0.906849285520, 73: 0.909571628655, 74: 0.910532623502, 75: 0.911390904738,
    76: 0.912633133131, 77: 0.913536344808, 78: 0.914034438822, 79: 0.916195009515,
    80: 0.916690360742, 81: 0.918117193792, 82: 0.919172412417, 83: 0.919937881967,
    84: 0.920151698939, 85: 0.922004026399, 86: 0.922710627862, 87: 0.923567597303,
    88: 0.924093912626, 89: 0.925099726347, 90: 0.926173483398, 91: 0.926844825217,
    92: 0.927003416324, 93: 0.928418531987, 94: 0.928979461777, 95: 0.929811497470,
    96: 0.930285673324, 97: 0.931051869103, 98: 0.931239991081, 99: 0.932727363300,
    100: 0.933385128904, 101: 0.934025767121, 102: 0.934480088171, 103: 0.935207723062,
    104: 0.935711381059, 105: 0.936434497743, 106: 0.937042014684, 107: 0.937517802204,
    108: 0.937862018289, 109: 0.938798085649, 110: 0.939026290863, 111: 0.939797178832,
    112: 0.940339774659, 113: 0.940847649105, 114: 0.941205445372, 115: 0.941916896842,
    116: 0.942351017116, 117: 0.942866795115, 118: 0.943284384666, 119: 0.943652307933,
    120: 0.943662307348, 121: 0.944744674589, 122: 0.945119903343, 123: 0.945482265530,
    124: 0.945794395875, 125: 0.946396903835, 126: 0.946752784861, 127: 0.947265903113,
    128: 0.947573544891, 129: 0.947971561156, 130: 0.948266309348,
}
_TAMMES_SOURCE = ('best known, not proven: Hardin, Sloane and Smith, Tables of spherical '
                  'codes (neilsloane.com/packings/dim3/pack.3.{}.txt), min angle '
                  'recomputed from the coordinates')


def best_known(num_classes: int, dim: int) -> Optional[tuple[float, str]]:
  """(max cos, source) of the best placement known for (C, d), or None.

  Known here: the proven 3-D optima above, the best-known (not proven) 3-D packings for
  N = 15..130, and the Kerdock codes (d^2 + 2d points in R^d, d = 4^k, at 1/sqrt(d):
  optimal, Cohn, de Laat and Leijenhorst 2024; d = 4 is the 24-cell). Cells where a
  bound is reached (simplex, cross-polytope) are certified by the bound itself and are
  not listed.
  """
  if dim == 3 and num_classes in _TAMMES_PROVEN:
    return _TAMMES_PROVEN[num_classes]
  if dim == 3 and num_classes in _TAMMES_BEST_KNOWN:
    return _TAMMES_BEST_KNOWN[num_classes], _TAMMES_SOURCE.format(num_classes)
  if dim in kerdock.VALID_DIMS and num_classes == kerdock.code_size(dim):
    return 1 / math.sqrt(dim), ('Kerdock code, optimal (Cohn, de Laat and Leijenhorst '
                                '2024, arXiv 2403.16874)')
  return None


def welch_bound(num_classes: int, dim: int) -> Optional[float]:
  """Welch's lower bound on the max |cos| of C > d unit vectors in R^d, else None."""
  if num_classes <= dim:
    return None
  return math.sqrt((num_classes - dim) / (dim * (num_classes - 1)))


def lower_bounds(num_classes: int, dim: int) -> dict[str, float]:
  """Every lower bound on the max cos of C points in R^d that applies (see above)."""
  out = {}
  if num_classes >= 2:
    out['simplex'] = -1.0 / (num_classes - 1)
  if num_classes >= dim + 2:
    out['rankin'] = 0.0
  lev = bounds_lib.levenshtein_bound(num_classes, dim) if num_classes >= 2 else None
  if lev is not None:
    out['levenshtein'] = lev
  return out


def certificate(num_classes: int, dim: int, max_cos: float,
                max_abs_cos: Optional[float] = None) -> dict:
  """Bounds, best known and gaps for a placement with this max cos (and max |cos|).

  Keys: `bounds` {name: value} (every lower bound on the max cos that applies),
  `gaps` {name: max_cos - value}, `best_bound_name`; `best_known`, `best_known_source`,
  `gap_to_best_known` where a best-known value is tabulated; `welch_bound` and
  `gap_to_welch` (on the max |cos|) where C > d and `max_abs_cos` is given.
  """
  found = lower_bounds(num_classes, dim)
  out = {'bounds': found, 'gaps': {k: max_cos - v for k, v in found.items()}}
  if found:
    # The strongest; an exact bound (simplex, Rankin) wins a tie to rounding (1e-12).
    top = max(found.values())
    out['best_bound_name'] = next(k for k in ('simplex', 'rankin', 'levenshtein')
                                  if k in found and found[k] >= top - 1e-12)
  known = best_known(num_classes, dim)
  if known is not None:
    out.update(best_known=known[0], best_known_source=known[1],
               gap_to_best_known=max_cos - known[0])
  welch = welch_bound(num_classes, dim)
  if welch is not None:
    out['welch_bound'] = welch
    if max_abs_cos is not None:
      out['gap_to_welch'] = max_abs_cos - welch
  return out


def unit_rows(protos_CxD: np.ndarray) -> np.ndarray:
  """The rows scaled to unit length, in float64; a clear error for a zero or non-finite
  row."""
  p = np.asarray(protos_CxD, np.float64)
  if p.ndim != 2:
    raise ValueError(f'Prototypes must be a C x D array, got shape {p.shape}.')
  norms = np.linalg.norm(p, axis=1, keepdims=True)
  if np.any(norms == 0) or not np.all(np.isfinite(norms)):
    raise ValueError('Prototypes contain a zero or non-finite row; every prototype must '
                     'be a non-zero finite vector.')
  # Rows already unit (to 1e-12) are kept bit for bit: exact codes stay exact.
  return np.where(np.abs(norms - 1.0) > 1e-12, p / norms, p)


def _components(p_CxD: np.ndarray) -> np.ndarray:
  """A label per row; rows with different labels have disjoint supports."""
  nz = (p_CxD != 0).astype(np.float32)
  touching = (nz.T @ nz) > 0  # d x d: coordinates used together by some row.
  _, coord_label = csgraph.connected_components(touching, directed=False)
  return coord_label[np.argmax(p_CxD != 0, axis=1)]


def _integer_rows(p_CxD: np.ndarray) -> Optional[tuple[np.ndarray, float]]:
  """(integers as float32, scale a) with p = a * integers, exact, or None."""
  magnitude = np.abs(p_CxD)
  scale = float(magnitude[magnitude > 0].min())
  z = p_CxD / scale
  if not np.array_equal(z, np.round(z)):
    return None
  if np.abs(z).max() ** 2 * p_CxD.shape[1] >= 2**24:
    return None
  if not np.array_equal(z * scale, p_CxD):
    return None
  return z.astype(np.float32), scale


def scan_header(p_CxD: np.ndarray) -> dict:
  """The keys of a pair scan that need no pairs: C, d and the norm of the mean row."""
  num_classes, dim = p_CxD.shape
  return {'num_classes': int(num_classes), 'dim': int(dim),
          'norm_of_mean': float(np.linalg.norm(p_CxD.mean(axis=0)))}


def scan_summary(num_classes: int, dim: int, nearest_C: np.ndarray, pairs: int,
                 duplicates: int, max_abs: float) -> dict:
  """The keys `separation_metrics` and `certify` report from their pair scans: the max
  cosine and what follows from it (angle, best bound and gap, the certificate)."""
  best = float(nearest_C.max())
  out = dict(
      max_cos=best,
      min_angle_deg=float(np.degrees(np.arccos(np.clip(best, -1.0, 1.0)))),
      mean_nn_cos=float(nearest_C.mean()),
      num_pairs_at_max=pairs,
      num_duplicates=duplicates,
      max_abs_cos=max_abs,
  )
  bound, name = bounds_lib.best_bound(num_classes, dim)
  if bound is not None:
    out.update(bound=bound, bound_name=name, gap_to_bound=best - bound)
  out.update(certificate(num_classes, dim, best, max_abs))
  return out


def certify(protos_CxD: np.ndarray, block_rows: Optional[int] = None) -> dict:
  """`separation_metrics`' keys + `max_abs_cos` + `certificate`, in one blocked pass.

  Also `exact_arithmetic` (True where the integer-row path was used), `components` (the
  number of orthogonal blocks found), `cyclic_components` (how many of them were
  certified through their cyclic structure, `_CyclicScan`) and `walsh_blocks` (the
  number of blocks of rows certified through Walsh spectra, `walsh.WalshScan`). A code
  that is Walsh blocks as a whole (a Kerdock code or a prefix of one) is read in place,
  never copied.
  """
  lay = walsh.layout(protos_CxD)
  if lay is not None:
    return _certify_walsh(protos_CxD, lay)
  p = unit_rows(protos_CxD)
  num_classes, dim = p.shape
  out = scan_header(p)
  if num_classes < 2:
    return out
  integer = _integer_rows(p)
  x, scale = integer if integer is not None else (p, 1.0)
  sq = scale * scale  # Cosines are sq * (x_i . x_j).
  labels = _components(p)
  groups = [np.flatnonzero(labels == g) for g in np.unique(labels)]
  nearest = np.full(num_classes, -np.inf)
  scans, max_abs, duplicates = [], 0.0, 0
  for rows in groups:
    cols = np.flatnonzero(np.any(p[rows] != 0, axis=0))
    x_g = x[rows][:, cols]
    lay = None
    if integer is not None and walsh.possible(len(rows), len(cols)):
      lay = walsh.layout(p[rows][:, cols])
    stride = _cyclic_stride(x_g) if integer is not None and lay is None else None
    if lay is not None:
      scan = _WalshScan(lay)
    elif stride is not None:
      scan = _CyclicScan(x_g, stride, sq)
    else:
      scan = _DenseScan(x_g, sq, block_rows)
    nearest[rows] = scan.nearest
    max_abs = max(max_abs, scan.max_abs)
    scans.append(scan)
  sizes = np.array([len(g) for g in groups])
  cross_pairs = int((sizes.sum() ** 2 - np.sum(sizes ** 2)) // 2)
  if cross_pairs:  # Rows of other groups are at cos exactly 0.
    for g in groups:
      if len(g) < num_classes:
        nearest[g] = np.maximum(nearest[g], 0.0)
  best = float(nearest.max())
  pairs = cross_pairs if cross_pairs and best - PAIR_TOL <= 0.0 else 0
  for scan in scans:
    pairs += scan.pairs_at_least(best - PAIR_TOL, best)
    duplicates += scan.duplicates()
  out.update(scan_summary(num_classes, dim, nearest, pairs, duplicates, max_abs))
  out.update(exact_arithmetic=integer is not None, components=len(groups),
             cyclic_components=sum(isinstance(s, _CyclicScan) for s in scans),
             walsh_blocks=sum(s.blocks for s in scans if isinstance(s, _WalshScan)))
  return out


def _certify_walsh(p_CxD: np.ndarray, lay: walsh.Layout) -> dict:
  """`certify` of a code of Walsh blocks (`walsh.layout`) as a whole: exact, and the
  array is read in place, never copied (its rows are exactly unit, as the layout checks).
  """
  num_classes, dim = p_CxD.shape
  total = np.zeros(dim)
  for start in range(0, num_classes, 1 << 16):  # float64 sums: exact for these entries.
    total += p_CxD[start:start + (1 << 16)].sum(axis=0, dtype=np.float64)
  out = {'num_classes': int(num_classes), 'dim': int(dim),
         'norm_of_mean': float(np.linalg.norm(total / num_classes))}
  scan = _WalshScan(lay)
  best = float(scan.nearest.max())
  out.update(scan_summary(num_classes, dim, scan.nearest,
                          scan.pairs_at_least(best - PAIR_TOL, best), scan.duplicates(),
                          scan.max_abs))
  out.update(exact_arithmetic=True, components=1, cyclic_components=0,
             walsh_blocks=scan.blocks)
  return out


class _WalshScan:
  """`walsh.WalshScan` in the protocol of the scans here (cosines, not cos x d)."""

  def __init__(self, lay: walsh.Layout):
    self.scan = walsh.WalshScan(lay)
    self.dim, self.blocks = lay.dim, len(lay.blocks)
    self.top = int(self.scan.nearest.max())  # This group's max, cos x d.
    self.nearest = self.scan.nearest / self.dim
    self.max_abs = self.scan.max_abs / self.dim

  def pairs_at_least(self, level: float, best: float) -> int:
    """Pairs with cos >= level = best - PAIR_TOL: those at this group's max, if it is
    that high (cosines here are multiples of 1/d, far more than PAIR_TOL apart)."""
    del best
    return self.scan.pairs_at(self.top) if self.top / self.dim >= level else 0

  def duplicates(self) -> int:
    """Pairs with cos > DUPLICATE_COS: cos 1 (x d = d), the only such value here."""
    return self.scan.pairs_at(self.dim) if self.top == self.dim else 0


class _DenseScan:
  """The pairs i < j of one group's rows, x_i . x_j in blocks of rows (never the whole
  Gram matrix); cosines are sq * x_i . x_j. Keeps each block's max and the number of
  its pairs near it, so counting the pairs at the overall max rarely recomputes a block.
  """

  def __init__(self, x_NxM: np.ndarray, sq: float, block_rows: Optional[int]):
    self.x, self.sq = x_NxM, sq
    n = len(x_NxM)
    self.nearest = np.full(n, -np.inf)
    self.max_abs = 0.0
    self.blocks = []  # (start, stop, block max, pairs within PAIR_TOL of it)
    self.num_duplicates = 0
    running = -np.inf
    step = block_rows or int(np.clip(BLOCK_ENTRIES // n, 64, 2048))
    for a in range(0, n, step):
      b = min(a + step, n)
      gram = self.block_gram(a, b)
      row_max = gram.max(axis=1)
      self.nearest[a:b] = np.maximum(self.nearest[a:b], row_max.astype(np.float64) * sq)
      self.nearest[a:] = np.maximum(self.nearest[a:], gram.max(axis=0).astype(np.float64) * sq)
      top = float(row_max.max())
      if not np.isfinite(top):
        continue  # The last row: no pairs i < j in this block.
      self.max_abs = max(self.max_abs, top * sq)
      if self.max_abs < 1.0:  # Else an antipodal pair is already found: |cos| <= 1.
        own = gram[:, :b - a][np.triu_indices(b - a, 1)]
        low = min(own.min(initial=np.inf), gram[:, b - a:].min(initial=np.inf))
        self.max_abs = max(self.max_abs, -float(low) * sq)
      count = 0
      if top * sq >= running - PAIR_TOL:  # Else this block can hold no pair at the max.
        count = int(np.count_nonzero(gram >= top - PAIR_TOL / sq))
        running = max(running, top * sq)
      self.blocks.append((a, b, top * sq, count))
      if top * sq > DUPLICATE_COS:
        self.num_duplicates += int(np.count_nonzero(gram > DUPLICATE_COS / sq))

  def block_gram(self, a: int, b: int) -> np.ndarray:
    """x_i . x_j for rows a:b against rows a: (pairs i < j; the others -inf)."""
    gram = self.x[a:b] @ self.x[a:].T
    gram[:, :b - a][np.tril_indices(b - a)] = -np.inf
    return gram

  def pairs_at_least(self, level: float, best: float) -> int:
    """Pairs with cos >= level, for level = best - PAIR_TOL, best the overall max."""
    pairs = 0
    for a, b, top, count in self.blocks:
      if top == best:
        pairs += count
      elif top >= level:  # A block just below the max: count again at the max.
        pairs += int(np.count_nonzero(self.block_gram(a, b).astype(np.float64) * self.sq
                                      >= level))
    return pairs

  def duplicates(self) -> int:
    """Pairs with cos > DUPLICATE_COS."""
    return self.num_duplicates


def _cyclic_stride(x_NxM: np.ndarray) -> Optional[int]:
  """s where every row i + s is row i rotated left by one coordinate, or None.

  Then row i is row (i mod s) rotated left by i // s: the rows are s cyclic orbits
  listed shift-major, as `algebraic.gold` lists the Gold code. Checked exactly on every
  row; None where it does not hold or where s > N / 4 (too few rows to gain).
  """
  n = len(x_NxM)
  if n < 8 or x_NxM.shape[1] < 2:
    return None
  first = np.roll(x_NxM[0], -1)
  hits = np.flatnonzero(np.all(x_NxM[1:n // 4 + 1] == first, axis=1))
  if not len(hits):
    return None
  s = int(hits[0]) + 1
  for a in range(0, n - s, 8192):  # Bounded copies at large N.
    b = min(a + 8192, n - s)
    if not np.array_equal(x_NxM[a + s:b + s], np.roll(x_NxM[a:b], -1, axis=1)):
      return None
  return s


class _CyclicScan:
  """The pairs of one group of integer rows in s cyclic orbits (`_cyclic_stride`), exact.

  Row i = (a, k): base row a = i mod s rotated left by k = i // s. For rows (a, k) and
  (b, l), x_i . x_j = R_ab(l - k mod M), R_ab the cyclic cross-correlation of base rows
  a and b (one FFT per base; rounded to the integers it is). So the s^2 M values of R
  decide every pair: the max, the nearest neighbour of every row (a sliding max over
  the shifts present), the pairs at a level (each shift difference counted with the
  number of row pairs that have it). s^2 M log M work instead of N^2 M: at
  C = 100,000 Gold rows of length 511 (s = 513), seconds instead of minutes.
  """

  CHUNK = 16  # Base rows a per FFT batch (CHUNK x s x M correlations in memory).

  def __init__(self, x_NxM: np.ndarray, stride: int, sq: float):
    n, self.m = x_NxM.shape
    self.s, self.sq = stride, sq
    self.fft = np.fft.rfft(x_NxM[:stride].astype(np.float64), axis=1)
    self.orbit = (n - np.arange(stride) + stride - 1) // stride  # K_a: rows of orbit a.
    self.nearest = np.full(n, -np.inf)
    self.max_abs = 0.0
    for a, b, shifts, valid in self._windows():
      # shifts[a, b, u]: R_ab at the shift difference u - (K_a - 1), -inf where invalid.
      top = np.where(valid, shifts, -np.inf).max(axis=1)  # max over b: a x L
      low = np.where(valid, shifts, np.inf).min(axis=1)
      self.max_abs = max(self.max_abs, float(np.abs(top[np.isfinite(top)]).max(initial=0)),
                         float(np.abs(low[np.isfinite(low)]).max(initial=0)))
      ka, kb = self.orbit[a[0]], self.orbit[b[0]]
      # Row (a, k) sees differences l - k, l < K_b: the window u in [K_a-1-k, +K_b).
      window = np.lib.stride_tricks.sliding_window_view(top, kb, axis=1).max(axis=2)
      k = np.arange(ka)
      near = window[:, ka - 1 - k] * sq  # a x K_a
      rows = a[:, None] + stride * k[None, :]
      self.nearest[rows] = np.maximum(self.nearest[rows], near)
    self.max_abs *= sq

  def _windows(self):
    """Per chunk of base rows a with one orbit length K_a, and per orbit length K_b of
    the b: (a, b, R_ab at the differences -(K_a - 1) .. K_b - 1, which are valid)."""
    for ka in np.unique(self.orbit):
      rows_a = np.flatnonzero(self.orbit == ka)
      for c in range(0, len(rows_a), self.CHUNK):
        a = rows_a[c:c + self.CHUNK]
        corr = np.fft.irfft(np.conj(self.fft[a, None]) * self.fft[None], n=self.m, axis=-1)
        corr = np.rint(corr)  # Integers, to far below 0.5.
        for kb in np.unique(self.orbit):
          b = np.flatnonzero(self.orbit == kb)
          diffs = np.arange(-(ka - 1), kb)
          shifts = corr[:, b][:, :, diffs % self.m]
          valid = np.ones(shifts.shape, bool)
          same = a[:, None] == b[None, :]  # A row and itself: difference 0.
          valid[..., ka - 1] &= ~same
          yield a, b, shifts, valid

  def _count(self, test) -> int:
    """Row pairs i < j whose x_i . x_j passes `test` (on the integers)."""
    total = 0
    for a, b, shifts, valid in self._windows():
      ka, kb = self.orbit[a[0]], self.orbit[b[0]]
      diffs = np.arange(-(ka - 1), kb)
      # Row pairs (k, l), k < K_a, l < K_b, with l - k = diff.
      mult = np.maximum(0, np.minimum(ka, kb - diffs) - np.maximum(0, -diffs))
      passing = test(shifts) & valid
      hits = passing @ mult  # a x b: row pairs of orbits a and b
      order = a[:, None] < b[None, :]
      total += int(hits[order].sum())
      same = a[:, None] == b[None, :]
      if same.any():  # Within an orbit: pairs k < l, difference > 0.
        own = passing[same][:, ka:] @ mult[ka:]
        total += int(own.sum())
    return total

  def pairs_at_least(self, level: float, best: float) -> int:
    del best
    if self.nearest.max() < level:
      return 0
    return self._count(lambda v: v * self.sq >= level)

  def duplicates(self) -> int:
    """Pairs with cos > DUPLICATE_COS."""
    if self.nearest.max() <= DUPLICATE_COS:
      return 0
    return self._count(lambda v: v * self.sq > DUPLICATE_COS)
