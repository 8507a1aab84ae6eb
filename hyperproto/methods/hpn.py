"""`hpn`: Hyperspherical Prototype Networks (Mettes et al., NeurIPS 2019; reference code
psmmettes/hpn, `hpn_cifar.py` and `hpn_omniart.py`; /work/shared/reference/HPN.md).

Class part: C fixed prototypes on the sphere (placed before training: `auto`, the best
known separation, unless the config names another placement); the loss is
(1 - cos(z, p_y))^2 and the prediction the class of the largest cosine, so the scores
are the cosines (and the open-set score `max_cos`, their max).

Regression part: the fixed upper prototype p_u = e_0 (`protos['upper']`); the loss is
(r - cos(z, p_u))^2 with the target r mapped to [-1, 1], the prediction cos(z, p_u).

The original sums the loss over the batch (`config.loss_reduction='sum'`, our default);
the functions are in `hyperproto.losses`, checked against the PyTorch original in
docs/parity.md. HPN has no hyper-parameters of its own (the joint weight is the
task's, `config.joint_weight`).
"""

import jax
import jax.numpy as jnp

from hyperproto import losses
from hyperproto.methods import Method

Array = jax.Array


def loss(z_BxD: Array, protos, labels_B: Array) -> Array:
  """(1 - cos(z, p_y))^2 per example."""
  return losses.classification_per_example(z_BxD, protos['classes'], labels_B)


def scores(z_BxD: Array, protos) -> Array:
  """B x C cosines to the class prototypes."""
  return losses.cosine_matrix(z_BxD, protos['classes'])


def regression_loss(z_BxD: Array, protos, r_B: Array) -> Array:
  """(r - cos(z, p_u))^2 per example."""
  return losses.regression_per_example(z_BxD, protos['upper'], r_B)


def regress(z_BxD: Array, protos) -> Array:
  """cos(z, p_u), the prediction in [-1, 1]."""
  return losses.predict_unit_interval(z_BxD, protos['upper'])


def open_set(z_BxD: Array, scores_BxC: Array, protos) -> dict[str, Array]:
  """`max_cos`: the scores are the cosines."""
  del z_BxD, protos
  return {'max_cos': jnp.max(scores_BxC, axis=-1)}


METHOD = Method(
    name='hpn',
    paper='Mettes et al., NeurIPS 2019 (psmmettes/hpn)',
    placement='auto',
    loss=loss,
    scores=scores,
    regression_loss=regression_loss,
    regress=regress,
    open_set=open_set,
)
