"""The memory a placement needs, estimated and checked before anything is allocated.

`estimate(method, C, d, **kwargs)` models the peak of what a placement allocates on top
of what the process already holds: the optimiser's Gram matrices and restarts, the
large-C optimiser's neighbour lists, a code's rows, the output array itself, and (with
certify=True, as `place_with_metadata` and the CLI run) the certificate's scan. `check`
compares it with the memory available (MemAvailable in /proc/meminfo, and a cgroup's
limit less its usage where one is set) and raises `NotEnoughMemory`, naming the
estimate, the memory available and what would fit, within a second: a request that
cannot fit fails at once instead of being killed by the kernel minutes later.

The estimates are models, sized from measured peaks (docs/placement.md#memory, and
`experiments/memory_table.py`, which prints estimate against measured for a set of
cells): the exact constructions to a few per cent, the optimisers within about a factor
of two, on the high side. HYPERPROTO_MEMORY_LIMIT (bytes, or with a K/M/G/T suffix)
replaces the detected memory; 'off' skips the check.
"""

import dataclasses
import math
import os
from typing import Any, Optional

import numpy as np

LIMIT_ENV = 'HYPERPROTO_MEMORY_LIMIT'
F32, F64 = 4, 8
# Working arrays of size C x C float32 per restart in the optimiser's jitted step (the
# Gram matrix, exp, the smooth-max weights and their gradient; XLA fuses the rest),
# and in the original recipe's (`hpn`); fitted to measured peaks with some margin
# (experiments/memory_table.py).
SEPARATION_GRAMS = 4
HPN_GRAMS = 3
XLA = 200 * 10**6  # Compiling the optimiser, its runtime buffers (measured 0.1-0.2 GB).
# The large-C optimiser's per-row arrays, in units of C x d float32: the points and Adam
# moments (3), the best iterate (1), the padded copy of the neighbour search (1), the
# float64 start (2), and 2 more to cover the growth measured from C = 20,000 to 60,000;
# plus the k neighbours' rows gathered for the smooth max and their gradient (2k).
LARGE_C_ROWS = 9
# The dense certificate (`certificates.certify` on a code that is not Walsh blocks): a
# float64 copy of the rows and the integer-detection temporaries, in units of C x d
# float64, and a block of cosines (as `certificates._DenseScan` sizes it) with two
# temporaries.
CERTIFY_ROWS = 4
CERTIFY_BLOCK_ENTRIES = 1 << 24
# (limit, usage) of this process's memory cgroup: v2, then v1.
CGROUP_FILES = (('/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory.current'),
                ('/sys/fs/cgroup/memory/memory.limit_in_bytes',
                 '/sys/fs/cgroup/memory/memory.usage_in_bytes'))


class NotEnoughMemory(MemoryError):
  """A placement needs more memory than is available (raised before it allocates)."""


@dataclasses.dataclass(frozen=True)
class Estimate:
  """The peak memory of a placement, in bytes: the output array, held throughout, plus
  the larger of the placement's working set and the certificate's (one after the
  other)."""
  method: str  # As asked.
  resolved: str  # What it resolves to (`auto`: e.g. 'kerdock').
  output: int
  placing: dict[str, int]
  certifying: dict[str, int]

  @property
  def total(self) -> int:
    return int(self.output + max(sum(self.placing.values()),
                                 sum(self.certifying.values())))

  def describe(self) -> str:
    """'output (float32) 164 GB + the larger of placing (...) and certifying (...)'."""
    text = lambda parts: ', '.join(f'{k} {format_bytes(v)}' for k, v in parts.items())
    out = f'the output (float32) {format_bytes(self.output)}'
    if self.certifying:
      return (f'{out} + the larger of placing: {text(self.placing)}; and certifying: '
              f'{text(self.certifying)}')
    return f'{out} + placing: {text(self.placing)}'


def format_bytes(num: float) -> str:
  """1.5 GB, 164 GB, 0.3 GB (decimal units, as df and free -h --si print)."""
  for unit, size in (('TB', 1e12), ('GB', 1e9), ('MB', 1e6)):
    if num >= size or unit == 'MB':
      value = num / size
      return f'{value:.3g} {unit}' if value < 100 else f'{value:,.0f} {unit}'
  raise AssertionError


def _parse_bytes(text: str) -> int:
  text = text.strip().upper().rstrip('B')
  scale = {'K': 2**10, 'M': 2**20, 'G': 2**30, 'T': 2**40}.get(text[-1:], 1)
  return int(float(text[:-1] if scale > 1 else text) * scale)


def available() -> tuple[Optional[int], str]:
  """(bytes this process can still allocate, where the number comes from), or (None,
  why) when the check is off. The smaller of MemAvailable and a cgroup's limit less
  its usage (cgroup v2 memory.max / memory.current, or v1 memory.limit_in_bytes /
  memory.usage_in_bytes)."""
  override = os.environ.get(LIMIT_ENV)
  if override:
    if override.strip().lower() == 'off':
      return None, f'{LIMIT_ENV}=off'
    try:
      return _parse_bytes(override), f'{LIMIT_ENV}={override}'
    except ValueError as e:
      raise ValueError(f'{LIMIT_ENV}={override!r} is not a size: use bytes or a number '
                       "with K, M, G or T (e.g. 64G), or 'off'.") from e
  found = []
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          found.append((int(line.split()[1]) * 1024, 'MemAvailable in /proc/meminfo'))
  except OSError:
    pass
  for limit_file, usage_file in CGROUP_FILES:
    try:
      with open(limit_file) as f:
        limit = f.read().strip()
      with open(usage_file) as f:
        usage = int(f.read().strip())
    except (OSError, ValueError):
      continue
    if limit.isdigit() and int(limit) < 1 << 60:  # 'max' or ~2^63: no limit.
      found.append((int(limit) - usage,
                    f'the cgroup limit less its usage ({limit_file})'))
  if not found:
    return None, 'no memory information (/proc/meminfo) on this system'
  return min(found)


def _rows(num_classes: int, dim: int, itemsize: int) -> int:
  return num_classes * dim * itemsize


def _separation(c: int, d: int, restarts: int) -> dict[str, int]:
  """The jitted restarts (vmapped: all in memory at once) and their rows. The same for
  the max |cos| criterion (`ebv`) and with L_PI (`semantic`), measured."""
  return {f'{restarts} restarts x {SEPARATION_GRAMS} C x C arrays':
              restarts * SEPARATION_GRAMS * c * c * F32,
          'their rows': restarts * _rows(c, d, F64 + 5 * F32), 'XLA': XLA}


def _separation_large(c: int, d: int, neighbours: int = 16, block_rows: int = 512
                      ) -> dict[str, int]:
  import jax  # pylint: disable=g-import-not-at-top
  k = min(neighbours, c - 1)
  devices = len(jax.local_devices())
  return {'points, Adam moments, best, start': _rows(c, d, F32) * LARGE_C_ROWS,
          f'{k} neighbours per row and their gradient': 2 * k * _rows(c, d, F32),
          f'neighbour search ({devices} device{"s" * (devices > 1)})':
              devices * 3 * block_rows * c * F32 + c * k * 8, 'XLA': XLA}


def _auto_separation(c: int, d: int, kwargs: dict[str, Any]) -> dict[str, int]:
  """`auto`'s optimiser runs below LARGE_C: the one with the most restarts at a time."""
  from hyperproto.prototypes import auto  # pylint: disable=g-import-not-at-top
  restarts = kwargs.get('restarts', 4)
  if not kwargs:
    cost = c * c * (d + auto.PAIR_WORK)
    hot_restarts = int(auto.HOT_BUDGET / (cost * auto.HOT['steps']))
    restarts = max(restarts, min(16, hot_restarts))
    if d == 3 and c <= auto.TAMMES_MAX_C:
      restarts = max(restarts, 64)
  return _separation(c, d, restarts)


def _construction(c: int, d: int, family: Optional[str] = None
                  ) -> tuple[dict[str, int], bool]:
  """(working memory, whether the rows come as float32 Walsh blocks: one Kerdock code,
  returned and certified in place)."""
  from hyperproto.prototypes import codes  # pylint: disable=g-import-not-at-top
  built = codes.best_construction(c, d, family)
  if built is None:
    return {}, False
  if built.size <= codes.GREEDY_MAX:  # The whole sum and its Gram matrix.
    return {'code and its Gram matrix': 2 * built.size * built.size * F64
                                        + _rows(built.size, d, F64) * 2}, False
  if built.copies == 1 and not built.rest and built.code.name.startswith('kerdock'):
    return {}, True
  return {f'{built.name} blocks and their direct sum (float64)':
              _rows(c, built.code.dim, F64 + F32) + _rows(c, d, F64)}, False


def _method_parts(method: str, c: int, d: int, kwargs: dict[str, Any]
                  ) -> tuple[str, dict[str, int], bool]:
  """(what `method` resolves to, its working memory beside the output, whether it
  returns float32 Walsh blocks: a Kerdock code or prefix, kept and certified in place).
  """
  from hyperproto.prototypes import auto  # pylint: disable=g-import-not-at-top
  from hyperproto.prototypes import codes  # pylint: disable=g-import-not-at-top
  from hyperproto.prototypes import separation  # pylint: disable=g-import-not-at-top
  if method == 'auto':
    exact = auto.exact_method(c, d)
    if exact is not None:
      return (exact,) + _method_parts(exact, c, d, {})[1:]
    has_code = codes.best_construction(c, d) is not None
    if c >= separation.LARGE_C:
      if has_code and not kwargs:
        return ('construction',) + _construction(c, d)
      return 'separation_large', _separation_large(c, d), False
    parts = _auto_separation(c, d, kwargs)
    if has_code:
      parts.update(_construction(c, d)[0])
    return 'separation', parts, False
  if method in ('separation', 'semantic', 'ebv'):
    if method == 'separation' and c >= separation.LARGE_C and 'init' not in kwargs:
      return 'separation_large', _separation_large(c, d), False
    parts = _separation(c, d, kwargs.get('restarts', 4))
    if method == 'semantic':
      parts['triplets'] = c * kwargs.get('triplets_per_class', 64) * 4 * 4
    return method, parts, False
  if method == 'hpn':
    return method, {f'{HPN_GRAMS} C x C arrays': HPN_GRAMS * c * c * F32,
                    'rows': _rows(c, d, F64 + 3 * F32), 'XLA': XLA}, False
  if method == 'uniformity':
    b = min(c, kwargs.get('batch_size', 100))
    return method, {'batch differences and their gradient': 3 * b * b * d * F32,
                    'rows': _rows(c, d, F64 + 2 * F32), 'XLA': XLA}, False
  if method == 'kerdock':  # d x d blocks, the Kerdock set's check, Walsh spectra.
    return method, {'tables': 100 * d * d}, c > 2 * d
  if method == 'construction':
    return (method,) + _construction(c, d, kwargs.get('family'))
  if method in ('simplex', 'etf', 'maxsep', 'one_hot'):
    return method, {'C x C matrices': 4 * c * c * F64 + 2 * _rows(c, d, F64)}, False
  if method in ('hadamard', 'cross_polytope'):
    return method, {'d x d matrices': 6 * d * d * F64 + _rows(c, d, F64)}, False
  if method == 'embedding':
    return method, {'float64 rows': 3 * _rows(c, max(d, 384), F64)}, False
  return method, {'float64 rows': _rows(c, d, F64)}, False  # gold, icosahedron.


def estimate(method: str, num_classes: int, dim: int, certify: bool = False,
             **kwargs: Any) -> Estimate:
  """The peak memory of `place(method, C, d, **kwargs)` (+ `certify` when asked).

  The output (float32 C x d), held throughout; the placement: the method's working set
  (`_method_parts`) and the float64 array most methods return (the Kerdock codes come
  as float32 and are kept as they are); the certificate: nothing for Walsh-block codes
  (certified in place), else a float64 copy and blocks of cosines.
  """
  c, d = int(num_classes), int(dim)
  resolved, parts, direct = _method_parts(method, c, d, kwargs)
  placing = dict(parts) if direct else {'float64 result': _rows(c, d, F64), **parts}
  certifying = {}
  if certify and not direct:
    step = min(c, int(np.clip(CERTIFY_BLOCK_ENTRIES // max(c, 1), 64, 2048)))
    certifying = {'float64 copies': CERTIFY_ROWS * _rows(c, d, F64),
                  'cosine blocks': 3 * step * c * F64}
  return Estimate(method, resolved, _rows(c, d, F32), placing, certifying)


def _largest(fits, low: int, high: int) -> Optional[int]:
  """The largest n in [low, high] with fits(n) (fits monotone), or None."""
  if not fits(low):
    return None
  while low < high:
    mid = (low + high + 1) // 2
    low, high = (mid, high) if fits(mid) else (low, mid - 1)
  return low


def _alternatives(method: str, c: int, d: int, room: int, certify: bool,
                  kwargs: dict[str, Any]) -> list[str]:
  """What would fit in `room` bytes: fewer classes, a lower dim, a code."""
  from hyperproto.prototypes import codes  # pylint: disable=g-import-not-at-top
  from hyperproto.prototypes import kerdock  # pylint: disable=g-import-not-at-top
  fits = lambda m, cc, dd, **kw: estimate(m, cc, dd, certify, **kw).total <= room
  out = []
  built = codes.best_construction(c, d)
  if built is not None and method not in ('construction', 'kerdock'):
    need = estimate('construction', c, d, certify).total
    if need <= room:
      out.append(f"method='construction' ({built.name}, max cos {built.max_cos:.5f}) "
                 f'in about {format_bytes(need)}')
  for d0 in sorted(kerdock.VALID_DIMS, reverse=True):  # The largest Kerdock that fits.
    n = min(c, kerdock.code_size(d0))
    if d0 <= d and fits('kerdock', n, d0):
      what = f'all {c:,} classes' if n == c else f'up to {n:,} classes'
      out.append(f"method='kerdock' with dim={d0}: {what} at max cos 1/{math.isqrt(d0)}, "
                 f'in about {format_bytes(estimate("kerdock", n, d0, certify).total)}')
      break
  fewer = _largest(lambda n: fits(method, n, d, **kwargs), 2, c - 1) if c > 2 else None
  if fewer:
    out.append(f'num_classes <= {fewer:,} with this method and dim')
  lower = _largest(lambda n: fits(method, c, n, **kwargs), 1, d - 1) if d > 1 else None
  if lower:
    out.append(f'dim <= {lower:,} with this method and num_classes')
  return out


def check(method: str, num_classes: int, dim: int, certify: bool = False,
          **kwargs: Any) -> Optional[Estimate]:
  """Raises NotEnoughMemory where `estimate` exceeds `available()`; else the estimate
  (None where the request is not one the estimate can read, e.g. restarts='4': the
  method then reports its own error)."""
  try:
    need = estimate(method, num_classes, dim, certify, **kwargs)
  except (TypeError, ValueError):
    return None
  room, source = available()
  if room is None or need.total <= room:
    return need
  alternatives = _alternatives(method, int(num_classes), int(dim), room, certify, kwargs)
  raise NotEnoughMemory(
      f'Placing {num_classes:,} prototypes in dim={dim} with method={method!r}'
      + (f' (here: {need.resolved})' if need.resolved != method else '')
      + f' needs about {format_bytes(need.total)} of memory ({need.describe()}), but '
      f'{format_bytes(room)} is available ({source}). '
      + (f'Alternatives that fit: {"; ".join(alternatives)}. ' if alternatives
         else 'No smaller request with this method fits either. ')
      + f'The estimate is a model (docs/placement.md#memory); {LIMIT_ENV}=SIZE sets the '
      'memory to check against (off: no check).')
