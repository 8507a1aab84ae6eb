"""Maximally separated prototypes: a strong optimiser of the Tammes problem on S^(d-1).

The objective is the max pairwise cosine, which is non-smooth: only the closest pair gets
a gradient, which is why the original recipe (a mean of row maxima, plain SGD) stalls. We
minimise a smooth maximum instead, (1/t) log sum_{i != j} exp(t cos_ij), whose gradient
spreads over all nearly-closest pairs, and raise the temperature t geometrically from
`temp_start` to `temp_end` so the smooth maximum approaches the true one as the
configuration settles. Steps are Riemannian Adam: the Euclidean gradient is projected
onto each point's tangent plane, Adam scales it, and the rows are renormalised.

`restarts` independent starts run together (vmap) in one compiled loop; every step
measures the exact max cosine of every restart (the Gram matrix is already there) and
keeps each restart's best iterate, and the best of those, re-measured in float64 on the
host, is returned. A Riesz-energy phase (repulsion sum 1/|p_i - p_j|^s, s = d + 1) may
warm-start the points: it spreads them evenly before the minimax phase.

With `criterion='max_abs_cos'` the objective is the max |cos| instead (the smooth max
runs over the |cos_ij|): antipodal and near-antipodal pairs then count as close, which
is what the Equiangular Basis Vectors of Shen et al. (CVPR 2023) ask of C vectors in d
dims (`ebv`). The Riesz phase then spreads the lines through the points (each pair
repels both p_j and -p_j).

At d = 2 the problem is solved: `separation` returns the regular C-gon (C lines pi / C
apart for max |cos|), whatever the seed.

Everything is float32 inside (cosines to ~1e-7, far below the 1e-3 target tolerances);
the caller measures the result in float64.

The smooth maximum stops short of the true minimax point (at temperature t its minimiser
leaves the nearly-closest pairs ~1/t apart in cosine: up to 0.04 degrees short of the
best-known packings of N <= 100 points in 3-D). `polish_minimax` finishes the job
exactly, in float64: sequential linear programming on the max cosine (or max |cos|)
itself (`polish=k` in `separation` polishes the k best restarts; `auto` does so in 3-D,
`ebv` where C (d - 1) <= EBV_POLISH_VARS).
"""

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize as scipy_optimize
from scipy import sparse

from hyperproto.prototypes import closed_form


LARGE_C = 4096  # From here on `separation` runs `separation_large` (no C x C Gram).


def _algebraic_start(num_classes: int, dim: int) -> Optional[np.ndarray]:
  """The Gold code as a warm start where it fits (dim >= 7, enough points), else None."""
  from hyperproto.prototypes import algebraic  # pylint: disable=g-import-not-at-top
  try:
    return algebraic.gold(num_classes, dim)
  except ValueError:
    return None


def _normalize(x: jax.Array) -> jax.Array:
  return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


CRITERIA = ('max_cos', 'max_abs_cos')


def _masked_cos(p_CxD: jax.Array, absolute: bool = False) -> jax.Array:
  cos = p_CxD @ p_CxD.T
  if absolute:
    cos = jnp.abs(cos)
  return jnp.where(jnp.eye(cos.shape[0], dtype=bool), -2.0, cos)


def _smooth_max(p_CxD: jax.Array, temp: jax.Array,
                absolute: bool = False) -> tuple[jax.Array, jax.Array]:
  """(1/t) logsumexp(t cos) over ordered pairs, and the exact max cosine (aux); of |cos|
  with `absolute`."""
  cos = _masked_cos(p_CxD, absolute)
  exact = jnp.max(cos)
  # Subtract the max before exponentiating: t * cos reaches 1e4 at the end.
  lse = exact + jnp.log(jnp.sum(jnp.exp(temp * (cos - exact)))) / temp
  return lse, jax.lax.stop_gradient(exact)


def _riesz(p_CxD: jax.Array, s: float, absolute: bool = False) -> jax.Array:
  """log of the Riesz s-energy sum_{i != j} |p_i - p_j|^-s (log keeps it O(1)).

  With `absolute`, the energy of the lines through the points: each pair counts both
  |p_i - p_j| and |p_i + p_j|, so it spreads lines, not points. (The energy of the
  points alone puts 6 points in 3-D on the octahedron, whose three antipodal pairs are
  a stationary point of max |cos|: the gradient of |cos| vanishes there, and whether a
  run leaves it depended on the seed and on the CPU's rounding.)
  """
  c = p_CxD.shape[0]
  # Diagonal cosines set to 0: |p_i -+ p_i|^2 reads 2 there, a constant taken off below.
  cos = jnp.where(jnp.eye(c, dtype=bool), 0.0, p_CxD @ p_CxD.T)
  signs = (1.0, -1.0) if absolute else (1.0,)
  energy = sum(jnp.sum(jnp.maximum(2.0 - 2.0 * sign * cos, 1e-12) ** (-s / 2))
               for sign in signs) - len(signs) * c * 2.0 ** (-s / 2)
  return jnp.log(energy)


def _tangent(g: jax.Array, p: jax.Array) -> jax.Array:
  return g - jnp.sum(g * p, axis=-1, keepdims=True) * p


ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-12


def _riemannian_adam(p, g, m, v, t, lr):
  """One Riemannian Adam step on the rows of p (unit vectors).

  The Euclidean gradient g is projected onto each row's tangent plane, Adam scales it
  (moments m, v; bias correction at step count t, counted from 1), the rows are
  renormalised (the retraction), and the first moment is projected onto the new tangent
  planes so it keeps pointing along the sphere. Both optimisers here (`_optimize` and
  the large-C `_neighbour_steps`) take this step.

  Not optax.adam: with the same projections around it (and its first moment edited in
  its state) it rounds differently, e.g. it scales by lr after the division. 148 of
  150 coordinates differed, by up to 2e-6, after 500 steps at C = 30, d = 5 (AMD EPYC),
  and every placement made so far would change in its last bits.

  Returns:
    (p, m, v) after the step.
  """
  g = _tangent(g, p)
  m = ADAM_B1 * m + (1 - ADAM_B1) * g
  v = ADAM_B2 * v + (1 - ADAM_B2) * g * g
  mhat = m / (1 - ADAM_B1 ** t)
  vhat = v / (1 - ADAM_B2 ** t)
  p = _normalize(p - lr * mhat / (jnp.sqrt(vhat) + ADAM_EPS))
  return p, _tangent(m, p), v


def _adam_steps(grad_fn, p, m, v, *, num_steps, lr, step0=0):
  """`num_steps` Riemannian Adam steps on `grad_fn(p)` at a fixed lr, the first of them
  step step0 + 1 (its bias correction); returns (p, m, v)."""
  def body(i, carry):
    p, m, v = carry
    return _riemannian_adam(p, grad_fn(p), m, v, step0 + i + 1.0, lr)

  return jax.lax.fori_loop(0, num_steps, body, (p, m, v))


def pi_loss(p_CxD: jax.Array, triplets_Tx3: jax.Array, labels_T: jax.Array) -> jax.Array:
  """The paper's privileged-information loss L_PI (binary cross-entropy over triplets).

  For a triplet (i, j, k), S = sigmoid(cos(p_i, p_j) - cos(p_i, p_k)) and the label is 1
  when class j is semantically closer to i than k is.
  """
  i, j, k = triplets_Tx3[:, 0], triplets_Tx3[:, 1], triplets_Tx3[:, 2]
  logits = jnp.sum(p_CxD[i] * (p_CxD[j] - p_CxD[k]), axis=-1)
  return jnp.mean(jnp.logaddexp(0.0, logits) - labels_T * logits)  # BCE with logits.


@functools.partial(jax.jit, static_argnames=('steps', 'riesz_steps', 'absolute'))
def _optimize(init_RxCxD, *, steps, riesz_steps, lr_start, lr_end, temp_start, temp_end,
              riesz_lr, riesz_s, triplets=None, labels=None, pi_weight=0.0,
              absolute=False):
  """Runs every restart; returns (best iterate, its max cos) per restart.

  With `triplets`, the objective adds pi_weight * L_PI, and the best iterate is the
  last one (keeping the min-max iterate would ignore the semantic term).
  """
  semantic = triplets is not None

  def objective(p, temp):
    value, exact = _smooth_max(p, temp, absolute)
    if semantic:
      value = value + pi_weight * pi_loss(p, triplets, labels)
    return value, exact

  def one_restart(p):
    p = _normalize(p)
    zeros = jnp.zeros_like(p)

    # Phase 1 (optional): spread the points by Riesz energy.
    riesz_grad = lambda q: jax.grad(_riesz)(q, riesz_s, absolute)
    p, _, _ = _adam_steps(riesz_grad, p, zeros, zeros, num_steps=riesz_steps,
                          lr=riesz_lr)

    # Phase 2: annealed smooth max. lr decays and t grows geometrically.
    grad_fn = jax.grad(objective, has_aux=True)

    def body(i, carry):
      p, m, v, best_p, best = carry
      frac = i / max(steps - 1, 1)
      temp = temp_start * (temp_end / temp_start) ** frac
      lr = lr_start * (lr_end / lr_start) ** frac
      g, exact = grad_fn(p, temp)
      # `exact` is the max cos of p before this step: keep p if it is the best so far.
      better = (exact < best) | semantic
      best_p = jnp.where(better, p, best_p)
      best = jnp.where(better, exact, best)
      p, m, v = _riemannian_adam(p, g, m, v, i + 1.0, lr)
      return p, m, v, best_p, best

    p, _, _, best_p, best = jax.lax.fori_loop(
        0, steps, body, (p, zeros, zeros, p, jnp.asarray(jnp.inf, p.dtype)))
    last = jnp.max(_masked_cos(p, absolute))
    better = (last < best) | semantic
    return jnp.where(better, p, best_p), jnp.where(better, last, best)

  return jax.vmap(one_restart)(init_RxCxD)


def separation(num_classes: int, dim: int, seed: int = 300, *, steps: int = 10_000,
               restarts: int = 4, lr_start: float = 0.01, lr_end: float = 0.0005,
               temp_start: float = 1.0, temp_end: float = 10_000.0,
               riesz_steps: int = 0, riesz_lr: float = 0.01,
               init: Optional[np.ndarray] = None, triplets: Optional[np.ndarray] = None,
               labels: Optional[np.ndarray] = None,
               pi_weight: float = 0.0, criterion: str = 'max_cos',
               polish: int = 0) -> np.ndarray:
  """Best of `restarts` annealed smooth-max runs (see the module docstring).

  Args:
    num_classes: C.
    dim: d.
    seed: seeds the random starts (numpy's default_rng).
    steps: smooth-max steps per restart.
    restarts: independent starts, run together.
    lr_start, lr_end: Adam learning rate, decayed geometrically.
    temp_start, temp_end: smooth-max temperature, raised geometrically.
    riesz_steps: Riesz-energy warm-up steps before the smooth max (0: none).
    riesz_lr: Adam learning rate of the warm-up.
    init: a C x d warm start used as the first restart (e.g. an algebraic code); the
      other restarts stay random.
    triplets, labels, pi_weight: T x 3 class indices (i, j, k), their 0/1 labels, and
      the weight of L_PI (see `pi_loss`; used by the `semantic` method).
    criterion: 'max_cos' (the Tammes problem) or 'max_abs_cos' (minimise the max |cos|:
      no antipodal pairs; the EBV criterion). Large C (>= LARGE_C) supports 'max_cos'
      only.
    polish: finish the `polish` best restarts (by the criterion) with `polish_minimax`
      and return the best of those (0: none). Needs no L_PI.

  Returns:
    C x d float64 unit rows; at d = 2 (without L_PI) the optimum itself, the regular
    C-gon (`closed_form.polygon`; for max |cos|, `closed_form.optimal_lines`).
  """
  if num_classes < 2 or dim < 1:
    raise ValueError(f'Need num_classes >= 2 and dim >= 1, got ({num_classes}, {dim}).')
  if criterion not in CRITERIA:
    raise ValueError(f'Unknown separation criterion {criterion!r}; use one of '
                     f'{CRITERIA}.')
  absolute = criterion == 'max_abs_cos'
  if dim == 2 and triplets is None:
    # The plane is solved: the regular C-gon (for lines, C lines pi / C apart).
    return (closed_form.optimal_lines(num_classes, 2) if absolute
            else closed_form.polygon(num_classes, 2))
  if absolute and num_classes >= LARGE_C:
    raise ValueError(f"criterion='max_abs_cos' holds the C x C Gram matrix; it supports "
                     f'C < {LARGE_C}, got C={num_classes}.')
  if num_classes >= LARGE_C and init is None and triplets is None:
    return separation_large(num_classes, dim, seed, init=_algebraic_start(num_classes, dim))
  if steps < 1 or restarts < 1:
    raise ValueError(f'Need steps >= 1 and restarts >= 1, got {steps}, {restarts}.')
  if polish and triplets is not None:
    raise ValueError('polish finishes the separation alone: it needs no triplets (L_PI). '
                     'Set polish=0.')
  starts = np.random.default_rng(seed).standard_normal((restarts, num_classes, dim))
  if init is not None:
    init = np.asarray(init, np.float64)
    if init.shape != (num_classes, dim):
      raise ValueError(f'init has shape {init.shape}; expected ({num_classes}, {dim}).')
    starts[0] = init
  out, _ = _optimize(jnp.asarray(starts, jnp.float32), steps=int(steps),
                     riesz_steps=int(riesz_steps), lr_start=float(lr_start),
                     lr_end=float(lr_end), temp_start=float(temp_start),
                     temp_end=float(temp_end), riesz_lr=float(riesz_lr),
                     riesz_s=float(dim + 1),
                     triplets=None if triplets is None else jnp.asarray(triplets, jnp.int32),
                     labels=None if labels is None else jnp.asarray(labels, jnp.float32),
                     pi_weight=float(pi_weight), absolute=absolute)
  out = np.asarray(out, np.float64)
  out /= np.linalg.norm(out, axis=-1, keepdims=True)
  # Pick the best restart by the exact max cosine in float64 (with L_PI too: every
  # restart made the same trade of separation for semantics).
  scores = [_max_cos64(p, absolute) for p in out]
  if polish:
    out = np.stack([polish_minimax(out[r], absolute=absolute)
                    for r in np.argsort(scores)[:polish]])
    scores = [_max_cos64(p, absolute) for p in out]
  return out[int(np.argmin(scores))]


def _max_cos64(p: np.ndarray, absolute: bool = False) -> float:
  cos = p @ p.T
  if absolute:
    cos = np.abs(cos)
  np.fill_diagonal(cos, -np.inf)
  return float(cos.max())


def polish_minimax(protos_CxD: np.ndarray, *, iterations: int = 100, radius: float = 0.01,
                   tol: float = 1e-15, absolute: bool = False) -> np.ndarray:
  """Lowers the max cosine to a local minimax point: sequential linear programming.

  Each iteration moves every point p_i by B_i a_i in its tangent plane (B_i: an
  orthonormal basis of it, a_i in [-r, r]^(d-1)) and solves the linear program

    minimise s  subject to  cos_ij + (B_i^T p_j) . a_i + (B_j^T p_i) . a_j <= s

  over the pairs that can reach the max within the trust radius r (cos_ij >= max -
  4 r sqrt(d - 1)), then renormalises the rows. A step is kept only if the exact max
  cosine (float64) goes down; the radius doubles after a step that achieves half the
  predicted decrease and shrinks 4x after a rejected one. It stops when the linear model
  predicts less than `tol`, after `iterations` programs, or once r < 1e-12. Where the
  smooth maximum has found the right basin this reaches the best-known packing to
  ~1e-10 in cosine (24 points in 3-D: the snub cube's 43.6907671 degrees from 43.6893).

  With `absolute` it lowers the max |cos| (lines): each near pair's constraint is on
  sign(cos_ij) cos_ij, the side of the line pair that is close.

  Cost per iteration: the C x C Gram matrix and a sparse program with C (d - 1) + 1
  variables (HiGHS); ~40 iterations, 0.1 s at C = 24 and 0.8 s at C = 200 in 3-D.

  Returns:
    C x d float64 unit rows whose max cosine is never above the input's.
  """
  p = np.asarray(protos_CxD, np.float64)
  p = p / np.linalg.norm(p, axis=1, keepdims=True)
  c, d = p.shape
  k = d - 1
  pair_i, pair_j = np.triu_indices(c, 1)
  best = _max_cos64(p, absolute)
  objective = np.zeros(c * k + 1)
  objective[-1] = 1.0  # Minimise s, the last variable.
  for _ in range(iterations):
    if radius < 1e-12:
      break
    # Columns 1..d-1 of the QR of [p_i | I] span p_i's tangent plane.
    frame = np.concatenate([p[:, :, None], np.broadcast_to(np.eye(d), (c, d, d))], axis=2)
    basis_CxDxK = np.linalg.qr(frame)[0][:, :, 1:]
    cos = (p @ p.T)[pair_i, pair_j]
    sign = np.where(cos < 0, -1.0, 1.0) if absolute else np.ones_like(cos)
    cos = sign * cos  # The quantity whose max is lowered: cos, or |cos| for lines.
    near = cos >= best - 4 * radius * np.sqrt(k) - 1e-12
    i, j, cos, sign = pair_i[near], pair_j[near], cos[near], sign[near, None]
    m = len(i)
    grad_i = sign * np.einsum('nd,ndk->nk', p[j], basis_CxDxK[i])  # d cos_ij / d a_i.
    grad_j = sign * np.einsum('nd,ndk->nk', p[i], basis_CxDxK[j])
    cols = np.concatenate([i[:, None] * k + np.arange(k), j[:, None] * k + np.arange(k),
                           np.full((m, 1), c * k)], axis=1)
    vals = np.concatenate([grad_i, grad_j, -np.ones((m, 1))], axis=1)
    rows = np.repeat(np.arange(m), 2 * k + 1)
    a_ub = sparse.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=(m, c * k + 1))
    bounds = np.tile([-radius, radius], (c * k + 1, 1))
    bounds[-1] = (-np.inf, np.inf)
    res = scipy_optimize.linprog(objective, A_ub=a_ub, b_ub=-cos, bounds=bounds,
                                 method='highs')
    if res.status != 0:
      radius /= 4
      continue
    predicted = best - res.x[-1]
    if predicted <= tol:
      break
    q = p + np.einsum('ndk,nk->nd', basis_CxDxK, res.x[:-1].reshape(c, k))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    new = _max_cos64(q, absolute)
    if new < best:
      if best - new >= predicted / 2:
        radius = min(2 * radius, 0.1)
      p, best = q, new
    else:
      radius /= 4
  return p


@functools.partial(jax.jit, static_argnames=('max_steps',))
def _ebv_hinge(p_CxD, threshold, lr, max_steps):
  """Generate_EBV.py's loop: SGD on sum relu(|cos_ij| - tau), renormalising every step,
  until max |cos| <= tau + 1e-4. Returns (p, its max |cos| floored at tau, steps)."""
  eye = jnp.eye(p_CxD.shape[0], dtype=p_CxD.dtype)

  def loss(p):
    m = jnp.abs(p @ p.T) - eye
    return jnp.sum(jax.nn.relu(m - threshold)), jnp.maximum(threshold, jnp.max(m))

  def cond(carry):
    i, _, mx = carry
    return (i < max_steps) & (mx > threshold + 1e-4)

  def body(carry):
    i, p, _ = carry
    g, _ = jax.grad(loss, has_aux=True)(p)
    p = _normalize(p - lr * g)
    return i + 1, p, loss(p)[1]

  p = _normalize(p_CxD)
  return jax.lax.while_loop(cond, body, (0, p, loss(p)[1]))


def ebv_reference(num_classes: int, dim: int, seed: int = 300, *, threshold: float,
                  lr: float = 1e-3, max_steps: int = 100_000) -> np.ndarray:
  """The EBV generator of the reference code (Generate_EBV/Generate_EBV.py), in JAX.

  Random normal start (theirs: torch.randn, seed 42; here numpy's default_rng(seed)),
  then plain SGD (lr 1e-3) on sum_{i != j} relu(|cos_ij| - threshold) with the rows
  renormalised before every step, stopping once max |cos| <= threshold + 1e-4 (at most
  `max_steps` steps, theirs 1e5). Their script saves nothing when it does not get there;
  we raise.
  """
  if num_classes < 2 or dim < 1:
    raise ValueError(f'Need num_classes >= 2 and dim >= 1, got ({num_classes}, {dim}).')
  start = np.random.default_rng(seed).standard_normal((num_classes, dim))
  steps, p, reached = _ebv_hinge(jnp.asarray(start, jnp.float32), jnp.float32(threshold),
                                 jnp.float32(lr), int(max_steps))
  if float(reached) > threshold + 1e-4:
    raise ValueError(
        f'The EBV generator did not reach max |cos| <= {threshold} + 1e-4 for C='
        f'{num_classes}, d={dim} in {int(steps)} steps (max |cos| {float(reached):.4f}). '
        f'Raise threshold or max_steps, or use method="ebv" without a threshold (it '
        f'minimises max |cos| directly).')
  return np.asarray(p, np.float64)


# EBV's optimiser (`ebv` without a threshold, where no optimal line packing is known):
# the smooth max of |cos| after a Riesz warm-up of the lines (`EBV`). Where the exact
# polish is cheap (C (d - 1) <= EBV_POLISH_VARS variables) the runs are shorter and
# more (`EBV_SMALL`), and the two best restarts are finished by `polish_minimax` on
# max |cos|: at 12 lines in R^3, 64 of 64 such restarts polish to the best known packing
# (0.7445208), against 49 of 64 after the default 10,000 steps (4 restarts of those, with
# a Riesz warm-up of points, left seeds 0, 1 and 4 at 0.752, 0.763 and 0.752 on an AMD
# EPYC).
EBV = dict(riesz_steps=1000)
EBV_SMALL = dict(riesz_steps=1000, steps=2500, restarts=8, polish=2)
EBV_POLISH_VARS = 100


def ebv_defaults(num_classes: int, dim: int) -> dict:
  """`separation` arguments of EBV's optimiser for (C, d) (see EBV above)."""
  return dict(EBV_SMALL if num_classes * (dim - 1) <= EBV_POLISH_VARS else EBV)


def ebv(num_classes: int, dim: int, seed: int = 300, *, threshold: Optional[float] = None,
        **kwargs) -> np.ndarray:
  """Equiangular Basis Vectors (Shen et al., CVPR 2023): C unit vectors in d dims with
  max |cos| as small as we can make it (any d, also d < C).

  Their generator (aassxun/Equiangular-Basis-Vectors, Generate_EBV/Generate_EBV.py) runs
  SGD (lr 1e-3, up to 1e5 steps) on sum_{i != j} relu(|cos_ij| - tau) for a threshold
  tau chosen beforehand, renormalising every step, and stops once max |cos| <=
  tau + 1e-4. We minimise the max |cos| itself instead: no tau to guess, and the tau it
  reaches is the smallest we find (`separation_metrics(...)['max_abs_cos']` reports it).

  Where the optimal line packing is known (`closed_form.optimal_lines`: d = 2, C <= d + 1,
  6 lines in R^3) it is returned, whatever the seed. Elsewhere `separation(criterion=
  'max_abs_cos')` runs with `ebv_defaults` (a Riesz warm-up of the lines; more, shorter
  restarts and the exact polish where the polish is cheap); `kwargs` override them. Across seeds 0..19 the
  optimiser reaches 12 lines in R^3 at 0.7445208 (41.882 degrees, the best known; Conway,
  Hardin and Sloane 1996) every time, and 6 lines in R^3 at 1/sqrt(5) without the
  construction (tests/placement_test.py, EverySeedTest); C = 100 in d = 10 landed at
  0.4647..0.4657 on an AMD EPYC (Welch's lower bound: 0.3015;
  experiments/results/placement_seeds.md).

  With a `threshold` tau, runs their generator instead (`ebv_reference`; `kwargs` then
  go there: lr, max_steps).
  """
  if threshold is not None:
    return ebv_reference(num_classes, dim, seed, threshold=threshold, **kwargs)
  exact = closed_form.optimal_lines(num_classes, dim)
  if exact is not None:
    return exact
  kwargs = {**ebv_defaults(num_classes, dim), **kwargs}
  return separation(num_classes, dim, seed, criterion='max_abs_cos', **kwargs)


# Large C: neighbour lists instead of the full Gram matrix.
#
# At C = 10,000 one Gram matrix is 10^8 cosines (0.4 GB in float32) and a smooth-max step
# over all pairs costs ~10^11 flops. Only each point's nearest neighbours matter to the
# max, so every `refresh` steps we find each row's `neighbours` nearest rows in blocks of
# `block_rows` (never holding more than block_rows x C cosines), then take `refresh`
# cheap steps on the smooth max over those C x k pairs only. Each refresh also measures
# the exact max cosine (the nearest neighbour's), which picks the best iterate.


@functools.partial(jax.jit, static_argnames=('k', 'block_rows'))
def nearest_neighbours(p_CxD: jax.Array, *, k: int, block_rows: int = 512):
  """Each row's k largest cosines to other rows and their indices, blocked (C x k)."""
  blocks_NxBxD, starts_N = _row_blocks(p_CxD, block_rows)
  return _unblock(_blocked_top_k(blocks_NxBxD, starts_N, p_CxD, k), len(p_CxD))


def _row_blocks(p_CxD: jax.Array, block_rows: int, num_shares: int = 1):
  """p's rows zero-padded to whole blocks, their number a multiple of `num_shares`:
  (N x block_rows x D blocks, the N indices of their first rows)."""
  c, d = p_CxD.shape
  num_blocks = -(-c // block_rows)
  num_blocks = -(-num_blocks // num_shares) * num_shares
  padded = jnp.zeros((num_blocks * block_rows, d), p_CxD.dtype).at[:c].set(p_CxD)
  return padded.reshape(num_blocks, block_rows, d), jnp.arange(num_blocks) * block_rows


def _blocked_top_k(blocks_NxBxD: jax.Array, starts_N: jax.Array, p_CxD: jax.Array,
                   k: int) -> tuple[jax.Array, jax.Array]:
  """The search itself, one block at a time: each block row's k largest cosines to the
  rows of p_CxD other than itself (N x B x k), and their indices. Never more than
  B x C cosines at once."""
  c, block_rows = p_CxD.shape[0], blocks_NxBxD.shape[1]

  def block(args):
    rows, start = args
    cos = rows @ p_CxD.T
    own = start + jnp.arange(block_rows)
    cos = jnp.where(own[:, None] == jnp.arange(c)[None], -2.0, cos)
    return tuple(jax.lax.top_k(cos, k))

  return jax.lax.map(block, (blocks_NxBxD, starts_N))


def _unblock(found: tuple[jax.Array, jax.Array], c: int):
  """`_blocked_top_k`'s (values, indices) as C x k arrays (the padding rows dropped)."""
  return tuple(x.reshape(-1, x.shape[-1])[:c] for x in found)


def nearest_neighbours_sharded(p_CxD: jax.Array, *, k: int, block_rows: int = 512,
                               devices=None):
  """`nearest_neighbours` with the row blocks split over `devices` (default: local ones).

  Each device searches its share of the blocks against all C rows (replicated), with
  the same per-block computation as `nearest_neighbours` (`_blocked_top_k`), so the
  results are the same on 1 and on n devices. Memory per device: block_rows x C cosines
  at a time.
  """
  devices = tuple(devices if devices is not None else jax.local_devices())
  p_CxD = jnp.asarray(p_CxD)
  blocks_NxBxD, starts_N = _row_blocks(p_CxD, block_rows, num_shares=len(devices))
  search = _sharded_search(devices, k)
  return _unblock(search(blocks_NxBxD, starts_N, p_CxD), len(p_CxD))


@functools.lru_cache(maxsize=16)
def _sharded_search(devices: tuple, k: int):
  """`_blocked_top_k`, jitted and shard_mapped over `devices` (one compile per shape)."""
  mesh = jax.sharding.Mesh(np.array(devices), ('blocks',))
  spec = jax.sharding.PartitionSpec
  return jax.jit(jax.shard_map(
      functools.partial(_blocked_top_k, k=k), mesh=mesh,
      in_specs=(spec('blocks'), spec('blocks'), spec()),
      out_specs=(spec('blocks'), spec('blocks'))))


def _neighbour_smooth_max(p_CxD, nbrs_CxK, temp):
  cos = jnp.sum(p_CxD[:, None, :] * p_CxD[nbrs_CxK], axis=-1)
  top = jax.lax.stop_gradient(jnp.max(cos))
  return top + jnp.log(jnp.sum(jnp.exp(temp * (cos - top)))) / temp


@functools.partial(jax.jit, static_argnames=('refresh',), donate_argnums=(0, 1, 2))
def _neighbour_steps(p, m, v, nbrs, step0, *, refresh, lr, temp):
  """`refresh` Riemannian Adam steps on the smooth max over the pairs in `nbrs`, the
  first of them step step0 + 1 of the run."""
  grad_fn = lambda q: jax.grad(_neighbour_smooth_max)(q, nbrs, temp)
  return _adam_steps(grad_fn, p, m, v, num_steps=refresh, lr=lr, step0=step0)


def separation_large(num_classes: int, dim: int, seed: int = 300, *,
                     init: Optional[np.ndarray] = None, rounds: int = 40,
                     refresh: int = 25, neighbours: int = 16, lr_start: float = 0.003,
                     lr_end: float = 0.0003, temp_start: float = 50.0,
                     temp_end: float = 2000.0, block_rows: int = 512,
                     log_every: int = 0, devices=None) -> np.ndarray:
  """Annealed smooth max over nearest-neighbour pairs, for large C (see above).

  Args:
    num_classes: C.
    dim: d.
    seed: seeds the random start (used when `init` is None).
    init: a C x d warm start (e.g. `algebraic.gold`); random normal if None.
    rounds: neighbour-list refreshes.
    refresh: Adam steps per neighbour list.
    neighbours: k nearest neighbours per row in the smooth max.
    lr_start, lr_end, temp_start, temp_end: geometric schedules over the rounds.
    block_rows: rows per block of the neighbour search.
    log_every: log the exact max cos every this many rounds (0: never).
    devices: the neighbour search's row blocks are split over these (default: this
      process's devices; `nearest_neighbours_sharded`): the same result on 1 and on n
      devices.

  Returns:
    C x d float64 unit rows: the iterate with the lowest exact max cosine seen.
  """
  if init is None:
    init = np.random.default_rng(seed).standard_normal((num_classes, dim))
  init = np.asarray(init, np.float64)
  if init.shape != (num_classes, dim):
    raise ValueError(f'init has shape {init.shape}; expected ({num_classes}, {dim}).')
  k = min(neighbours, num_classes - 1)
  p = _normalize(jnp.asarray(init, jnp.float32))
  m = jnp.zeros_like(p)
  v = jnp.zeros_like(p)
  best, best_p = np.inf, np.asarray(p)
  for r in range(rounds + 1):
    values, nbrs = nearest_neighbours_sharded(p, k=k, block_rows=block_rows,
                                              devices=devices)
    exact = float(jnp.max(values[:, 0]))
    if exact < best:
      best, best_p = exact, np.asarray(p)
    if log_every and r % log_every == 0:
      from absl import logging  # pylint: disable=g-import-not-at-top
      logging.info('separation_large round %d: max cos %.5f (best %.5f)', r, exact, best)
    if r == rounds:
      break
    frac = r / max(rounds - 1, 1)
    p, m, v = _neighbour_steps(
        p, m, v, nbrs, jnp.float32(r * refresh), refresh=int(refresh),
        lr=jnp.float32(lr_start * (lr_end / lr_start) ** frac),
        temp=jnp.float32(temp_start * (temp_end / temp_start) ** frac))
  out = np.asarray(best_p, np.float64)
  return out / np.linalg.norm(out, axis=1, keepdims=True)
