"""Hyperbolic Busemann learning with ideal prototypes (Ghadimi Atigh et al., NeurIPS 2021).

Reference code: MinaGhadimiAtigh/Hyperbolic-Busemann-Learning (`HBL.py`,
`helper/hyperbolicLoss.py`, `helper/pmath.py`, `models/cifar/resnet.py`,
`prototype_learning.py`). Followed exactly:

  * The class prototypes p_c are ideal points: unit vectors, i.e. on the boundary of
    the Poincaré ball (curvature 1).
  * The network output u is mapped into the ball by the exponential map at 0,
    `pmath.expmap0`: z = tanh(min(|u|, 15)) u / max(|u|, 1e-5). The code's tanh has no
    1/2 (its docstring and the paper write tanh(sqrt(c)/2 |u|)); we follow the code.
  * Loss (`PeBusePenalty`), the penalised Busemann loss of z against its class p_y:

        l(z, p_y) = 2 log |p_y - z| - (1 + phi) log(1 - |z|^2 + 1e-6) + phi log 2,

    phi = `mult` x dim (`--penalty dim --mult 0.1`, the script's defaults). The code
    averages over the batch; here the objective reduces (`config.loss_reduction`:
    'mean' for their recipe, 'sum' is our default).
  * Prototypes (`prototype_learning.py`) are HPN's for d > 2: SGD on the mean row-max
    cosine, seed 300, lr 0.1, momentum 0.9 with the optimiser re-created every step; at
    d = 2 the C points evenly spaced on the circle (`prototype_unify`), where that SGD
    would leave duplicates. Hence the default placement 'busemann' (`prototypes.hpn.
    busemann`): our port of the recipe ('hpn'; it runs 10,000 steps, their script 1,000:
    `prototypes.kwargs.steps=1000` for the exact count), and their circle at d = 2.

Prediction, where paper and code differ: the paper predicts the class of the smallest
Busemann distance b_c(z) = log(|p_c - z|^2 / (1 - |z|^2)) (`buse_distance_array`); the
training script predicts by the cosine between u and p_c (`ResNet.predict`). For unit
prototypes |p_c - z|^2 = 1 + |z|^2 - 2 p_c.z, so both give the same argmax; `scores` is
-b_c(z) (with the code's 1e-6 in the denominator), whose max is the open-set score.

Gradients: |u| and |p - z| go through `losses.safe_norm`, so an all-zero output (z = 0)
and an output at the boundary (tanh saturates to 1 in float32, |z|^2 = 1, and the 1e-6
keeps the log finite) both give finite gradients.
"""

import jax
import jax.numpy as jnp

from hyperproto import losses
from hyperproto.methods import Method

Array = jax.Array

TANH_CLAMP = 15.0  # pmath.tanh(x, clamp=15)
MIN_NORM = 1e-5    # pmath._expmap0: clamp_min(|u|, 1e-5)
BALL_EPS = 1e-6    # 1 - |z|^2 + 1e-6 in PeBusePenalty and buse_distance_array


def expmap0(u_BxD: Array) -> Array:
  """The exponential map at the origin of the Poincaré ball (curvature 1), as
  `pmath.expmap0`: tanh(clip(|u|, -15, 15)) u / max(|u|, 1e-5); float32."""
  u_BxD = jnp.asarray(u_BxD, jnp.float32)
  norm_Bx1 = jnp.maximum(losses.safe_norm(u_BxD), MIN_NORM)[:, None]
  return jnp.tanh(jnp.clip(norm_Bx1, -TANH_CLAMP, TANH_CLAMP)) * u_BxD / norm_Bx1


def penalty(num_dims: int, mult: float) -> float:
  """phi = mult * dim (`PeBusePenalty(penalty_option='dim')`)."""
  return float(mult) * num_dims


def loss(u_BxD: Array, protos, labels_B: Array, *, mult: float = 0.1) -> Array:
  """The penalised Busemann loss per example (see the module docstring)."""
  z_BxD = expmap0(u_BxD)
  p_BxD = jnp.asarray(protos['classes'], jnp.float32)[labels_B]
  phi = penalty(z_BxD.shape[-1], mult)
  difference_log_B = 2.0 * jnp.log(losses.safe_norm(p_BxD - z_BxD))
  proto_log_B = (1.0 + phi) * jnp.log(1.0 - jnp.sum(z_BxD * z_BxD, axis=-1) + BALL_EPS)
  return difference_log_B - proto_log_B + phi * jnp.log(2.0)


def busemann_distances(u_BxD: Array, protos_CxD: Array) -> Array:
  """B x C Busemann distances log(|p_c - z|^2 / (1 - |z|^2 + 1e-6)) of z = expmap0(u)
  to every ideal prototype (`buse_distance_array`)."""
  z_BxD = expmap0(u_BxD)
  protos_CxD = jnp.asarray(protos_CxD, jnp.float32)
  sq_BxC = jnp.sum(jnp.square(protos_CxD[None, :, :] - z_BxD[:, None, :]), axis=-1)
  denom_Bx1 = 1.0 - jnp.sum(z_BxD * z_BxD, axis=-1, keepdims=True) + BALL_EPS
  return jnp.log(sq_BxC / denom_Bx1)


def scores(u_BxD: Array, protos) -> Array:
  """Minus the Busemann distance to each class prototype (argmax = the smallest; the
  penalty `mult` does not enter)."""
  return -busemann_distances(u_BxD, protos['classes'])


METHOD = Method(
    name='busemann',
    paper='Ghadimi Atigh et al., NeurIPS 2021 (MinaGhadimiAtigh/Hyperbolic-Busemann-'
          'Learning)',
    placement='busemann',
    loss=loss,
    scores=scores,
    defaults={'mult': 0.1},
)
