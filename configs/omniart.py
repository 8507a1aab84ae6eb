"""OmniArt: creation-year regression (Table 4) and joint year + style (Table 5).

  python -m hyperproto.main --config=configs/omniart.py:task=regression,dim=2,lr=0.001 \
      --workdir=$WORK/omniart/hpn2d
  python -m hyperproto.main --config=configs/omniart.py:task=joint --workdir=...
  python experiments/launch.py --config=configs/omniart.py --sweep=table4 \
      --seeds=0,1,2 --workdir=$WORK [--slurm]

Data: `train_complete.csv`, `test_complete.csv` and `train|test/<omni_id>.jpg` in one
folder, prepared once with `python -m hyperproto.data.prepare --dataset=omniart
--manual_dir=DIR` (bad rows, missing images, unseen styles and out-of-range years are
counted and reported there).

The original: ResNet-34 from scratch at 224, batch 64, lr 0.001 (Table 4 also 0.01),
years bounded to [1000, 1932]; joint: 47-d output, regression cos(z, e_0) on the full z,
46 style prototypes in 46-d on z[1:], w = 0.5. It evaluated with random crops (a bug);
we use centre crops unless `:faithful_eval`.

Arguments: task (regression | joint), method (hpn | mse | multitask), prototypes (for
joint: hpn | ours), dim (regression: 2 or 3; joint: 47), lr, faithful_eval, runlocal.

Paper numbers: Table 4 MAE (years) HPN 84.4 (2-d, lr 1e-2), 76.3 (2-d, 1e-3), 82.9
(3-d, 1e-2), 73.2 (3-d, 1e-3); MSE 210.7 / 110.3 / 339.9 / 109.9. Table 5: HPN joint MAE
68.3, style accuracy 52.6%; multi-task baseline 354.7 and 47.2%.
Runtime on one GPU: not measured yet (no GPU here).
"""

from hyperproto import config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, task='joint', method='hpn', prototypes='default', dim=0,
                             lr=0.001, faithful_eval=False, runlocal=False)
  config = config_lib.paper_recipe(config_lib.base_config())

  # Task section.
  if arg.task not in ('regression', 'joint'):
    raise ValueError(f'OmniArt trains task=regression or task=joint, not {arg.task!r}.')
  config.task = arg.task
  config_lib.set_method(config, arg.method, arg.prototypes, arg.dim,
                        default_dim=47 if arg.task == 'joint' else 2,
                        default_prototypes='hpn')
  config.joint_weight = 0.5

  # Data section: streamed at 224; years in [1000, 1932].
  config.data.name = 'omniart'
  config.data.kwargs.faithful_random_eval = arg.faithful_eval

  # Model section.
  config.model.name = 'resnet34'

  # Optimiser section (the rest: config_lib.paper_recipe).
  config.batch_size = 64
  config.lr = arg.lr
  config.log_every_steps = 50
  config.checkpoint_every_steps = 1000

  if arg.runlocal:
    config.num_epochs = 0.0
    config.num_steps = 4
    config.batch_size = 8
    config.eval_every_epochs = 0.0
    config.log_every_steps = 1
  return config


def get_sweep(name):
  cells = {
      'table4': [f'task=regression,method={m},dim={d},lr={lr}' for m in ('mse', 'hpn')
                 for d in (2, 3) for lr in (0.01, 0.001)],
      'table5': ['task=joint,method=multitask', 'task=joint,prototypes=hpn',
                 'task=joint,prototypes=ours'],
  }
  if name not in cells:
    raise ValueError(f'Unknown sweep {name!r}; use one of {sorted(cells)}.')
  return cells[name]
