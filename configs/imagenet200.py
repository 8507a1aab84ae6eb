"""ImageNet-200 (64x64, 2 to 200 training images per class): Table 3 of the paper.

  python -m hyperproto.main --config=configs/imagenet200.py:prototypes=hpn \
      --workdir=$WORK/imagenet200/hpn
  python experiments/launch.py --config=configs/imagenet200.py --sweep=table3 \
      --seeds=0,1,2 --workdir=$WORK [--slurm]

Data: the authors' prepared ImageFolder (`train/<class>/`, `test/<class>/`) or the raw
Tiny-ImageNet-200 layout (`:data=tiny_imagenet200`); prepare once with
`python -m hyperproto.data.prepare --dataset=imagenet200 --manual_dir=DIR`.

The original: a ResNet-32-style network with AvgPool 16 (`resnet32_64`), lr 0.01,
batch 128, RandomCrop(64, padding=4) + flip, ImageNet mean/std, 250 epochs, lr x 0.1 at
100 and 200.

Arguments: prototypes (hpn | ours | one_hot | embedding | semantic), method (hpn |
softmax), dim (default 200, as the paper: one dimension per class; maxsep: 199), backbone, data
(imagenet200 | tiny_imagenet200), runlocal.

Paper numbers (test accuracy %): softmax 44.2 +- 0.0, HPN 46.4 +- 0.0 (Table 3).
Runtime on one GPU: not measured yet (no GPU here).
"""

from hyperproto import config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, prototypes='default', method='hpn', dim=0,
                             backbone='resnet32_64', data='imagenet200', runlocal=False)
  config = config_lib.paper_recipe(config_lib.base_config())

  # Task section.
  config.task = 'classification'
  config_lib.set_method(config, arg.method, arg.prototypes, arg.dim, default_dim=200,
                        num_classes=200, default_prototypes='hpn')

  # Data section: 64x64, uint8 on the device.
  config.data.name = arg.data
  config.data.augment = 'crop_flip'

  # Model section.
  config.model.name = arg.backbone

  # Optimiser section (the rest: config_lib.paper_recipe).
  config.batch_size = 128
  config.lr = 0.01
  config.log_every_steps = 100
  config.checkpoint_every_steps = 1000
  config_lib.apply_recipe(config, arg.method)  # The method's paper, where it differs.

  if arg.runlocal:
    config.num_epochs = 0.0
    config.num_steps = 10
    config.batch_size = 16
    config.eval_every_epochs = 0.0
    config.log_every_steps = 5
  return config


def get_sweep(name):
  if name != 'table3':
    raise ValueError(f'Unknown sweep {name!r}; use table3.')
  return ['method=softmax', 'prototypes=hpn', 'prototypes=ours']
