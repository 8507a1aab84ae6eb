"""Class prototypes on the unit sphere, placed before training.

Prototypes are data, not parameters: `place` is deterministic in its arguments, the
trainer saves the result in the workdir and passes it to the steps as a constant input,
so it is never trained and never weight-decayed. `get_or_place` adds a cache keyed by
every argument, so runs that share a (method, C, d, seed, kwargs) share one placement.

Methods (PLACEMENTS):
  auto            the exact optimum where one is known (simplex, cross-polytope,
                  icosahedron, the regular polygon at d = 2, Kerdock code); else the
                  best of `separation`, the best algebraic construction
                  (`construction`), polished by the optimiser, and the `triples` code.
                  The default; see `auto_placement`.
  simplex         exact regular simplex, C <= d + 1 (max cos -1/(C-1)).
  cross_polytope  +-e_i, d + 1 < C <= 2d (max cos 0, optimal).
  icosahedron     12 points in 3-D (max cos 1/sqrt(5), optimal).
  polygon         the regular C-gon, d = 2 (max cos cos(2 pi / C), optimal).
  kerdock         d = 4^k: d^2 + 2d points at max cos 1/sqrt(d) (optimal; kerdock.py).
  construction    a subset of the best direct sum of Kerdock / Hadamard / Gold codes and
                  a cross-polytope that fits (C, d) (codes.py).
  separation      annealed smooth-max Riemannian Adam with restarts (separation.py).
  hpn             the original recipe (SGD on the mean row-max cosine, 10k steps).
  busemann        Busemann learning's prototype_learning.py: `hpn`, the C-gon at d = 2.
  hadamard, gold  algebraic codes (algebraic.py): baselines and warm starts at large C.
  triples         sign patterns on a packing of coordinate triples (algebraic.py): up to
                  ~4d^2/3 points at max cos exactly 1/3 (104 in d = 10).
  one_hot         identity, d = C (Table 1 baseline).
  etf             the randomly rotated simplex ETF of Yang et al. 2022 (d >= C - 1).
  maxsep          the closed-form max-separation matrix of Kasarla et al. 2022 (d = C - 1).
  ebv             Equiangular Basis Vectors (Shen et al. 2023): min max |cos|, any d.
  embedding       class-name embeddings reduced to d dims (Table 1 word2vec baseline).
  semantic        separation + the paper's privileged-information loss L_PI.
  uniformity      DL2PA's estimation: SGD on the uniformity loss (uniformity.py).
"""

import functools
import hashlib
import json
import os
import time
from typing import Any, Callable, Optional

from absl import logging
import numpy as np

from hyperproto.prototypes import algebraic
from hyperproto.prototypes import closed_form
from hyperproto.prototypes import codes
from hyperproto.prototypes import hpn as hpn_lib
from hyperproto.prototypes import kerdock as kerdock_lib
from hyperproto.prototypes import memory
from hyperproto.prototypes import semantic as semantic_lib
from hyperproto.prototypes import separation as separation_lib
from hyperproto.prototypes import uniformity as uniformity_lib
from hyperproto.prototypes.bounds import best_bound, levenshtein_bound, lower_bound  # pylint: disable=unused-import
from hyperproto.prototypes.certificates import certificate, certify  # pylint: disable=unused-import
from hyperproto.prototypes.metrics import max_cos, separation_metrics  # pylint: disable=unused-import
from hyperproto.prototypes.metrics import duplicate_pairs
from hyperproto.prototypes.store import load, save  # pylint: disable=unused-import

CACHE_ENV = 'HYPERPROTO_CACHE'
DEFAULT_CACHE = os.path.join('~', '.cache', 'hyperproto', 'prototypes')


def exact_method(num_classes: int, dim: int) -> Optional[str]:
  """The exact construction that is optimal for (C, d), or None where none is known."""
  if num_classes <= dim + 1:
    return 'simplex'
  if num_classes <= 2 * dim:
    return 'cross_polytope'
  if dim == 2:
    return 'polygon'
  if (num_classes, dim) == (12, 3):
    return 'icosahedron'
  if dim in kerdock_lib.VALID_DIMS and num_classes == kerdock_lib.code_size(dim):
    return 'kerdock'
  return None


# The optimiser's work in `auto`, in units of C^2 (d + PAIR_WORK) per restart-step (the
# Gram matrix, plus the per-pair exp and masks): the default 4 restarts x 10,000 steps
# fit every cell of the paper's grid ((200, 50) is 1.3e11). Beyond it, `auto` shortens
# the random restarts (or, where a construction exists, only polishes the construction)
# so any C <= 1,000, d <= 128 takes well under a minute on 2 CPU cores.
AUTO_BUDGET = 1.5e11
PAIR_WORK = 32
MIN_STEPS = 100  # Fewer smooth-max steps than this do not settle (budget cuts stop here).
POLISH = dict(restarts=1, temp_start=50.0, lr_start=0.003, lr_end=0.0003)
# A second random-start run that starts hot (the smooth max close to the true max from
# the first step): it escapes the basins the default schedule's cool start settles in,
# e.g. 13 points in 3-D reach 57.1357 degrees (optimum 57.1367) instead of 56.572.
# Up to 16 restarts within HOT_BUDGET (same units), none where one does not fit.
HOT = dict(temp_start=100.0, steps=3000)
HOT_BUDGET = 1e10
# In 3-D (the Tammes problem) the optimiser is cheap, and the basin is what matters:
# 64 more hot starts, short (up to 64 within TAMMES_BUDGET, same units), and every run's
# best restarts finished by `separation.polish_minimax` (exact minimax, float64): the 8
# best of the 64 (by max cos; in our measurements the best polished one was always among
# them) and the best of each other run. For C <= TAMMES_MAX_C (a polish is ~1 s at
# C = 200). Measured: within 0.01 degrees of every best-known packing for N = 15..100
# (the target is 0.05; docs/placement.md).
TAMMES = dict(temp_start=100.0, steps=1000, polish=8)
TAMMES_BUDGET = 1e11
TAMMES_MAX_C = 300
# Small N get more of these starts, up to 256 within TAMMES_SMALL_WORK (N <= 25): 13
# points reach the optimum from about 1 hot start in 20 (3 of 64 sampled), so 64 starts
# missed it for about 1 seed (or CPU) in 25; 253 starts, 1 in 10^5.
TAMMES_SMALL_WORK = 1.5e9


def _max_cos(protos: np.ndarray) -> float:
  return certify(protos)['max_cos']


def auto_placement(num_classes: int, dim: int, seed: int = 300,
                   **kwargs: Any) -> tuple[np.ndarray, str]:
  """`auto`'s placement and what it resolved to (e.g. 'kerdock', 'separation',
  'construction: 2 x kerdock(256)', 'construction: ... + separation').

  1. An exact optimum (`exact_method`) where one is known.
  2. Else these candidates, and the lowest max cos (float64) wins:
     - `separation` from random starts (kwargs pass to it). Its work is
       C^2 (d + PAIR_WORK) * restarts * steps; where that exceeds AUTO_BUDGET the
       steps are cut to fit (unless `steps` is given), to no fewer than MIN_STEPS; where
       even those exceed it, the run is left out if a construction exists. (A weak
       construction loses to it: at (1000, 50) Gold(31) + cross-polytope(19) has max cos
       0.2258, the cut run 0.1857.)
     - Without kwargs, a `HOT` run where one restart fits HOT_BUDGET.
     - In 3-D without kwargs (C <= TAMMES_MAX_C), a `TAMMES` run of up to 64 short hot
       starts (up to 256 for small C), and every run's best restarts polished to a
       minimax point (above).
     - The best algebraic construction that fits (`codes.best_construction`), if any,
     - and that construction polished (one restart from it, `POLISH` schedule).
     - The `triples` code where it has C points (max cos exactly 1/3): a ceiling that
       does not depend on the seed. At (100, 10) the random starts landed anywhere in
       0.331..0.338 over seeds 0..19 on an AMD EPYC (single restarts 0.331..0.343), so
       without it the seed decided whether a run got 0.331 or 0.338.
     Ties go to the random-start result, then to the construction unpolished, so cells
     without a useful construction keep their earlier placements exactly.
  3. At C >= separation.LARGE_C the construction is returned as it is where one exists
     (the optimiser does not improve these codes in the time budget; measured at
     C = 10,000, d = 128), else `separation_large`.
  """
  method = exact_method(num_classes, dim)
  if method is not None:
    return PLACEMENTS[method](num_classes, dim, seed), method
  built = codes.best_construction(num_classes, dim)
  code = built.build(num_classes) if built is not None else None
  if num_classes >= separation_lib.LARGE_C:
    if code is not None and not kwargs:
      return code, f'construction: {built.name}'
    return separation_lib.separation(num_classes, dim, seed, **kwargs), 'separation'
  restarts = kwargs.get('restarts', 4)
  steps = kwargs.get('steps', 10_000)
  cost = num_classes * num_classes * (dim + PAIR_WORK)
  results = []
  tammes = dim == 3 and num_classes <= TAMMES_MAX_C and not kwargs
  finish = dict(polish=1) if tammes else {}  # In 3-D each run's best restart is polished.
  if 'steps' not in kwargs:  # Steps the caller asks for are run as they are.
    steps = max(MIN_STEPS, min(steps, int(AUTO_BUDGET / (cost * restarts))))
  if code is None or cost * restarts * steps <= AUTO_BUDGET:
    fit = dict(kwargs, steps=steps, **finish)
    results.append((separation_lib.separation(num_classes, dim, seed, **fit),
                    'separation (polished)' if tammes else 'separation'))
    hot_restarts = min(16, int(HOT_BUDGET / (cost * HOT['steps'])))
    if not kwargs and hot_restarts >= 1:
      results.append((separation_lib.separation(num_classes, dim, seed, restarts=hot_restarts,
                                                **HOT, **finish),
                      'separation (hot start, polished)' if tammes
                      else 'separation (hot start)'))
    per_start = cost * TAMMES['steps']
    wide = max(min(64, int(TAMMES_BUDGET / per_start)),
               min(256, int(TAMMES_SMALL_WORK / per_start)))
    if tammes and wide >= 1:
      results.append((separation_lib.separation(num_classes, dim, seed, restarts=wide,
                                                **TAMMES),
                      f'separation ({wide} hot starts, polished)'))
  if code is not None:
    polish_steps = max(MIN_STEPS, min(steps, int(AUTO_BUDGET / (4 * cost))))
    polished = separation_lib.separation(num_classes, dim, seed, init=code,
                                         steps=polish_steps, **POLISH)
    results += [(code, f'construction: {built.name}'),
                (polished, f'construction: {built.name} + separation')]
  if -(-num_classes // 8) <= algebraic.triples_bound(dim):
    try:  # Max cos exactly 1/3, whatever the seed and the CPU: a ceiling on every run.
      results.append((algebraic.triples(num_classes, dim), 'triples'))
    except ValueError:  # The search found fewer triples than C points need.
      pass
  scores = [_max_cos(p) for p, _ in results]
  return results[int(np.argmin(scores))]


def _auto(num_classes: int, dim: int, seed: int, **kwargs) -> np.ndarray:
  return auto_placement(num_classes, dim, seed, **kwargs)[0]


PLACEMENTS: dict[str, Callable[..., np.ndarray]] = {
    'auto': _auto,
    'simplex': closed_form.simplex,
    'cross_polytope': closed_form.cross_polytope,
    'icosahedron': closed_form.icosahedron,
    'polygon': closed_form.polygon,
    'kerdock': kerdock_lib.kerdock_prototypes,
    'construction': codes.construct,
    'separation': separation_lib.separation,
    'hpn': hpn_lib.hpn,
    'busemann': hpn_lib.busemann,
    'hadamard': algebraic.hadamard,
    'gold': algebraic.gold,
    'triples': algebraic.triples,
    'one_hot': closed_form.one_hot,
    'etf': closed_form.etf,
    'maxsep': closed_form.maxsep,
    'ebv': separation_lib.ebv,
    'embedding': semantic_lib.embedding,
    'semantic': semantic_lib.semantic,
    'uniformity': uniformity_lib.uniformity,
}


# Placements whose points are distinct by construction: `place` skips the C^2 scan for
# duplicates (minutes at C = 100,000) for them.
DISTINCT_BY_CONSTRUCTION = frozenset({'simplex', 'cross_polytope', 'icosahedron', 'polygon',
                                      'kerdock', 'construction', 'hadamard', 'gold',
                                      'triples', 'one_hot'})


def place(method: str, num_classes: int, dim: int, seed: int = 300,
          **kwargs: Any) -> np.ndarray:
  """C x D unit vectors (float32) by `method`; see PLACEMENTS.

  Logs a warning (and `separation_metrics` counts them) where two prototypes coincide
  (cos > 1 - 1e-6): those classes cannot be told apart. Raises memory.NotEnoughMemory,
  before allocating anything, where the request cannot fit in the memory available.
  """
  memory.check(method, num_classes, dim, **kwargs)
  return _place_resolved(method, num_classes, dim, seed, **kwargs)[0]


def _place_resolved(method: str, num_classes: int, dim: int, seed: int,
                    **kwargs: Any) -> tuple[np.ndarray, str]:
  """`place` and what `method` resolved to (`auto_placement`'s name for 'auto')."""
  if method not in PLACEMENTS:
    raise ValueError(f'Unknown prototype placement {method!r}; use one of '
                     f'{sorted(PLACEMENTS)}.')
  if num_classes < 1 or dim < 1:
    raise ValueError(f'Need num_classes >= 1 and dim >= 1, got ({num_classes}, {dim}).')
  if method == 'auto':
    protos, resolved = auto_placement(num_classes, dim, seed, **kwargs)
  else:
    protos, resolved = PLACEMENTS[method](num_classes, dim, seed, **kwargs), method
  # Exact optima and codes are duplicate-free by construction: no C^2 scan for them.
  check = not (resolved in DISTINCT_BY_CONSTRUCTION or resolved.startswith('construction'))
  if np.shape(protos) != (num_classes, dim):
    raise AssertionError(f'{method} returned shape {np.shape(protos)}, not '
                         f'({num_classes}, {dim}).')
  protos = _unit_float32(protos)
  if num_classes > 1 and check:
    dups = duplicate_pairs(protos, limit=5)
    if dups:
      logging.warning(
          'Placement %r of %d classes in %d dims has duplicated prototypes (cos > 1 - '
          '1e-6), e.g. class pairs %s: those classes cannot be told apart. Use '
          'method="auto" or "separation", or raise dim.', method, num_classes, dim, dups)
  return protos, resolved


def _unit_float32(protos: np.ndarray, block_rows: int = 1 << 13) -> np.ndarray:
  """The rows as float32 unit vectors, converted in blocks of rows (no float64 copy of
  the whole array: the 1,050,624 x 1024 Kerdock code is 4.3 GB in float32).

  Rows already unit to float32 precision (1e-6) are kept as they are: the exact
  constructions choose float32-representable coordinates, which a renormalisation would
  round again. A float32 array whose rows are all unit is returned as it is.
  """
  def convert(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.where(np.abs(norms - 1.0) > 1e-6, rows / norms, rows).astype(np.float32)

  def unit(rows: np.ndarray) -> bool:  # Squared norms summed in float64, no copy.
    squares = np.einsum('ij,ij->i', rows, rows, dtype=np.float64)
    return not np.any(np.abs(np.sqrt(squares) - 1.0) > 1e-6)

  blocks = range(0, len(protos), block_rows)
  if isinstance(protos, np.ndarray) and protos.dtype == np.float32 and all(
      unit(protos[a:a + block_rows]) for a in blocks):
    return protos
  out = np.empty(np.shape(protos), np.float32)
  for a in blocks:
    out[a:a + block_rows] = convert(protos[a:a + block_rows])
  return out


@functools.lru_cache(maxsize=1)
def code_version() -> str:
  """A digest of the placement code (this package's .py files).

  Part of every cache key: a placement cached before the code changed (`auto` choosing
  differently, an optimiser fix) is placed again rather than reused. A run's own copy,
  `<workdir>/prototypes.npy`, is what resuming reads, so this never changes a run.
  """
  digest = hashlib.sha256()
  folder = os.path.dirname(os.path.abspath(__file__))
  for name in sorted(os.listdir(folder)):
    if name.endswith('.py'):
      with open(os.path.join(folder, name), 'rb') as f:
        digest.update(name.encode() + b'\0' + f.read())
  return digest.hexdigest()[:16]


def cache_key(method: str, num_classes: int, dim: int, seed: int,
              kwargs: dict[str, Any]) -> str:
  """A file-name-safe key for every argument (kwargs must be JSON-serialisable) and the
  code that places them (`code_version`)."""
  args = dict(method=method, num_classes=int(num_classes), dim=int(dim), seed=int(seed),
              kwargs=_jsonable(kwargs), code=code_version())
  digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:16]
  return f'{method}-{num_classes}c-{dim}d-seed{seed}-{digest}'


def _jsonable(kwargs: dict[str, Any]) -> dict[str, Any]:
  out = {}
  for k, v in sorted(kwargs.items()):
    if isinstance(v, np.ndarray):
      v = {'sha256': hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest(),
           'shape': list(v.shape)}
    elif isinstance(v, str) and v.endswith('.npy') and os.path.exists(v):
      with open(v, 'rb') as f:  # A file argument is keyed by its content.
        v = {'path': v, 'sha256': hashlib.sha256(f.read()).hexdigest()}
    elif isinstance(v, (list, tuple)):
      v = list(v)
    out[k] = v
  json.dumps(out)  # Raises TypeError on anything else: better than a wrong cache hit.
  return out


def place_with_metadata(method: str, num_classes: int, dim: int, seed: int = 300,
                        **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
  """`place`, timed, plus the metadata that `save` writes beside the array (memory
  checked first for both, as in `place`)."""
  memory.check(method, num_classes, dim, certify=True, **kwargs)
  start = time.perf_counter()
  protos, resolved = _place_resolved(method, num_classes, dim, seed, **kwargs)
  seconds = time.perf_counter() - start
  start = time.perf_counter()
  metrics = certify(protos)
  meta = dict(method=method, resolved_method=resolved, num_classes=int(num_classes),
              dim=int(dim), seed=int(seed), parameters=_jsonable(kwargs),
              code_version=code_version(),
              seconds=round(seconds, 3), metrics=metrics,
              metrics_seconds=round(time.perf_counter() - start, 3))
  return protos, meta


def cache_path(method: str, num_classes: int, dim: int, seed: int = 300,
               cache_dir: Optional[str] = None, **kwargs: Any) -> str:
  """Where `get_or_place` keeps this placement."""
  cache_dir = os.path.expanduser(cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
  return os.path.join(cache_dir, cache_key(method, num_classes, dim, seed, kwargs) + '.npy')


def get_or_place(method: str, num_classes: int, dim: int, seed: int = 300,
                 cache_dir: Optional[str] = None, **kwargs: Any) -> np.ndarray:
  """`place`, reusing `<cache_dir>/<cache_key>.npy` (+ .json) when it exists.

  cache_dir defaults to $HYPERPROTO_CACHE, else ~/.cache/hyperproto/prototypes. A
  corrupt cache entry raises (see `store.load`) rather than being silently replaced.
  """
  path = cache_path(method, num_classes, dim, seed, cache_dir, **kwargs)
  if os.path.exists(path):
    protos, _ = load(path)
    logging.info('Prototypes from the cache: %s', path)
    return protos
  protos, meta = place_with_metadata(method, num_classes, dim, seed, **kwargs)
  save(path, protos, meta)
  logging.info('Placed %s prototypes in %.1f s; cached at %s', method,
               meta['seconds'], path)
  return protos
