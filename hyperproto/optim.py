"""Optimiser and learning-rate schedule from the config."""

import math

import jax.numpy as jnp
import ml_collections
import optax

SCHEDULES = ('step', 'cosine', 'constant')
SCHEDULE_UNITS = ('step', 'epoch')


def total_steps(config: ml_collections.ConfigDict, steps_per_epoch: int) -> int:
  """`config.num_steps` if set, else `config.num_epochs` worth of steps."""
  if config.num_steps is not None:
    steps = int(config.num_steps)
  else:
    steps = int(math.ceil(config.num_epochs * steps_per_epoch))
  if steps < 1:
    raise ValueError(f'Training would run {steps} steps: set num_epochs or num_steps > 0.')
  return steps


def learning_rate(config: ml_collections.ConfigDict, num_steps: int,
                  steps_per_epoch: int) -> optax.Schedule:
  """The learning rate at each step: `config.schedule` after `config.warmup_epochs`.

  `config.schedule_unit` 'step' changes the rate at every step (a linear warm-up from 0,
  then the schedule); 'epoch' holds it for each epoch, as PyTorch scripts that set it
  at the start of every epoch (`epoch_learning_rate`).
  """
  if config.schedule not in SCHEDULES:
    raise ValueError(f'Unknown schedule {config.schedule!r}; use one of {SCHEDULES}.')
  if config.schedule_unit == 'epoch':
    return _per_epoch(config, num_steps, steps_per_epoch)
  if config.schedule_unit != 'step':
    raise ValueError(f'Unknown schedule_unit {config.schedule_unit!r}; use one of '
                     f'{SCHEDULE_UNITS}.')
  base = float(config.lr)
  warmup = int(round(config.warmup_epochs * steps_per_epoch))
  if config.schedule == 'step':
    boundaries = {int(round(e * steps_per_epoch)): config.decay_factor
                  for e in config.decay_epochs}
    main = optax.piecewise_constant_schedule(base, boundaries)
  elif config.schedule == 'cosine':
    main = optax.cosine_decay_schedule(base, max(num_steps - warmup, 1))
  else:
    main = optax.constant_schedule(base)
  if warmup <= 0:
    return main
  return optax.join_schedules(
      [optax.linear_schedule(0.0, base, warmup), main], [warmup])


def epoch_learning_rate(config: ml_collections.ConfigDict, epoch, num_epochs: float):
  """The rate of (0-based) `epoch` in the 'epoch' unit: during the W = warmup_epochs
  first epochs lr (epoch + 1) / W (the ETF and DL2PA scripts' `lr * epoch / 5` with
  1-based epochs); then 'step': lr x decay_factor per boundary of `decay_epochs` that
  `epoch` has reached (`if epoch in [drop1, drop2]: lr *= 0.1` at the epoch's start);
  'cosine': PyTorch's CosineAnnealingLR(T_max = the epochs after the warm-up, eta_min
  0) stepped once per epoch; 'constant': lr. Works on Python and traced numbers."""
  base, warmup = float(config.lr), int(config.warmup_epochs)
  if config.schedule == 'step':
    factor = 1.0
    for boundary in config.decay_epochs:
      factor = factor * jnp.where(epoch >= boundary, config.decay_factor, 1.0)
  elif config.schedule == 'cosine':
    span = max(num_epochs - warmup, 1.0)
    # (1 + cos(pi t)) / 2 as sin^2(pi (1 - t) / 2): accurate to float32's last digits
    # to the end, where the rate is small.
    factor = jnp.square(jnp.sin(0.5 * jnp.pi * (span - (epoch - warmup)) / span))
  else:
    factor = 1.0
  if warmup:
    factor = jnp.where(epoch < warmup, (epoch + 1.0) / warmup, factor)
  return base * factor


def _per_epoch(config: ml_collections.ConfigDict, num_steps: int,
               steps_per_epoch: int) -> optax.Schedule:
  if config.warmup_epochs != int(config.warmup_epochs) or config.warmup_epochs < 0:
    raise ValueError(f'warmup_epochs={config.warmup_epochs} with schedule_unit=epoch: '
                     f'the warm-up is whole epochs; give a whole number (or use '
                     f'schedule_unit=step for a per-step warm-up).')
  num_epochs = num_steps / steps_per_epoch

  def schedule(count):
    epoch = jnp.asarray(count, jnp.int32) // steps_per_epoch
    return jnp.asarray(epoch_learning_rate(config, epoch, num_epochs), jnp.float32)

  return schedule


OPTIMIZERS = ('sgd', 'adam')


def optimizer(config: ml_collections.ConfigDict, num_steps: int,
              steps_per_epoch: int) -> optax.GradientTransformation:
  """`sgd`: SGD + momentum with weight decay added to the gradient (PyTorch's SGD
  weight_decay: coupled L2 on every parameter, BatchNorm and biases included); `adam`:
  PyTorch's Adam (betas 0.9 / 0.999, eps 1e-8, the same coupled weight decay)."""
  lr = learning_rate(config, num_steps, steps_per_epoch)
  if config.optimizer == 'sgd':
    step = optax.sgd(lr, momentum=config.momentum or None)
  elif config.optimizer == 'adam':
    step = optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)
  else:
    raise ValueError(f'Unknown optimizer {config.optimizer!r}; use one of {OPTIMIZERS}.')
  return optax.chain(optax.add_decayed_weights(config.weight_decay), step)
