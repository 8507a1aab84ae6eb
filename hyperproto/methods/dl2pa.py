"""Dynamic label-to-prototype assignment (Saadabadi et al., CVPR 2024, "Hyperspherical
Classification with Dynamic Label-to-Prototype Assignment").

Reference code: msed-Ebrahimi/DL2PA_CVPR24 (`train.py`, `backbone/classifiers/fixed.py`,
`utils/B_utils.py`, `Prototype_Estimation.py`), its balanced-data path (CIFAR-100,
ImageNet-200). Followed exactly:

  * C fixed unit prototypes P (rows of `protos['classes']`); class c is represented by
    prototype `assignment[c]`, a permutation of the C prototypes.
  * Loss (`B_utils.BLoss` with `nn.CosineSimilarity(eps=1e-9)`): HPN's
    (1 - cos(z, P[assignment[y]]))^2 per example, summed over the batch (our default
    `loss_reduction='sum'` is theirs). Prediction (`fixed_Classifier.predict`): the
    largest cosine to P[assignment[c]]; `scores` are those cosines.
  * A per-class feature memory `queue` (C x D), initialised N(0, 1) (`torch.randn`, here
    from the run's seed), updated at every training step from the detached, normalised
    outputs (`forward_momentum`), then every row renormalised:

        queue[c] <- queue[c] + m queue[c] + (1 - m) x_c,   m = `momentum` = 0.9.

    The code's `+=` keeps queue[c] in the sum (the paper's EMA would be
    m queue[c] + (1 - m) x_c); after the renormalisation this is an EMA of momentum
    (1 + m) / 2 = 0.95. We follow the code.
  * The assignment is re-solved once per epoch, after the epoch's last step
    (`update_fixed_center` in `train.py`'s epoch loop, after the validation), by
    `scipy.optimize.linear_sum_assignment` maximising sum_c queue[c] . P[assignment[c]]
    (`fixed_Classifier.haungarian`); the first assignment is solved at start from the
    random queue.

Where we differ from the code, and why:
  * x_c: `queue[labels] += ...` is an index-put without accumulation, so with several
    examples of class c in a batch one of them (unspecified on GPU) wins. We use the
    normalised mean of the batch's normalised outputs of class c, summed over all devices
    (`psum`): deterministic, and the same on any number of devices and processes.
  * The score matrix of the matching is computed in float64 on the host (the code: in
    float32 on the GPU), so that every process finds the same permutation.
  * Prototypes: their `Prototype_Estimation.py` (Wang & Isola's uniformity loss, SGD
    over shuffled batches of classes; its `--num_epoch` defaults to 100, the README's
    command passes 1,000) is the default placement, `uniformity`
    (`prototypes/uniformity.py`, 1,000 epochs); its init and order come from NumPy,
    not PyTorch's generator.

The long-tailed branch of their `train.py` (datasets named `*LT`) trains differently:
the loss is ETF's dot regression (`LT_utils.LTloss`, the same formula as
`methods.etf`'s `dot_loss`) against the assigned prototype scaled by the per-batch
E_w of the batch's labels (`LT_utils.produce_Ew`), averaged over the batch, on mixed
images (mixup, alpha 1: `data.mixup_alpha`, the loss lambda L(y) + (1 - lambda) L(y'));
the queue is updated from the mixed images' features with the unmixed labels, as here.
`loss='dr'` selects it (`config_lib.PAPER_RECIPES['dl2pa_lt']` sets it with the rest of
that recipe). Their LT classifier also puts a BatchNorm on the features before the
normalisation (as ETF's; ours is the model's Dense head), and their CIFAR-10-LT configs
name no prototype file (`centroid_path` is left at its placeholder), so which
prototypes their CIFAR-10-LT numbers used is not in the code.

Hyper-parameters (`config.method_kwargs.dl2pa`): `momentum` (0.9), `refresh_every_steps` (0:
once per epoch, theirs; N > 0 re-solves every N steps), `loss` ('cosine': the balanced
branch's (1 - cos)^2; 'dr': the long-tailed branch's dot regression).
"""

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize

from hyperproto import losses
from hyperproto.methods import Method
from hyperproto.methods import etf

LOSSES = ('cosine', 'dr')

Array = jax.Array

NORMALIZE_EPS = 1e-12  # F.normalize
QUEUE_EPS = 1e-8       # the queue's torch.clamp(..., 1e-8)


def class_prototypes(protos: Mapping[str, Array]) -> Array:
  """C x D: row c is the prototype class c is assigned to, P[assignment[c]]."""
  return jnp.asarray(protos['classes'], jnp.float32)[protos['assignment']]


def loss(z_BxD: Array, protos, labels_B: Array, *,
         loss: str = 'cosine') -> Array:  # pylint: disable=redefined-outer-name
  """Per example: 'cosine', (1 - cos(z, P[assignment[y]]))^2 (`BLoss`); 'dr', the dot
  regression against E_w[y] P[assignment[y]] (`LTloss` with `produce_Ew`)."""
  if loss not in LOSSES:
    raise ValueError(f"Unknown dl2pa loss {loss!r}; use method_kwargs.dl2pa.loss='cosine' "
                     f"(the balanced branch) or 'dr' (the long-tailed branch).")
  if loss == 'dr':
    return etf.etf_loss(z_BxD, {'classes': class_prototypes(protos)}, labels_B,
                        loss='dr', given_ew=True)
  target_BxD = class_prototypes(protos)[labels_B]
  return jnp.square(1.0 - losses.cosine_similarity(z_BxD, target_BxD))


def scores(z_BxD: Array, protos) -> Array:
  """B x C cosines to the assigned prototypes (`predict`, either branch)."""
  return losses.cosine_matrix(z_BxD, class_prototypes(protos))


def solve_assignment(queue_CxD: np.ndarray, classes_CxD: np.ndarray) -> np.ndarray:
  """The permutation maximising sum_c queue[c] . P[assignment[c]] (int32, C)."""
  score_CxC = np.asarray(queue_CxD, np.float64) @ np.asarray(classes_CxD, np.float64).T
  rows, cols = optimize.linear_sum_assignment(-score_CxC)
  assignment = np.empty(len(rows), np.int32)
  assignment[rows] = cols
  return assignment


def state_init(classes_CxD: np.ndarray, seed: int) -> dict[str, np.ndarray]:
  """The random queue (`torch.randn` in theirs) and the assignment solved from it."""
  queue_CxD = np.random.default_rng(seed).standard_normal(classes_CxD.shape)
  queue_CxD = queue_CxD.astype(np.float32)
  return {'queue': queue_CxD, 'assignment': solve_assignment(queue_CxD, classes_CxD)}


def _normalize(x_NxD: Array, eps: float) -> Array:
  return x_NxD / jnp.maximum(losses.safe_norm(x_NxD), eps)[:, None]


def state_update(state: Mapping[str, Array], z_BxD: Array, labels_B: Array,
                 mask_B: Array, axis_name: str, *,
                 momentum: float = 0.9) -> dict[str, Array]:
  """One `forward_momentum` step on the global batch (see the module docstring)."""
  queue_CxD = state['queue']
  x_BxD = _normalize(jnp.asarray(z_BxD, jnp.float32), NORMALIZE_EPS)
  onehot_BxC = jax.nn.one_hot(labels_B, queue_CxD.shape[0], dtype=jnp.float32)
  onehot_BxC = onehot_BxC * mask_B.astype(jnp.float32)[:, None]
  sums_CxD, counts_C = jax.lax.psum((onehot_BxC.T @ x_BxD, onehot_BxC.sum(0)), axis_name)
  x_CxD = _normalize(sums_CxD, NORMALIZE_EPS)
  updated_CxD = queue_CxD + momentum * queue_CxD + (1.0 - momentum) * x_CxD
  queue_CxD = jnp.where((counts_C > 0)[:, None], updated_CxD, queue_CxD)
  return dict(state, queue=_normalize(queue_CxD, QUEUE_EPS))


def state_refresh(state: Mapping[str, np.ndarray],
                  classes_CxD: np.ndarray) -> dict[str, np.ndarray]:
  """`haungarian`: the assignment re-solved from the queue."""
  return dict(state, assignment=solve_assignment(state['queue'], classes_CxD))


def refresh_every(steps_per_epoch: int, *, refresh_every_steps: int = 0) -> int:
  """Steps between `state_refresh` calls: `refresh_every_steps`, or an epoch (0)."""
  return int(refresh_every_steps) or steps_per_epoch


METHOD = Method(
    name='dl2pa',
    paper='Saadabadi et al., CVPR 2024 (msed-Ebrahimi/DL2PA_CVPR24)',
    placement='uniformity',
    loss=loss,
    scores=scores,
    defaults={'momentum': 0.9, 'refresh_every_steps': 0, 'loss': 'cosine'},
    state_init=state_init,
    state_update=state_update,
    state_refresh=state_refresh,
    refresh_every=refresh_every,
)
