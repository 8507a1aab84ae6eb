"""The placement cache: `get_or_place` reuses `<cache_dir>/<cache_key>.npy` (+ .json).

The key covers every argument and `code_version`, a digest of the modules that decide a
placement's values (`PLACEMENT_MODULES`), so runs that share a (method, C, d, seed,
kwargs) share one placement, and a change to the placement code places it again.
`place_with_metadata` is what a cache entry (and the CLI's `--output`) holds: the
array, and how it was made and what it reaches (the `.json`).
"""

import functools
import hashlib
import json
import os
import time
from typing import Any, Optional, Sequence

from absl import logging
import numpy as np

from hyperproto.prototypes import certificates
from hyperproto.prototypes import memory
from hyperproto.prototypes import placement
from hyperproto.prototypes import store

CACHE_ENV = 'HYPERPROTO_CACHE'
DEFAULT_CACHE = os.path.join('~', '.cache', 'hyperproto', 'prototypes')


# The modules whose code decides a placement's values, and the certificate `save` keeps
# beside it: `place` and every module it runs (tests/placement_test.py checks that each
# module these import is listed here or in NOT_PLACEMENT_CODE). Their digest is
# `code_version`. Editing any other module (plot.py, the CLI, this cache, store.py,
# memory's estimates) keeps every cached placement.
PLACEMENT_MODULES = ('algebraic', 'auto', 'bounds', 'certificates', 'closed_form', 'codes',
                     'hpn', 'kerdock', 'placement', 'semantic', 'separation', 'text_embed',
                     'uniformity', 'walsh')
# Modules that `place` imports but that never change its result: `memory` only raises
# before anything is placed, `metrics` only warns about duplicates.
NOT_PLACEMENT_CODE = ('memory', 'metrics')


def code_digest(folder: str, modules: Sequence[str] = PLACEMENT_MODULES) -> str:
  """A digest of `modules`' source files (`<folder>/<module>.py`)."""
  digest = hashlib.sha256()
  for name in sorted(f'{module}.py' for module in modules):
    with open(os.path.join(folder, name), 'rb') as f:
      digest.update(name.encode() + b'\0' + f.read())
  return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
  """A digest of the placement code (`PLACEMENT_MODULES` of this package).

  Part of every cache key: a placement cached before the code changed (`auto` choosing
  differently, an optimiser fix) is placed again rather than reused. A run's own copy,
  `<workdir>/prototypes.npy`, is what resuming reads, so this never changes a run.
  """
  return code_digest(os.path.dirname(os.path.abspath(__file__)))


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
  protos, resolved = placement.place_resolved(method, num_classes, dim, seed, **kwargs)
  seconds = time.perf_counter() - start
  start = time.perf_counter()
  metrics = certificates.certify(protos)
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
    protos, _ = store.load(path)
    logging.info('Prototypes from the cache: %s', path)
    return protos
  protos, meta = place_with_metadata(method, num_classes, dim, seed, **kwargs)
  store.save(path, protos, meta)
  logging.info('Placed %s prototypes in %.1f s; cached at %s', method,
               meta['seconds'], path)
  return protos
