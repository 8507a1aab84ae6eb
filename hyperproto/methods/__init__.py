"""The fixed-classifier methods that followed HPN, behind one interface.

Each method is a module of this package that defines a `Method`; `METHODS` maps its name
(`config.method`) to it. A method is classification only: the network's `dim`-d output
`z` is compared with C fixed class prototypes (`protos['classes']`, C x dim, placed once
by `hyperproto.prototypes`, by default with the method's own construction `placement`),
and it defines

  * `loss(z_BxD, protos, labels_B, **hparams)`: the per-example loss (float32, B);
    reduction over the batch and masking are the objective's (`objectives.Objective`);
  * `scores(z_BxD, protos, **hparams)`: B x C float32 scores whose argmax is the
    prediction and whose max is the open-set score (cosines, logits, or minus a
    distance);
  * `defaults`: its hyper-parameters (`config.method_kwargs.<name>`) and their defaults;
  * `check(num_classes, dim)`: None, or an error message when the method cannot run
    with that output dimension (the fix included);
  * `default_dim(num_classes, dim)`: the output dimension a dataset config uses when
    its `:dim=` is left open, given the config's own default `dim` (max-separation:
    C - 1, whatever the config's default; ETF: at least C - 1).

`protos` is the whole dict the steps receive: `classes`, plus whatever the method keeps
in it (DL2PA's label-to-prototype assignment).

A method may carry training state of its own (DL2PA: a per-class feature memory and the
label-to-prototype assignment). It lives in `TrainState.method_state` (checkpointed with
the rest, so resume stays exact), is merged into `protos` for the loss and the scores,
and changes in two places:

  * `state_update(state, z_BxD, labels_B, mask_B, axis_name, **hparams)`, inside the
    jitted train step, from statistics summed over the devices (`psum` over
    `axis_name`): the same on any number of devices and processes, no host sync;
  * `state_refresh(state, classes_CxD, **hparams)`, on the host (NumPy, SciPy) every
    `refresh_every(steps_per_epoch, hparams)` steps, in every process from the same
    replicated state, so every process computes the same result.

HPN itself and the softmax / MSE baselines live in `objectives` (they have regression and
joint variants).

Adding a method: a module here with a `Method`, one line in `METHODS`, known-answer tests
against the paper's formula and its reference code (CONTRIBUTING.md).
"""

import dataclasses
from typing import Any, Callable, Mapping, Optional

import jax
import numpy as np

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Method:
  """A fixed-classifier method; see the module docstring.

  Attributes:
    name: `config.method`.
    paper: the paper and its reference code, for docs and errors.
    placement: the default `config.prototypes.method` (the paper's construction).
    loss: per-example loss, (z_BxD, protos, labels_B, **hparams) -> B.
    scores: (z_BxD, protos, **hparams) -> B x C; argmax predicts, max scores open-set.
    defaults: hyper-parameters (names -> defaults), set through `config.method_kwargs.<name>`.
    check: (num_classes, dim) -> None or an error message.
    default_dim: (num_classes, the config's default dim) -> the dim to use when the
      user leaves it open; `check` must accept it.
    state_init: (classes_CxD, seed, **hparams) -> the method's initial training state
      (a dict of NumPy arrays), or None for a method without state.
    state_update: the in-step update of that state (see the module docstring).
    state_refresh: the host-side update of that state (see the module docstring).
    refresh_every: (steps_per_epoch, hparams) -> steps between `state_refresh` calls.
  """
  name: str
  paper: str
  placement: str
  loss: Callable[..., Array]
  scores: Callable[..., Array]
  defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  check: Callable[[int, int], Optional[str]] = lambda num_classes, dim: None
  default_dim: Callable[[int, int], int] = lambda num_classes, dim: dim
  state_init: Optional[Callable[..., dict[str, np.ndarray]]] = None
  state_update: Optional[Callable[..., dict[str, Array]]] = None
  state_refresh: Optional[Callable[..., dict[str, np.ndarray]]] = None
  refresh_every: Callable[[int, Mapping[str, Any]], int] = (
      lambda steps_per_epoch, hparams: steps_per_epoch)

  def hparams(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`defaults` updated with `overrides`; unknown names are an error."""
    unknown = sorted(set(overrides) - set(self.defaults))
    if unknown:
      accepted = ', '.join(f'{k}={v!r}' for k, v in self.defaults.items()) or 'none'
      raise ValueError(f'Unknown method_kwargs {unknown} for method {self.name!r}; '
                       f'accepted: {accepted}.')
    return {**self.defaults, **overrides}


# The method modules import `Method` from here, so they come after it.
# pylint: disable=g-import-not-at-top,wrong-import-position
from hyperproto.methods import busemann
from hyperproto.methods import dl2pa
from hyperproto.methods import ebv
from hyperproto.methods import etf
from hyperproto.methods import maxsep

METHODS: dict[str, Method] = {
    'etf': etf.METHOD,
    'maxsep': maxsep.METHOD,
    'ebv': ebv.METHOD,
    'dl2pa': dl2pa.METHOD,
    'busemann': busemann.METHOD,
}
