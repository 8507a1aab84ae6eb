"""`ebv`: Equiangular Basis Vectors, a temperature-scaled softmax over cosines.

Shen et al., "Equiangular Basis Vectors", CVPR 2023; reference code
aassxun/Equiangular-Basis-Vectors (ImageNet_Validation_Experiment/EBV_ImageNet.py).

C fixed unit vectors with max |cos| <= tau (placement `ebv`; any d, also d < C). The
output is normalised (`Net.forward`: F.normalize, eps 1e-12), and so are the vectors
(`d = F.normalize(d)`); the logits are cos(z, e_c) / T with T = 0.07
(`loss_fn(image_preds @ d.t() / 0.07, labels)`), trained with softmax cross-entropy
with label smoothing 0.1 (`loss_tr = nn.CrossEntropyLoss(label_smoothing=0.1)`, the
training loss of both EBV_ImageNet.py and EBV_Dim_ImageNet.py). Prediction: argmax of
the cosines (`valid_one_epoch`: `image_preds @ d.t()`, no temperature); the scores are
the cosines.

Where we differ: the vectors come from our optimiser of the max |cos| rather than their
hinge SGD at a fixed threshold (see `prototypes.separation.ebv`). The paper does not
mention label smoothing in its main recipe (its ablation lists it as an addition); we
follow the code, and `label_smoothing=0.0` gives plain cross-entropy.
"""

import jax
import jax.numpy as jnp
import optax

from hyperproto import losses
from hyperproto.methods import Method

Array = jax.Array

NORMALIZE_EPS = 1e-12  # torch.nn.functional.normalize's default.


def _normalize(x: Array) -> Array:
  x = jnp.asarray(x, jnp.float32)
  return x / jnp.maximum(losses.safe_norm(x), NORMALIZE_EPS)[..., None]


def ebv_scores(z_BxD: Array, protos) -> Array:
  """Cosines to the basis vectors, B x C float32 (no temperature)."""
  return _normalize(z_BxD) @ _normalize(protos['classes']).T


def ebv_loss(z_BxD: Array, protos, labels_B: Array, *, temperature: float = 0.07,
             label_smoothing: float = 0.1) -> Array:
  """Per-example softmax cross-entropy of cos / T with label smoothing (B,)."""
  logits_BxC = ebv_scores(z_BxD, protos) / temperature
  targets_BxC = jax.nn.one_hot(labels_B, logits_BxC.shape[-1], dtype=jnp.float32)
  if label_smoothing:
    targets_BxC = optax.smooth_labels(targets_BxC, label_smoothing)
  return optax.softmax_cross_entropy(logits_BxC, targets_BxC)


METHOD = Method(
    name='ebv',
    paper='Shen et al., CVPR 2023 (aassxun/Equiangular-Basis-Vectors)',
    placement='ebv',
    loss=ebv_loss,
    scores=ebv_scores,
    defaults=dict(temperature=0.07, label_smoothing=0.1),
)
