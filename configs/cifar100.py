"""CIFAR-100 with ResNet-32, the original recipe: Tables 1, 2 and 3 of the paper.

One cell (the `:arg` picks it):
  python -m hyperproto.main --config=configs/cifar100.py:prototypes=hpn,dim=50 \
      --workdir=$WORK/cifar100/hpn50
A whole table, 3 seeds (locally one after the other, or as a SLURM array):
  python experiments/launch.py --config=configs/cifar100.py --sweep=table1 \
      --seeds=0,1,2 --workdir=$WORK [--slurm]
  python experiments/tables.py --workdir=$WORK
Every method at d = 100 (maxsep at 99), same budget: `--sweep=family`.

Data: `python -m hyperproto.data.prepare --dataset=cifar100 --manual_dir=DIR` once
(cifar-100-python.tar.gz or cifar-100-binary.tar.gz; see the README).

Arguments (`:key=value,...`):
  prototypes  default (hpn for method=hpn, else the method's own construction) |
              hpn (the original placement: the paper's numbers) | ours (best separation)
              | one_hot (dim=100) | embedding (the word2vec baseline) | semantic
              (separation + privileged information, Table 2)
  method      hpn | softmax (cross-entropy baseline, Table 3; dim is ignored) | etf |
              maxsep (dim 99, its default) | ebv | dl2pa | busemann: the fixed-prototype
              methods (hyperproto/methods/), each with its paper's recipe where it
              differs from this one (`config_lib.RECIPES`: loss averaged over the
              batch, learning rate, hyper-parameters), the rest (ResNet-32, schedule,
              epochs, augmentation) the same for every method
  dim         output dimension: Table 1 10/25/50/100, Table 2 3/5/10/25; default
              100, the method's own where it fixes one (maxsep: 99)
  backbone    resnet32 (the paper) | densenet121 (the original's alternative) | any
              models.BACKBONES key for 32x32 inputs
  recipe      shared (this file's: the HPN paper's, the default) | paper (the
              method's own paper's) | a `config_lib.PAPER_RECIPES` key (hpn, dl2pa,
              etf, dl2pa_lt, busemann, maxsep); the long-tailed recipes (etf,
              dl2pa_lt) train the references' wider ResNet-32 (32/64/128 channels,
              their `resnet32_fe_c100`: multiplier 2) and d = 128
  imbalance   0: balanced; e.g. 0.01 for CIFAR-100-LT (data.kwargs.imbalance)
  runlocal    a 20-step smoke run (CPU)

Paper numbers (test accuracy %, mean +- std): Table 1 HPN 51.1 (10-d), 63.0 (25),
64.7 (50), 65.0 (100); one-hot 62.1 (100); word2vec 29.0 / 44.5 / 54.3 / 57.6. Table 2
HPN + privileged information 11.5 (3-d), 37.0 (5), 57.0 (10), 64.0 (25). Table 3 softmax
64.4, HPN 65.0. All of them: experiments/paper_numbers.py.

Runtime: 250 epochs x 390 steps of batch 128. Not yet measured on a GPU (none here);
on 2 CPU cores a ResNet-32 step ran at 35-65 images/s
(experiments/results/benchmark.md): far too slow for the full recipe; use `runlocal` or
a short `--config.num_epochs` there.
"""

from hyperproto import config_lib

TABLE1 = [('one_hot', 100)] + [(p, d) for p in ('embedding', 'hpn', 'ours')
                               for d in (10, 25, 50, 100)]
TABLE2 = [(p, d) for p in ('hpn', 'semantic', 'ours') for d in (3, 5, 10, 25)]


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, prototypes='default', method='hpn', dim=0,
                             backbone='resnet32', recipe='shared', imbalance=0.0,
                             runlocal=False)
  config = config_lib.paper_recipe(config_lib.base_config())

  # Task section.
  config.task = 'classification'
  config_lib.set_method(config, arg.method, arg.prototypes, arg.dim, default_dim=100,
                        num_classes=100, default_prototypes='hpn')

  # Data section: 50,000 train / 10,000 test, 32x32, uint8 on the device.
  config.data.name = 'cifar100'
  config.data.augment = 'crop_flip'  # RandomCrop(32, padding=4) + flip
  if arg.imbalance:
    config.data.kwargs.imbalance = arg.imbalance

  # Model section.
  config.model.name = arg.backbone

  # Optimiser section (the rest: config_lib.paper_recipe).
  config.batch_size = 128
  config.lr = 0.01

  config.log_every_steps = 100
  config.checkpoint_every_steps = 1000
  config_lib.apply_recipe(config, arg.method)  # The method's paper, where it differs.
  if arg.recipe != 'shared':
    config_lib.apply_paper_recipe(config, arg.recipe, method=arg.method,
                                  num_classes=100, imbalanced=bool(arg.imbalance),
                                  dim_open=not arg.dim)
    if arg.recipe in ('etf', 'dl2pa_lt') and arg.backbone == 'resnet32':
      config.model.kwargs.multiplier = 2

  if arg.runlocal:
    config.num_epochs = 0.0
    config.num_steps = 20
    config.batch_size = 16
    config.eval_every_epochs = 0.0
    config.log_every_steps = 5
  return config


def get_sweep(name):
  """`:arg` strings of a table: table1 | table2 | table3; family: every method at
  d = 100 (maxsep at 99); dl2pa: DL2PA at d = 10 / 25 / 50 / 100 (its balanced recipe
  is this file's); paper_lt: CIFAR-100-LT under each paper's recipe (softmax and ETF:
  ETF's, DL2PA: its long-tailed one), imbalance 0.01, 0.005, 0.02."""
  cells = {
      'table1': [f'prototypes={p},dim={d}' for p, d in TABLE1],
      'table2': [f'prototypes={p},dim={d}' for p, d in TABLE2],
      'table3': ['method=softmax', 'prototypes=hpn,dim=100', 'prototypes=ours,dim=100'],
      'family': config_lib.family_cells(dim=100, num_classes=100),
      'dl2pa': [f'method=dl2pa,dim={d}' for d in (10, 25, 50, 100)],
      'paper_lt': [f'{c},backbone=resnet32,imbalance={rho}'
                   for rho in ('0.01', '0.005', '0.02')
                   for c in ('method=softmax,recipe=etf', 'method=etf,recipe=etf',
                             'method=dl2pa,recipe=dl2pa_lt')],
  }
  if name not in cells:
    raise ValueError(f'Unknown sweep {name!r}; use one of {sorted(cells)}.')
  return cells[name]
