"""Exact constructions: the known optima of the Tammes problem where they are known.

Each returns float64 rows that stay exact (or first-order exact) when the caller casts
them to float32: the regular simplex for C <= d + 1, the cross-polytope for
d + 1 < C <= 2d, the icosahedron for 12 points in 3-D, the regular polygon at d = 2,
and the one-hot baseline. `optimal_lines` gives the known optimal line packings (the
least max |cos|, EBV's criterion).
"""

from typing import Optional

import numpy as np


def simplex(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
  """The regular simplex: C unit vectors with every pairwise cosine -1/(C-1).

  Optimal for C <= d + 1 (any d >= C - 1). The C centred basis vectors of R^C span a
  (C-1)-dim subspace; their coordinates in an orthonormal basis of it, padded with zeros,
  give the points in R^d. Deterministic; `seed` is unused (no randomness needed).
  """
  del seed
  if num_classes < 1:
    raise ValueError(f'num_classes must be >= 1, got {num_classes}.')
  if dim < num_classes - 1:
    raise ValueError(
        f'A regular simplex of {num_classes} points needs dim >= {num_classes - 1}, got '
        f'dim={dim}. Use method="auto" (optimises the placement when C > d + 1) or '
        f'raise dim.')
  if num_classes == 1:
    return np.eye(1, dim, dtype=np.float64)
  if num_classes <= dim:
    # The centred basis vectors e_i - 1/C themselves: every row holds the same two
    # values, so float32 rounding keeps the configuration exactly equiangular (the max
    # cosine moves only to second order, ~1e-14, instead of ~1e-8 after a rotation).
    points = np.zeros((num_classes, dim))
    points[:, :num_classes] = np.eye(num_classes) - 1.0 / num_classes
    return points / np.linalg.norm(points, axis=1, keepdims=True)
  centred = np.eye(num_classes) - 1.0 / num_classes
  u, s, _ = np.linalg.svd(centred)
  coords = u[:, :num_classes - 1] * s[:num_classes - 1]
  points = np.zeros((num_classes, dim))
  points[:, :num_classes - 1] = coords
  return points / np.linalg.norm(points, axis=1, keepdims=True)


def cross_polytope(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
  """C of the 2d points +-e_i: max cos exactly 0, optimal for d + 1 < C <= 2d (Rankin).

  Takes e_1..e_d first, then -e_1, -e_2, ..., so no two chosen points are antipodal
  before they must be. Coordinates are 0 and +-1, exact in float32. `seed` is unused.
  """
  del seed
  if num_classes > 2 * dim:
    raise ValueError(
        f'A cross-polytope in dim={dim} has only {2 * dim} points, got num_classes='
        f'{num_classes}. Use dim >= {-(-num_classes // 2)} or method="separation".')
  eye = np.eye(dim)
  return np.concatenate([eye, -eye])[:num_classes]


def icosahedron(num_classes: int = 12, dim: int = 3, seed: int = 0) -> np.ndarray:
  """The 12 vertices of the regular icosahedron: max cos 1/sqrt(5), optimal for 12 in 3-D.

  Vertices are the cyclic permutations of (0, +-a, +-b) with b/a = golden ratio. All
  rows share the two magnitudes a and b, so we pick the float32 pair (a, b) whose ratio
  is closest to the golden ratio: the stored float32 points then have max cos within
  ~1e-10 of 1/sqrt(5) (a naive rounding is off by ~1e-8). Padded with zeros for dim > 3.
  `seed` is unused.
  """
  del seed
  if num_classes != 12 or dim < 3:
    raise ValueError(f'The icosahedron is 12 points in dim >= 3, got ({num_classes}, '
                     f'{dim}). Use method="auto" for other sizes.')
  a, b = _best_float32_pair((1 + np.sqrt(5.0)) / 2)
  rows = []
  for sa in (a, -a):
    for sb in (b, -b):
      v = (0.0, sa, sb)
      for shift in range(3):
        rows.append(np.roll(v, shift))
  points = np.zeros((12, dim))
  points[:, :3] = rows
  return points


def _best_float32_pair(ratio: float) -> tuple[float, float]:
  """Float32 (a, b), a^2 + b^2 = 1 to 5e-7, with b / a as close to `ratio` as possible."""
  a0 = np.float32(1.0 / np.sqrt(1.0 + ratio ** 2))
  a = (a0 + np.arange(-256, 257) * np.spacing(a0)).astype(np.float32)
  b0 = (a.astype(np.float64) * ratio).astype(np.float32)
  a = np.repeat(a, 5)
  b = (np.repeat(b0, 5) + np.tile(np.arange(-2, 3), len(b0)) * np.spacing(b0[0]))
  a64, b64 = a.astype(np.float64), b.astype(np.float32).astype(np.float64)
  err = np.abs(b64 / a64 - ratio)
  err[np.abs(a64 ** 2 + b64 ** 2 - 1.0) > 5e-7] = np.inf
  i = int(np.argmin(err))
  return float(a64[i]), float(b64[i])


def one_hot(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
  """The identity: the one-hot baseline of the paper's Table 1 (needs dim == C)."""
  del seed
  if dim != num_classes:
    raise ValueError(f'one_hot prototypes need dim == num_classes, got dim={dim}, '
                     f'num_classes={num_classes}. Set dim={num_classes}.')
  return np.eye(num_classes)


def etf(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
  """The simplex equiangular tight frame of Yang et al. (NeurIPS 2022), randomly rotated.

  The reference code (NeuralCollapseApplications/ImbalancedLearning,
  models/resnet_cifar.py, `ETF_Classifier`) builds the d x C classifier

    M = sqrt(C / (C - 1)) P (I_C - 1 1^T / C),

  with P (d x C, orthonormal columns) the Q factor of the QR decomposition of a d x C
  matrix of uniform [0, 1) entries (`np.random.random`; here numpy's `default_rng(seed)`).
  The columns of M are unit vectors with every pairwise cosine -1/(C-1), so
  M^T M = C/(C-1) I - 1/(C-1) 1 1^T. We return M^T (C x d rows).

  That QR needs d >= C (the code asserts P^T P = I_C). The paper only needs d >= C - 1:
  for d = C - 1 we take P = Q B^T, with B (C x (C-1)) an orthonormal basis of the
  complement of 1 and Q (d x (C-1)) the random rotation, which gives the same M^T M.
  """
  if num_classes < 2:
    raise ValueError(f'An ETF needs num_classes >= 2, got {num_classes}.')
  if dim < num_classes - 1:
    raise ValueError(
        f'A simplex ETF of {num_classes} classes needs dim >= {num_classes - 1} (the '
        f'reference code: dim >= {num_classes}), got dim={dim}. Raise dim, or use '
        f'method="auto" / "separation" for C > d + 1.')
  rng = np.random.default_rng(seed)
  centring = np.eye(num_classes) - np.ones((num_classes, num_classes)) / num_classes
  if dim >= num_classes:  # The reference code's construction.
    p, _ = np.linalg.qr(rng.random((dim, num_classes)))
  else:  # d = C - 1: rotate an orthonormal basis of 1-perp into R^d.
    q, _ = np.linalg.qr(rng.random((dim, num_classes - 1)))
    u, _, _ = np.linalg.svd(centring)
    p = q @ u[:, :num_classes - 1].T
  m = np.sqrt(num_classes / (num_classes - 1)) * p @ centring
  return m.T


def maxsep_matrix(num_classes: int) -> np.ndarray:
  """The (C-1) x C closed-form matrix of maximum separation (Kasarla et al., NeurIPS 2022).

  The recursion of the reference code (tkasarla/max-separation-as-inductive-bias,
  create_max_separated_matrix.py, `V`), written as a loop (theirs recurses, C <~ 10^4):

    V_1 = [1, -1],  V_k = [[1, -1/k 1^T], [0, sqrt(1 - 1/k^2) V_{k-1}]]  (k x (k+1)).

  Its C columns are unit vectors with every pairwise cosine -1/(C-1).
  """
  if num_classes < 2:
    raise ValueError(f'The max-separation matrix needs num_classes >= 2, got '
                     f'{num_classes}.')
  v = np.array([[1.0, -1.0]])
  for order in range(2, num_classes):
    col1 = np.zeros((order, 1))
    col1[0] = 1
    row1 = -1 / order * np.ones((1, order))
    v = np.concatenate((col1, np.concatenate((row1, np.sqrt(1 - 1 / (order**2)) * v),
                                             axis=0)), axis=1)
  return v


def maxsep(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
  """The max-separation matrix's columns as C x (C-1) prototypes (`create_prototypes`).

  Kasarla et al. apply it to a (C-1)-d output, so dim must be C - 1. Deterministic;
  `seed` is unused.
  """
  del seed
  if dim != num_classes - 1:
    raise ValueError(f'The max-separation matrix of {num_classes} classes lives in '
                     f'dim = C - 1 = {num_classes - 1}, got dim={dim}. Set '
                     f'dim={num_classes - 1}.')
  return maxsep_matrix(num_classes).T


def polygon(num_classes: int, dim: int = 2, seed: int = 0) -> np.ndarray:
  """The regular C-gon in the plane: max cos exactly cos(2 pi / C), optimal at d = 2.

  Row k is (cos 2 pi k / C, sin 2 pi k / C), as `prototype_unify` in Busemann learning's
  reference code (prototype_learning.py), which places its prototypes so at d = 2.
  `seed` is unused.
  """
  del seed
  if dim != 2:
    raise ValueError(f'The regular polygon lives in dim=2, got dim={dim}. Use '
                     f'method="auto" for dim > 2.')
  angles = 2 * np.pi * np.arange(num_classes) / num_classes
  return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def optimal_lines(num_classes: int, dim: int) -> Optional[np.ndarray]:
  """C unit vectors with the least possible max |cos| where the optimum is known (the
  lines through them are an optimal line packing), else None.

    * d = 2: C lines at angle pi / C apart, max |cos| = cos(pi / C);
    * C <= d: orthonormal vectors, max |cos| = 0;
    * C = d + 1: the regular simplex, |cos| = 1/d, Welch's bound (tight);
    * (6, 3): the icosahedron's six axes, |cos| = 1/sqrt(5), Welch's bound (tight).

  Welch's bound: max |cos| >= sqrt((C - d) / (d (C - 1))) for C > d.
  """
  if dim == 2:
    angles = np.pi * np.arange(num_classes) / num_classes
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)
  if num_classes <= dim:
    return np.eye(num_classes, dim)
  if num_classes == dim + 1:
    return simplex(num_classes, dim)
  if (num_classes, dim) == (6, 3):
    # One vertex of each antipodal pair: the first six rows hold no antipodes.
    return icosahedron(12, 3)[:6]
  return None
