"""Rotated digits (scikit-learn, no download): the paper's MNIST proof of concept.

Jointly predicts the digit (classification) and its rotation angle in [-60, 60] degrees
(regression) in one output space, as the paper does with rotated MNIST.

Command (1 min 17 s on 2 CPU cores, measured; see the README):
  python -m hyperproto.main --config=configs/digits.py --workdir=/tmp/hyperproto_digits

Arguments (`--config=configs/digits.py:task=joint,method=hpn,dim=10`):
  task    joint | classification | regression
  method  hpn (prototypes) | baseline (the task's: softmax CE / MSE / softmax + MSE
          heads; also by name: softmax | mse | multitask) | a fixed-classifier method
          (classification: etf | maxsep | ebv | dl2pa | busemann)
  dim     network output dimension for hpn (joint: 10 class prototypes in dim - 1)
  runlocal  a 20-step smoke run

Measured numbers: see the README (experiments/digits_compare.py).
"""

from hyperproto import config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, task='joint', method='hpn', dim=10, runlocal=False)
  config = config_lib.base_config()

  # Task section.
  config.task = arg.task
  config.method = arg.method
  config.dim = arg.dim
  config.joint_weight = 0.5

  # Data section: 1,438 train / 359 test images, 32x32.
  config.data.name = 'digits'
  config.data.kwargs.image_size = 32
  config.data.kwargs.max_angle = 60.0

  # Model section.
  config.model.name = 'cnn'
  config.model.kwargs.widths = (16, 32, 64)

  # Optimiser section.
  config.batch_size = 64
  config.num_epochs = 30.0
  config.lr = 0.01
  config.schedule = 'cosine'
  config.warmup_epochs = 1.0
  config.weight_decay = 5e-4

  config.log_every_steps = 100
  config.eval_every_steps = 200
  config.checkpoint_every_steps = 200

  if arg.runlocal:
    config.num_epochs = 0.0
    config.num_steps = 20
    config.log_every_steps = 5
    config.eval_every_steps = 10
    config.checkpoint_every_steps = 10
  return config


def get_sweep(name):
  """compare: HPN vs. the multi-task baseline (experiments/digits_compare.py runs it
  with a learning-rate grid)."""
  if name != 'compare':
    raise ValueError(f'Unknown sweep {name!r}; use compare.')
  return ['method=hpn', 'method=baseline']
