"""What the network is trained for: a task (classification, regression or both) and a
method (hyperspherical prototypes, the softmax / MSE baselines of the paper, or one of
the fixed-classifier methods that followed it, `hyperproto.methods`).

An `Objective` is a small frozen (hashable) value, so the jitted steps take it as a static
argument. It knows the network's output dimension, the loss, the predictions and the
per-batch metric sums; prototypes come in as data (`protos`), never as parameters.

`protos` is a dict: `classes` (C x Dc class prototypes) for classification, `upper`
(the D-dim regression prototype p_u = e_0) for regression; the joint task has both, with
Dc = D - 1 (see `losses`).
"""

import dataclasses
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from hyperproto import losses
from hyperproto import methods as methods_lib

Array = jax.Array

TASKS = ('classification', 'regression', 'joint')
METHODS = ('hpn', 'baseline', *methods_lib.METHODS)


@dataclasses.dataclass(frozen=True)
class Objective:
  """A task + method pair, with everything the train and eval steps need to know.

  Attributes:
    task: 'classification', 'regression' or 'joint'.
    method: 'hpn' (prototypes), 'baseline' (softmax CE / MSE / both on one backbone),
      or a fixed-classifier method of `hyperproto.methods` (classification only).
    dim: network output dimension D for 'hpn' and the fixed-classifier methods (the
      baselines' is fixed by the task).
    num_classes: C, for classification and joint.
    target_range: (low, high) of the regression target, in its own units.
    weight: w in (1 - w) L_r + w L_c for the joint task.
    reduction: 'sum' (the original) or 'mean' over the batch.
    hparams: the method's hyper-parameters, as sorted (name, value) pairs (hashable;
      `config.method_kwargs`); missing ones take the method's defaults.
    label_smoothing: e of the softmax baseline's cross-entropy against (1 - e) one-hot
      + e / C (PyTorch's `label_smoothing`); 0 for every other method.
  """
  task: str
  method: str
  dim: int
  num_classes: int = 0
  target_range: tuple[float, float] = (-1.0, 1.0)
  weight: float = 0.5
  reduction: str = 'sum'
  hparams: tuple[tuple[str, Any], ...] = ()
  label_smoothing: float = 0.0

  def __post_init__(self):
    if self.task not in TASKS:
      raise ValueError(f'Unknown task {self.task!r}; use one of {TASKS}.')
    if self.method not in METHODS:
      raise ValueError(f'Unknown method {self.method!r}; use one of {METHODS}.')
    if self.fixed_classifier is not None:
      self._check_fixed_classifier()
    elif self.hparams:
      raise ValueError(f'method={self.method!r} takes no method_kwargs, got '
                       f'{dict(self.hparams)}.')
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
    if self.method == 'hpn' and self.dim < min_dim:
      raise ValueError(
          f'Task {self.task!r} with prototypes needs an output dimension >= {min_dim} '
          f'(the regression prototype is e_0 and the classes need at least one more '
          f'dimension), got dim={self.dim}.')
    if not 0.0 <= self.weight <= 1.0:
      raise ValueError(f'The joint weight must lie in [0, 1], got {self.weight}.')
    if self.label_smoothing and (self.method, self.task) != ('baseline',
                                                             'classification'):
      hint = (' (EBV: method_kwargs.ebv.label_smoothing)' if self.method == 'ebv'
              else '')
      raise ValueError(f'label_smoothing={self.label_smoothing} smooths the softmax '
                       f'baseline\'s cross-entropy (method=baseline, task=classification); '
                       f'this run trains method={self.method!r}, task={self.task!r}. Set '
                       f'label_smoothing=0{hint}.')
    if not 0.0 <= self.label_smoothing < 1.0:
      raise ValueError(f'label_smoothing must lie in [0, 1), got {self.label_smoothing}.')

  def _check_fixed_classifier(self):
    method = self.fixed_classifier
    if self.task != 'classification':
      raise ValueError(f'method={self.method!r} ({method.paper}) is a classification '
                       f'method; got task={self.task!r}. Use method=hpn for regression '
                       f'and the joint task.')
    method.hparams(dict(self.hparams))  # Unknown names are an error.
    if self.num_classes >= 2 and (problem := method.check(self.num_classes, self.dim)):
      raise ValueError(f'method={self.method!r} with {self.num_classes} classes and '
                       f'dim={self.dim}: {problem}')

  @property
  def fixed_classifier(self) -> Optional[methods_lib.Method]:
    """The `hyperproto.methods` entry of this method (None for hpn and the baselines)."""
    return methods_lib.METHODS.get(self.method)

  @property
  def uses_prototypes(self) -> bool:
    """Whether the steps need class prototypes / the regression prototype."""
    return self.method != 'baseline'

  @property
  def has_classes(self) -> bool:
    return self.task in ('classification', 'joint')

  @property
  def has_regression(self) -> bool:
    return self.task in ('regression', 'joint')

  @property
  def output_dim(self) -> int:
    """Width of the network's final Dense layer."""
    if self.uses_prototypes:
      return self.dim
    return {'classification': self.num_classes, 'regression': 1,
            'joint': self.num_classes + 1}[self.task]

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

  def _method_hparams(self) -> dict[str, Any]:
    return self.fixed_classifier.hparams(dict(self.hparams))

  @property
  def has_method_state(self) -> bool:
    method = self.fixed_classifier
    return method is not None and method.state_init is not None

  def init_method_state(self, protos: Mapping[str, np.ndarray],
                        seed: int) -> dict[str, np.ndarray]:
    """The method's initial training state ({} for methods without one)."""
    if not self.has_method_state:
      return {}
    return self.fixed_classifier.state_init(np.asarray(protos['classes']), seed,
                                            **self._method_hparams())

  def update_method_state(self, method_state: Mapping[str, Array], z: Array,
                          batch: Mapping[str, Array], axis_name: str) -> dict[str, Array]:
    """The in-step update of the method's state (identity without one); traced."""
    if not self.has_method_state:
      return dict(method_state)
    mask = batch.get('mask')
    mask = jnp.ones(z.shape[:1], jnp.float32) if mask is None else mask
    return self.fixed_classifier.state_update(method_state, z, batch['label'], mask,
                                              axis_name, **self._method_hparams())

  def method_state_every(self, steps_per_epoch: int) -> int:
    """Steps between host refreshes of the method's state (0: never)."""
    if not self.has_method_state:
      return 0
    return self.fixed_classifier.refresh_every(steps_per_epoch, self._method_hparams())

  def refresh_method_state(self, method_state: Mapping[str, np.ndarray],
                           protos: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The host-side refresh of the method's state (NumPy in, NumPy out)."""
    return self.fixed_classifier.state_refresh(method_state, np.asarray(protos['classes']),
                                               **self._method_hparams())

  # --- Loss, predictions, metrics -----------------------------------------------------

  def _target(self, batch: Mapping[str, Array]) -> Array:
    return losses.to_unit_interval(batch['target'], *self.target_range)

  def loss(self, z: Array, batch: Mapping[str, Array], protos: Mapping[str, Array],
           reduction: Optional[str] = None) -> Array:
    """The batch loss, reduced with `reduction` (default `self.reduction`); masked
    examples are excluded."""
    kw = dict(reduction=reduction or self.reduction, mask_B=batch.get('mask'))
    if (method := self.fixed_classifier) is not None:
      per_example_B = method.loss(z, protos, batch['label'],
                                  **self._method_hparams())
      return losses.reduce(per_example_B, **kw)
    if self.method == 'hpn':
      if self.task == 'classification':
        return losses.classification_loss(z, protos['classes'], batch['label'], **kw)
      if self.task == 'regression':
        return losses.regression_loss(z, protos['upper'], self._target(batch), **kw)
      return losses.joint_loss(z, protos['classes'], protos['upper'], batch['label'],
                               self._target(batch), weight=self.weight, **kw)
    if self.task == 'classification':
      return losses.softmax_cross_entropy(z, batch['label'],
                                          label_smoothing=self.label_smoothing, **kw)
    if self.task == 'regression':
      return losses.mse_loss(z[..., 0], self._target(batch), **kw)
    return losses.multitask_loss(z, batch['label'], self._target(batch),
                                 weight=self.weight, **kw)

  def scores(self, z: Array, protos: Mapping[str, Array]) -> Array:
    """B x C class scores, float32: the argmax is the predicted class and the max the
    open-set score. HPN: cosines to the class prototypes; softmax baseline: logits;
    the fixed-classifier methods: their own (`hyperproto.methods`)."""
    if not self.has_classes:
      raise ValueError(f'Task {self.task!r} has no classes to score.')
    if (method := self.fixed_classifier) is not None:
      return method.scores(z, protos, **self._method_hparams())
    if self.method == 'hpn':
      z_cls = z[..., 1:] if self.task == 'joint' else z
      return losses.cosine_matrix(z_cls, protos['classes'])
    return jnp.asarray(z[..., -self.num_classes:], jnp.float32)

  def predict(self, z: Array, protos: Mapping[str, Array]) -> dict[str, Array]:
    """Predicted `label` and/or `target` (in the target's own units)."""
    out = {}
    if self.fixed_classifier is not None:
      return {'label': jnp.argmax(self.scores(z, protos), axis=-1)}
    if self.method == 'hpn':
      if self.has_classes:
        out['label'] = jnp.argmax(self.scores(z, protos), axis=-1)
      if self.has_regression:
        r = losses.predict_unit_interval(z, protos['upper'])
        out['target'] = losses.from_unit_interval(r, *self.target_range)
      return out
    if self.has_classes:
      out['label'] = jnp.argmax(z[..., -self.num_classes:], axis=-1)
    if self.has_regression:
      # The baseline's output is unbounded; clip it to the known range (this helps it).
      r = jnp.clip(z[..., 0].astype(jnp.float32), -1.0, 1.0)
      out['target'] = losses.from_unit_interval(r, *self.target_range)
    return out

  def open_set_scores(self, z: Array, protos: Mapping[str, Array]) -> dict[str, Array]:
    """Per-example known-vs-unknown scores (float32 B, higher = more likely a known
    class): `max_cos`, the max cosine to the class prototypes, for every prototype
    method; `max_score`, the max of a fixed-classifier method's own scores (a logit, a
    scaled cosine, or minus a distance); `max_logit` and `msp` (max softmax
    probability) for the softmax baseline, which has no prototypes and so no cosine."""
    s_BxC = self.scores(z, protos)
    if self.method == 'baseline':
      return {'max_logit': jnp.max(s_BxC, axis=-1),
              'msp': jnp.max(jax.nn.softmax(s_BxC, axis=-1), axis=-1)}
    if self.method == 'hpn':
      return {'max_cos': jnp.max(s_BxC, axis=-1)}
    return {'max_cos': jnp.max(losses.cosine_matrix(z, protos['classes']), axis=-1),
            'max_score': jnp.max(s_BxC, axis=-1)}

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
