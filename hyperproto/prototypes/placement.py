"""The placements (PLACEMENTS) and `place`, which runs one and checks what it returns.

`place` is deterministic in its arguments; every method takes (num_classes, dim, seed,
**kwargs) and returns C x d unit rows.

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

from typing import Any, Callable

from absl import logging
import numpy as np

from hyperproto.prototypes import algebraic
from hyperproto.prototypes import auto as auto_lib
from hyperproto.prototypes import closed_form
from hyperproto.prototypes import codes
from hyperproto.prototypes import hpn as hpn_lib
from hyperproto.prototypes import memory
from hyperproto.prototypes import metrics
from hyperproto.prototypes import semantic as semantic_lib
from hyperproto.prototypes import separation as separation_lib
from hyperproto.prototypes import uniformity as uniformity_lib


PLACEMENTS: dict[str, Callable[..., np.ndarray]] = {
    'auto': auto_lib.auto,
    **auto_lib.EXACT,  # simplex, cross_polytope, icosahedron, polygon, kerdock.
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
  return place_resolved(method, num_classes, dim, seed, **kwargs)[0]


def place_resolved(method: str, num_classes: int, dim: int, seed: int = 300,
                   **kwargs: Any) -> tuple[np.ndarray, str]:
  """`place` without the memory check, and what `method` resolved to
  (`auto_placement`'s name for 'auto')."""
  if method not in PLACEMENTS:
    raise ValueError(f'Unknown prototype placement {method!r}; use one of '
                     f'{sorted(PLACEMENTS)}.')
  if num_classes < 1 or dim < 1:
    raise ValueError(f'Need num_classes >= 1 and dim >= 1, got ({num_classes}, {dim}).')
  if method == 'auto':
    protos, resolved = auto_lib.auto_placement(num_classes, dim, seed, **kwargs)
  else:
    protos, resolved = PLACEMENTS[method](num_classes, dim, seed, **kwargs), method
  # Exact optima and codes are duplicate-free by construction: no C^2 scan for them.
  check = not (resolved in DISTINCT_BY_CONSTRUCTION or resolved.startswith('construction'))
  if np.shape(protos) != (num_classes, dim):
    raise AssertionError(f'{method} returned shape {np.shape(protos)}, not '
                         f'({num_classes}, {dim}).')
  protos = _unit_float32(protos)
  if num_classes > 1 and check:
    dups = metrics.duplicate_pairs(protos, limit=5)
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
