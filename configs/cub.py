"""CUB-200-2011 (about 30 training images per class): Table 3 of the paper.

  python -m hyperproto.main --config=configs/cub.py:prototypes=hpn --workdir=$WORK/cub/hpn
  python experiments/launch.py --config=configs/cub.py --sweep=table3 --seeds=0,1,2 \
      --workdir=$WORK [--slurm]

Data: CUB_200_2011.tgz (or its extracted folder), prepared once with
`python -m hyperproto.data.prepare --dataset=cub --manual_dir=DIR`; the official split
(5,994 train / 5,794 test). Images are decoded and augmented on the host (streaming).

The original: ImageNet-style ResNet-34 from scratch at 224, RandomResizedCrop(224) + flip,
batch 64, lr 0.01, ImageNet mean/std, 250 epochs, lr x 0.1 at 100 and 200. It evaluated
with random crops (a bug); we evaluate on centre crops unless `:faithful_eval`.

Arguments: prototypes (hpn | ours | one_hot | embedding | semantic), method (hpn |
softmax), dim (default 200; maxsep: 199), backbone (resnet34), faithful_eval, runlocal.

Paper numbers (test accuracy %): softmax 43.1 +- 0.6, HPN 47.3 +- 0.1 (Table 3).
Runtime on one GPU: not measured yet (no GPU here).
"""

from hyperproto import config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, prototypes='default', method='hpn', dim=0,
                             backbone='resnet34', faithful_eval=False, runlocal=False)
  config = config_lib.paper_recipe(config_lib.base_config())

  # Task section.
  config.task = 'classification'
  config_lib.set_method(config, arg.method, arg.prototypes, arg.dim, default_dim=200,
                        num_classes=200, default_prototypes='hpn')

  # Data section: streamed, RandomResizedCrop(224) + flip while decoding.
  config.data.name = 'cub'
  config.data.kwargs.faithful_random_eval = arg.faithful_eval

  # Model section.
  config.model.name = arg.backbone

  # Optimiser section (the rest: config_lib.paper_recipe).
  config.batch_size = 64
  config.lr = 0.01
  config.log_every_steps = 20
  config.checkpoint_every_steps = 500
  config_lib.apply_recipe(config, arg.method)  # The method's paper, where it differs.

  if arg.runlocal:
    config.num_epochs = 0.0
    config.num_steps = 4
    config.batch_size = 8
    config.eval_every_epochs = 0.0
    config.log_every_steps = 1
  return config


def get_sweep(name):
  if name != 'table3':
    raise ValueError(f'Unknown sweep {name!r}; use table3.')
  return ['method=softmax', 'prototypes=hpn', 'prototypes=ours']
