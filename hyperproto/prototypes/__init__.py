"""Class prototypes on the unit sphere, placed before training.

Prototypes are data, not parameters: `place` is deterministic in its arguments, the
trainer saves the result in the workdir and passes it to the steps as a constant input,
so it is never trained and never weight-decayed. `get_or_place` adds a cache keyed by
every argument, so runs that share a (method, C, d, seed, kwargs) share one placement.

This file only re-exports the public API. Where things live:
  placement.py    PLACEMENTS (every method, listed there), `place`
  auto.py         `auto`, the default: `auto_placement`, `exact_method`, its budgets
  cache.py        `get_or_place`, `cache_key`, `code_version` (PLACEMENT_MODULES)
  store.py        `save` / `load`: the `.npy` and its `.json`
  certificates.py, bounds.py, metrics.py   what a placement reaches, and the bounds
  separation.py, codes.py, kerdock.py, ... the placements themselves
"""

# pylint: disable=unused-import
from hyperproto.prototypes.auto import AUTO_BUDGET
from hyperproto.prototypes.auto import auto_placement
from hyperproto.prototypes.auto import exact_method
from hyperproto.prototypes.auto import HOT
from hyperproto.prototypes.auto import HOT_BUDGET
from hyperproto.prototypes.auto import MIN_STEPS
from hyperproto.prototypes.auto import PAIR_WORK
from hyperproto.prototypes.auto import POLISH
from hyperproto.prototypes.auto import TAMMES
from hyperproto.prototypes.auto import TAMMES_BUDGET
from hyperproto.prototypes.auto import TAMMES_MAX_C
from hyperproto.prototypes.auto import TAMMES_SMALL_WORK
from hyperproto.prototypes.bounds import best_bound
from hyperproto.prototypes.bounds import levenshtein_bound
from hyperproto.prototypes.bounds import lower_bound
from hyperproto.prototypes.cache import CACHE_ENV
from hyperproto.prototypes.cache import cache_key
from hyperproto.prototypes.cache import cache_path
from hyperproto.prototypes.cache import code_version
from hyperproto.prototypes.cache import DEFAULT_CACHE
from hyperproto.prototypes.cache import get_or_place
from hyperproto.prototypes.cache import place_with_metadata
from hyperproto.prototypes.certificates import certificate
from hyperproto.prototypes.certificates import certify
from hyperproto.prototypes.metrics import duplicate_pairs
from hyperproto.prototypes.metrics import max_cos
from hyperproto.prototypes.metrics import separation_metrics
from hyperproto.prototypes.placement import DISTINCT_BY_CONSTRUCTION
from hyperproto.prototypes.placement import place
from hyperproto.prototypes.placement import PLACEMENTS
from hyperproto.prototypes.store import load
from hyperproto.prototypes.store import save
