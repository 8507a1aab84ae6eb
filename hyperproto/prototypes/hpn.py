"""The original recipe of Mettes et al. (`prototypes.py` of github.com/psmmettes/hpn).

Random normal init, L2-normalised; loss = mean over rows i of max_{j != i} (cos_ij + 1);
SGD lr 0.1, momentum 0.9, renormalised after every step, 10,000 steps, seed 300, float32.
The original re-creates the optimiser every step, so its momentum never acts (plain SGD):
that is the default here; `keep_momentum=True` keeps the buffer (heavy-ball SGD).
The random init cannot match PyTorch's generator bit for bit; results agree within
run-to-run noise.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hyperproto.prototypes import closed_form


def _loss(protos_CxD: jax.Array) -> jax.Array:
  cos_CxC = protos_CxD @ protos_CxD.T
  # The original subtracts 2 * diag(product) so that the diagonal never is the maximum.
  cos_CxC = jnp.where(jnp.eye(cos_CxC.shape[0], dtype=bool), -2.0, cos_CxC + 1.0)
  return jnp.mean(jnp.max(cos_CxC, axis=1))


def _normalize(x: jax.Array) -> jax.Array:
  # F.normalize: x / max(|x|, 1e-12).
  return x / jnp.maximum(jnp.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@functools.partial(jax.jit, static_argnames=('steps', 'keep_momentum'))
def _optimize(init_CxD, *, steps, learning_rate, momentum, keep_momentum):
  grad_fn = jax.grad(_loss)

  def body(_, carry):
    protos, buf = carry
    g = grad_fn(protos)
    # torch.optim.SGD: buf = momentum * buf + g (buf = g on an optimiser's first step).
    buf = momentum * buf + g if keep_momentum else g
    return _normalize(protos - learning_rate * buf), buf

  protos, _ = jax.lax.fori_loop(
      0, steps, body, (_normalize(init_CxD), jnp.zeros_like(init_CxD)))
  return protos


def hpn(num_classes: int, dim: int, seed: int = 300, *, steps: int = 10_000,
        learning_rate: float = 0.1, momentum: float = 0.9,
        keep_momentum: bool = False) -> np.ndarray:
  """Prototypes by the original recipe (see the module docstring)."""
  if num_classes < 2 or dim < 1:
    raise ValueError(f'Need num_classes >= 2 and dim >= 1, got ({num_classes}, {dim}).')
  init = np.random.default_rng(seed).standard_normal((num_classes, dim))
  out = _optimize(jnp.asarray(init, jnp.float32), steps=int(steps),
                  learning_rate=float(learning_rate), momentum=float(momentum),
                  keep_momentum=bool(keep_momentum))
  return np.asarray(out, np.float64)


def busemann(num_classes: int, dim: int, seed: int = 300, **kwargs) -> np.ndarray:
  """The prototypes of Busemann learning's reference code (`prototype_learning.py` of
  MinaGhadimiAtigh/Hyperbolic-Busemann-Learning): this recipe (`hpn`; kwargs go there)
  for d > 2, and at d = 2 the C points evenly spaced on the circle (its
  `prototype_unify`, `closed_form.polygon`), where the recipe would leave duplicates.
  """
  if dim == 2:
    return closed_form.polygon(num_classes, 2)
  return hpn(num_classes, dim, seed, **kwargs)
