"""`baseline` (`softmax`, `mse`, `multitask`): the baselines HPN is compared with in the
paper, on the same backbone, without prototypes.

Class part (`softmax`, Table 3): the output is C logits, trained with softmax
cross-entropy (with `config.label_smoothing` e against (1 - e) one-hot + e / C, PyTorch's
`label_smoothing`; 0 by default) and predicted by their argmax; the open-set scores are
`max_logit` and `msp` (the max softmax probability).

Regression part (`mse`, Table 4): one output against the target mapped to [-1, 1],
squared error; the prediction is that output clipped to [-1, 1] (the output is
unbounded; clipping to the known range only helps the baseline).

Joint (`multitask`, Table 5): both heads on one backbone, in HPN's joint layout: column 0
the regression output, columns 1..C the class logits.
"""

import jax
import jax.numpy as jnp

from hyperproto import losses
from hyperproto.methods import Method

Array = jax.Array


def loss(logits_BxC: Array, protos, labels_B: Array, *,
         label_smoothing: float = 0.0) -> Array:
  """Softmax cross-entropy per example."""
  del protos  # None: the baseline has no prototypes.
  return losses.cross_entropy_per_example(logits_BxC, labels_B, label_smoothing)


def scores(logits_BxC: Array, protos) -> Array:
  """The logits, B x C float32."""
  del protos
  return jnp.asarray(logits_BxC, jnp.float32)


def regression_loss(z_Bx1: Array, protos, r_B: Array) -> Array:
  """(z_0 - r)^2 per example."""
  del protos
  return losses.squared_error_per_example(z_Bx1[..., 0], r_B)


def regress(z_Bx1: Array, protos) -> Array:
  """The output clipped to [-1, 1]."""
  del protos
  return jnp.clip(z_Bx1[..., 0].astype(jnp.float32), -1.0, 1.0)


def open_set(logits_BxC: Array, scores_BxC: Array, protos) -> dict[str, Array]:
  """`max_logit` and `msp`: no prototypes, so no cosine."""
  del logits_BxC, protos
  return {'max_logit': jnp.max(scores_BxC, axis=-1),
          'msp': jnp.max(jax.nn.softmax(scores_BxC, axis=-1), axis=-1)}


def output_dim(task: str, num_classes: int, dim: int) -> int:
  """C logits, one regression output, or both (the joint layout); `dim` is unused."""
  del dim
  return {'classification': num_classes, 'regression': 1,
          'joint': num_classes + 1}[task]


METHOD = Method(
    name='baseline',
    paper='the softmax / MSE / multi-task baselines of Mettes et al., NeurIPS 2019',
    placement=None,
    loss=loss,
    scores=scores,
    regression_loss=regression_loss,
    regress=regress,
    open_set=open_set,
    output_dim=output_dim,
    defaults={'label_smoothing': 0.0},
)
