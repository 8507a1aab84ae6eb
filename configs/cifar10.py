"""CIFAR-10 from its JPEG copy: our placement vs. the original's at low dimensions.

  python -m hyperproto.main --config=configs/cifar10.py:prototypes=ours,dim=3 \
      --workdir=$WORK/cifar10/ours3
  python experiments/launch.py --config=configs/cifar10.py --sweep=placement \
      --seeds=0,1,2 --workdir=$WORK

Data: a folder `train/<class>/*.jpg`, `test/<class>/*.jpg` (the layout of
../shared/data/cifar10_jpeg), prepared once with
`python -m hyperproto.data.prepare --dataset=cifar10_jpeg --manual_dir=DIR`.

Not a table of the paper: a short, fixed budget that runs on 2 CPU cores (the demo CNN,
`:epochs` epochs, default 2, batch 128, cosine schedule, crop + flip) comparing HPN with
d in {2, 3, 5, 10} under our placement (`ours`) and the original one (`hpn`), and softmax
cross-entropy. With 10 classes and d >= 9, `ours` is the exact simplex, which the
original recipe only approaches. Measured results:
experiments/results/cifar10.md.

Arguments: prototypes (ours | hpn), method (hpn | softmax), dim, backbone (cnn |
resnet32 | ...), lr, epochs, runlocal.
"""

from hyperproto import config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, prototypes='ours', method='hpn', dim=10,
                             backbone='cnn', lr=0.01, epochs=2.0, runlocal=False)
  config = config_lib.base_config()

  # Task section.
  config.task = 'classification'
  config_lib.set_method(config, arg.method, arg.prototypes, arg.dim)

  # Data section: 50,000 train / 10,000 test, 32x32, uint8 on the device.
  config.data.name = 'cifar10_jpeg'
  config.data.augment = 'crop_flip'

  # Model section.
  config.model.name = arg.backbone
  if arg.backbone == 'cnn':
    config.model.kwargs.widths = (16, 32, 64)

  # Optimiser section.
  config.batch_size = 128
  config.num_epochs = arg.epochs
  config.lr = arg.lr
  config.schedule = 'cosine'
  config.warmup_epochs = 0.1
  config.weight_decay = 5e-4
  config.log_every_steps = 100
  config.checkpoint_every_steps = 500

  if arg.runlocal:
    config.num_epochs = 0.0
    config.num_steps = 20
    config.log_every_steps = 5
  return config


def get_sweep(name):
  """placement: softmax and both placements at d in {2, 3, 5, 10}; low_dim: only
  d in {2, 3}, where the placements differ most (for extra seeds)."""
  dims = {'placement': (2, 3, 5, 10), 'low_dim': (2, 3)}
  if name not in dims:
    raise ValueError(f'Unknown sweep {name!r}; use one of {sorted(dims)}.')
  return ((['method=softmax'] if name == 'placement' else [])
          + [f'prototypes={p},dim={d}' for p in ('ours', 'hpn') for d in dims[name]])
