"""CIFAR-10 from its JPEG copy: HPN and the fixed-prototype family on equal terms.

  python -m hyperproto.main --config=configs/cifar10.py:prototypes=ours,dim=3 \
      --workdir=$WORK/cifar10/ours3
  python -m hyperproto.main --config=configs/cifar10.py:method=etf,train_per_class=100 \
      --workdir=$WORK/cifar10/etf_fewshot
  python experiments/launch.py --config=configs/cifar10.py --sweep=placement \
      --seeds=0,1,2 --workdir=$WORK
  python experiments/launch.py --config=configs/cifar10.py --sweep=family \
      --seeds=0,1,2 --workdir=$WORK

Data: a folder `train/<class>/*.jpg`, `test/<class>/*.jpg` (the layout of
../shared/data/cifar10_jpeg), prepared once with
`python -m hyperproto.data.prepare --dataset=cifar10_jpeg --manual_dir=DIR`.

Not a table of the paper: a short, fixed budget that runs on 2 CPU cores (the demo CNN,
`:epochs` epochs, default 2, batch 128, cosine schedule, crop + flip). Sweeps:
  placement  HPN with d in {2, 3, 5, 10} under our placement (`ours`) and the original
             one (`hpn`), and softmax cross-entropy (experiments/results/cifar10.md);
  low_dim    the same at d in {2, 3} only;
  family     every method at d = 10 (maxsep at its fixed d = C - 1 = 9);
  family_d3  the methods that allow d < C - 1 at d = 3 (hpn, ebv, dl2pa, busemann);
  fewshot / lt  family + family_d3 on 100 training images per class / CIFAR-10-LT
             (imbalance 0.01), plus softmax with the softmax-type methods' recipe
             (loss averaged, lr 0.1): the table of experiments/family_table.py.
  paper_lt   the GPU run list's long-tailed cells (experiments/run_list.py): ResNet-32
             on CIFAR-10-LT at imbalance 0.01, then 0.005 and 0.02, each paper's
             recipe: softmax and ETF (ETF's), DL2PA (its long-tailed one), HPN (HPN's,
             d = 64 as the others);
  paper_full HPN (d = 10) and softmax on all of CIFAR-10, HPN's recipe (250 epochs).
Every method trains with the same backbone, data, schedule, steps and seeds; where a
paper's recipe differs from ours (the loss averaged over the batch, its own learning
rate and hyper-parameters), `config_lib.RECIPES` holds it and the method's module
(hyperproto/methods/) documents it. `:recipe=` trains a paper's own recipe instead
(`config_lib.PAPER_RECIPES`, each value read from its reference script: optimiser,
per-epoch schedule with its warm-up, weight decay, epochs, batch, mixup, the loss
reduction, and the reference's output dimension where `:dim` is left open).

Arguments: method (hpn | softmax | etf | maxsep | ebv | dl2pa | busemann), prototypes
(default: `ours` for HPN, the method's own construction otherwise | ours | hpn | any
placement), dim (default 10, or the recipe's; maxsep: C - 1 = 9), backbone (cnn |
resnet32 | ...), recipe (shared: this file's, the default | paper: the method's own
paper's | hpn | dl2pa | etf | dl2pa_lt | busemann | maxsep), lr (0: the recipe's, 0.01
for HPN), reduction ('': the recipe's | sum | mean), epochs (0: the recipe's; shared:
2), steps (overrides epochs), batch (0: the recipe's; shared: 128), train_per_class (0:
all), imbalance (0: balanced; e.g. 0.01 for CIFAR-10-LT), runlocal.
"""

from hyperproto import config_lib


# The published long-tailed cells (experiments/paper_numbers.py), each under its paper's
# recipe, and HPN beside them under its own; then HPN vs softmax on all of CIFAR-10.
PAPER_LT = ('method=softmax,recipe=etf', 'method=etf,recipe=etf',
            'method=dl2pa,recipe=dl2pa_lt', 'method=hpn,recipe=hpn,dim=64')
PAPER_FULL = ('method=hpn,recipe=hpn,dim=10', 'method=softmax,recipe=hpn')


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, prototypes='default', method='hpn', dim=0,
                             backbone='cnn', recipe='shared', lr=0.0, epochs=0.0,
                             steps=0, batch=0, train_per_class=0, imbalance=0.0,
                             reduction='', runlocal=False)
  config = config_lib.base_config()

  # Task section.
  config.task = 'classification'
  config_lib.set_method(config, arg.method, arg.prototypes, arg.dim, default_dim=10,
                        num_classes=10, default_prototypes='ours')

  # Data section: 50,000 train / 10,000 test, 32x32, uint8 on the device.
  config.data.name = 'cifar10_jpeg'
  config.data.augment = 'crop_flip'
  if arg.train_per_class:
    config.data.kwargs.train_per_class = arg.train_per_class
  if arg.imbalance:
    config.data.kwargs.imbalance = arg.imbalance

  # Model section.
  config.model.name = arg.backbone
  if arg.backbone == 'cnn':
    config.model.kwargs.widths = (16, 32, 64)

  # Optimiser section: the shared recipe and the method's own settings where they
  # differ, or a paper's whole recipe (:recipe); then :epochs, :batch, :steps, :lr.
  config.batch_size = 128
  config.num_epochs = 2.0
  config.lr = 0.01
  config.schedule = 'cosine'
  config.warmup_epochs = 0.1
  config.weight_decay = 5e-4
  config.log_every_steps = 100
  config.checkpoint_every_steps = 500
  config_lib.apply_recipe(config, arg.method)  # The method's paper, where it differs.
  if arg.recipe != 'shared':
    config_lib.apply_paper_recipe(config, arg.recipe, method=arg.method, num_classes=10,
                                  imbalanced=bool(arg.imbalance), dim_open=not arg.dim)
  if arg.epochs:
    config.num_epochs = arg.epochs
  if arg.batch:
    config.batch_size = arg.batch
  if arg.steps:
    config.num_steps = arg.steps
  if arg.lr:
    config.lr = arg.lr
  if arg.reduction:
    config.loss_reduction = arg.reduction

  if arg.runlocal:
    config.num_epochs = 0.0
    config.num_steps = 20
    config.log_every_steps = 5
  return config


def get_sweep(name):
  """placement: softmax and both placements at d in {2, 3, 5, 10}; low_dim: only
  d in {2, 3}, where the placements differ most (for extra seeds); family: every method
  at d = 10; family_d3: those that allow it at d = 3; fewshot / lt: both on 100 images
  per class / CIFAR-10-LT (imbalance 0.01); paper_lt / paper_full: the GPU run list's
  cells, in its order (each paper's recipe, ResNet-32)."""
  family = config_lib.family_cells(dim=10, num_classes=10)
  family_d3 = [f'method={m},dim=3' for m in config_lib.LOW_DIM_METHODS]
  # Softmax with the recipe of the softmax-type methods (loss averaged, lr 0.1).
  controls = ['method=softmax,lr=0.1,reduction=mean']
  sweeps = {
      'placement': (['method=softmax']
                    + [f'prototypes={p},dim={d}' for p in ('ours', 'hpn')
                       for d in (2, 3, 5, 10)]),
      'low_dim': [f'prototypes={p},dim={d}' for p in ('ours', 'hpn') for d in (2, 3)],
      'family': family,
      'family_d3': family_d3,
      'fewshot': [f'{c},train_per_class=100' for c in family + controls + family_d3],
      'lt': [f'{c},imbalance=0.01' for c in family + controls + family_d3],
      'paper_lt': [f'{c},backbone=resnet32,imbalance={rho}'
                   for rho in ('0.01', '0.005', '0.02') for c in PAPER_LT],
      'paper_full': [f'{c},backbone=resnet32' for c in PAPER_FULL],
  }
  if name not in sweeps:
    raise ValueError(f'Unknown sweep {name!r}; use one of {sorted(sweeps)}.')
  return sweeps[name]
