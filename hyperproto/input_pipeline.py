"""What the trainer feeds its steps: one protocol for both kinds of dataset.

A dataset is held in memory (`data.base.Dataset`: small images, put on every device
once) or streamed (`data.streaming.StreamingDataset`: large images, decoded batch by
batch on the host). Both implement `InputDataset`: the counts (`num_examples`,
`steps_per_epoch`), the global batch of a training step (`train_batch`) and the
evaluation batches (`eval_batches(split, batch_size, process_index, process_count)`:
this process's share of each global batch, the last padded and masked) and `close()`
(a streamed dataset keeps its evaluation workers between passes; the trainer stops them
at the end of the run).

How training input reaches the step differs, and a `TrainInput` hides it from the
trainer; `train_input` picks the one of the dataset's kind:

  ResidentInput   the training split goes to every device once, as uint8; each step
                  gathers, augments and mixes its own examples there
                  (`data.device_input`), so it is fed nothing but the state.
  StreamingInput  each host decodes and augments its share of every global batch
                  (grain workers, a few batches ahead); the step takes it as an argument.

`TrainInput.step_fn` returns `fn(state, protos) -> (state, metrics)`, one call per
training step. Either way batch `step` is a pure function of (seed, step), so a resumed
run needs no input state. `eval_batches` places the evaluation batches of either kind.
"""

import functools
from typing import Any, Callable, Iterator, Protocol

import jax
import ml_collections

from hyperproto import parallel
from hyperproto.data import base
from hyperproto.data import device_input

# (state, protos) -> (state, metrics): one training step, input included.
StepFn = Callable[[Any, Any], tuple[Any, dict]]
# The fields of a resident split that training uses.
TRAIN_FIELDS = ('image', 'label', 'target')


class InputDataset(Protocol):
  """What the trainer asks of a dataset, of either kind."""
  info: base.DatasetInfo

  def num_examples(self, split: str) -> int:
    ...

  def steps_per_epoch(self, split: str, batch_size: int) -> int:
    ...

  def train_batch(self, split: str, step: int, batch_size: int, seed: int) -> dict:
    ...

  def eval_batches(self, split: str, batch_size: int, process_index: int = 0,
                   process_count: int = 1) -> Iterator[dict]:
    ...

  def close(self) -> None:
    """Stops whatever the dataset runs in the background (a streamed one's workers)."""
    ...


class TrainInput(Protocol):
  """The training input of a run: which per-device step runs, and what it is fed."""

  def step_fn(self, train_step: Callable, start_step: int, num_steps: int) -> StepFn:
    """`train_step(state, batch, protos)` (per device, keyword arguments bound) as one
    call per step, fed the batches of steps start_step + 1, ..., num_steps."""
    ...


def train_input(dataset: InputDataset, config: ml_collections.ConfigDict,
                mesh: jax.sharding.Mesh) -> TrainInput:
  """The `TrainInput` of `dataset`'s kind, for `config.data.train_split`."""
  kind = ResidentInput if isinstance(dataset, base.Dataset) else StreamingInput
  return kind(dataset, config, mesh)


class ResidentInput:
  """A split held in memory: on every device once, batches gathered inside the step."""

  def __init__(self, dataset: base.Dataset, config: ml_collections.ConfigDict,
               mesh: jax.sharding.Mesh):
    self._dataset, self._split, self._mesh = dataset, config.data.train_split, mesh
    self._kind = config.parallel
    self._gather = dict(global_batch=config.batch_size, augment=config.data.augment,
                        mixup_alpha=float(config.data.mixup_alpha))

  def step_fn(self, train_step: Callable, start_step: int, num_steps: int) -> StepFn:
    del start_step, num_steps  # The step gathers the batch of `state.step`.
    arrays = self._dataset.splits[self._split]
    data = parallel.replicate({k: v for k, v in arrays.items() if k in TRAIN_FIELDS},
                              self._mesh)
    mapped = parallel.map_step(
        functools.partial(resident_train_step, train_step=train_step, **self._gather),
        self._mesh, kind=self._kind, batch_argnums=(), donate_argnums=(0,))
    return lambda state, protos: mapped(state, data, protos)


def resident_train_step(state, data: dict, protos, *, train_step: Callable,
                        global_batch: int, augment: str,
                        mixup_alpha: float = 0.0) -> tuple[Any, dict]:
  """`train_step` on this device's part of the global batch of `state.step`, gathered
  (augmented, and mixed where `mixup_alpha` > 0) on the device from the whole resident
  training split `data`; see `data.device_input`: a pure function of (state.rng,
  state.step)."""
  batch = device_input.local_batch(data, state.rng, state.step, axis_name=parallel.AXIS,
                                   global_batch=global_batch, augment=augment,
                                   mixup_alpha=mixup_alpha)
  return train_step(state, batch, protos)


class StreamingInput:
  """A streamed split: each host decodes and augments its share of every batch."""

  def __init__(self, dataset, config: ml_collections.ConfigDict,
               mesh: jax.sharding.Mesh):
    if config.data.augment != 'none' or config.data.mixup_alpha:
      raise ValueError(f'data.augment={config.data.augment!r} and data.mixup_alpha are '
                       f'for datasets held on the device; {dataset.info.name} augments '
                       f'while decoding: set data.augment=none and data.mixup_alpha=0.')
    self._dataset, self._split, self._mesh = dataset, config.data.train_split, mesh
    self._kind, self._batch_size = config.parallel, config.batch_size
    self._seed = config.seed

  def step_fn(self, train_step: Callable, start_step: int, num_steps: int) -> StepFn:
    batches = self._dataset.train_batches(
        self._split, start_step, self._batch_size, self._seed, jax.process_index(),
        jax.process_count(), num_steps=num_steps - start_step)
    mapped = parallel.map_step(train_step, self._mesh, kind=self._kind,
                               donate_argnums=(0,))

    def step_fn(state, protos):
      batch = parallel.batch_to_devices(next(batches), self._mesh, self._kind,
                                        process_local=True)
      return mapped(state, batch, protos)

    return step_fn


def eval_batches(dataset: InputDataset, split: str, batch_size: int,
                 mesh: jax.sharding.Mesh, kind: str) -> Iterator[Any]:
  """The evaluation batches of `split` on the devices, as `map_step(kind)` takes them:
  each process reads its own share of every global batch (either kind of dataset)."""
  for batch in dataset.eval_batches(split, batch_size, jax.process_index(),
                                    jax.process_count()):
    yield parallel.batch_to_devices(batch, mesh, kind, process_local=True)
