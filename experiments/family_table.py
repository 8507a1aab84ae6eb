"""HPN and the fixed-prototype family on CIFAR-10, at one budget: the README's table.

  python experiments/family_table.py --workdir=$WORK/family --seeds=0,1,2 \
      --output=experiments/results/family_cifar10.md
  python experiments/family_table.py --workdir=$WORK/family --report_only

Runs `configs/cifar10.py`'s `fewshot` sweep (100 training images per class) and `lt`
sweep (CIFAR-10-LT, imbalance 0.01), i.e. every method at d = 10 (maxsep at 9) and those
that allow d < C - 1 at d = 3, each on ResNet-32 with the same number of steps, batch,
schedule and augmentation (`--backbone`, `--steps`, `--batch`), and prints test accuracy
(%) as mean +- std over seeds, with CIFAR-10-LT's many / medium / few-shot groups, and
beside each method with a published CIFAR-10-LT (0.01) number that number and its
source (ResNet-32 under that paper's own recipe: not this budget; the GPU run list,
experiments/run_list.py, trains those cells).
Runs go seed by seed (every cell of seed 0 first), so that a run cut short still has the
same seeds for every method; running the command again skips finished runs (and resumes
an interrupted one from its checkpoint). Needs CIFAR-10 prepared:
`python -m hyperproto.data.prepare --dataset=cifar10_jpeg --manual_dir=DIR`.
"""

import os
import subprocess
import sys
import time

from absl import app
from absl import flags

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, 'configs', 'cifar10.py')
SETTINGS = {'fewshot': '100 training images per class',
            'lt': 'CIFAR-10-LT, imbalance 0.01'}

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launch  # pylint: disable=g-import-not-at-top,wrong-import-position
import paper_numbers  # pylint: disable=g-import-not-at-top,wrong-import-position
import tables  # pylint: disable=g-import-not-at-top,wrong-import-position


def runs(workdir: str, settings, seeds, budget: str, methods=None):
  """[(run dir, launch info, main's args)], seed-major; only `methods` if given."""
  module = launch.load_config_module(CONFIG)
  out = []
  for seed in seeds:
    for setting in settings:
      for cell in module.get_sweep(setting):
        if methods and _parts(cell)['method'] not in methods:
          continue
        arg = f'{cell},{budget}'
        module.get_config(arg)  # A bad cell fails now, not after an hour.
        run_dir = os.path.join(os.path.abspath(workdir), setting, launch.slug(cell),
                               f'seed{seed}')
        info = dict(config=setting, config_path=CONFIG, arg=cell, budget=budget,
                    seed=int(seed), sweep=setting)
        out.append((run_dir, info, [f'--config={CONFIG}:{arg}', f'--workdir={run_dir}',
                                    f'--config.seed={seed}']))
  return out


SETTING_ARG = {'fewshot': 'train_per_class=100', 'lt': 'imbalance=0.01'}
GROUPS = ('many', 'medium', 'few')


def _method_cell(arg: str) -> str:
  """'method=etf,dim=10,imbalance=0.01' -> 'method=etf,dim=10'."""
  return ','.join(i for i in arg.split(',') if i not in SETTING_ARG.values())


def _parts(cell: str) -> dict[str, str]:
  return dict(item.split('=') for item in cell.split(','))


def _label(cell: str) -> str:
  parts = _parts(cell)
  method = parts['method']
  label = method if method == 'softmax' else f'{method}, d = {parts.get("dim", "?")}'
  recipe = ', '.join(f'{k} {parts[k]}' for k in ('reduction', 'lr') if k in parts)
  return f'{label} ({recipe})' if recipe else label


PUBLISHED_COLUMN = 'CIFAR-10-LT 0.01'


def published_lt(cell: str) -> tuple[str, str]:
  """(published CIFAR-10-LT 0.01 accuracy, source) of the cell's method, or ('–', '')
  for a method without one and for d = 3 cells (the published ones are at d = 64)."""
  method = _parts(cell)['method']
  if 'dim=3' in cell.split(','):
    return '–', ''
  spec = paper_numbers.TABLES['lt']
  for _, cells, *source in spec['rows']:
    arg, mean, std = cells.get(PUBLISHED_COLUMN, ('', None, None))
    if mean is not None and _parts(arg)['method'] == method:
      return tables.published(mean, std), source[0] if source else ''
  return '–', ''


def report(workdir: str) -> str:
  """The Markdown table of every finished run under `workdir`."""
  collected = tables.collect(workdir)
  if not collected:
    return f'No finished runs under {workdir}.\n'
  cells = sorted({_method_cell(arg) for _, arg in collected},
                 key=lambda c: ('dim=3' in c, launch.slug(c)))
  columns = [('fewshot', 'test/accuracy'), ('lt', 'test/accuracy'),
             *(('lt', f'test/{g}_shot_accuracy') for g in GROUPS)]
  header = ['method', SETTINGS['fewshot'], SETTINGS['lt'], *(f'LT {g}' for g in GROUPS)]
  header.append('published, CIFAR-10-LT 0.01 (ResNet-32, its paper\'s recipe)')
  rows, budgets, sources = [], set(), {}
  for cell in cells:
    row = [_label(cell)]
    for setting, metric in columns:
      key = (setting, tables.canonical(f'{cell},{SETTING_ARG[setting]}'))
      results = collected.get(key, [])
      budgets |= {r['budget'] for r in results if 'budget' in r}
      row.append(tables.mean_std([r[metric] * 100 for r in results if metric in r]))
    value, source = published_lt(cell)
    if source:
      number = sources.setdefault(source, len(sources) + 1)
      value = f'{value} [{number}]'
    rows.append(row + [value])
  # Leave out a group no class falls in (CIFAR-10-LT at 0.01 has no few-shot class).
  keep = [i for i in range(len(header))
          if i < 3 or i == len(header) - 1 or any(r[i] != '–' for r in rows)]
  lines = ['| ' + ' | '.join(r[i] for i in keep) + ' |' for r in [header] + rows]
  lines.insert(1, '|---' * len(keep) + '|')
  notes = ''.join(f'\n[{n}] {source}.' for source, n in sources.items())
  return (f'Test accuracy (%), mean ± std (number of seeds); budget: '
          f'{"; ".join(sorted(budgets))}.\n\n' + '\n'.join(lines) + '\n' + notes
          + ('\n' if notes else ''))


def define_flags():
  flags.DEFINE_string('workdir', None, 'Root of the runs.')
  flags.DEFINE_list('seeds', ['0', '1', '2'], 'Training seeds.')
  flags.DEFINE_list('settings', list(SETTINGS), 'fewshot and/or lt.')
  flags.DEFINE_list('methods', [], 'Only these methods (default: all).')
  flags.DEFINE_string('backbone', 'cnn', 'Backbone of every run.')
  flags.DEFINE_integer('steps', 400, 'Training steps of every run.')
  flags.DEFINE_integer('batch', 64, 'Global batch of every run.')
  flags.DEFINE_bool('report_only', False, 'Only print the table of finished runs.')
  flags.DEFINE_bool('dry_run', False, 'Print the runs; run nothing.')
  flags.DEFINE_string('output', None, 'Also write the Markdown table here.')


def main(argv):
  del argv
  unknown = set(FLAGS.settings) - set(SETTINGS)
  if unknown:
    raise app.UsageError(f'Unknown settings {sorted(unknown)}; use {sorted(SETTINGS)}.')
  if not FLAGS.report_only:
    budget = f'backbone={FLAGS.backbone},steps={FLAGS.steps},batch={FLAGS.batch}'
    todo = runs(FLAGS.workdir, FLAGS.settings, FLAGS.seeds, budget, FLAGS.methods)
    for i, (run_dir, info, args) in enumerate(todo):
      done = os.path.exists(os.path.join(run_dir, 'results.json'))
      command = [sys.executable, '-m', 'hyperproto.main', *args]
      print(f'[{i + 1}/{len(todo)}] {"done: " if done else ""}{" ".join(command)}',
            flush=True)
      if FLAGS.dry_run or done:
        continue
      launch.write_launch_json(run_dir, info)
      start = time.perf_counter()
      subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
      print(f'  {time.perf_counter() - start:.0f} s', flush=True)
  text = report(FLAGS.workdir)
  print(text)
  if FLAGS.output:
    with open(FLAGS.output, 'w') as f:
      f.write(text)


if __name__ == '__main__':
  define_flags()
  flags.mark_flag_as_required('workdir')
  app.run(main)
