"""Lower bounds on the max pairwise cosine of C points on S^(d-1).

Any placement of C unit vectors in R^d has max cos >= bound(C, d). Three bounds apply:

  simplex    C <= d + 1: -1/(C-1), reached by the regular simplex (Rankin).
  rankin     d + 1 < C <= 2d: 0, reached by the cross-polytope (Rankin).
  levenshtein  any C: the smallest s with L(d, s) >= C, where L is Levenshtein's
               universal bound on the size of a spherical code with inner products <= s
               (Levenshtein 1979/1992). It reproduces the two above at C <= 2d and is the
               best known closed-form-polynomial bound beyond.

L(d, s) is computed from its Delsarte linear-programming certificate rather than from a
printed closed form: for degree 2k-1 the Levenshtein polynomial is
f(t) = (t - s) K_{k-1}(t, s)^2 with K the Christoffel-Darboux kernel of the Jacobi
weight (1-t)^(a+1) (1+t)^a, a = (d-3)/2; for degree 2k, f(t) = (t + 1)(t - s)
K_{k-1}(t, s)^2 with weight (1-t^2)^(a+1). Any f <= 0 on [-1, s] whose Gegenbauer
coefficients are all >= 0 proves C <= f(1) / f_0 (Delsarte, Goethals, Seidel 1977); we
check the coefficients numerically (Gauss-Jacobi quadrature, exact for these degrees)
and take the best certificate over degrees. Where s is in the degree's Levenshtein
interval this equals L(d, s). Bisection on s then gives the bound on the max cosine.
"""

import functools
import math
from typing import Optional

import numpy as np
from scipy import special

_MAX_K = 24  # Polynomial degrees up to 2 * _MAX_K (enough for C up to ~1e6 at d <= 256).


def simplex_bound(num_classes: int, dim: int) -> Optional[float]:
  """-1/(C-1) where C <= d + 1 (exact), else None."""
  if num_classes < 2 or num_classes > dim + 1:
    return None
  return -1.0 / (num_classes - 1)


def rankin_bound(num_classes: int, dim: int) -> Optional[float]:
  """0 where d + 1 < C <= 2d (exact: the cross-polytope reaches it), else None."""
  if dim + 1 < num_classes <= 2 * dim:
    return 0.0
  return None


@functools.lru_cache(maxsize=64)
def _tables(dim: int):
  """Quadrature nodes/weights and polynomial values there, for one dimension."""
  a = (dim - 3) / 2.0
  num_nodes = 2 * _MAX_K + 4  # Exact for the products below (degree <= 4 _MAX_K + 2).
  nodes, weights = special.roots_jacobi(num_nodes, a, a)  # Weight (1-t^2)^a.
  degrees = np.arange(2 * _MAX_K + 1)
  geg = special.eval_jacobi(degrees[:, None], a, a, nodes[None])  # G_i(t), N x nodes.
  geg_norm = (geg ** 2) @ weights
  geg_at_1 = special.eval_jacobi(degrees, a, a, 1.0)
  jac = {}
  for name, (alpha, beta) in (('odd', (a + 1, a)), ('even', (a + 1, a + 1))):
    # Norms h_i of the adjacent Jacobi polynomials, by their own quadrature.
    q_nodes, q_weights = special.roots_jacobi(_MAX_K + 2, alpha, beta)
    h = (special.eval_jacobi(degrees[:_MAX_K, None], alpha, beta, q_nodes[None]) ** 2
         ) @ q_weights
    at_nodes = special.eval_jacobi(degrees[:_MAX_K, None], alpha, beta, nodes[None])
    at_1 = special.eval_jacobi(degrees[:_MAX_K], alpha, beta, 1.0)
    jac[name] = (alpha, beta, h, at_nodes, at_1)
  return nodes, weights, geg, geg_norm, geg_at_1, jac


def levenshtein_size(dim: int, s: float) -> float:
  """Levenshtein's upper bound on the size of a code in S^(dim-1) with cos <= s."""
  if dim < 2:
    raise ValueError(f'The Levenshtein bound needs dim >= 2, got {dim}.')
  if s >= 1.0:
    return math.inf
  if s < -1.0:
    return 1.0
  nodes, weights, geg, geg_norm, geg_at_1, jac = _tables(dim)
  best = math.inf
  for name, (alpha, beta, h, at_nodes, at_1) in jac.items():
    at_s = special.eval_jacobi(np.arange(_MAX_K), alpha, beta, s)
    # Kernels K_k(t, s) = sum_{i<k} P_i(t) P_i(s) / h_i for every k at once (rows).
    terms = at_s[:, None] / h[:, None]
    kernel_nodes = np.cumsum(terms * at_nodes, axis=0)  # k-1 = 0.. _MAX_K-1.
    kernel_1 = np.cumsum(terms[:, 0] * at_1)
    factor_nodes = (nodes - s) * ((nodes + 1) if name == 'even' else 1.0)
    factor_1 = (1 - s) * (2.0 if name == 'even' else 1.0)
    values = factor_nodes[None] * kernel_nodes ** 2  # f_k at the nodes.
    f_at_1 = factor_1 * kernel_1 ** 2
    # Coefficients in the basis G_i / G_i(1): f_i = <f, G_i> G_i(1) / <G_i, G_i>.
    coeffs = ((values * weights) @ geg.T) / geg_norm * geg_at_1  # k x degree.
    for k in range(1, _MAX_K + 1):
      degree = 2 * k if name == 'even' else 2 * k - 1
      c = coeffs[k - 1, :degree + 1]
      if c[0] > 0 and np.all(c >= -1e-9 * np.abs(c).max()):
        best = min(best, float(f_at_1[k - 1] / c[0]))
  return best


@functools.lru_cache(maxsize=4096)
def levenshtein_bound(num_classes: int, dim: int) -> Optional[float]:
  """The smallest max cosine Levenshtein's bound allows for C points in R^d."""
  if num_classes < 2:
    return None
  if dim == 1:
    return -1.0 if num_classes == 2 else 1.0
  lo, hi = -1.0, 1.0 - 1e-12
  if levenshtein_size(dim, hi) < num_classes:
    return None  # Beyond the degrees we try; no bound reported.
  for _ in range(60):  # Bisection to ~1e-15.
    mid = 0.5 * (lo + hi)
    if levenshtein_size(dim, mid) >= num_classes:
      hi = mid
    else:
      lo = mid
  return lo  # L(lo) < C: every placement has max cos > lo.


def lower_bound(num_classes: int, dim: int) -> Optional[float]:
  """The best of the bounds above (None for C < 2)."""
  return best_bound(num_classes, dim)[0]


def best_bound(num_classes: int, dim: int) -> tuple[Optional[float], Optional[str]]:
  """(value, name) of the strongest applicable bound; exact ones win ties."""
  for name, fn in (('simplex', simplex_bound), ('rankin', rankin_bound)):
    value = fn(num_classes, dim)
    if value is not None:
      return value, name
  value = levenshtein_bound(num_classes, dim)
  return (value, 'levenshtein') if value is not None else (None, None)
