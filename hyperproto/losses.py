"""Losses of Hyperspherical Prototype Networks and of the baselines they are compared to.

Every function takes raw network outputs `z_BxD` (no normalisation in the model, like the
original), computes in float32 whatever the compute dtype, and reduces over the batch with
`reduction='sum'` (the original's, and our default: under data parallelism the per-device
sums are summed, so the update does not depend on the number of devices) or `'mean'`.
An optional `mask_B` drops padded examples from the reduction.

Joint layout (the original OmniArt code): output dimension D; regression uses the full z
against the fixed upper prototype p_u = e_0; classification uses z[..., 1:] against the C
class prototypes, which live in D - 1 dimensions. The multi-task baseline uses the same
layout: column 0 is the regression output, columns 1..C the class logits.
"""

from typing import Optional

import jax
import jax.numpy as jnp
import optax

Array = jax.Array

EPS = 1e-9  # As the original (torch.nn.CosineSimilarity(eps=1e-9)).
REDUCTIONS = ('sum', 'mean')


def safe_norm(x: Array) -> Array:
  """|x| along the last axis, with a finite gradient (zero) at x = 0.

  `jnp.linalg.norm`'s gradient x / |x| is 0 / 0 = NaN at an all-zero row, and the eps
  clamp of the cosine does not stop it (0 * NaN is NaN): one such output row would turn
  the whole update into NaN, where PyTorch's CosineSimilarity stays finite. Zero rows
  are replaced by ones before the norm and their norm set to 0 after it (the "double
  where"); every other row goes through `jnp.linalg.norm` itself, so values and
  gradients keep every bit (tested, compiled; the demo's numbers are unchanged).
  """
  nonzero = jnp.any(x != 0, axis=-1)
  safe = jnp.where(nonzero[..., None], x, jnp.ones_like(x))
  return jnp.where(nonzero, jnp.linalg.norm(safe, axis=-1), 0.0)


def cosine_similarity(a: Array, b: Array, eps: float = EPS) -> Array:
  """cos(a, b) along the last axis, in float32: a.b / max(|a| |b|, eps). Broadcasts;
  finite gradients everywhere (`safe_norm`)."""
  a = jnp.asarray(a, jnp.float32)
  b = jnp.asarray(b, jnp.float32)
  dot = jnp.sum(a * b, axis=-1)
  return dot / jnp.maximum(safe_norm(a) * safe_norm(b), eps)


def cosine_matrix(z_BxD: Array, protos_CxD: Array, eps: float = EPS) -> Array:
  """All cosines between outputs and prototypes, B x C, in float32 (finite gradients
  everywhere, `safe_norm`)."""
  z_BxD = jnp.asarray(z_BxD, jnp.float32)
  protos_CxD = jnp.asarray(protos_CxD, jnp.float32)
  dots_BxC = z_BxD @ protos_CxD.T
  norms_BxC = safe_norm(z_BxD)[:, None] * safe_norm(protos_CxD)[None, :]
  return dots_BxC / jnp.maximum(norms_BxC, eps)


def reduce(per_example_B: Array, reduction: str = 'sum',
           mask_B: Optional[Array] = None) -> Array:
  """Sums or averages per-example values; masked-out examples count as absent."""
  if reduction not in REDUCTIONS:
    raise ValueError(f'Unknown reduction {reduction!r}; use one of {REDUCTIONS}.')
  per_example_B = per_example_B.astype(jnp.float32)
  if mask_B is None:
    mask_B = jnp.ones_like(per_example_B)
  mask_B = mask_B.astype(jnp.float32)
  total = jnp.sum(per_example_B * mask_B)
  if reduction == 'sum':
    return total
  return total / jnp.maximum(jnp.sum(mask_B), 1.0)


# --- Prototype losses -----------------------------------------------------------------


def classification_per_example(z_BxD: Array, protos_CxD: Array, labels_B: Array) -> Array:
  """(1 - cos(z_i, p_{y_i}))^2 for each example i (B,)."""
  if z_BxD.shape[-1] != protos_CxD.shape[-1]:
    raise ValueError(
        f'Output dimension {z_BxD.shape[-1]} does not match the prototype dimension '
        f'{protos_CxD.shape[-1]}: place prototypes with dim={z_BxD.shape[-1]}.')
  cos_B = cosine_similarity(z_BxD, protos_CxD[labels_B])
  return (1.0 - cos_B) ** 2


def classification_loss(z_BxD: Array, protos_CxD: Array, labels_B: Array, *,
                        reduction: str = 'sum', mask_B: Optional[Array] = None) -> Array:
  """L_c = sum_i (1 - cos(z_i, p_{y_i}))^2."""
  return reduce(classification_per_example(z_BxD, protos_CxD, labels_B), reduction, mask_B)


def predict_classes(z_BxD: Array, protos_CxD: Array) -> Array:
  """argmax_c cos(z, p_c)."""
  return jnp.argmax(cosine_matrix(z_BxD, protos_CxD), axis=-1)


def to_unit_interval(y: Array, low: float, high: float) -> Array:
  """Maps a regression target in [low, high] to r = 2 (y - low) / (high - low) - 1."""
  return 2.0 * (jnp.asarray(y, jnp.float32) - low) / (high - low) - 1.0


def from_unit_interval(r: Array, low: float, high: float) -> Array:
  """Inverse of `to_unit_interval`: low + (r + 1) / 2 (high - low)."""
  return low + (jnp.asarray(r, jnp.float32) + 1.0) / 2.0 * (high - low)


def regression_per_example(z_BxD: Array, upper_D: Array, r_B: Array) -> Array:
  """(r_i - cos(z_i, p_u))^2 for each example i (B,), with r in [-1, 1]."""
  cos_B = cosine_similarity(z_BxD, upper_D[None, :])
  return (jnp.asarray(r_B, jnp.float32) - cos_B) ** 2


def regression_loss(z_BxD: Array, upper_D: Array, r_B: Array, *,
                    reduction: str = 'sum', mask_B: Optional[Array] = None) -> Array:
  """L_r = sum_i (r_i - cos(z_i, p_u))^2, with r in [-1, 1]."""
  return reduce(regression_per_example(z_BxD, upper_D, r_B), reduction, mask_B)


def predict_unit_interval(z_BxD: Array, upper_D: Array) -> Array:
  """The regression prediction in [-1, 1]: cos(z, p_u)."""
  return cosine_similarity(z_BxD, upper_D[None, :])


def joint_loss(z_BxD: Array, protos_CxDm1: Array, upper_D: Array, labels_B: Array,
               r_B: Array, *, weight: float = 0.5, reduction: str = 'sum',
               mask_B: Optional[Array] = None) -> Array:
  """(1 - w) L_r(z) + w L_c(z[..., 1:]): both tasks in one output space."""
  l_r = regression_loss(z_BxD, upper_D, r_B, reduction=reduction, mask_B=mask_B)
  l_c = classification_loss(z_BxD[..., 1:], protos_CxDm1, labels_B,
                            reduction=reduction, mask_B=mask_B)
  return (1.0 - weight) * l_r + weight * l_c


# --- Baselines ------------------------------------------------------------------------


def cross_entropy_per_example(logits_BxC: Array, labels_B: Array,
                              label_smoothing: float = 0.0) -> Array:
  """Softmax cross-entropy with integer labels for each example (B,); with
  `label_smoothing` e, against (1 - e) one-hot + e / C
  (torch.nn.CrossEntropyLoss(label_smoothing=e))."""
  logits_BxC = jnp.asarray(logits_BxC, jnp.float32)
  if label_smoothing:
    targets_BxC = optax.smooth_labels(
        jax.nn.one_hot(labels_B, logits_BxC.shape[-1], dtype=jnp.float32),
        label_smoothing)
    return optax.softmax_cross_entropy(logits_BxC, targets_BxC)
  return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, labels_B)


def softmax_cross_entropy(logits_BxC: Array, labels_B: Array, *, reduction: str = 'sum',
                          mask_B: Optional[Array] = None,
                          label_smoothing: float = 0.0) -> Array:
  """`cross_entropy_per_example`, reduced over the batch."""
  return reduce(cross_entropy_per_example(logits_BxC, labels_B, label_smoothing),
                reduction, mask_B)


def squared_error_per_example(pred_B: Array, r_B: Array) -> Array:
  """(pred_i - r_i)^2 for each example (B,): a scalar output against the target mapped
  to [-1, 1]."""
  err_B = jnp.asarray(pred_B, jnp.float32) - jnp.asarray(r_B, jnp.float32)
  return err_B ** 2


def mse_loss(pred_B: Array, r_B: Array, *, reduction: str = 'sum',
             mask_B: Optional[Array] = None) -> Array:
  """Squared error of a scalar output against the target mapped to [-1, 1]."""
  return reduce(squared_error_per_example(pred_B, r_B), reduction, mask_B)


def multitask_loss(out_BxC1: Array, labels_B: Array, r_B: Array, *, weight: float = 0.5,
                   reduction: str = 'sum', mask_B: Optional[Array] = None) -> Array:
  """(1 - w) MSE(out[:, 0]) + w CE(out[:, 1:]): softmax and MSE heads on one backbone."""
  l_r = mse_loss(out_BxC1[..., 0], r_B, reduction=reduction, mask_B=mask_B)
  l_c = softmax_cross_entropy(out_BxC1[..., 1:], labels_B, reduction=reduction,
                              mask_B=mask_B)
  return (1.0 - weight) * l_r + weight * l_c
