"""Config helpers: the one schema of defaults (`base_config`) and BV-style `parse_arg`.

Library code reads `config.x` directly; every field it reads is declared here with its
default, so this file is the complete list of options. Dataset configs in `configs/`
start from `base_config()` and override.
"""

import difflib
import importlib.util
import os
from typing import Any, Optional, Sequence

import ml_collections
from ml_collections import config_dict

from hyperproto import methods as methods_lib
from hyperproto import prototypes as protos_lib


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


# Names other codebases give to our fields (big_vision, the Flax examples, PyTorch
# scripts): a misspelt or foreign name is answered with ours.
ALIASES = {
    'learning_rate': 'lr', 'base_lr': 'lr', 'wd': 'weight_decay',
    'batchsize': 'batch_size', 'bs': 'batch_size', 'epochs': 'num_epochs',
    'total_epochs': 'num_epochs', 'steps': 'num_steps', 'num_train_steps': 'num_steps',
    'total_steps': 'num_steps', 'optim': 'optimizer', 'optimiser': 'optimizer',
    'dimension': 'dim', 'output_dim': 'dim',
}
# Fields that were renamed: the old dotted path -> the new one and why.
RENAMED = {
    'prototypes.method': ('prototypes.placement', 'the prototypes\' construction, a '
                          'placement of hyperproto.prototypes; config.method is the '
                          'training method'),
}


def nearest_fields(name: str, fields: Sequence[str], n: int = 3) -> list[str]:
  """The fields of `fields` nearest to a misspelt `name` (also through `ALIASES`):
  close matches first, else the `n` most similar names."""
  fields = list(fields)
  known = {alias: target for alias, target in ALIASES.items() if target in fields}
  close = difflib.get_close_matches(name, fields + list(known), n=n, cutoff=0.6)
  out = list(dict.fromkeys(known.get(c, c) for c in close))
  if not out:
    ratio = lambda f: difflib.SequenceMatcher(None, name, f).ratio()
    out = sorted(fields, key=ratio, reverse=True)[:n]
  return out


def unknown_field(config: ml_collections.ConfigDict, path: str) -> Optional[str]:
  """None where `config` has the dotted `path` (e.g. 'model.kwargs.widths'), else one
  line naming the missing field and the nearest ones that exist."""
  if path in RENAMED and unknown_field(config, RENAMED[path][0]) is None:
    new, why = RENAMED[path]
    return f'config.{path} was renamed config.{new} ({why}): write config.{new}.'
  node, parts = config, path.split('.')
  for i, part in enumerate(parts):
    if not isinstance(node, (ml_collections.ConfigDict, dict)):
      return (f'config.{".".join(parts[:i])} is a {type(node).__name__}, not a '
              f'section: it has no field {part!r}.')
    if part not in node:
      where = 'config' + ''.join(f'.{p}' for p in parts[:i])
      fields = sorted(node.keys())
      if not fields:
        return (f'{where} has no field {part!r}: it declares none (add it in the '
                f'config file, or to base_config in hyperproto/config_lib.py).')
      deeper = [f'{where}.{p}' for p in _paths(node) if p.endswith(f'.{part}')]
      return (f'{where} has no field {part!r}; did you mean '
              f'{" or ".join(deeper or nearest_fields(part, fields))}? (every field '
              f'with its default: base_config in hyperproto/config_lib.py)')
    node = node[part]
  return None


def _paths(node: ml_collections.ConfigDict, prefix: str = '') -> list[str]:
  """Every dotted field path below `node`."""
  out = []
  for key, value in node.items():
    out.append(prefix + key)
    if isinstance(value, ml_collections.ConfigDict):
      out += _paths(value, f'{prefix}{key}.')
  return out


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """`get_config` of a `--config` value, 'path/to/config.py[:arg]', as config_flags
  loads it."""
  path, _, arg = spec.partition(':')
  module_spec = importlib.util.spec_from_file_location('_hyperproto_config', path)
  if module_spec is None or not os.path.exists(path):
    raise ValueError(f'No config file at {path!r}.')
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def override_error(argv: Sequence[str], flag: str = 'config') -> Optional[str]:
  """The first `--config.PATH=VALUE` of `argv` that names no field of the config given
  by `--config=...`, as one line (None where every path exists or there is no config)."""
  spec = next((a.split('=', 1)[1] for a in argv if a.startswith(f'--{flag}=')), None)
  if spec is None:
    return None
  config = load_config_file(spec)
  for item in argv:
    if item.startswith(f'--{flag}.'):
      path = item[len(flag) + 3:].split('=', 1)[0]
      if (problem := unknown_field(config, path)) is not None:
        return f'{item}: {problem}'
  return None


# `:prototypes=` of the dataset configs -> hyperproto.prototypes placement. `default`:
# the config's own choice for HPN, the method's own construction for the others.
PROTOTYPES = {
    'ours': 'auto',  # the exact optimum where known, else our separation optimiser
    'hpn': 'hpn',  # the original recipe (what the paper's numbers used)
    'one_hot': 'one_hot',  # identity, dim = number of classes (Table 1)
    'embedding': 'embedding',  # class-name embeddings reduced to dim (word2vec row)
    'semantic': 'semantic',  # separation + privileged information L_PI (Table 2)
}
# Each fixed-classifier method's own recipe where it differs from the config's
# (`apply_recipe`). ETF, max-separation and EBV train softmax-style losses averaged over
# the batch (their code) with SGD at lr 0.1 (the usual CIFAR value); Busemann's code
# trains with Adam, lr 5e-4, weight decay 5e-5, the loss averaged over the batch (its
# README). DL2PA's loss is HPN's, summed over the batch, as the configs' own recipe.
RECIPES: dict[str, dict] = {
    'etf': dict(loss_reduction='mean', lr=0.1),
    'maxsep': dict(loss_reduction='mean', lr=0.1),
    'ebv': dict(loss_reduction='mean', lr=0.1),
    'busemann': dict(optimizer='adam', lr=5e-4, weight_decay=5e-5, loss_reduction='mean'),
}


def apply_recipe(config: ml_collections.ConfigDict,
                 method: str) -> ml_collections.ConfigDict:
  """Sets `method`'s `RECIPES` entry on `config`; dataset configs call it after their
  own optimiser section, so the method's recipe wins over the config's."""
  for key, value in RECIPES.get(method, {}).items():
    config[key] = value
  return config


# Each paper's training recipe, as its reference script runs it on CIFAR (`:recipe=NAME`
# of configs/cifar10.py; `paper`: the run's method's own, `paper_recipe_name`). Every
# value was read from the reference code (docs/reproduce.md#each-papers-recipe lists the
# files); `shared`, the configs' own equal-terms recipe, stays the default. Keys:
# `config` (fields, dotted for sections), `method_kwargs`, `dims` (the output dimension
# where `:dim` is left open, by number of classes: the reference's feature width, for
# the methods in `dim_methods`), `source`.
_LT_COMMON = {  # ETF's CIFAR-LT configs; DL2PA's LT configs copy every value.
    'optimizer': 'sgd', 'lr': 0.1, 'momentum': 0.9, 'weight_decay': 2e-4,
    'batch_size': 128, 'num_epochs': 200.0, 'schedule': 'step', 'schedule_unit': 'epoch',
    'warmup_epochs': 5.0, 'decay_epochs': (160.0, 180.0), 'decay_factor': 0.1,
    'loss_reduction': 'mean', 'data.mixup_alpha': 1.0, 'label_smoothing': 0.0,
    'eval_every_epochs': 10.0,
}
_HPN_COMMON = {
    'optimizer': 'sgd', 'lr': 0.01, 'momentum': 0.9, 'weight_decay': 1e-4,
    'batch_size': 128, 'num_epochs': 250.0, 'schedule': 'step', 'schedule_unit': 'epoch',
    'warmup_epochs': 0.0, 'decay_epochs': (100.0, 200.0), 'decay_factor': 0.1,
    'loss_reduction': 'sum', 'data.mixup_alpha': 0.0, 'label_smoothing': 0.0,
    'eval_every_epochs': 10.0,
}
PAPER_RECIPES: dict[str, dict] = {
    'hpn': dict(
        source='Mettes et al., NeurIPS 2019: psmmettes/hpn hpn_cifar.py (its argparse '
               'defaults: SGD lr 0.01, momentum 0.9, weight decay 1e-4, batch 128, 250 '
               'epochs, drop1 100, drop2 200; the loss summed)',
        config=_HPN_COMMON),
    'dl2pa': dict(
        source='Saadabadi et al., CVPR 2024: msed-Ebrahimi/DL2PA_CVPR24 '
               'configs/balance/cifar100_d*.yaml and train.py (balanced branch): '
               "HPN's recipe, BLoss summed",
        config=dict(_HPN_COMMON, **{'method_kwargs.dl2pa.loss': 'cosine'})),
    'etf': dict(
        source='Yang et al., NeurIPS 2022: NeuralCollapseApplications/ImbalancedLearning '
               'config/cifar10/Res_cifar10_imb*.yaml (with and without _ETF_DR), train.py '
               'adjust_learning_rate (warm-up lr * epoch / 5, x0.1 after epoch 160, '
               'x0.01 after 180) and mixup_data (alpha 1), losses averaged',
        config=_LT_COMMON, dims={10: 64, 100: 128}, dim_methods=('etf',)),
    'dl2pa_lt': dict(
        source='Saadabadi et al., CVPR 2024: msed-Ebrahimi/DL2PA_CVPR24 '
               'configs/LT/cifar*LT_*_fixed_classifier.yaml (space_dim 64 / 128) and '
               'train.py (long-tailed branch: LT_utils.LTloss with produce_Ew, '
               'mixup_data, the same schedule as ETF\'s)',
        config=dict(_LT_COMMON, **{'method_kwargs.dl2pa.loss': 'dr'}),
        dims={10: 64, 100: 128}, dim_methods=('dl2pa',)),
    'busemann': dict(
        source='Ghadimi Atigh et al., NeurIPS 2021: MinaGhadimiAtigh/Hyperbolic-Busemann-'
               "Learning README.md command (HBL.py -e 1110 -s 128 -r adam -l 0.0005 -c "
               '0.00005 --mult 0.1 --do_decay True --drop1 1000 --drop2 1100), loss '
               'averaged (PeBusePenalty)',
        config={'optimizer': 'adam', 'lr': 5e-4, 'weight_decay': 5e-5,
                'batch_size': 128, 'num_epochs': 1110.0, 'schedule': 'step',
                'schedule_unit': 'epoch', 'warmup_epochs': 0.0,
                'decay_epochs': (1000.0, 1100.0), 'decay_factor': 0.1,
                'loss_reduction': 'mean', 'data.mixup_alpha': 0.0,
                'label_smoothing': 0.0, 'eval_every_epochs': 10.0,
                'method_kwargs.busemann.mult': 0.1}),
    'maxsep': dict(
        source='Kasarla et al., NeurIPS 2022: tkasarla/max-separation-as-inductive-bias '
               'LT_CIFAR/train_cifar.py (SGD momentum 0.9, weight decay 5e-4, '
               'CosineAnnealingLR(T_max=epochs) stepped per epoch) and LT_CIFAR/README.md '
               '(ResNet-34: -l 0.1 -b 512 -e 200 -r 0.1), loss averaged',
        config={'optimizer': 'sgd', 'lr': 0.1, 'momentum': 0.9, 'weight_decay': 5e-4,
                'batch_size': 512, 'num_epochs': 200.0, 'schedule': 'cosine',
                'schedule_unit': 'epoch', 'warmup_epochs': 0.0,
                'loss_reduction': 'mean', 'data.mixup_alpha': 0.0,
                'label_smoothing': 0.0, 'eval_every_epochs': 10.0,
                'method_kwargs.maxsep.radius': 0.1}),
}
RECIPE_NAMES = ('shared', 'paper', *PAPER_RECIPES)


def paper_recipe_name(method: str, imbalanced: bool) -> str:
  """The `PAPER_RECIPES` entry of `method`'s own paper (`:recipe=paper`)."""
  own = {'hpn': 'hpn', 'etf': 'etf', 'busemann': 'busemann', 'maxsep': 'maxsep',
         'dl2pa': 'dl2pa_lt' if imbalanced else 'dl2pa'}
  if method in own:
    return own[method]
  if method == 'ebv':
    raise ValueError('recipe=paper: EBV\'s code trains ImageNet only (ImageNet_Validation_'
                     'Experiment/EBV_ImageNet.py: ResNet-50, lr 0.5, 105 epochs), no CIFAR '
                     'recipe; name one: recipe=' + ' | recipe='.join(PAPER_RECIPES) + '.')
  raise ValueError(f'recipe=paper: method={method} is every paper\'s baseline; name the '
                   f'paper: recipe=hpn (HPN Table 3), recipe=etf (the ETF and DL2PA '
                   f'long-tailed tables) or recipe=maxsep.')


def apply_paper_recipe(config: ml_collections.ConfigDict, name: str, *, method: str,
                       num_classes: int, imbalanced: bool = False,
                       dim_open: bool = True) -> ml_collections.ConfigDict:
  """Sets `PAPER_RECIPES[name]` on `config` (`paper`: `method`'s own). Where `dim_open`
  and the recipe names the reference's feature width for `method`, also `config.dim`."""
  if name == 'paper':
    name = paper_recipe_name(method, imbalanced)
  if name not in PAPER_RECIPES:
    raise ValueError(f'Unknown recipe {name!r}; use one of {", ".join(RECIPE_NAMES)}.')
  recipe = PAPER_RECIPES[name]
  for key, value in recipe['config'].items():
    *parents, leaf = key.split('.')
    node = config
    for part in parents:
      node = node[part]
    node[leaf] = value
  if dim_open and method in recipe.get('dim_methods', ()):
    if num_classes not in recipe['dims']:
      raise ValueError(f'recipe={name} names the output dimension for '
                       f'{sorted(recipe["dims"])} classes, not {num_classes}; give :dim.')
    config.dim = recipe['dims'][num_classes]
  return config


def method_names() -> list[str]:
  """Every `:method=` value: HPN, the baseline (`baseline`, or by its tables' names
  `softmax`, `mse`, `multitask`) and the fixed-classifier methods."""
  return methods_lib.names()


# The methods a `family` sweep compares, and those of them that allow d < C - 1.
FAMILY = ('hpn', 'softmax', 'etf', 'maxsep', 'ebv', 'dl2pa', 'busemann')
LOW_DIM_METHODS = ('hpn', 'ebv', 'dl2pa', 'busemann')


def family_cells(dim: int, num_classes: int) -> list[str]:
  """`:arg` cells of every FAMILY method at `dim` (maxsep's output dimension is fixed to
  C - 1, softmax's to C)."""
  cells = []
  for method in FAMILY:
    if method == 'softmax':
      cells.append('method=softmax')
    elif method == 'maxsep':
      cells.append(f'method=maxsep,dim={num_classes - 1}')
    else:
      cells.append(f'method={method},dim={dim}')
  return cells


def set_method(config: ml_collections.ConfigDict, method: str, prototypes: str,
               dim: int, *, default_dim: int, num_classes: Optional[int] = None,
               default_prototypes: str = 'ours') -> ml_collections.ConfigDict:
  """Applies the `:method=`, `:prototypes=` and `:dim=` arguments of a dataset config.

  `method` is any `config.method` (`methods.names()`): hpn, the baseline (softmax, mse,
  multitask, or baseline) or a fixed-classifier method (classification only; the config
  then applies its `RECIPES` entry, `apply_recipe`); it must train `config.task`.
  `prototypes` is a `PROTOTYPES` key, any `hyperproto.prototypes` placement, or
  'default': `default_prototypes` for HPN (and the baseline, which places none), the
  method's own construction otherwise.
  `dim` 0 leaves the output dimension to the config and the method: `default_dim` (the
  config's), or what the method needs with `num_classes` classes (`Method.default_dim`:
  max-separation C - 1). An explicit `dim` is kept as it is; one the method cannot use
  is the method's clear error when the run starts.
  """
  entry = methods_lib.get(method, config.task)  # A clear error where it does not fit.
  config.method = method
  # HPN's placement is the config's choice (the paper's configs: the paper's recipe).
  own_placement = (PROTOTYPES[default_prototypes] if entry.name in ('hpn', 'baseline')
                   else entry.placement)
  if prototypes == 'default':
    config.prototypes.placement = own_placement
  elif prototypes in PROTOTYPES:
    config.prototypes.placement = PROTOTYPES[prototypes]
  elif prototypes in protos_lib.PLACEMENTS:
    config.prototypes.placement = prototypes
  else:
    raise ValueError(f'Unknown prototypes {prototypes!r}; use default, one of '
                     f'{sorted(PROTOTYPES)} or a placement of hyperproto.prototypes '
                     f'({sorted(protos_lib.PLACEMENTS)}).')
  if dim < 0:
    raise ValueError(f'dim={dim}: the output dimension must be positive (0: the '
                     f'default, {default_dim} or what the method needs).')
  if dim == 0:
    dim = default_dim
    if num_classes is not None:
      dim = entry.default_dim(num_classes, default_dim)
  config.dim = dim
  return config


def placement(config: ml_collections.ConfigDict) -> str:
  """The placement a run uses: `config.prototypes.placement`, where `default` is the
  method's own construction (`auto` for HPN; `auto` also for the baseline, which uses
  none)."""
  if config.prototypes.placement != 'default':
    return config.prototypes.placement
  return methods_lib.get(config.method, config.task).placement or 'auto'


def method_hparams(config: ml_collections.ConfigDict) -> tuple[tuple[str, Any], ...]:
  """The run's method's hyper-parameters, as `Objective.hparams`:
  `config.method_kwargs.<name>`; the softmax baseline's one is `config.label_smoothing`."""
  method = methods_lib.get(config.method, config.task)
  if config.label_smoothing and (method.name, config.task) != ('baseline',
                                                               'classification'):
    hint = ' (EBV: method_kwargs.ebv.label_smoothing)' if method.name == 'ebv' else ''
    raise ValueError(f'label_smoothing={config.label_smoothing} smooths the softmax '
                     f'baseline\'s cross-entropy (method=softmax, task=classification); '
                     f'this run trains method={config.method!r}, task={config.task!r}. '
                     f'Set label_smoothing=0{hint}.')
  if method.name == 'baseline':
    return (('label_smoothing', config.label_smoothing),)
  kwargs = config.method_kwargs.get(method.name)
  return tuple(sorted(kwargs.to_dict().items())) if kwargs is not None else ()


def paper_recipe(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The original's optimiser and schedule (HPN.md section 2), shared by the paper's
  configs: SGD momentum 0.9, coupled weight decay 1e-4 on every parameter, lr x 0.1 at
  epochs 100 and 200, 250 epochs, evaluation every 10 epochs; loss summed over the batch."""
  config.momentum = 0.9
  config.weight_decay = 1e-4
  config.schedule = 'step'
  config.decay_epochs = (100.0, 200.0)
  config.decay_factor = 0.1
  config.warmup_epochs = 0.0
  config.num_epochs = 250.0
  config.eval_every_epochs = 10.0
  config.loss_reduction = 'sum'
  return config


def base_config() -> ml_collections.ConfigDict:
  """Every option, with its default."""
  c = ml_collections.ConfigDict()
  c.seed = 0  # Parameter init and batch order.

  # Task section.
  c.task = 'classification'  # classification | regression | joint
  # The training method (hyperproto.methods): hpn (prototypes) | the baseline: softmax
  # (CE, classification) | mse (regression) | multitask (both heads, joint) | baseline
  # (the task's) | a fixed-classifier method: etf | maxsep | ebv | dl2pa | busemann.
  c.method = 'hpn'
  # Each method's hyper-parameters, under its name (all declared, so that e.g.
  # --config.method_kwargs.etf.loss=ce works from the command line); the baseline's one
  # is label_smoothing below.
  c.method_kwargs = ml_collections.ConfigDict(
      {name: dict(method.defaults) for name, method in methods_lib.METHODS.items()
       if method.defaults and name != 'baseline'})
  c.dim = 64  # Output dimension for prototype methods (joint: classes get dim - 1).
  c.joint_weight = 0.5  # w in (1 - w) L_r + w L_c.
  c.loss_reduction = 'sum'  # sum (the original) | mean, over the batch.
  # The softmax baseline (method=softmax): cross-entropy against (1 - e) one-hot + e / C
  # (PyTorch's label_smoothing); 0 = off. EBV has its own (method_kwargs.ebv).
  c.label_smoothing = 0.0

  # Prototype section (see hyperproto.prototypes).
  c.prototypes = ml_collections.ConfigDict()
  # How the class prototypes are placed (not the training method, config.method): a
  # hyperproto.prototypes placement, or `default`, the method's own construction
  # (`hyperproto.methods`), `auto` for HPN (see `placement`). Was prototypes.method.
  c.prototypes.placement = 'default'
  c.prototypes.seed = 300  # The original's.
  c.prototypes.kwargs = ml_collections.ConfigDict()  # Placement options (e.g. steps).
  c.prototypes.cache = True  # Reuse placements across runs ($HYPERPROTO_CACHE).

  # Data section.
  c.data = ml_collections.ConfigDict()
  c.data.name = 'digits'
  c.data.kwargs = ml_collections.ConfigDict()  # Passed to the dataset's loader, except:
  # hyperproto.data.subsets' options, applied to whatever the loader gives (declared here
  # so that --config.data.kwargs.X can set them; None / '' = off):
  c.data.kwargs.imbalance = config_dict.placeholder(float)  # RHO: CIFAR-LT training split.
  c.data.kwargs.train_per_class = config_dict.placeholder(int)  # N training examples/class.
  c.data.kwargs.unknown_classes = ''  # Held-out class indices, e.g. '6,7,8,9' (open set).
  c.data.kwargs.subset_seed = 0  # Which examples the options above keep.
  # Where prepared datasets live ('': $TFDS_DATA_DIR, else ~/tensorflow_datasets).
  c.data.data_dir = ''
  c.data.train_split = 'train'
  c.data.eval_split = 'test'
  c.data.augment = 'none'  # none | crop_flip (4-pixel padding + horizontal flip, in-step).
  # mixup (classification, datasets held on the device): each step mixes its batch with
  # a permutation of itself, lambda ~ Beta(alpha, alpha), the loss lambda L(y) +
  # (1 - lambda) L(y'); 0 = off (data.device_input.mixup).
  c.data.mixup_alpha = 0.0

  # Model section.
  c.model = ml_collections.ConfigDict()
  c.model.name = 'cnn'
  c.model.dtype = 'float32'  # Computation dtype; params stay float32.
  c.model.kwargs = ml_collections.ConfigDict()  # Passed to the backbone.
  c.model.init_npz = ''  # ViT only: a local vision_transformer / big_vision .npz.

  # Optimiser section: SGD with momentum and coupled (L2) weight decay on all params,
  # as the original; or Adam (PyTorch's: the weight decay added to the gradient).
  c.optimizer = 'sgd'  # sgd | adam
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
  # step (the rate changes every step; warm-up linear from 0) | epoch (held for each
  # epoch, as PyTorch scripts set it: warm-up lr (e + 1) / W; optim.epoch_learning_rate).
  c.schedule_unit = 'step'

  # Parallelism: global batch split over a 1-D mesh of `num_devices` (0: all).
  c.num_devices = 0
  c.parallel = 'shard_map'  # shard_map (jit + shard_map) | pmap; the same per-device step.

  # Logging, evaluation, checkpointing.
  c.log_every_steps = 50
  c.eval_every_steps = 0  # 0: only at the end (or every eval_every_epochs).
  c.eval_every_epochs = 0.0  # The original tests every 10 epochs; 0: off.
  c.eval_batch_size = 0  # 0: batch_size.
  c.checkpoint_every_steps = 200
  c.max_checkpoints_to_keep = 2
  # 'FIRST,LAST': a jax.profiler trace of those training steps in workdir/profile/
  # (e.g. '10,20'); '' = off.
  c.profile_steps = ''
  return c
