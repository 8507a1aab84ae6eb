"""What the network is trained for: a task (classification, regression or both) and a
method (`hyperproto.methods`: hyperspherical prototypes, the softmax / MSE baselines of
the paper, or one of the fixed-classifier methods that followed it).

An `Objective` is a small frozen (hashable) value, so the jitted steps take it as a static
argument. It looks its method up once, with the method's hyper-parameters bound
(`methods.get`, `Method.bind`), and gives the network's output dimension, the loss, the
scores, the predictions and the per-batch metric sums the same way for every method;
prototypes come in as data (`protos`), never as parameters.

`protos` is a dict: `classes` (C x Dc class prototypes) for classification, `upper`
(the D-dim regression prototype p_u = e_0) for regression; the joint task has both, with
Dc = D - 1: the regression part reads the whole output z, the class part z[..., 1:]
(the layout of the original OmniArt code; see `losses`).
"""

import dataclasses
import functools
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from hyperproto import losses
from hyperproto import methods as methods_lib

Array = jax.Array

TASKS = methods_lib.TASKS


@dataclasses.dataclass(frozen=True)
class Objective:
  """A task + method pair, with everything the train and eval steps need to know.

  Attributes:
    task: 'classification', 'regression' or 'joint'.
    method: a `hyperproto.methods` name: 'hpn' (prototypes), the baseline ('baseline'
      for any task, or 'softmax' / 'mse' / 'multitask'), or a fixed-classifier method
      (classification only).
    dim: network output dimension D for the prototype methods (the baseline's is fixed
      by the task).
    num_classes: C, for classification and joint.
    target_range: (low, high) of the regression target, in its own units.
    weight: w in (1 - w) L_r + w L_c for the joint task.
    reduction: 'sum' (the original) or 'mean' over the batch.
    hparams: the method's hyper-parameters, as sorted (name, value) pairs (hashable;
      `config_lib.method_hparams`); missing ones take the method's defaults.
  """
  task: str
  method: str
  dim: int
  num_classes: int = 0
  target_range: tuple[float, float] = (-1.0, 1.0)
  weight: float = 0.5
  reduction: str = 'sum'
  hparams: tuple[tuple[str, Any], ...] = ()

  def __post_init__(self):
    if self.task not in TASKS:
      raise ValueError(f'Unknown task {self.task!r}; use one of {TASKS}.')
    method = self._method  # Unknown names, tasks and hyper-parameters are errors.
    if self.reduction not in losses.REDUCTIONS:
      raise ValueError(f'Unknown reduction {self.reduction!r}; use one of '
                       f'{losses.REDUCTIONS}.')
    if self.has_classes and self.num_classes < 2:
      raise ValueError(f'Task {self.task!r} needs num_classes >= 2, got '
                       f'{self.num_classes}.')
    if self.has_regression:
      low, high = self.target_range
      if not high > low:
        raise ValueError(f'target_range must be (low, high) with high > low, got '
                         f'{self.target_range}.')
    min_dim = 2 if self.has_regression else 1
    if self.uses_prototypes and self.dim < min_dim:
      raise ValueError(
          f'Task {self.task!r} with prototypes needs an output dimension >= {min_dim} '
          f'(the regression prototype is e_0 and the classes need at least one more '
          f'dimension), got dim={self.dim}.')
    if not 0.0 <= self.weight <= 1.0:
      raise ValueError(f'The joint weight must lie in [0, 1], got {self.weight}.')
    if self.has_classes and (problem := method.check(self.num_classes, self.dim)):
      raise ValueError(f'method={self.method!r} with {self.num_classes} classes and '
                       f'dim={self.dim}: {problem}')

  @functools.cached_property
  def _method(self) -> methods_lib.Method:
    """The method, its hyper-parameters bound (looked up once)."""
    return methods_lib.get(self.method, self.task).bind(dict(self.hparams))

  @property
  def uses_prototypes(self) -> bool:
    """Whether the steps need class prototypes / the regression prototype."""
    return self._method.placement is not None

  @property
  def has_classes(self) -> bool:
    return self.task in ('classification', 'joint')

  @property
  def has_regression(self) -> bool:
    return self.task in ('regression', 'joint')

  @property
  def output_dim(self) -> int:
    """Width of the network's final Dense layer."""
    return self._method.output_dim(self.task, self.num_classes, self.dim)

  @property
  def class_prototype_dim(self) -> Optional[int]:
    """Dimension of the class prototypes (None when no class prototypes are used)."""
    if not self.uses_prototypes or not self.has_classes:
      return None
    return self.dim - 1 if self.task == 'joint' else self.dim

  # --- Prototypes ---------------------------------------------------------------------

  def prototypes(self, class_protos: Optional[np.ndarray]) -> dict[str, np.ndarray]:
    """The `protos` dict for the steps, validated against this objective."""
    protos = {}
    if not self.uses_prototypes:
      return protos
    if self.has_classes:
      expected = (self.num_classes, self.class_prototype_dim)
      if class_protos is None:
        raise ValueError(f'Task {self.task!r} needs class prototypes of shape {expected}.')
      class_protos = np.asarray(class_protos, np.float32)
      if class_protos.ndim != 2 or class_protos.shape[0] != self.num_classes:
        raise ValueError(
            f'Got {class_protos.shape[0] if class_protos.ndim else 0} prototypes '
            f'(array of shape {class_protos.shape}) for {self.num_classes} classes: '
            f'place one prototype per class (num_classes={self.num_classes}).')
      if class_protos.shape[1] != self.class_prototype_dim:
        where = ' (output dim - 1 for the joint task)' if self.task == 'joint' else ''
        raise ValueError(
            f'Prototype dimension {class_protos.shape[1]} does not match the model '
            f'output dimension: expected {self.class_prototype_dim}{where}. Place the '
            f'prototypes with dim={self.class_prototype_dim} or change the output dim.')
      if not np.all(np.isfinite(class_protos)):
        raise ValueError('The class prototypes contain NaN or Inf.')
      protos['classes'] = class_protos
    if self.has_regression:
      protos['upper'] = np.eye(self.dim, dtype=np.float32)[0]
    return protos

  # --- Method-owned training state (DL2PA's assignment; `hyperproto.methods`) -------

  @property
  def has_method_state(self) -> bool:
    return self._method.state_init is not None

  def init_method_state(self, protos: Mapping[str, np.ndarray],
                        seed: int) -> dict[str, np.ndarray]:
    """The method's initial training state ({} for methods without one)."""
    if not self.has_method_state:
      return {}
    return self._method.state_init(np.asarray(protos['classes']), seed)

  def update_method_state(self, method_state: Mapping[str, Array], z: Array,
                          batch: Mapping[str, Array], axis_name: str) -> dict[str, Array]:
    """The in-step update of the method's state (identity without one); traced."""
    if not self.has_method_state:
      return dict(method_state)
    mask = batch.get('mask')
    mask = jnp.ones(z.shape[:1], jnp.float32) if mask is None else mask
    return self._method.state_update(method_state, z, batch['label'], mask, axis_name)

  def method_state_every(self, steps_per_epoch: int) -> int:
    """Steps between host refreshes of the method's state (0: never)."""
    if not self.has_method_state:
      return 0
    return self._method.refresh_every(steps_per_epoch)

  def refresh_method_state(self, method_state: Mapping[str, np.ndarray],
                           protos: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The host-side refresh of the method's state (NumPy in, NumPy out)."""
    return self._method.state_refresh(method_state, np.asarray(protos['classes']))

  # --- Loss, predictions, metrics -----------------------------------------------------

  def _class_output(self, z: Array) -> Array:
    """What the class part reads: z, or z[..., 1:] in the joint layout."""
    return z[..., 1:] if self.task == 'joint' else z

  def _class_loss(self, z: Array, batch: Mapping[str, Array],
                  protos: Mapping[str, Array]) -> Array:
    return self._method.loss(self._class_output(z), protos, batch['label'])

  def _regression_loss(self, z: Array, batch: Mapping[str, Array],
                       protos: Mapping[str, Array]) -> Array:
    r_B = losses.to_unit_interval(batch['target'], *self.target_range)
    return self._method.regression_loss(z, protos, r_B)

  @functools.cached_property
  def _loss_terms(self):
    """(weight, per-example loss) of each part the task trains: L_c, L_r, or
    (1 - w) L_r + w L_c."""
    return {'classification': ((1.0, self._class_loss),),
            'regression': ((1.0, self._regression_loss),),
            'joint': ((1.0 - self.weight, self._regression_loss),
                      (self.weight, self._class_loss))}[self.task]

  def loss(self, z: Array, batch: Mapping[str, Array], protos: Mapping[str, Array],
           reduction: Optional[str] = None) -> Array:
    """The batch loss: each part the task trains reduced over the batch with
    `reduction` (default `self.reduction`), masked examples excluded, then weighted
    (`_loss_terms`; the weight 1.0 of a single part changes no bit)."""
    reduce = functools.partial(losses.reduce, reduction=reduction or self.reduction,
                               mask_B=batch.get('mask'))
    terms = [weight * reduce(part(z, batch, protos))
             for weight, part in self._loss_terms]
    return functools.reduce(jnp.add, terms)

  def scores(self, z: Array, protos: Mapping[str, Array]) -> Array:
    """B x C class scores, float32, the method's own (`hyperproto.methods`): the argmax
    is the predicted class. HPN: cosines to the class prototypes; the softmax baseline:
    logits."""
    if not self.has_classes:
      raise ValueError(f'Task {self.task!r} has no classes to score.')
    return self._method.scores(self._class_output(z), protos)

  def predict(self, z: Array, protos: Mapping[str, Array]) -> dict[str, Array]:
    """Predicted `label` and/or `target` (in the target's own units)."""
    out = {}
    if self.has_classes:
      out['label'] = jnp.argmax(self.scores(z, protos), axis=-1)
    if self.has_regression:
      out['target'] = losses.from_unit_interval(self._method.regress(z, protos),
                                                *self.target_range)
    return out

  def open_set_scores(self, z: Array, protos: Mapping[str, Array]) -> dict[str, Array]:
    """Per-example known-vs-unknown scores by name (float32 B, higher = more likely a
    known class; `Method.open_set`): `max_cos`, the max cosine to the class prototypes,
    for every prototype method; `max_score`, the max of a fixed-classifier method's own
    scores (a logit, a scaled cosine, or minus a distance); `max_logit` and `msp` (max
    softmax probability) for the softmax baseline, which has no prototypes and so no
    cosine."""
    z_cls = self._class_output(z)
    return self._method.open_set(z_cls, self.scores(z, protos), protos)

  def metric_sums(self, z: Array, batch: Mapping[str, Array],
                  protos: Mapping[str, Array]) -> dict[str, Array]:
    """Per-batch sums (to be summed over devices and batches, then divided by `count`)."""
    mask = batch.get('mask')
    mask = (jnp.ones(z.shape[:1], jnp.float32) if mask is None
            else mask.astype(jnp.float32))
    pred = self.predict(z, protos)
    sums = {'count': jnp.sum(mask)}
    if 'label' in pred:
      sums['correct'] = jnp.sum((pred['label'] == batch['label']) * mask)
    if 'target' in pred:
      sums['abs_error'] = jnp.sum(jnp.abs(pred['target'] - batch['target']) * mask)
    return sums


def summarize(sums: Mapping[str, float]) -> dict[str, float]:
  """Turns summed metrics into means: accuracy, mae, loss (per example)."""
  count = max(float(sums['count']), 1.0)
  names = {'correct': 'accuracy', 'abs_error': 'mae', 'loss': 'loss'}
  return {names[k]: float(v) / count for k, v in sums.items() if k in names}
