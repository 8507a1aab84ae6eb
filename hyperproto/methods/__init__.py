"""What the network is trained with: HPN, the softmax / MSE baselines and the
fixed-classifier methods that followed HPN, behind one interface.

Each method is a module of this package that defines a `Method`; `METHODS` maps its name
(`config.method`) to it, and `get(name, task)` looks one up for a task. The network's
output `z` (B x D) goes through two parts:

  * the **class part** (every method): `z` is compared with the C class prototypes
    (`protos['classes']`, C x D, placed once by `hyperproto.prototypes`; by default with
    the method's own construction `placement`), or read as logits by the baseline;
  * the **regression part** (HPN and the baseline only): `z` gives a value r in [-1, 1]
    for the regression target mapped there (`losses.to_unit_interval`).

A classification run trains the class part, a regression run the regression part, and
the joint task both on one output, in the layout of the original OmniArt code: the
regression part reads the whole `z`, the class part `z[..., 1:]`; the loss is
(1 - w) L_r + w L_c (`objectives.Objective` does this for every method). The functions:

  * `loss(z_BxD, protos, labels_B, **hparams)`: the class part's per-example loss
    (float32, B); reduction over the batch and masking are the objective's;
  * `scores(z_BxD, protos, **hparams)`: B x C float32 scores whose argmax is the
    prediction (cosines, logits, or minus a distance);
  * `regression_loss(z_BxD, protos, r_B, **hparams)` and `regress(z_BxD, protos,
    **hparams)`: the regression part's per-example loss and its prediction r (B, in
    [-1, 1]); None for a classification-only method;
  * `open_set(z_BxD, scores_BxC, protos)`: the per-example open-set scores by name
    (higher = more likely a known class): `max_cos` (the max cosine to the class
    prototypes) and `max_score` (the max of `scores`) by default; HPN's scores are the
    cosines (`max_cos` only), the baseline's are logits (`max_logit`, `msp`);
  * `output_dim(task, num_classes, dim)`: the width of the network's last layer (`dim`,
    but the baseline's is fixed by the task);
  * `check(num_classes, dim)`: None, or an error message when the method cannot run
    with that output dimension (the fix included);
  * `default_dim(num_classes, dim)`: the output dimension a dataset config uses when
    its `:dim=` is left open, given the config's own default `dim` (max-separation:
    C - 1, whatever the config's default; ETF: at least C - 1).

**Hyper-parameters** (`defaults`; set with `config.method_kwargs.<name>`, the baseline's
label smoothing with `config.label_smoothing`) are bound once (`Method.bind`): each
function receives, by keyword, only the hyper-parameters its signature names.

`protos` is the whole dict the steps receive: `classes` and/or `upper` (the regression
prototype e_0, HPN), plus whatever the method keeps in it (DL2PA's label-to-prototype
assignment). The baseline (`placement=None`) uses none.

A method may carry training state of its own (DL2PA: a per-class feature memory and the
label-to-prototype assignment). It lives in `TrainState.method_state` (checkpointed with
the rest, so resume stays exact), is merged into `protos` for the loss and the scores,
and changes in two places:

  * `state_update(state, z_BxD, labels_B, mask_B, axis_name, **hparams)`, inside the
    jitted train step, from statistics summed over the devices (`psum` over
    `axis_name`): the same on any number of devices and processes, no host sync;
  * `state_refresh(state, classes_CxD, **hparams)`, on the host (NumPy, SciPy) every
    `refresh_every(steps_per_epoch, **hparams)` steps, in every process from the same
    replicated state, so every process computes the same result.

Names: the baseline is `baseline` for any task, or by the name its table gives it,
which fixes the task: `softmax` (classification), `mse` (regression), `multitask`
(joint) (`BASELINE_NAMES`).

Adding a method: a module here with a `Method`, one line in `METHODS`, known-answer tests
against the paper's formula and its reference code (CONTRIBUTING.md).
"""

import dataclasses
import functools
import inspect
from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from hyperproto import losses

Array = jax.Array

TASKS = ('classification', 'regression', 'joint')


def max_cos_and_score(z_BxD: Array, scores_BxC: Array, protos) -> dict[str, Array]:
  """`max_cos`, the max cosine to the class prototypes, and `max_score`, the max of the
  method's own scores (a logit, a scaled cosine, or minus a distance)."""
  return {'max_cos': jnp.max(losses.cosine_matrix(z_BxD, protos['classes']), axis=-1),
          'max_score': jnp.max(scores_BxC, axis=-1)}


# The functions that take hyper-parameters (`Method.bind`).
_TAKE_HPARAMS = ('loss', 'scores', 'regression_loss', 'regress', 'state_init',
                 'state_update', 'state_refresh', 'refresh_every')


def _bind(fn: Optional[Callable[..., Any]], hparams: Mapping[str, Any]):
  """`fn` with the hyper-parameters its signature names bound by keyword."""
  if fn is None:
    return None
  taken = inspect.signature(fn).parameters
  kwargs = {k: v for k, v in hparams.items() if k in taken}
  return functools.partial(fn, **kwargs) if kwargs else fn


@dataclasses.dataclass(frozen=True)
class Method:
  """A training method; see the module docstring.

  Attributes:
    name: `config.method`.
    paper: the paper and its reference code, for docs and errors.
    placement: the default `config.prototypes.placement` (the paper's construction;
      `auto` for HPN), or None for a method without prototypes (the baseline).
    loss: the class part's per-example loss, (z_BxD, protos, labels_B, **hparams) -> B.
    scores: (z_BxD, protos, **hparams) -> B x C; argmax predicts.
    regression_loss: the regression part's per-example loss,
      (z_BxD, protos, r_B, **hparams) -> B, or None (a classification method).
    regress: (z_BxD, protos, **hparams) -> the prediction r in [-1, 1] (B), or None.
    open_set: (z_BxD, scores_BxC, protos) -> {score name: B}.
    output_dim: (task, num_classes, dim) -> the width of the network's last layer.
    defaults: hyper-parameters (names -> defaults), set through
      `config.method_kwargs.<name>`.
    check: (num_classes, dim) -> None or an error message.
    default_dim: (num_classes, the config's default dim) -> the dim to use when the
      user leaves it open; `check` must accept it.
    state_init: (classes_CxD, seed, **hparams) -> the method's initial training state
      (a dict of NumPy arrays), or None for a method without state.
    state_update: the in-step update of that state (see the module docstring).
    state_refresh: the host-side update of that state (see the module docstring).
    refresh_every: (steps_per_epoch, **hparams) -> steps between `state_refresh` calls.
  """
  name: str
  paper: str
  placement: Optional[str]
  loss: Callable[..., Array]
  scores: Callable[..., Array]
  regression_loss: Optional[Callable[..., Array]] = None
  regress: Optional[Callable[..., Array]] = None
  open_set: Callable[..., dict[str, Array]] = max_cos_and_score
  output_dim: Callable[[str, int, int], int] = lambda task, num_classes, dim: dim
  defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  check: Callable[[int, int], Optional[str]] = lambda num_classes, dim: None
  default_dim: Callable[[int, int], int] = lambda num_classes, dim: dim
  state_init: Optional[Callable[..., dict[str, np.ndarray]]] = None
  state_update: Optional[Callable[..., dict[str, Array]]] = None
  state_refresh: Optional[Callable[..., dict[str, np.ndarray]]] = None
  refresh_every: Callable[..., int] = lambda steps_per_epoch: steps_per_epoch

  @property
  def tasks(self) -> tuple[str, ...]:
    """The tasks it trains: classification, and regression and joint with a regression
    part."""
    return TASKS if self.regression_loss is not None else ('classification',)

  def hparams(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`defaults` updated with `overrides`; unknown names are an error."""
    unknown = sorted(set(overrides) - set(self.defaults))
    if unknown:
      accepted = ', '.join(f'{k}={v!r}' for k, v in self.defaults.items()) or 'none'
      raise ValueError(f'Unknown method_kwargs {unknown} for method {self.name!r}; '
                       f'accepted: {accepted}.')
    return {**self.defaults, **overrides}

  def bind(self, overrides: Mapping[str, Any] = ()) -> 'Method':
    """This method with its hyper-parameters (`defaults` updated with `overrides`)
    bound: each function then takes only its data arguments, and `defaults` holds the
    bound values."""
    hparams = self.hparams(dict(overrides))
    bound = {name: _bind(getattr(self, name), hparams) for name in _TAKE_HPARAMS}
    return dataclasses.replace(self, defaults=hparams, **bound)


# The method modules import `Method` from here, so they come after it.
# pylint: disable=g-import-not-at-top,wrong-import-position
from hyperproto.methods import baseline
from hyperproto.methods import busemann
from hyperproto.methods import dl2pa
from hyperproto.methods import ebv
from hyperproto.methods import etf
from hyperproto.methods import hpn
from hyperproto.methods import maxsep

METHODS: dict[str, Method] = {
    'hpn': hpn.METHOD,
    'baseline': baseline.METHOD,
    'etf': etf.METHOD,
    'maxsep': maxsep.METHOD,
    'ebv': ebv.METHOD,
    'dl2pa': dl2pa.METHOD,
    'busemann': busemann.METHOD,
}

# The baseline by the name each of the paper's tables gives it, and the task it trains.
BASELINE_NAMES = {'softmax': 'classification', 'mse': 'regression', 'multitask': 'joint'}
_TASK_BASELINE = {task: name for name, task in BASELINE_NAMES.items()}


def names() -> list[str]:
  """Every name `config.method` accepts."""
  return [*METHODS, *BASELINE_NAMES]


def get(name: str, task: str) -> Method:
  """The method `config.method=name` trains `task` with; a clear error for an unknown
  name, and for a task the method does not train."""
  if task not in TASKS:
    raise ValueError(f'Unknown task {task!r}; use one of {TASKS}.')
  if name in BASELINE_NAMES:
    if task != BASELINE_NAMES[name]:
      raise ValueError(
          f'method={name} is the {BASELINE_NAMES[name]} baseline, but the task is '
          f'{task!r}: use method={_TASK_BASELINE.get(task, "baseline")} (or '
          f'method=baseline, the baseline of any task).')
    name = 'baseline'
  if name not in METHODS:
    raise ValueError(f'Unknown method {name!r}; use one of {names()}.')
  method = METHODS[name]
  if task not in method.tasks:
    raise ValueError(f'method={name!r} ({method.paper}) is a classification method; got '
                     f'task={task!r}. Use method=hpn or the baseline for regression and '
                     f'the joint task.')
  return method
