"""Rotated MNIST: the paper's proof of concept (digit + rotation angle in one output space).

  python -m hyperproto.main --config=configs/mnist.py --workdir=$WORK/mnist/hpn
  python -m hyperproto.main --config=configs/mnist.py:method=multitask --workdir=...
  python experiments/launch.py --config=configs/mnist.py --sweep=compare --seeds=0,1,2 \
      --workdir=$WORK

Data: the four MNIST idx files (plain or .gz), prepared once with
`python -m hyperproto.data.prepare --dataset=mnist --manual_dir=DIR`. Every image is
rotated by a fixed pseudo-random angle in [-60, 60] degrees (data_seed 0): the
regression target.

The paper shows this experiment as a figure, without numbers. Our CPU budget here: the
demo CNN (16/32/64 channels), batch 128, `:epochs` epochs (default 1) with a cosine
schedule; HPN joint (10-d output: angle on the full z, 10 digit prototypes in 9-d) vs. the
multi-task baseline (softmax + MSE heads) on the same backbone and budget. Measured
results: experiments/results/mnist.md.

Arguments: method (hpn | multitask), task (joint | classification | regression), dim (default 10),
prototypes (ours | hpn), lr, epochs, runlocal.
"""

from hyperproto import config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, method='hpn', task='joint', prototypes='default', dim=0,
                             lr=0.01, epochs=1.0, runlocal=False)
  config = config_lib.base_config()

  # Task section.
  config.task = arg.task
  config_lib.set_method(config, arg.method, arg.prototypes, arg.dim, default_dim=10,
                        num_classes=10, default_prototypes='ours')
  config.joint_weight = 0.5

  # Data section: 60,000 train / 10,000 test at 28x28, uint8 on the device.
  config.data.name = 'mnist_rotated'
  config.data.kwargs.max_angle = 60.0

  # Model section.
  config.model.name = 'cnn'
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
  """compare: HPN joint vs. the multi-task baseline, each at two learning rates."""
  if name != 'compare':
    raise ValueError(f'Unknown sweep {name!r}; use compare.')
  return [f'method={m},lr={lr}' for m in ('hpn', 'multitask') for lr in (0.003, 0.01)]
