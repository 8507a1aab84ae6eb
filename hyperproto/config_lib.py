"""Config helpers: the one schema of defaults (`base_config`) and BV-style `parse_arg`.

Library code reads `config.x` directly; every field it reads is declared here with its
default, so this file is the complete list of options. Dataset configs in `configs/`
start from `base_config()` and override.
"""

from typing import Any, Optional

import ml_collections
from ml_collections import config_dict


def parse_arg(arg: Optional[str], **spec: Any) -> ml_collections.ConfigDict:
  """Parses `get_config`'s string argument, 'key=value,key2=value2,flag', into a locked
  ConfigDict of `spec`'s keys, each value converted to the type of its default.

  A bare `key` sets a bool to True. Unknown keys and bad values raise a ValueError that
  lists what is accepted (a port of big_vision's `parse_arg`).
  """
  out = ml_collections.ConfigDict(spec)
  for item in filter(None, (arg or '').split(',')):
    key, has_value, value = item.partition('=')
    key = key.strip()
    if key not in spec:
      raise ValueError(f'Unknown config argument {key!r} in {arg!r}; accepted: '
                       f'{", ".join(f"{k}={v!r}" for k, v in spec.items())}.')
    default = spec[key]
    if not has_value:
      if not isinstance(default, bool):
        raise ValueError(f'Config argument {key!r} needs a value ({key}=...).')
      out[key] = True
    elif isinstance(default, bool):
      lowered = value.strip().lower()
      if lowered not in ('true', 'false', '1', '0'):
        raise ValueError(f'Config argument {key}={value!r} is not a bool.')
      out[key] = lowered in ('true', '1')
    else:
      try:
        out[key] = type(default)(value.strip())
      except ValueError as e:
        raise ValueError(f'Config argument {key}={value!r} is not a '
                         f'{type(default).__name__}.') from e
  out.lock()
  return out


def base_config() -> ml_collections.ConfigDict:
  """Every option, with its default."""
  c = ml_collections.ConfigDict()
  c.seed = 0  # Parameter init and batch order.

  # Task section.
  c.task = 'classification'  # classification | regression | joint
  c.method = 'hpn'  # hpn (prototypes) | baseline (softmax CE / MSE / both)
  c.dim = 64  # Network output dimension for hpn (joint: class prototypes get dim - 1).
  c.joint_weight = 0.5  # w in (1 - w) L_r + w L_c.
  c.loss_reduction = 'sum'  # sum (the original) | mean, over the batch.

  # Prototype section (see hyperproto.prototypes).
  c.prototypes = ml_collections.ConfigDict()
  c.prototypes.method = 'auto'
  c.prototypes.seed = 300  # The original's.
  c.prototypes.kwargs = ml_collections.ConfigDict()  # Method options (e.g. steps).
  c.prototypes.cache = True  # Reuse placements across runs ($HYPERPROTO_CACHE).

  # Data section.
  c.data = ml_collections.ConfigDict()
  c.data.name = 'digits'
  c.data.kwargs = ml_collections.ConfigDict()  # Passed to the dataset's loader.
  c.data.train_split = 'train'
  c.data.eval_split = 'test'

  # Model section.
  c.model = ml_collections.ConfigDict()
  c.model.name = 'cnn'
  c.model.dtype = 'float32'  # Computation dtype; params stay float32.
  c.model.kwargs = ml_collections.ConfigDict()  # Passed to the backbone.

  # Optimiser section: SGD with momentum and coupled (L2) weight decay on all params,
  # as the original.
  c.batch_size = 128  # Global, over all devices.
  c.num_epochs = 10.0
  c.num_steps = config_dict.placeholder(int)  # Overrides num_epochs when set.
  c.lr = 0.01
  c.momentum = 0.9
  c.weight_decay = 1e-4
  c.schedule = 'step'  # step (x decay_factor at decay_epochs) | cosine | constant
  c.decay_epochs = (100.0, 200.0)
  c.decay_factor = 0.1
  c.warmup_epochs = 0.0

  # Parallelism: global batch split over a 1-D mesh of `num_devices` (0: all).
  c.num_devices = 0

  # Logging, evaluation, checkpointing.
  c.log_every_steps = 50
  c.eval_every_steps = 0  # 0: only at the end.
  c.eval_batch_size = 0  # 0: batch_size.
  c.checkpoint_every_steps = 200
  c.max_checkpoints_to_keep = 2
  return c
