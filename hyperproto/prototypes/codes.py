"""Codes for any (C, d): direct sums of the algebraic codes, and subsets of them.

A direct sum puts codes in orthogonal coordinate blocks: points of different blocks have
cosine exactly 0, so the sum of codes A (in R^a) and B (in R^b) is a code in R^(a+b) with
|A| + |B| points and max cos max(maxcos(A), maxcos(B), 0). Two 256-d Kerdock codes give
132,096 points in R^512 at 1/16.

`candidates(d)` lists every construction that fits d: m = d // d0 copies of one code in
R^d0 (Kerdock for d0 = 4^k, Hadamard for other powers of 2, Gold for 2^m - 1) plus the
cross-polytope +-e_i on the r = d - m d0 coordinates left over (2r more points at cos 0
to everything else). `construct(C, d)` takes the one with the lowest guaranteed max cos
that has at least C points (ties: the larger code, then the name) and returns C of its
points (`Construction.build`).

`subset` keeps C points of a code. It drops antipodes first (where C allows, it keeps
one point of every antipodal pair and no antipode: an antipodal pair has cos -1,
harmless to the max cos, but it is the worst pair under the max |cos| criterion), and for
codes of at most `GREEDY_MAX` points it then removes points greedily: the point in the
most pairs at the current max cos goes first, so the max falls where a C-point subset
without those pairs exists. (The antipode-free result is kept unless the greedy over all
points reaches a lower max cos.)
"""

import dataclasses
import functools
import math
from typing import Callable, Optional

import numpy as np

from hyperproto.prototypes import algebraic
from hyperproto.prototypes import kerdock

GREEDY_MAX = 5000  # Codes up to this size get the greedy subset (one Gram matrix).
PAIR_TOL = 1e-9  # Cosines within this of the max are "at the max" in the greedy.


def direct_sum(*codes: np.ndarray) -> np.ndarray:
  """Codes in orthogonal coordinate blocks: sum(|A_i|) points in R^(sum d_i).

  Rows of code i occupy coordinates [sum_{j<i} d_j, sum_{j<=i} d_j); cosines between
  codes are exactly 0, within a code they are unchanged.
  """
  if not codes:
    raise ValueError('direct_sum needs at least one code.')
  dims = [c.shape[1] for c in codes]
  out = np.zeros((sum(len(c) for c in codes), sum(dims)), np.result_type(*codes))
  row = col = 0
  for code in codes:
    out[row:row + len(code), col:col + code.shape[1]] = code
    row += len(code)
    col += code.shape[1]
  return out


def _second_of_pair(points_NxD: np.ndarray) -> np.ndarray:
  """Mask of rows whose exact antipode (-p bit for bit) comes earlier in the code.

  Rows are sign-normalised (first non-zero entry made positive) and sorted by a random
  projection of that copy; rows with equal keys are compared exactly, so a pair is
  only ever marked when the rows really are antipodal. Rows repeated k times pair up in
  row order with their antipodes; unpaired rows are never marked.
  """
  p = np.ascontiguousarray(points_NxD)
  first = np.argmax(p != 0, axis=1)
  sign = np.sign(p[np.arange(len(p)), first])
  sign[sign == 0] = 1
  canon = p * sign[:, None]
  key = canon @ np.random.default_rng(0).standard_normal(p.shape[1])
  order = np.argsort(key, kind='stable')
  second = np.zeros(len(p), bool)
  bounds = np.flatnonzero(np.diff(key[order])) + 1
  for rows in np.split(order, bounds):
    if len(rows) < 2:
      continue
    plus, minus = list(rows[sign[rows] > 0]), list(rows[sign[rows] < 0])
    for i in sorted(plus):
      match = next((j for j in sorted(minus) if np.array_equal(canon[i], canon[j])), None)
      if match is not None:
        minus.remove(match)
        second[max(i, match)] = True
  return second


def antipode_order(points_NxD: np.ndarray) -> np.ndarray:
  """Row order with one point of every antipodal pair first, their antipodes last.

  Exact antipodes only (p_j == -p_i bit for bit, as in the algebraic codes). Stable: the
  first point of each pair (in row order) stays in front, in row order.
  """
  second = _second_of_pair(points_NxD)
  return np.concatenate([np.flatnonzero(~second), np.flatnonzero(second)])


def subset(points_NxD: np.ndarray, num_classes: int, greedy: Optional[bool] = None
           ) -> np.ndarray:
  """C rows of a code: antipodes last, then (small codes) greedy removal; see above.

  Args:
    points_NxD: unit rows.
    num_classes: C <= N.
    greedy: remove points greedily by their pairs at the max (default: N <= GREEDY_MAX).

  Returns:
    C x D rows of `points_NxD`, in their original relative order.
  """
  n = len(points_NxD)
  if num_classes > n:
    raise ValueError(f'A code of {n} points has no subset of {num_classes}.')
  second = _second_of_pair(points_NxD)
  order = np.concatenate([np.flatnonzero(~second), np.flatnonzero(second)])
  if greedy is None:
    greedy = n <= GREEDY_MAX
  if not greedy or num_classes == n:
    return points_NxD[np.sort(order[:num_classes])]
  p = np.asarray(points_NxD, np.float64)
  keep = _greedy_keep(p, num_classes, order)
  reps = np.flatnonzero(~second)
  if num_classes <= len(reps) < n:
    # Antipodes dropped first: the greedy on the antipode-free points alone, kept unless
    # the greedy over all points reaches a lower max cos.
    free = reps[_greedy_keep(p[reps], num_classes, np.arange(len(reps)))]
    if _max_cos(p[free]) <= _max_cos(p[keep]):
      keep = free
  return points_NxD[keep]


def _max_cos(p: np.ndarray) -> float:
  cos = p @ p.T
  np.fill_diagonal(cos, -np.inf)
  return float(cos.max()) if len(p) > 1 else -1.0


def _greedy_keep(p_NxD: np.ndarray, num_classes: int, order: np.ndarray) -> np.ndarray:
  """Indices (sorted) of C rows left after greedy removal of the most-conflicted rows."""
  n = len(p_NxD)
  cos = p_NxD @ p_NxD.T
  np.fill_diagonal(cos, -np.inf)
  alive = np.ones(n, bool)
  # Ties between equally conflicted rows: remove the one latest in the antipode order.
  rank = np.empty(n)
  rank[order] = np.arange(n)
  level, at_max = None, None
  for _ in range(n - num_classes):
    if level is None or not at_max[alive].any():
      # A fresh level: the max over live pairs, and each live row's pairs at it.
      live = cos[np.ix_(alive, alive)]
      level = live.max()
      at_max = np.zeros(n)
      at_max[alive] = np.sum(live >= level - PAIR_TOL, axis=1)
    score = np.where(alive, at_max * (n + 1) + rank, -np.inf)
    worst = int(np.argmax(score))
    alive[worst] = False
    at_max -= alive & (cos[worst] >= level - PAIR_TOL)
  return np.flatnonzero(alive)


@dataclasses.dataclass(frozen=True)
class Code:
  """A base code: `rows(k)` gives its first k points in its preferred order (one point
  of every antipodal pair first), `reps` of them antipode-free."""
  name: str
  dim: int
  size: int
  max_cos: float
  rows: Callable[[int], np.ndarray]
  reps: int


@dataclasses.dataclass(frozen=True)
class Construction:
  """`copies` of `code` in orthogonal blocks + the cross-polytope on `rest` coordinates."""
  code: Code
  copies: int
  rest: int

  @property
  def name(self) -> str:
    label = self.code.name if self.copies == 1 else f'{self.copies} x {self.code.name}'
    return label + (f' + cross_polytope({self.rest})' if self.rest else '')

  @property
  def size(self) -> int:
    return self.copies * self.code.size + 2 * self.rest

  @property
  def max_cos(self) -> float:
    return max(self.code.max_cos, 0.0)

  def build(self, num_classes: int) -> np.ndarray:
    """C points: the whole sum then `subset` (small), else a prefix of every block.

    Large sums take every block's antipode-free points first (block by block), then
    their antipodes: each block contributes a prefix of its preferred order, so only the
    chosen rows are ever built.
    """
    if num_classes > self.size:
      raise ValueError(f'{self.name} has {self.size} points, not {num_classes}.')
    cross = lambda k: np.concatenate([np.eye(self.rest), -np.eye(self.rest)])[:k]
    if self.size <= GREEDY_MAX:
      blocks = [self.code.rows(self.code.size)] * self.copies
      return subset(direct_sum(*blocks, *([cross(2 * self.rest)] if self.rest else [])),
                    num_classes)
    sizes = [self.code.size] * self.copies + ([2 * self.rest] if self.rest else [])
    reps = [self.code.reps] * self.copies + ([self.rest] if self.rest else [])
    counts, left = [0] * len(sizes), num_classes
    for tier in (reps, [s - r for s, r in zip(sizes, reps)]):
      for j, available in enumerate(tier):
        take = min(available, left)
        counts[j] += take
        left -= take
    blocks = [self.code.rows(k) for k in counts[:self.copies]]
    if self.rest:
      blocks.append(cross(counts[-1]))
    if len(blocks) == 1 and blocks[0].flags.writeable:  # Built for this call: no copy
      return blocks[0]  # (float32 for Kerdock: 4.3 GB at d0 = 1024).
    return direct_sum(*[b.astype(np.float64) for b in blocks])


@functools.lru_cache(maxsize=8)
def _ordered_hadamard(d0: int):
  """(rows in antipode order, number antipode-free) of the Hadamard code in R^d0;
  cached, so read-only."""
  points = algebraic.hadamard(4 * d0, d0)
  second = _second_of_pair(points)
  order = np.concatenate([np.flatnonzero(~second), np.flatnonzero(second)])
  ordered = points[order]
  ordered.flags.writeable = False
  return ordered, len(points) - int(np.sum(second))


def _kerdock_rows(d0: int, k: int) -> np.ndarray:
  """The first k points of the Kerdock code in R^d0 in antipode order (e, B_1, ...,
  then their negatives: what `antipode_order` gives), built directly, float32 (exact)."""
  return kerdock.kerdock_rows(d0, k, 'antipodes_last', np.float32)


def _base_codes(dim: int) -> list[Code]:
  """Kerdock (d0 = 4^k), Hadamard (other powers of 2), Gold (2^m - 1, m odd) codes."""
  out = []
  for d0 in kerdock.VALID_DIMS:
    if d0 <= dim:
      reps = kerdock.code_size(d0) // 2  # Every point's antipode is in the code.
      out.append(Code(f'kerdock({d0})', d0, kerdock.code_size(d0), 2.0**-math.log(d0, 4),
                      functools.partial(_kerdock_rows, d0), reps))
  d0 = 8
  while d0 <= dim:
    if d0 not in kerdock.VALID_DIMS:  # Kerdock contains the Hadamard code there.
      out.append(Code(f'hadamard({d0})', d0, 4 * d0, 1 / math.sqrt(d0),
                      lambda k, d0=d0: _ordered_hadamard(d0)[0][:k], 2 * d0))
    d0 *= 2
  for m in sorted(algebraic._PRIMITIVE):  # pylint: disable=protected-access
    n = (1 << m) - 1
    if m % 2 and n <= dim:
      # No antipodal pairs (checked for n = 7, 31, 127; only the order depends on it).
      out.append(Code(f'gold({n})', n, (n + 2) * n, algebraic.gold_max_cos(n),
                      lambda k, n=n: algebraic.gold(k, n), (n + 2) * n))
  return out


def candidates(dim: int) -> list[Construction]:
  """Every direct-sum construction in R^dim (copies of one code + a cross-polytope)."""
  return [Construction(code, *divmod(dim, code.dim)) for code in _base_codes(dim)]


FAMILIES = ('kerdock', 'hadamard', 'gold')


def best_construction(num_classes: int, dim: int,
                      family: Optional[str] = None) -> Optional[Construction]:
  """The candidate with the lowest max cos and at least C points, or None.

  `family` ('kerdock', 'hadamard' or 'gold') restricts the base code.
  """
  if family is not None and family not in FAMILIES:
    raise ValueError(f'Unknown code family {family!r}; use one of {FAMILIES}.')
  fits = [c for c in candidates(dim) if c.size >= num_classes
          and (family is None or c.code.name.startswith(family))]
  if not fits:
    return None
  return min(fits, key=lambda c: (c.max_cos, -c.size, c.name))


def construct(num_classes: int, dim: int, seed: int = 0,
              family: Optional[str] = None) -> np.ndarray:
  """C points of `best_construction(C, d, family)` (the PLACEMENTS entry 'construction').

  Deterministic; `seed` is unused.
  """
  del seed
  best = best_construction(num_classes, dim, family)
  if best is None:
    largest = max((c.size for c in candidates(dim)
                   if family is None or c.code.name.startswith(family)), default=0)
    raise ValueError(f'No algebraic construction in dim={dim} has {num_classes} points '
                     f'(the largest has {largest}). Raise dim or use '
                     'method="separation".')
  return best.build(num_classes)
