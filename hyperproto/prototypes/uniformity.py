"""DL2PA's prototype estimation (`Prototype_Estimation.py` of msed-Ebrahimi/DL2PA_CVPR24).

Wang & Isola's uniformity loss on the unit sphere, log mean_{i<j} exp(-t |p_i - p_j|^2)
with t = 2, minimised by plain SGD (lr 0.1, no momentum) on the unnormalised vectors w,
normalised in the loss. Each epoch visits the classes in a random order in batches of
`batch_size` (their DataLoader, shuffle=True, the last batch smaller); with C <= 100 (their
default batch) every step sees all classes. Init: uniform(-1, 1) columns scaled to unit
norm (`renorm_(2, 1, 1e-5).mul_(1e5)`). Epochs: the script's `--num_epoch` defaults to
100, its README's command passes 1,000 (our default); no config of theirs names a count.
The random init and order cannot match PyTorch's generator bit for bit.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hyperproto.prototypes import closed_form


def uniform_loss(w_BxD: jax.Array, t: float = 2.0) -> jax.Array:
  """log mean_{i<j} exp(-t |p_i - p_j|^2) of the normalised rows p of `w`."""
  p_BxD = w_BxD / jnp.linalg.norm(w_BxD, axis=1, keepdims=True)
  sq_BxB = jnp.sum(jnp.square(p_BxD[:, None, :] - p_BxD[None, :, :]), axis=-1)
  upper = np.triu(np.ones(sq_BxB.shape, bool), k=1)  # torch.pdist's pairs i < j
  return jnp.log(jnp.sum(jnp.where(upper, jnp.exp(-t * sq_BxB), 0.0)) / upper.sum())


@functools.partial(jax.jit, static_argnames=('t',))
def _step(w_CxD, idx_B, learning_rate, t):
  grad = jax.grad(lambda w: uniform_loss(w[idx_B], t))(w_CxD)
  return w_CxD - learning_rate * grad


def uniformity(num_classes: int, dim: int, seed: int = 0, *, epochs: int = 1000,
               batch_size: int = 100, learning_rate: float = 0.1,
               t: float = 2.0) -> np.ndarray:
  """C x D unit prototypes by DL2PA's recipe (see the module docstring)."""
  if num_classes < 2 or dim < 1:
    raise ValueError(f'Need num_classes >= 2 and dim >= 1, got ({num_classes}, {dim}).')
  if dim == 2:
    # The regular C-gon minimises the loss on the circle (it minimises every completely
    # monotone potential of |p_i - p_j|^2, exp(-t r^2) included: Cohn and Kumar 2007),
    # which is where the SGD goes; we return it exactly.
    return closed_form.polygon(num_classes, 2)
  rng = np.random.default_rng(seed)
  w = rng.uniform(-1.0, 1.0, (num_classes, dim))
  w = jnp.asarray(w / np.linalg.norm(w, axis=1, keepdims=True), jnp.float32)
  for _ in range(int(epochs)):
    order = (rng.permutation(num_classes) if num_classes > batch_size
             else np.arange(num_classes))  # One full batch: the order does not matter.
    for start in range(0, num_classes, batch_size):
      if num_classes - start < 2:
        continue  # A lone class has no pair (torch.pdist's mean would be NaN).
      w = _step(w, jnp.asarray(order[start:start + batch_size]), learning_rate, float(t))
  w = np.asarray(w, np.float64)
  return w / np.linalg.norm(w, axis=1, keepdims=True)
