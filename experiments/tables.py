"""Collects results.json over a sweep's workdirs and prints the paper's tables with ours.

  python experiments/tables.py --workdir=$WORK [--tables=table1,table3] [--output=F.md]

Runs are found by the `launch.json` that experiments/launch.py (and run_list.py) writes
next to each results.json; cells are matched to experiments/paper_numbers.py by config
and `:arg`. Each cell prints `ours mean +- std (n runs)` and the published `mean +- std`
(`–` where none was published), and each table the source of its published numbers;
runs of no published table (e.g. the MNIST comparisons) are listed after the tables, and
runs without a results.json (queued, running, cancelled or failed) after them.
"""

import collections
import json
import os
import statistics
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import paper_numbers  # pylint: disable=g-import-not-at-top,wrong-import-position


def canonical(arg: str) -> str:
  return ','.join(sorted(filter(None, arg.split(','))))


def collect(root: str) -> dict[tuple[str, str], list[dict]]:
  """{(config, canonical arg): [results of each finished seed]}."""
  runs = collections.defaultdict(list)
  for directory, _, files in os.walk(root):
    if 'launch.json' in files and 'results.json' in files:
      with open(os.path.join(directory, 'launch.json')) as f:
        info = json.load(f)
      with open(os.path.join(directory, 'results.json')) as f:
        results = json.load(f)
      runs[(info['config'], canonical(info['arg']))].append(dict(results, **info))
  return runs


def mean_std(values: list[float]) -> str:
  if not values:
    return '–'
  std = statistics.stdev(values) if len(values) > 1 else 0.0
  return f'{statistics.mean(values):.1f} ± {std:.1f} ({len(values)})'


def column_config(spec: dict, column: str) -> str:
  """The config of `column`'s cells: the table's, or the column's own."""
  config = spec['config']
  if isinstance(config, dict):
    return config[column]
  return config or column


def published(mean, std) -> str:
  """A published number as printed: `mean ± std`, or the mean alone where the paper
  gives no std; `–` where it has none."""
  if mean is None:
    return '–'
  if std is not None:
    return f'{mean:.1f} ± {std:.1f}'
  text = f'{mean:.2f}'  # as printed: one or two decimals
  return text[:-1] if text.endswith('0') else text


def table(name: str, runs: dict) -> tuple[str, set]:
  spec = paper_numbers.TABLES[name]
  used, sources = set(), []
  lines = [f'### {spec["title"]}', '',
           '| | ' + ' | '.join(f'{c}: ours | {c}: published' for c in spec['columns'])
           + ' |', '|---|' + '---|---|' * len(spec['columns'])]
  for label, cells, *source in spec['rows']:
    row = [label]
    if source or spec.get('source'):
      sources.append((label, source[0] if source else spec['source']))
    for column in spec['columns']:
      if column not in cells:
        row += ['', '']
        continue
      arg, paper_mean, paper_std = cells[column]
      metric, scale = paper_numbers.COLUMN_METRICS.get(name, {}).get(
          column, (spec['metric'], spec['scale']))
      key = (column_config(spec, column), canonical(arg))
      used.add(key)
      values = [r[metric] * scale for r in runs.get(key, []) if metric in r]
      row += [mean_std(values), published(paper_mean, paper_std)]
    lines.append('| ' + ' | '.join(row) + ' |')
  if sources:
    lines += [''] + [f'- {label}: {source}.' for label, source in sources]
  return '\n'.join(lines), used


def published_value(config: str, arg: str) -> list[tuple[str, str, str]]:
  """[(table title, published number, source)] of every published cell of `config`
  with `:arg` (any key order)."""
  out = []
  for spec in paper_numbers.TABLES.values():
    for label, cells, *source in spec['rows']:
      for column, (cell_arg, mean, std) in cells.items():
        if (mean is not None and column_config(spec, column) == config
            and canonical(cell_arg) == canonical(arg)):
          out.append((spec['title'], published(mean, std),
                      source[0] if source else spec.get('source', '')))
  return out


def other_runs(runs: dict, used: set) -> str:
  keys = sorted(k for k in runs if k not in used)
  if not keys:
    return ''
  lines = ['### Other runs', '', '| config | arg | accuracy (%) | MAE |', '|---|---|---|---|']
  for config, arg in keys:
    results = runs[(config, arg)]
    acc = [r['test/accuracy'] * 100 for r in results if 'test/accuracy' in r]
    mae = [r['test/mae'] for r in results if 'test/mae' in r]
    lines.append(f'| {config} | {arg} | {mean_std(acc)} | {mean_std(mae)} |')
  return '\n'.join(lines)


def unfinished_runs(root: str) -> str:
  """The workdirs with a launch.json but no results.json yet."""
  dirs = sorted(d for d, _, files in os.walk(root)
                if 'launch.json' in files and 'results.json' not in files)
  if not dirs:
    return ''
  return '\n'.join([f'### Unfinished runs ({len(dirs)}: no results.json yet)', '',
                    *(f'- {d}' for d in dirs)])


def render(root: str, names) -> str:
  runs = collect(root)
  parts, used = [], set()
  for name in names:
    if name not in paper_numbers.TABLES:
      raise ValueError(f'Unknown table {name!r}; use {sorted(paper_numbers.TABLES)}.')
    text, keys = table(name, runs)
    parts.append(text)
    used |= keys
  parts.append(other_runs(runs, used))
  parts.append(unfinished_runs(root))
  return '\n\n'.join(p for p in parts if p) + '\n'


def define_flags():
  """The command line's flags (defined only when run as a program, so that importing
  this module defines none)."""
  flags.DEFINE_string('workdir', None, 'Root that holds the runs.')
  flags.DEFINE_list('tables', list(paper_numbers.TABLES), 'Tables to print.')
  flags.DEFINE_string('output', None, 'Also write the Markdown here.')


def main(argv):
  del argv
  text = render(FLAGS.workdir, FLAGS.tables)
  print(text)
  if FLAGS.output:
    with open(FLAGS.output, 'w') as f:
      f.write(text)


if __name__ == '__main__':
  define_flags()
  flags.mark_flag_as_required('workdir')
  app.run(main)
