"""Training and evaluation: `train_and_evaluate(config, workdir)`.

`train_step` and `eval_step` are pure, module-level and written **per device**: the loss
is a sum over the device's examples and the gradients are summed over the mapped axis
(`psum`), so N devices x b examples make the same update as one device x N*b (the
original sums its loss over the batch). BatchNorm synchronises its statistics over the
same axis. `parallel.map_step` runs them under jit + shard_map (or pmap) on a 1-D mesh.
What each step is fed (a split held on the devices, or each host's streamed share of the
batch) is `input_pipeline`'s business: the trainer has one path for both.

`train_and_evaluate` reads as its set-up steps (small functions below), then the loop.
The workdir holds config.json, metrics.jsonl, TensorBoard events, prototypes.npy
(+ .json), checkpoints/, profile/ (with `config.profile_steps`) and, at the end,
results.json and plots (curves.png, prototypes.png). Running the same command again
resumes from the newest checkpoint; SIGINT (Ctrl-C) and SIGTERM save a checkpoint before
stopping (`TrainingInterrupted`; main.py then exits with `interrupts.EXIT_STATUS`).
"""

import dataclasses
import functools
import json
import os
import signal
import threading
import time
from typing import Any, Mapping, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils
import ml_collections
import numpy as np
import optax
from absl import logging

from hyperproto import checkpointing
from hyperproto import config_lib
from hyperproto import data as data_lib
from hyperproto import input_pipeline
from hyperproto import interrupts
from hyperproto import models
from hyperproto import objectives
from hyperproto import optim
from hyperproto import parallel
from hyperproto import prototypes as protos_lib
from hyperproto.prototypes import plot as protos_plot
from hyperproto import writers
from hyperproto.data import device_input
from hyperproto.data import subsets

AXIS = parallel.AXIS

# `protos` (below, and in the steps): the fixed arrays the objective scores outputs
# against, never trained, replicated on every device (`Objective.prototypes`):
# `classes` (C x D class prototypes; HPN, the fixed-classifier methods) and/or `upper`
# (HPN regression's prototype e_0); {} for the softmax baseline. The steps add the
# method's own state to it (`TrainState.method_state`: DL2PA's feature memory and
# label-to-prototype assignment), so the objective finds everything in one mapping.
Protos = Mapping[str, jax.Array]

# What `train_step` returns besides the metric sums: values of the step, replicated,
# that a log window averages (not sums): the learning rate and the global norms of the
# gradient, the update and the parameters after the update.
STEP_SCALARS = ('lr', 'grad_norm', 'update_norm', 'param_norm')


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array
  # A method's own training state (DL2PA's feature memory and label-to-prototype
  # assignment; `hyperproto.methods`), merged into `protos` by the steps; {} otherwise.
  method_state: Any = flax.struct.field(default_factory=dict)


class TrainingInterrupted(Exception):
  """Raised after SIGINT / SIGTERM once a checkpoint of `step` is saved."""

  def __init__(self, step: int):
    super().__init__(f'Training interrupted; checkpoint saved at step {step}. Run the '
                     f'same command again to resume.')
    self.step = step


def create_train_state(rng: jax.Array, model: nn.Module, tx: optax.GradientTransformation,
                       image_shape: tuple[int, ...],
                       mesh: Optional[jax.sharding.Mesh] = None) -> TrainState:
  """Initial parameters, BatchNorm statistics and optimiser state (one compiled call).

  Initialisers draw with the non-partitionable threefry: identical values on every
  platform, and on XLA:CPU the partitionable variant (JAX's default) takes seconds to
  compile for each N-d parameter shape (measured: 9 s vs 1.5 s for the demo CNN). The
  state is replicated, so partitionability buys nothing here. With a `mesh`, the state
  is created replicated over it (on every host of a multi-host run).
  """
  out_shardings = (None if mesh is None else
                   jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))

  @functools.partial(jax.jit, out_shardings=out_shardings)
  def init(rng):
    init_rng, rng = jax.random.split(rng)
    variables = model.init(init_rng, jnp.zeros((1, *image_shape), jnp.float32),
                           train=False)
    params = variables['params']
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get('batch_stats', {}),
                      opt_state=tx.init(params), rng=rng)

  with jax.threefry_partitionable(False):
    return init(rng)


def normalize_images(images: jax.Array, mean, std) -> jax.Array:
  """uint8 images -> float32, scaled to [0, 1], then per-channel standardised."""
  x = images.astype(jnp.float32) / 255.0
  return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def train_step(state: TrainState, batch: Mapping[str, jax.Array], protos: Protos, *,
               model: nn.Module, tx: optax.GradientTransformation,
               objective: objectives.Objective, mean, std,
               learning_rate: Optional[optax.Schedule] = None
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One SGD step on this device's part of the global batch (see the module docstring).

  Returns the new state and the step's metrics: sums over the global batch (`loss`,
  `count`, and `correct` / `abs_error` where the task has them) and `STEP_SCALARS`, the
  global norms of the summed gradient, of the update and of the updated parameters
  (computed from the arrays the update uses anyway; replicated) and, given the
  optimiser's `learning_rate` schedule, the rate of this step. A batch with mixup
  partners (`mix_image`, `mix_label`, `mix_lam`; `data.device_input.local_batch`)
  trains on the mixed images with lambda L(y) + (1 - lambda) L(y'); its metrics score
  the labels y.
  """
  images = normalize_images(batch['image'], mean, std)
  if 'mix_lam' in batch:  # Normalising is affine, so mixing after it is mixing before.
    images = device_input.mix_images(
        images, normalize_images(batch['mix_image'], mean, std), batch['mix_lam'])
  count = jax.lax.psum(jnp.asarray(images.shape[0], jnp.float32), AXIS)
  protos = {**protos, **state.method_state}

  def loss_fn(params):
    z, updates = model.apply({'params': params, 'batch_stats': state.batch_stats},
                             images, train=True, mutable=['batch_stats'])
    loss_sum = batch_loss_sum(objective, z, batch, protos)
    scale = 1.0 / count if objective.reduction == 'mean' else 1.0
    return loss_sum * scale, (loss_sum, z, updates['batch_stats'])

  # Make the replicated params device-varying so that each device takes the gradient of
  # its own loss; the explicit psum then sums them (under shard_map's type checking, the
  # gradient w.r.t. replicated params would otherwise already be summed implicitly).
  params = jax.lax.pcast(state.params, AXIS, to='varying')
  grads, (loss_sum, z, batch_stats) = jax.grad(loss_fn, has_aux=True)(params)
  grads = jax.lax.psum(grads, AXIS)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  new_state = state.replace(step=state.step + 1,
                            params=optax.apply_updates(state.params, updates),
                            batch_stats=batch_stats, opt_state=opt_state)
  if state.method_state:
    new_state = new_state.replace(method_state=objective.update_method_state(
        state.method_state, jax.lax.stop_gradient(z), batch, AXIS))
  sums = objective.metric_sums(jax.lax.stop_gradient(z), batch, protos)
  sums['loss'] = loss_sum
  scalars = dict(grad_norm=optax.global_norm(grads),
                 update_norm=optax.global_norm(updates),
                 param_norm=optax.global_norm(new_state.params))
  if learning_rate is not None:  # optax's step count is state.step.
    scalars['lr'] = jnp.asarray(learning_rate(state.step), jnp.float32)
  return new_state, dict(jax.lax.psum(sums, AXIS), **scalars)


def batch_loss_sum(objective: objectives.Objective, z: jax.Array,
                   batch: Mapping[str, jax.Array], protos: Protos) -> jax.Array:
  """The loss summed over this device's examples; with mixup partners (`mix_label`,
  `mix_lam`) lambda L(z, y) + (1 - lambda) L(z, y'), the references' `mixup_criterion`
  (ETF's E and DL2PA's weights come from each label set's counts over the global
  batch, which y' permutes, so they are the references' E of y)."""
  loss_sum = objective.loss(z, batch, protos, reduction='sum')
  if 'mix_lam' not in batch:
    return loss_sum
  lam = batch['mix_lam'][0]
  return lam * loss_sum + (1.0 - lam) * objective.loss(
      z, dict(batch, label=batch['mix_label']), protos, reduction='sum')


def eval_step(state: TrainState, batch: Mapping[str, jax.Array], protos: Protos, *,
              model: nn.Module, objective: objectives.Objective, mean, std,
              per_class: bool = False, open_set: bool = False) -> dict[str, jax.Array]:
  """Metric sums over the global batch; padded examples (mask 0) do not count.

  `per_class` adds `class_count` and `class_correct` (C each). `open_set` (the batch has
  `known`, 0 for held-out classes, see `data.subsets`): the metrics count the known
  examples only, `num_unknown` counts the others, and `open_set` holds, for every
  example of the global batch in its order (gathered over AXIS), the open-set scores
  (`scores`: `Objective.open_set_scores`), whether it is known and whether it is real.
  """
  protos = {**protos, **state.method_state}
  images = normalize_images(batch['image'], mean, std)
  z = model.apply({'params': state.params, 'batch_stats': state.batch_stats}, images,
                  train=False)
  if not (per_class or open_set):
    return jax.lax.psum(objective.metric_sums(z, batch, protos), AXIS)
  mask_B = batch['mask'].astype(jnp.float32)
  known_B = batch['known'].astype(jnp.float32) if open_set else jnp.ones_like(mask_B)
  sums = objective.metric_sums(z, dict(batch, mask=mask_B * known_B), protos)
  if per_class:
    onehot_BxC = jax.nn.one_hot(batch['label'], objective.num_classes) * (
        mask_B * known_B)[:, None]
    correct_B = objective.predict(z, protos)['label'] == batch['label']
    sums['class_count'] = jnp.sum(onehot_BxC, axis=0)
    sums['class_correct'] = jnp.sum(onehot_BxC * correct_B[:, None], axis=0)
  if open_set:
    sums['num_unknown'] = jnp.sum(mask_B * (1.0 - known_B))
  sums = jax.lax.psum(sums, AXIS)
  if open_set:
    sums['open_set'] = dict(
        scores={k: _gather(v) for k, v in objective.open_set_scores(z, protos).items()},
        known=_gather(mask_B * known_B), real=_gather(mask_B))
  return sums


def _gather(x_B: jax.Array) -> jax.Array:
  """The global batch's values of a per-device vector, on every device, in the global
  batch's order: a psum of zeros with each device's slice in place (exact; its result is
  replicated by type, which shard_map's out_specs=P() needs and all_gather's is not)."""
  n, b = jax.lax.axis_size(AXIS), x_B.shape[0]
  full = jnp.zeros((n * b,), x_B.dtype)
  return jax.lax.psum(
      jax.lax.dynamic_update_slice(full, x_B, (jax.lax.axis_index(AXIS) * b,)), AXIS)


# --- Set-up: the named steps of train_and_evaluate -------------------------------------


def check_config(config: ml_collections.ConfigDict) -> None:
  """Clear errors for the options the trainer reads itself, before anything is loaded."""
  if config.data.augment not in device_input.AUGMENTATIONS:
    raise ValueError(f'Unknown data.augment={config.data.augment!r}; use one of '
                     f'{device_input.AUGMENTATIONS}.')
  if config.parallel not in parallel.MAPPERS:
    raise ValueError(f'Unknown parallel={config.parallel!r}; use one of '
                     f'{parallel.MAPPERS}.')
  if config.data.mixup_alpha < 0:
    raise ValueError(f'data.mixup_alpha={config.data.mixup_alpha}: lambda ~ Beta(alpha, '
                     f'alpha) needs alpha > 0 (0: no mixup).')
  if config.data.mixup_alpha and config.task != 'classification':
    raise ValueError(f'data.mixup_alpha mixes class labels; task={config.task!r} has '
                     f'regression targets. Set data.mixup_alpha=0.')
  parse_profile_steps(config.profile_steps)


def load_data(config: ml_collections.ConfigDict
              ) -> tuple[input_pipeline.InputDataset, dict[str, Any], int]:
  """The dataset with `data.subsets`' options applied; the options; and the number of
  classes before `unknown_classes` were held out."""
  loader_kwargs, subset_options = subsets.split_options(dict(config.data.kwargs.items()))
  if config.data.data_dir:
    loader_kwargs['data_dir'] = config.data.data_dir
  dataset = data_lib.load(config.data.name, **loader_kwargs)
  num_loaded_classes = dataset.info.num_classes
  dataset = subsets.apply(dataset, config.data.train_split, **subset_options)
  return dataset, subset_options, num_loaded_classes


@dataclasses.dataclass(frozen=True)
class ExtraMetrics:
  """The evaluation metrics a `data.subsets` option asks for: per-class accuracy (and
  the many / medium / few-shot groups, from `train_counts`) and open-set scores."""
  per_class: bool = False
  open_set: bool = False
  train_counts: Optional[np.ndarray] = None  # training examples of each class
  unknown_classes: tuple[int, ...] = ()  # held out, in the loaded dataset's labels

  def results(self, info: data_lib.DatasetInfo) -> dict[str, Any]:
    """What results.json needs to interpret them."""
    out = {}
    if self.per_class:  # The classes and their counts.
      out.update(class_names=list(info.class_names),
                 train_class_counts=[int(n) for n in self.train_counts])
    if self.open_set:
      out['unknown_classes'] = list(self.unknown_classes)
    return out


def extra_metrics(config: ml_collections.ConfigDict, dataset, subset_options: dict,
                  num_loaded_classes: int,
                  objective: objectives.Objective) -> ExtraMetrics:
  """Per-class metrics with any `data.subsets` option (for a task with classes),
  open-set ones with `unknown_classes`; clear errors where they cannot be had."""
  open_set = subset_options.get('unknown_classes') is not None
  per_class = objective.has_classes and (open_set or any(
      subset_options.get(k) is not None for k in ('imbalance', 'train_per_class')))
  if open_set and not objective.has_classes:
    raise ValueError(f'data.kwargs.unknown_classes scores known vs unknown classes; '
                     f'task={objective.task!r} predicts none. Use task=classification '
                     f'or joint.')
  if open_set and 'known' not in dataset.splits.get(config.data.eval_split, {}):
    raise ValueError(f'data.kwargs.unknown_classes needs an evaluation split other than '
                     f'the training split; data.eval_split is {config.data.eval_split!r}.')
  return ExtraMetrics(
      per_class=per_class, open_set=open_set,
      train_counts=(subsets.train_class_counts(dataset, config.data.train_split)
                    if per_class else None),
      unknown_classes=(tuple(subsets.parse_unknown_classes(
          subset_options['unknown_classes'], num_loaded_classes)) if open_set else ()))


def make_objective(config: ml_collections.ConfigDict,
                   info: data_lib.DatasetInfo) -> objectives.Objective:
  has_regression = config.task in ('regression', 'joint')
  if has_regression and info.target_range is None:
    raise ValueError(f'Dataset {info.name!r} has no regression target; use '
                     f'task=classification.')
  return objectives.Objective(
      task=config.task, method=config.method, dim=config.dim,
      num_classes=info.num_classes,
      target_range=tuple(info.target_range) if has_regression else (-1.0, 1.0),
      weight=config.joint_weight, reduction=config.loss_reduction,
      hparams=config_lib.method_hparams(config))


def prepare_workdir(workdir: str) -> str:
  """Creates the workdir and checks that it is writable, with a clear error if not."""
  if not workdir:
    raise ValueError('No workdir given: pass --workdir=DIR.')
  workdir = os.path.abspath(os.path.expanduser(workdir))
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f'.write_test.{os.getpid()}')
    with open(probe, 'w') as f:
      f.write('ok')
    os.remove(probe)
  except OSError as e:
    raise PermissionError(
        f'Cannot write to the workdir {workdir} ({e.strerror}). Pass a --workdir in a '
        f'directory you can write to.') from e
  return workdir


def prepare_prototypes(config: ml_collections.ConfigDict,
                       objective: objectives.Objective, workdir: str,
                       class_names: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
  """Loads the run's prototypes from the workdir, or places and saves them.

  Placements from class-name embeddings (`embedding`, `semantic`) embed the dataset's
  `class_names` unless `config.prototypes.kwargs` gives `embeddings` or `class_names`.
  """
  path = os.path.join(workdir, 'prototypes.npy')
  placement = config_lib.placement(config)
  class_protos = None
  if objective.class_prototype_dim is not None:
    if os.path.exists(path):
      class_protos, _ = protos_lib.load(path)
    else:
      place = protos_lib.get_or_place if config.prototypes.cache else protos_lib.place
      kwargs = config.prototypes.kwargs.to_dict()
      if (placement in ('embedding', 'semantic')
          and not {'embeddings', 'class_names'} & set(kwargs)):
        kwargs['class_names'] = tuple(class_names)
      class_protos = place(
          placement, objective.num_classes, objective.class_prototype_dim,
          seed=config.prototypes.seed, **kwargs)
  protos = objective.prototypes(class_protos)
  if protos and not os.path.exists(path) and jax.process_index() == 0:
    saved = protos.get('classes', protos.get('upper', np.zeros(0))[None])
    # `method`: the placement that ran (the key of every prototypes file), in place of
    # the config's `placement`, which may say 'default'.
    settings = {k: v for k, v in config.prototypes.to_dict().items() if k != 'placement'}
    meta = dict(settings, method=placement, task=objective.task,
                rows='classes' if 'classes' in protos else 'regression prototype e_0',
                metrics=protos_lib.separation_metrics(saved) if len(saved) > 1 else {})
    protos_lib.save(path, saved, meta)
  return protos


@dataclasses.dataclass(frozen=True)
class Plan:
  """How long the run is and when it evaluates, in steps."""
  num_steps: int
  steps_per_epoch: int
  eval_every: int  # 0: only at the end
  eval_batch_size: int


def plan_run(config: ml_collections.ConfigDict, dataset: input_pipeline.InputDataset,
             mesh: jax.sharding.Mesh) -> Plan:
  """The run's length and evaluation interval; clear errors for batches that the
  devices do not divide."""
  per_device = parallel.check_batch_size(config.batch_size, mesh)
  eval_batch_size = config.eval_batch_size or config.batch_size
  parallel.check_batch_size(eval_batch_size, mesh, 'eval_batch_size')
  steps_per_epoch = dataset.steps_per_epoch(config.data.train_split, config.batch_size)
  num_steps = optim.total_steps(config, steps_per_epoch)
  logging.info('%d devices (%s), global batch %d (%d per device), %d steps '
               '(%.1f epochs of %d steps).', mesh.size, mesh.devices.flat[0].platform,
               config.batch_size, per_device, num_steps, num_steps / steps_per_epoch,
               steps_per_epoch)
  eval_every = config.eval_every_steps or int(round(config.eval_every_epochs
                                                    * steps_per_epoch))
  return Plan(num_steps=num_steps, steps_per_epoch=steps_per_epoch,
              eval_every=eval_every, eval_batch_size=eval_batch_size)


def init_train_state(config: ml_collections.ConfigDict, model: nn.Module,
                     tx: optax.GradientTransformation, objective: objectives.Objective,
                     protos: Mapping[str, np.ndarray], info: data_lib.DatasetInfo,
                     mesh: jax.sharding.Mesh) -> TrainState:
  """The state a new run starts from, replicated over the mesh: initial parameters (the
  backbone from `config.model.init_npz` where given) and the method's own state (which
  the restore of a checkpoint needs the structure of)."""
  state = create_train_state(jax.random.PRNGKey(config.seed), model, tx, info.image_shape,
                             mesh)
  if config.model.init_npz:  # Pretrained ViT weights (a local .npz); the head stays new.
    params = models.load_vit_npz(config.model.init_npz, jax.device_get(state.params))
    state = state.replace(params=parallel.replicate(params, mesh))
    logging.info('Initialised the backbone from %s.', config.model.init_npz)
  if objective.has_method_state:
    state = state.replace(method_state=parallel.replicate(
        objective.init_method_state(protos, config.seed), mesh))
  return state


def open_writer(config: ml_collections.ConfigDict, workdir: str, start_step: int,
                num_steps: int, protos: Mapping[str, np.ndarray]) -> writers.MetricWriter:
  """The metric writer (process 0 writes). A new run first writes config.json and the
  class prototypes' separation metrics (`protos/...`, step 0); a resumed one warns
  about fields that differ from the config it started with."""
  is_main = jax.process_index() == 0
  config_path = os.path.join(workdir, 'config.json')
  writer = writers.MetricWriter(workdir, enabled=is_main)
  if start_step > 0:
    logging.info('Resuming from step %d of %d.', start_step, num_steps)
    if os.path.exists(config_path) and (diff := _config_diff(config_path, config)):
      logging.warning('The config differs from the one this workdir started with, in: '
                      '%s.', ', '.join(diff))
  elif is_main:
    writers.write_json(config_path, json.loads(config.to_json()))
    if 'classes' in protos:
      metrics = protos_lib.separation_metrics(protos['classes'])
      writer.write(0, {f'protos/{k}': v for k, v in metrics.items()
                       if isinstance(v, float)})
  return writer


def make_evaluate(config: ml_collections.ConfigDict, dataset, model: nn.Module,
                  objective: objectives.Objective, info: data_lib.DatasetInfo,
                  extra: ExtraMetrics, protos_dev: Protos, mesh: jax.sharding.Mesh,
                  batch_size: int):
  """`evaluate(state) -> metrics` over `config.data.eval_split`."""
  eval_fn = parallel.map_step(
      functools.partial(eval_step, model=model, objective=objective, mean=info.mean,
                        std=info.std, per_class=extra.per_class,
                        open_set=extra.open_set), mesh, kind=config.parallel)
  return functools.partial(evaluate, eval_fn, protos=protos_dev, dataset=dataset,
                           split=config.data.eval_split, batch_size=batch_size,
                           mesh=mesh, kind=config.parallel,
                           train_counts=extra.train_counts)


def _preemption_sync_available() -> bool:
  try:
    multihost_utils.reached_preemption_sync_point(0)
  except RuntimeError as e:
    logging.warning('%s Each process then stops on its own signal, and processes that '
                    'stop after different steps wait for each other forever.', e)
    return False
  return True


class _StopOnSignal:
  """Turns SIGINT, SIGTERM or SIGUSR1 (what the sbatch scripts pass on at the time limit)
  into a checkpoint and a stop; `stop_now()` is asked once per step, by every process.

  One process: the first signal stops the run after the current step; a second SIGINT
  aborts at once. Several processes (jax.distributed): each would see its signal during a
  different step, and one that stopped alone would wait forever in the next collective,
  so SIGTERM goes to JAX's preemption notifier, which makes every process stop after the
  same step (`multihost_utils.reached_preemption_sync_point`); SIGINT and SIGUSR1 are
  passed on to it as SIGTERM. A signal recorded during the set-up
  (`interrupts.record_until_training`) stops the run after its first step.
  """

  def __init__(self):
    self.requested = False
    self._old = {}
    self._steps = 0  # this attempt's steps: the same count on every process
    self._sync = jax.process_count() > 1 and _preemption_sync_available()

  def _handle(self, signum, frame):
    del frame
    if self.requested and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.requested = True
    logging.warning('Got %s: saving a checkpoint after this step, then stopping '
                    '(Ctrl-C again to abort without saving).', signal.Signals(signum).name)
    if self._sync:
      os.kill(os.getpid(), signal.SIGTERM)  # To JAX's notifier, which syncs the stop.

  def stop_now(self) -> bool:
    """Whether to checkpoint and stop after the step just taken."""
    if not self._sync:
      return self.requested
    self._steps += 1
    return multihost_utils.reached_preemption_sync_point(self._steps)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in interrupts.STOP_SIGNALS:
        if not (self._sync and sig == signal.SIGTERM):  # That one is JAX's notifier's.
          self._old[sig] = signal.signal(sig, self._handle)
    if early := interrupts.take_recorded():
      logging.warning('Got %s before training started: saving a checkpoint after the '
                      'first step, then stopping.', signal.Signals(early[0]).name)
      self.requested = True
      if self._sync:
        os.kill(os.getpid(), signal.SIGTERM)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._old.items():
      signal.signal(sig, handler)


def _config_diff(path: str, config: ml_collections.ConfigDict) -> list[str]:
  with open(path) as f:
    old = json.load(f)
  new = json.loads(config.to_json())
  return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def write_plots(workdir: str, protos: Mapping[str, np.ndarray]) -> None:
  """curves.png, and prototypes.png when the class prototypes live on S^2 (the paper's
  figure); needs matplotlib (extra `plot`), else only logs how to get them."""
  writers.plot_curves(workdir)
  classes = protos.get('classes')
  if classes is not None and classes.shape[1] == 3:
    try:
      protos_plot.plot_sphere(classes, os.path.join(workdir, 'prototypes.png'),
                                  title=f'{len(classes)} prototypes on the sphere')
    except ImportError:
      pass  # plot_curves has said how to get plots.


def parse_profile_steps(spec: str) -> Optional[tuple[int, int]]:
  """`config.profile_steps` 'FIRST,LAST' -> (FIRST, LAST); '' -> None (no profile)."""
  if not spec:
    return None
  try:
    first, last = (int(x) for x in spec.split(','))
  except ValueError:
    first = last = 0
  if not 1 <= first <= last:
    raise ValueError(f"config.profile_steps={spec!r}: give the first and the last step "
                     f"to trace, 'FIRST,LAST' with 1 <= FIRST <= LAST (e.g. '10,20'), or "
                     f"'' for no profile.")
  return first, last


class _Profiler:
  """A `jax.profiler` trace of the training steps FIRST..LAST (`config.profile_steps`,
  both included) in workdir/profile/ (TensorBoard's profile plugin or Perfetto read
  it), on process 0. Steps before FIRST are left out, so compilation is too; a run that
  resumes inside the window traces the rest of it."""

  def __init__(self, spec: str, workdir: str):
    self._window = parse_profile_steps(spec) if jax.process_index() == 0 else None
    self._dir = os.path.join(workdir, 'profile')
    self._first = None  # the first step traced, while tracing

  def before(self, step: int) -> None:
    if (self._window and self._first is None
        and self._window[0] <= step <= self._window[1]):
      jax.profiler.start_trace(self._dir)
      self._first = step

  def after(self, step: int, outputs: Any) -> None:
    if self._first is not None and step >= self._window[1]:
      self._stop(step, outputs)

  def _stop(self, step: Optional[int], outputs: Any = None) -> None:
    jax.block_until_ready(outputs)  # The trace holds the last step's computation.
    jax.profiler.stop_trace()
    logging.info('Wrote a profile of steps %d-%s to %s.', self._first, step or '',
                 self._dir)
    self._first = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    if self._first is not None:  # Stopped before LAST (the end, a signal, an error).
      self._stop(None)


# --- The loop ---------------------------------------------------------------------------


def refresh_method_state(state: TrainState, objective: objectives.Objective,
                         protos: Mapping[str, np.ndarray], mesh) -> TrainState:
  """The method's host-side refresh (DL2PA's matching), after the evaluation and
  before the checkpoint of this step, as the reference's epoch loop. Every process
  computes it from the same replicated state, so all agree."""
  method_state = objective.refresh_method_state(jax.device_get(state.method_state),
                                                protos)
  return state.replace(method_state=parallel.replicate(method_state, mesh))


def evaluate(eval_fn, state, protos, dataset, split: str, batch_size: int, mesh,
             kind: str, train_counts: Optional[np.ndarray] = None) -> dict[str, Any]:
  """Metrics over the whole split (each example counted once, on any number of devices
  and hosts: batches are padded and masked).

  With an `eval_fn` of `eval_step(per_class=True)`, also the per-class accuracy
  (`class_accuracy`, a list: the only values that are not scalars) and, given the
  training split's `train_counts`, the many / medium / few-shot accuracies; with
  `open_set=True`, AUROC and FPR@95TPR of each open-set score (known vs unknown).
  """
  totals, open_set = None, []
  for batch in input_pipeline.eval_batches(dataset, split, batch_size, mesh, kind):
    sums = eval_fn(state, batch, protos)
    if 'open_set' in sums:  # Per example: kept apart, fetched with the totals.
      open_set.append(sums.pop('open_set'))
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  totals, open_set = jax.device_get((totals, open_set))  # The one transfer of the split.
  metrics = dict(objectives.summarize(totals), num_examples=int(totals['count']))
  if 'class_count' in totals:
    with np.errstate(invalid='ignore'):  # NaN: a class without examples in the split.
      class_acc = (np.asarray(totals['class_correct'], np.float64)
                   / np.asarray(totals['class_count'], np.float64))
    metrics['class_accuracy'] = [None if np.isnan(a) else float(a) for a in class_acc]
    if train_counts is not None:
      metrics.update(subsets.group_accuracies(class_acc, np.asarray(train_counts)))
  if open_set:
    metrics['num_unknown'] = int(totals['num_unknown'])
    real = [b['real'] > 0 for b in open_set]
    known = np.concatenate([b['known'][r] > 0 for b, r in zip(open_set, real)])
    per_score = {name: np.concatenate([b['scores'][name][r]
                                       for b, r in zip(open_set, real)])
                 for name in open_set[0]['scores']}
    metrics.update(subsets.open_set_metrics(per_score, known))
  return metrics


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
  return {k: v for k, v in metrics.items() if not isinstance(v, list)}


def _checked(pending: list, last_ckpt: Optional[int]) -> list[dict]:
  """Fetches the metrics of the pending steps; stops on a non-finite loss."""
  metrics = jax.device_get([m for _, m in pending])
  for (step, _), m in zip(pending, metrics):
    if not np.isfinite(m['loss']):
      raise FloatingPointError(
          f'The training loss became {m["loss"]} at step {step}. '
          + (f'The last good checkpoint (step {last_ckpt}) is kept; ' if last_ckpt
             else 'No checkpoint was saved yet; ')
          + 'lower the learning rate (config.lr) or check the input data.')
  return metrics


def _window_metrics(pending: list, last_ckpt: Optional[int]) -> dict[str, float]:
  """The training metrics of the log window's (pending) steps, which it then forgets:
  the metric sums over its steps as means per example (`loss`, `accuracy`, `mae`) and
  the mean over its steps of each of `STEP_SCALARS`."""
  steps = _checked(pending, last_ckpt)
  pending.clear()
  sums = {k: sum(float(m[k]) for m in steps) for k in steps[0] if k not in STEP_SCALARS}
  means = {k: sum(float(m[k]) for m in steps) / len(steps)
           for k in STEP_SCALARS if k in steps[0]}
  return {f'train/{k}': v for k, v in {**objectives.summarize(sums), **means}.items()}


def _log_train(step: int, num_steps: int, pending: list, timer: writers.StepTimer,
               writer: writers.MetricWriter, last_ckpt: Optional[int]) -> None:
  """Writes and logs the log window's training metrics and its step and example rates
  (`train/steps_per_s`, `train/examples_per_s`: wall time, evaluations left out)."""
  metrics = _window_metrics(pending, last_ckpt)
  rates = {f'train/{k}': v for k, v in timer.rates(step).items()}
  writer.write(step, {**metrics, **rates})
  logging.info('step %d/%d | %s | %s', step, num_steps, _fmt(metrics),
               timer.progress(step, rates.get('train/steps_per_s')))


def _first_step_done(step: int, metrics: dict, started: float, timer: writers.StepTimer,
                     writer: writers.MetricWriter) -> None:
  """Waits for the first step (compiled), writes its seconds (`train/first_step_s`)
  and starts timing the steps after it."""
  jax.block_until_ready(metrics)
  seconds = time.perf_counter() - started
  logging.info('First step (with compilation) took %.1f s.', seconds)
  writer.write(step, {'train/first_step_s': seconds})
  timer.restart(step)


def _log_eval(step: int, num_steps: int, metrics: Mapping[str, Any], split: str,
              writer: writers.MetricWriter) -> None:
  evals = {f'{split}/{k}': v for k, v in _scalars(metrics).items()}
  writer.write(step, evals)
  logging.info('step %d/%d | %s', step, num_steps, _fmt(evals))


def _fmt(metrics: Mapping[str, float]) -> str:
  return ', '.join(f'{k} {v:.4g}' for k, v in sorted(metrics.items()))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains (or resumes) and evaluates; returns the final evaluation metrics."""
  workdir = prepare_workdir(workdir)
  check_config(config)
  dataset, subset_options, num_loaded_classes = load_data(config)
  info = dataset.info
  objective = make_objective(config, info)
  extra = extra_metrics(config, dataset, subset_options, num_loaded_classes, objective)
  protos = prepare_prototypes(config, objective, workdir, info.class_names)
  mesh = parallel.make_mesh(config.num_devices)
  inputs = input_pipeline.train_input(dataset, config, mesh)
  plan = plan_run(config, dataset, mesh)

  model = models.build(config.model.name, output_dim=objective.output_dim,
                       dtype=config.model.dtype, axis_name=AXIS, **config.model.kwargs)
  lr = optim.learning_rate(config, plan.num_steps, plan.steps_per_epoch)
  tx = optim.optimizer(config, plan.num_steps, plan.steps_per_epoch)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'),
                                    every_steps=config.checkpoint_every_steps,
                                    max_to_keep=config.max_checkpoints_to_keep)
  state = ckpt.restore(init_train_state(config, model, tx, objective, protos, info, mesh))
  start_step = int(jax.device_get(state.step))
  writer = open_writer(config, workdir, start_step, plan.num_steps, protos)

  protos_dev = parallel.replicate({k: np.asarray(v) for k, v in protos.items()}, mesh)
  train_fn = inputs.step_fn(
      functools.partial(train_step, model=model, tx=tx, objective=objective,
                        mean=info.mean, std=info.std, learning_rate=lr),
      start_step, plan.num_steps)
  run_eval = make_evaluate(config, dataset, model, objective, info, extra, protos_dev,
                           mesh, plan.eval_batch_size)
  eval_split = config.data.eval_split
  refresh_every = objective.method_state_every(plan.steps_per_epoch)
  timer = writers.StepTimer(plan.num_steps, config.batch_size)
  pending, last_ckpt = [], ckpt.latest_step()
  t_start = time.perf_counter()
  try:
    with _StopOnSignal() as stop, _Profiler(config.profile_steps, workdir) as profiler:
      for step in range(start_step + 1, plan.num_steps + 1):
        profiler.before(step)
        with jax.profiler.StepTraceAnnotation('train', step_num=step):
          state, metrics = train_fn(state, protos_dev)
        pending.append((step, metrics))
        profiler.after(step, state)
        if step == start_step + 1:
          _first_step_done(step, metrics, t_start, timer, writer)
        last = step == plan.num_steps
        if step % config.log_every_steps == 0 or last:
          _log_train(step, plan.num_steps, pending, timer, writer, last_ckpt)
        if plan.eval_every and step % plan.eval_every == 0 and not last:
          _log_eval(step, plan.num_steps, run_eval(state=state), eval_split, writer)
          timer.restart(step)  # Evaluations are not training time.
        if refresh_every and step % refresh_every == 0 and not last:
          state = refresh_method_state(state, objective, protos, mesh)
        stopping = stop.stop_now()
        if last or stopping or ckpt.due(step):
          _checked(pending, last_ckpt)  # Never checkpoint a non-finite state.
          ckpt.save(step, state)
          last_ckpt = step
        if stopping and not last:
          ckpt.wait()
          raise TrainingInterrupted(step)
    ckpt.wait()

    final = {f'{eval_split}/{k}': v for k, v in run_eval(state=state).items()}
    writer.write(plan.num_steps, _scalars(final))
    results = dict(final, step=plan.num_steps,
                   train_seconds=time.perf_counter() - t_start, task=objective.task,
                   method=objective.method, dataset=info.name, **extra.results(info))
    if info.target_unit:
      results['target_unit'] = info.target_unit
    if jax.process_index() == 0:
      writers.write_json(os.path.join(workdir, 'results.json'), results)
      write_plots(workdir, protos)
    logging.info('Final %s metrics at step %d: %s', eval_split, plan.num_steps,
                 _fmt(_scalars(final)))
    return results
  finally:
    ckpt.close()
    writer.close()
    dataset.close()
