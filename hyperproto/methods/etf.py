"""`etf`: a fixed simplex-ETF classifier with the dot-regression loss.

Yang et al., "Inducing Neural Collapse in Imbalanced Learning: Do We Really Need a
Learnable Classifier at the End of Deep Neural Network?", NeurIPS 2022; reference code
NeuralCollapseApplications/ImbalancedLearning (cited by file below).

Features: h = z / max(|z|, 1e-8) (`ETF_Classifier.forward`, models/resnet_cifar.py).
The classifier M (d x C) is the randomly rotated simplex ETF; its columns are our unit
prototypes (placement `etf`, `prototypes.closed_form.etf`).

Loss (`loss='dr'`, the dot-regression loss as coded in methods.py `dot_loss`, criterion
'reg_dot_loss', called from train.py):

  L_i = 1/2 (h_i . w_{y_i} - |w_{y_i}| |h_i|)^2 / |h_i|,

with |h_i| and |w_{y_i}| held constant (computed under `torch.no_grad`). With
`given_ew=True` (their default, utils/logger.py `GivenEw = True`) the target column is
scaled per batch, w_c = E_c m_c with E_c = sqrt(gamma / n_c), n_c the count of class c
in the batch, gamma = B / (number of classes present), E_c = 1 for absent classes
(methods.py `produce_Ew`). `loss='ce'` is their "ETF classifier + CE loss" branch: softmax
cross-entropy of the logits h M (no temperature, no E).

Prediction: argmax_c h . m_c (train.py `validate`: output = feat @ ori_M); the scores
are these cosines.

Where we differ from the code, and why:
  * Their classifier has a BatchNorm1d on the backbone features before the
    normalisation (`BN_H`); ours is the model's head (a Dense layer) instead: methods
    here only see the network's output z.
  * E is computed from the labels of the global batch (summed over devices, as their
    one GPU sees it) and, since the loss does not know train from eval, also in the
    evaluation loss (theirs evaluates with E = 1); predictions never use E.
  * Their `reg_lam` term (a multiple of mean |h|, constant 1 for normalised features)
    is left out. Mixup (their configs' `mixup: True`, alpha 1) is the data section's
    `data.mixup_alpha`; the step then trains lambda L(y) + (1 - lambda) L(y') with E
    from the batch's labels, as their `train` (`config_lib.PAPER_RECIPES['etf']`).
  * d >= C - 1 (the paper); the code's construction needs d >= C (see the placement).
"""

import jax
import jax.numpy as jnp
import optax

from hyperproto import losses
from hyperproto import parallel
from hyperproto.methods import Method

Array = jax.Array

LOSSES = ('dr', 'ce')
FEATURE_EPS = 1e-8  # torch.clamp(|x|, 1e-8) in ETF_Classifier.forward.


def features(z_BxD: Array) -> Array:
  """h = z / max(|z|, 1e-8), in float32 (finite gradient at z = 0)."""
  z_BxD = jnp.asarray(z_BxD, jnp.float32)
  return z_BxD / jnp.maximum(losses.safe_norm(z_BxD), FEATURE_EPS)[:, None]


def batch_class_lengths(labels_B: Array, num_classes: int) -> Array:
  """E (length C): sqrt(gamma / n_c) for the classes in the batch, 1 for the others
  (`produce_Ew`).

  Inside the data-parallel step (where `parallel.AXIS` is bound) the counts are summed
  over the devices, so E is that of the global batch, as on their single GPU.
  """
  counts_C = jnp.zeros((num_classes,), jnp.float32).at[labels_B].add(1.0)
  try:
    counts_C = jax.lax.psum(counts_C, parallel.AXIS)
  except NameError:  # Called outside shard_map / pmap: this batch is the whole batch.
    pass
  present_C = counts_C > 0
  gamma = jnp.sum(counts_C) / jnp.sum(present_C)
  return jnp.where(present_C, jnp.sqrt(gamma / jnp.maximum(counts_C, 1.0)), 1.0)


def _check_loss(loss: str):
  if loss not in LOSSES:
    raise ValueError(f"Unknown etf loss {loss!r}; use method_kwargs.etf.loss='dr' (dot "
                     f"regression) or 'ce' (cross-entropy).")


def etf_loss(z_BxD: Array, protos, labels_B: Array, *, loss: str = 'dr',
             given_ew: bool = True) -> Array:
  """Per-example DR (or CE) loss, float32 (B,); see the module docstring."""
  _check_loss(loss)
  m_CxD = jnp.asarray(protos['classes'], jnp.float32)
  h_BxD = features(z_BxD)
  if loss == 'ce':
    return optax.softmax_cross_entropy_with_integer_labels(h_BxD @ m_CxD.T, labels_B)
  w_BxD = m_CxD[labels_B]
  if given_ew:
    w_BxD = w_BxD * batch_class_lengths(labels_B, m_CxD.shape[0])[labels_B][:, None]
  dot_B = jnp.sum(h_BxD * w_BxD, axis=-1)
  m_len_B = jax.lax.stop_gradient(losses.safe_norm(w_BxD))
  h_len_B = jax.lax.stop_gradient(jnp.maximum(losses.safe_norm(h_BxD), FEATURE_EPS))
  return 0.5 * (dot_B - m_len_B * h_len_B) ** 2 / h_len_B


def etf_scores(z_BxD: Array, protos) -> Array:
  """h M: B x C cosines (the prototypes are unit), for either loss."""
  return features(z_BxD) @ jnp.asarray(protos['classes'], jnp.float32).T


def _check(num_classes: int, dim: int):
  if dim < num_classes - 1:
    return (f'a simplex ETF of C classes needs dim >= C - 1 = {num_classes - 1}. Set '
            f'dim={num_classes} (the reference code\'s d >= C) or {num_classes - 1}.')
  return None


METHOD = Method(
    name='etf',
    paper='Yang et al., NeurIPS 2022 (NeuralCollapseApplications/ImbalancedLearning)',
    placement='etf',
    loss=etf_loss,
    scores=etf_scores,
    defaults=dict(loss='dr', given_ew=True),
    check=_check,
    default_dim=lambda num_classes, dim: max(dim, num_classes - 1),
)
