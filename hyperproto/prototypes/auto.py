"""`auto`, the default placement: the exact optimum where one is known, else the best of
the optimiser's runs and the algebraic constructions, within a time budget.

`auto_placement` says what it chose; the budgets below, in units of optimiser work,
bound its time (docs/placement.md).
"""

from typing import Any, Callable, Optional

import numpy as np

from hyperproto.prototypes import algebraic
from hyperproto.prototypes import certificates
from hyperproto.prototypes import closed_form
from hyperproto.prototypes import codes
from hyperproto.prototypes import kerdock as kerdock_lib
from hyperproto.prototypes import separation as separation_lib


# The constructions that are optimal where `exact_method` names them.
EXACT: dict[str, Callable[..., np.ndarray]] = {
    'simplex': closed_form.simplex,
    'cross_polytope': closed_form.cross_polytope,
    'icosahedron': closed_form.icosahedron,
    'polygon': closed_form.polygon,
    'kerdock': kerdock_lib.kerdock_prototypes,
}


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
  return certificates.certify(protos)['max_cos']


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
    return EXACT[method](num_classes, dim, seed), method
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


def auto(num_classes: int, dim: int, seed: int = 300, **kwargs: Any) -> np.ndarray:
  """The `auto` placement: `auto_placement`'s array."""
  return auto_placement(num_classes, dim, seed, **kwargs)[0]
