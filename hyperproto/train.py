"""Training and evaluation: `train_and_evaluate(config, workdir)`.

`train_step` and `eval_step` are pure, module-level and written **per device**: the loss
is a sum over the device's examples and the gradients are summed over the mapped axis
(`psum`), so N devices x b examples make the same update as one device x N*b (the
original sums its loss over the batch). BatchNorm synchronises its statistics over the
same axis. `parallel.map_step` runs them under jit + shard_map (or pmap) on a 1-D mesh.
Datasets held in memory go to the devices once; `resident_train_step` gathers and
augments each step's batch there (`data.device_input`). Streaming datasets feed
`train_step` with each host's share of the global batch.

The workdir holds config.json, metrics.jsonl, TensorBoard events, prototypes.npy (+ .json),
checkpoints/ and, at the end, results.json and plots (curves.png, prototypes.png). Running the same command again resumes from
the newest checkpoint; SIGINT (Ctrl-C) and SIGTERM save a checkpoint before stopping
(`TrainingInterrupted`; main.py then exits with `interrupts.EXIT_STATUS`).
"""

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


def train_step(state: TrainState, batch: Mapping[str, jax.Array],
               protos: Mapping[str, jax.Array], *, model: nn.Module,
               tx: optax.GradientTransformation, objective: objectives.Objective,
               mean, std) -> tuple[TrainState, dict[str, jax.Array]]:
  """One SGD step on this device's part of the global batch (see the module docstring).

  Returns the new state and metric sums over the global batch (`loss`, `count`, and
  `correct` / `abs_error` where the task has them). A batch with mixup partners
  (`mix_image`, `mix_label`, `mix_lam`; `data.device_input.local_batch`) trains on the
  mixed images with lambda L(y) + (1 - lambda) L(y'); its metrics score the labels y.
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
  return new_state, jax.lax.psum(sums, AXIS)


def batch_loss_sum(objective: objectives.Objective, z: jax.Array,
                   batch: Mapping[str, jax.Array],
                   protos: Mapping[str, jax.Array]) -> jax.Array:
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


def resident_train_step(state: TrainState, data: Mapping[str, jax.Array],
                        protos: Mapping[str, jax.Array], *, global_batch: int,
                        augment: str, mixup_alpha: float = 0.0,
                        **kwargs) -> tuple[TrainState, dict[str, jax.Array]]:
  """`train_step` on this device's part of the global batch of `state.step`, gathered
  (augmented, and mixed where `mixup_alpha` > 0) on the device from the whole resident
  training split `data`; see `data.device_input`: a pure function of (state.rng,
  state.step)."""
  batch = device_input.local_batch(data, state.rng, state.step, axis_name=AXIS,
                                   global_batch=global_batch, augment=augment,
                                   mixup_alpha=mixup_alpha)
  return train_step(state, batch, protos, **kwargs)


def eval_step(state: TrainState, batch: Mapping[str, jax.Array],
              protos: Mapping[str, jax.Array], *, model: nn.Module,
              objective: objectives.Objective, mean, std, per_class: bool = False,
              open_set: bool = False) -> dict[str, jax.Array]:
  """Metric sums over the global batch; padded examples (mask 0) do not count.

  `per_class` adds `class_count` and `class_correct` (C each). `open_set` (the batch has
  `known`, 0 for held-out classes, see `data.subsets`): the metrics count the known
  examples only, `num_unknown` counts the others, and `scores` holds the global batch's
  per-example open-set scores (`Objective.open_set_scores`), gathered over AXIS.
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
    sums['scores'] = {k: _gather(v) for k, v in
                      objective.open_set_scores(z, protos).items()}
  return sums


def _gather(x_B: jax.Array) -> jax.Array:
  """The global batch's values of a per-device vector, on every device, in the global
  batch's order: a psum of zeros with each device's slice in place (exact; its result is
  replicated by type, which shard_map's out_specs=P() needs and all_gather's is not)."""
  n, b = jax.lax.axis_size(AXIS), x_B.shape[0]
  full = jnp.zeros((n * b,), x_B.dtype)
  return jax.lax.psum(
      jax.lax.dynamic_update_slice(full, x_B, (jax.lax.axis_index(AXIS) * b,)), AXIS)


# --- Set-up helpers ---------------------------------------------------------------------


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
    meta = dict(config.prototypes.to_dict(), method=placement, task=objective.task,
                rows='classes' if 'classes' in protos else 'regression prototype e_0',
                metrics=protos_lib.separation_metrics(saved) if len(saved) > 1 else {})
    protos_lib.save(path, saved, meta)
  return protos


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


# --- The loop -------------------------------------------------------------------------


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
  totals, scores = None, []
  streaming = not isinstance(dataset, data_lib.Dataset)
  if streaming:  # Each host decodes its own share of every batch.
    batches = dataset.eval_batches(split, batch_size, jax.process_index(),
                                   jax.process_count())
  else:
    batches = dataset.eval_batches(split, batch_size)
  for batch in batches:
    if 'known' in batch:  # Host copies; the scores come back in global batch order.
      scores.append(((batch['mask'] > 0) & (batch['known'] > 0), batch['mask'] > 0))
    batch = parallel.batch_to_devices(batch, mesh, kind, process_local=streaming)
    sums = eval_fn(state, batch, protos)
    if 'scores' in sums:
      scores[-1] += (sums.pop('scores'),)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  totals, scores = jax.device_get((totals, scores))  # The one transfer of the split.
  metrics = dict(objectives.summarize(totals), num_examples=int(totals['count']))
  if 'class_count' in totals:
    with np.errstate(invalid='ignore'):  # NaN: a class without examples in the split.
      class_acc = (np.asarray(totals['class_correct'], np.float64)
                   / np.asarray(totals['class_count'], np.float64))
    metrics['class_accuracy'] = [None if np.isnan(a) else float(a) for a in class_acc]
    if train_counts is not None:
      metrics.update(subsets.group_accuracies(class_acc, np.asarray(train_counts)))
  if scores:
    metrics['num_unknown'] = int(totals['num_unknown'])
    known = np.concatenate([k[m] for k, m, _ in scores])
    per_score = {name: np.concatenate([s[name][m] for _, m, s in scores])
                 for name in scores[0][2]}
    metrics.update(subsets.open_set_metrics(per_score, known))
  return metrics


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
  return {k: v for k, v in metrics.items() if not isinstance(v, list)}


def _checked(pending: list, last_ckpt: Optional[int]) -> list[dict]:
  """Fetches the metric sums of the pending steps; stops on a non-finite loss."""
  sums = jax.device_get([s for _, s in pending])
  for (step, _), s in zip(pending, sums):
    if not np.isfinite(s['loss']):
      raise FloatingPointError(
          f'The training loss became {s["loss"]} at step {step}. '
          + (f'The last good checkpoint (step {last_ckpt}) is kept; ' if last_ckpt
             else 'No checkpoint was saved yet; ')
          + 'lower the learning rate (config.lr) or check the input data.')
  return sums


def _flush(pending: list, writer: writers.MetricWriter, last_ckpt: Optional[int]) -> dict:
  """Writes the average training metrics of the pending steps, and forgets them."""
  if not pending:
    return {}
  sums = _checked(pending, last_ckpt)
  total = {k: sum(float(s[k]) for s in sums) for k in sums[0]}
  metrics = {f'train/{k}': v for k, v in objectives.summarize(total).items()}
  writer.write(pending[-1][0], metrics)
  pending.clear()
  return metrics


def _fmt(metrics: Mapping[str, float]) -> str:
  return ', '.join(f'{k} {v:.4g}' for k, v in sorted(metrics.items()))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains (or resumes) and evaluates; returns the final evaluation metrics."""
  workdir = prepare_workdir(workdir)
  is_main = jax.process_index() == 0
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
  loader_kwargs, subset_options = subsets.split_options(dict(config.data.kwargs.items()))
  if config.data.data_dir:
    loader_kwargs['data_dir'] = config.data.data_dir
  dataset = data_lib.load(config.data.name, **loader_kwargs)
  loaded_info = dataset.info
  dataset = subsets.apply(dataset, config.data.train_split, **subset_options)
  info = dataset.info
  objective = make_objective(config, info)
  # Per-class and open-set metrics where a data.subsets option asks for them.
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
  protos = prepare_prototypes(config, objective, workdir, info.class_names)

  mesh = parallel.make_mesh(config.num_devices)
  per_device = parallel.check_batch_size(config.batch_size, mesh)
  eval_batch_size = config.eval_batch_size or config.batch_size
  parallel.check_batch_size(eval_batch_size, mesh, 'eval_batch_size')
  train_split, eval_split = config.data.train_split, config.data.eval_split
  steps_per_epoch = dataset.steps_per_epoch(train_split, config.batch_size)
  num_steps = optim.total_steps(config, steps_per_epoch)
  logging.info('%d devices (%s), global batch %d (%d per device), %d steps '
               '(%.1f epochs of %d steps).', mesh.size, mesh.devices.flat[0].platform,
               config.batch_size, per_device, num_steps, num_steps / steps_per_epoch,
               steps_per_epoch)

  model = models.build(config.model.name, output_dim=objective.output_dim,
                       dtype=config.model.dtype, axis_name=AXIS, **config.model.kwargs)
  tx = optim.optimizer(config, num_steps, steps_per_epoch)
  state = create_train_state(jax.random.PRNGKey(config.seed), model, tx, info.image_shape,
                             mesh)
  if config.model.init_npz:  # Pretrained ViT weights (a local .npz); the head stays new.
    params = models.load_vit_npz(config.model.init_npz, jax.device_get(state.params))
    state = state.replace(params=parallel.replicate(params, mesh))
    logging.info('Initialised the backbone from %s.', config.model.init_npz)
  if objective.has_method_state:  # Before the restore, which needs its structure.
    state = state.replace(method_state=parallel.replicate(
        objective.init_method_state(protos, config.seed), mesh))
  protos_dev = parallel.replicate({k: np.asarray(v) for k, v in protos.items()}, mesh)

  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'),
                                    every_steps=config.checkpoint_every_steps,
                                    max_to_keep=config.max_checkpoints_to_keep)
  state = ckpt.restore(state)
  start_step = int(jax.device_get(state.step))
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

  norm = dict(mean=info.mean, std=info.std)
  step_kwargs = dict(model=model, tx=tx, objective=objective, **norm)
  if isinstance(dataset, data_lib.Dataset):
    # The whole training split goes to every device once, as uint8; each step gathers
    # and augments its own examples (data.device_input).
    train_data = parallel.replicate(
        {k: v for k, v in dataset.splits[train_split].items()
         if k in ('image', 'label', 'target')}, mesh)
    train_fn = parallel.map_step(
        functools.partial(resident_train_step, global_batch=config.batch_size,
                          augment=config.data.augment,
                          mixup_alpha=float(config.data.mixup_alpha), **step_kwargs),
        mesh, kind=config.parallel, batch_argnums=(), donate_argnums=(0,))
    next_input = lambda: train_data
  else:
    # Streaming (large images): each host decodes and augments its share of every
    # batch; batch `step` is a pure function of (seed, step), so resuming needs no state.
    if config.data.augment != 'none' or config.data.mixup_alpha:
      raise ValueError(f'data.augment={config.data.augment!r} and data.mixup_alpha are '
                       f'for datasets held on the device; {info.name} augments while '
                       f'decoding: set data.augment=none and data.mixup_alpha=0.')
    batches = dataset.train_batches(train_split, start_step, config.batch_size,
                                    config.seed, jax.process_index(), jax.process_count(),
                                    num_steps=num_steps - start_step)
    train_fn = parallel.map_step(functools.partial(train_step, **step_kwargs), mesh,
                                 kind=config.parallel, donate_argnums=(0,))
    next_input = lambda: parallel.batch_to_devices(next(batches), mesh, config.parallel,
                                                   process_local=True)
  eval_fn = parallel.map_step(
      functools.partial(eval_step, model=model, objective=objective, per_class=per_class,
                        open_set=open_set, **norm), mesh,
      kind=config.parallel)
  train_counts = (subsets.train_class_counts(dataset, train_split) if per_class
                  else None)
  run_eval = functools.partial(evaluate, eval_fn, protos=protos_dev, dataset=dataset,
                               split=eval_split, batch_size=eval_batch_size, mesh=mesh,
                               kind=config.parallel, train_counts=train_counts)

  eval_every = config.eval_every_steps or int(round(config.eval_every_epochs
                                                    * steps_per_epoch))
  refresh_every = objective.method_state_every(steps_per_epoch)
  progress = writers.Progress(num_steps, config.batch_size)
  pending, last_ckpt = [], ckpt.latest_step()
  t_start = time.perf_counter()
  try:
    with _StopOnSignal() as stop:
      for step in range(start_step + 1, num_steps + 1):
        state, sums = train_fn(state, next_input(), protos_dev)
        pending.append((step, sums))
        if step == start_step + 1:
          jax.block_until_ready(sums)
          logging.info('First step (with compilation) took %.1f s.',
                       time.perf_counter() - t_start)
          progress.start(step)
        last = step == num_steps
        if step % config.log_every_steps == 0 or last:
          metrics = _flush(pending, writer, last_ckpt)
          logging.info('step %d/%d | %s | %s', step, num_steps, _fmt(metrics),
                       progress.report(step) or '')
        if eval_every and step % eval_every == 0 and not last:
          metrics = {f'{eval_split}/{k}': v
                     for k, v in _scalars(run_eval(state=state)).items()}
          writer.write(step, metrics)
          logging.info('step %d/%d | %s', step, num_steps, _fmt(metrics))
        if refresh_every and step % refresh_every == 0 and not last:
          state = refresh_method_state(state, objective, protos, mesh)
        stopping = stop.stop_now()
        if last or stopping or step % config.checkpoint_every_steps == 0:
          _checked(pending, last_ckpt)  # Never checkpoint a non-finite state.
          if ckpt.save(step, state, force=last or stopping):
            last_ckpt = step
        if stopping and not last:
          ckpt.wait()
          raise TrainingInterrupted(step)
    ckpt.wait()

    final = {f'{eval_split}/{k}': v for k, v in run_eval(state=state).items()}
    writer.write(num_steps, _scalars(final))
    results = dict(final, step=num_steps, train_seconds=time.perf_counter() - t_start,
                   task=objective.task, method=objective.method, dataset=info.name)
    if per_class:  # What the per-class numbers need: the classes and their counts.
      results.update(class_names=list(info.class_names),
                     train_class_counts=[int(n) for n in train_counts])
    if open_set:  # Indices in the loaded dataset's label space.
      results['unknown_classes'] = list(subsets.parse_unknown_classes(
          subset_options['unknown_classes'], loaded_info.num_classes))
    if info.target_unit:
      results['target_unit'] = info.target_unit
    if is_main:
      writers.write_json(os.path.join(workdir, 'results.json'), results)
      write_plots(workdir, protos)
    logging.info('Final %s metrics at step %d: %s', eval_split, num_steps,
                 _fmt(_scalars(final)))
    return results
  finally:
    ckpt.close()
    writer.close()
