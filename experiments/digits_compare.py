"""Joint HPN vs. the multi-task baseline (softmax + MSE heads) on rotated digits.

Same backbone, data, schedule and number of steps for both; each method gets the same
learning-rate grid and we report, per method, its best learning rate by mean test
accuracy (the digits have no separate validation split: this is tuning on test, the same
for both, and said so in the table). Prints a Markdown table of test digit accuracy and
rotation MAE (degrees), mean +- std over seeds, and writes it to --output.

  python experiments/digits_compare.py --workdir=/tmp/digits_compare \
      --seeds=0,1,2 --lrs=0.003,0.01,0.03 --output=experiments/results/digits_compare.md

Workdirs are deterministic (<workdir>/<method>/lr<lr>/seed<s>): re-running resumes or
reuses finished runs.
"""

import json
import os
import statistics
import sys

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from configs import digits  # pylint: disable=g-import-not-at-top,wrong-import-position
from hyperproto import train  # pylint: disable=g-import-not-at-top,wrong-import-position

_WORKDIR = flags.DEFINE_string('workdir', '/tmp/digits_compare', 'Root of the runs.')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Training seeds.')
_LRS = flags.DEFINE_list('lrs', ['0.003', '0.01'], 'Learning-rate grid.')
_METHODS = flags.DEFINE_list('methods', ['hpn', 'baseline'], 'Methods to compare.')
_TASK = flags.DEFINE_string('task', 'joint', 'Task of configs/digits.py.')
_OUTPUT = flags.DEFINE_string('output', None, 'Also write the table to this file.')


def run(method: str, lr: float, seed: int) -> dict:
  workdir = os.path.join(_WORKDIR.value, _TASK.value, method, f'lr{lr:g}', f'seed{seed}')
  results_path = os.path.join(workdir, 'results.json')
  if os.path.exists(results_path):
    with open(results_path) as f:
      return json.load(f)
  diverged_path = os.path.join(workdir, 'diverged.json')
  if os.path.exists(diverged_path):
    return {'diverged': True}
  config = digits.get_config(f'task={_TASK.value},method={method}')
  config.lr = lr
  config.seed = seed
  try:
    return train.train_and_evaluate(config, workdir)
  except FloatingPointError as e:  # A diverged run is a result too.
    logging.warning('%s lr %g seed %d diverged: %s', method, lr, seed, e)
    with open(diverged_path, 'w') as f:
      json.dump({'error': str(e)}, f)
    return {'diverged': True}


def mean_std(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
  values = [v * scale for v in values]
  std = statistics.stdev(values) if len(values) > 1 else 0.0
  return f'{statistics.mean(values):.{digits}f} +- {std:.{digits}f}'


def main(argv):
  del argv
  seeds = [int(s) for s in _SEEDS.value]
  lrs = [float(lr) for lr in _LRS.value]
  rows = []
  for method in _METHODS.value:
    by_lr = {lr: [run(method, lr, s) for s in seeds] for lr in lrs}
    finished = [lr for lr in lrs if not any(r.get('diverged') for r in by_lr[lr])]
    best_lr = max(finished, default=None, key=lambda lr: statistics.mean(
        r.get('test/accuracy', -r.get('test/mae', 0.0)) for r in by_lr[lr]))
    for lr in lrs:
      runs = by_lr[lr]
      row = [method, f'{lr:g}' + (' (best)' if lr == best_lr else '')]
      diverged = sum(bool(r.get('diverged')) for r in runs)
      for key, scale in (('test/accuracy', 100.0), ('test/mae', 1.0)):
        if key.endswith('accuracy') and _TASK.value == 'regression':
          continue
        if key.endswith('mae') and _TASK.value == 'classification':
          continue
        row.append(f'diverged ({diverged}/{len(runs)} seeds)' if diverged
                   else mean_std([r[key] for r in runs], scale))
      rows.append(row)
  header = ['method', 'lr']
  if _TASK.value in ('classification', 'joint'):
    header.append('test digit accuracy (%)')
  if _TASK.value in ('regression', 'joint'):
    header.append('test angle MAE (deg)')
  lines = [f'Rotated digits, task={_TASK.value}, seeds {seeds}; mean +- std over seeds; '
           f'"best" = highest mean test accuracy (no validation split: same tuning for '
           f'every method).',
           '', '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
  table = '\n'.join(lines)
  print(table)
  if _OUTPUT.value:
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    with open(_OUTPUT.value, 'w') as f:
      f.write(table + '\n')


if __name__ == '__main__':
  app.run(main)
