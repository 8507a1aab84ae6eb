"""Optimiser and learning-rate schedule from the config."""

import math

import ml_collections
import optax

SCHEDULES = ('step', 'cosine', 'constant')


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
  base = float(config.lr)
  warmup = int(round(config.warmup_epochs * steps_per_epoch))
  if config.schedule == 'step':
    boundaries = {int(round(e * steps_per_epoch)): config.decay_factor
                  for e in config.decay_epochs}
    main = optax.piecewise_constant_schedule(base, boundaries)
  elif config.schedule == 'cosine':
    main = optax.cosine_decay_schedule(base, max(num_steps - warmup, 1))
  elif config.schedule == 'constant':
    main = optax.constant_schedule(base)
  else:
    raise ValueError(f'Unknown schedule {config.schedule!r}; use one of {SCHEDULES}.')
  if warmup <= 0:
    return main
  return optax.join_schedules(
      [optax.linear_schedule(0.0, base, warmup), main], [warmup])


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
