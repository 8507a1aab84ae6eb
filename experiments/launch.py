"""Expands a config's sweep into runs: one after the other here, or a SLURM job array.

  python experiments/launch.py --config=configs/cifar100.py --sweep=table1 \
      --seeds=0,1,2 --workdir=$WORK [--slurm [--submit] --nodes=1 --gpus_per_node=1] \
      [--dry_run] [--override=--config.num_epochs=10]

Each config may define `get_sweep(name)` returning `:arg` strings (one per table cell).
Every (cell, seed) gets a deterministic workdir, WORKDIR/<config>/<cell>/seed<k>, holding a
`launch.json` (config, arg, seed) that `experiments/tables.py` reads; running the same
command again skips finished runs (those with a results.json) and resumes unfinished ones
(so does a requeued SLURM task).

With --slurm the unfinished runs become one job array: WORKDIR/<config>/<sweep>-<hash>.args
(one run per line) and .sbatch (hyperproto/slurm), named by their content so that a later
submission never rewrites the lines of an array still queued; --submit also calls sbatch
and prints the job id. Logs: WORKDIR/<config>/slurm/<config>-<sweep>-<job id>_<task>.out.
"""

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hyperproto import slurm  # pylint: disable=g-import-not-at-top,wrong-import-position


def load_config_module(path: str):
  spec = importlib.util.spec_from_file_location('sweep_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def slug(arg: str) -> str:
  """A directory name for an `:arg` string: 'prototypes=hpn,dim=10' -> 'prototypes-hpn_dim-10'."""
  return re.sub(r'[^A-Za-z0-9.+-]', '_', arg.replace('=', '-').replace(',', '_')) or 'default'


def expand(config_path: str, sweep: str, seeds, workdir: str, overrides=()):
  """[(run workdir, launch info, command args)] for every cell and seed."""
  module = load_config_module(config_path)
  if not hasattr(module, 'get_sweep'):
    raise ValueError(f'{config_path} defines no get_sweep(name): it has no sweeps.')
  name = os.path.splitext(os.path.basename(config_path))[0]
  runs = []
  for arg in module.get_sweep(sweep):
    module.get_config(arg)  # Fail now, not in the middle of a sweep, on a bad cell.
    for seed in seeds:
      run_dir = os.path.join(os.path.abspath(workdir), name, slug(arg), f'seed{seed}')
      info = dict(config=name, config_path=os.path.abspath(config_path), arg=arg,
                  seed=int(seed), sweep=sweep)
      args = [f'--config={os.path.abspath(config_path)}:{arg}', f'--workdir={run_dir}',
              f'--config.seed={seed}', *overrides]
      runs.append((run_dir, info, args))
  return runs


def write_launch_json(run_dir: str, info: dict) -> None:
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, 'launch.json'), 'w') as f:
    json.dump(info, f, indent=2, sort_keys=True)


def define_flags():
  """The command line's flags (defined only when run as a program, so that importing
  this module defines none)."""
  flags.DEFINE_string('config', None, 'Config file with get_sweep(name).')
  flags.DEFINE_string('sweep', None, 'Sweep name (see the config docstring).')
  flags.DEFINE_list('seeds', ['0'], 'Training seeds (config.seed).')
  flags.DEFINE_string('workdir', None, 'Root of the runs\' workdirs.')
  flags.DEFINE_multi_string('override', [], '--config.x=y for every run.')
  flags.DEFINE_bool('dry_run', False, 'Print the runs (or script); run nothing.')
  flags.DEFINE_bool('slurm', False, 'Write an sbatch job-array script instead.')
  flags.DEFINE_bool('submit', False, 'With --slurm: submit it (sbatch), print the job id.')
  flags.DEFINE_enum('template', 'process_per_gpu', slurm.TEMPLATES, 'sbatch.')
  flags.DEFINE_integer('nodes', 1, 'Nodes per run (SLURM).')
  flags.DEFINE_integer('gpus_per_node', 1, 'GPUs per node (SLURM); 0: CPU nodes.')
  flags.DEFINE_integer('tasks_per_node', None, 'Processes per node (SLURM; default: one '
                       'per GPU).')
  flags.DEFINE_integer('cpus_per_task', None, 'CPUs per process (SLURM).')
  flags.DEFINE_string('time', '24:00:00', 'Time limit per run (SLURM).')
  flags.DEFINE_integer('signal_lead', slurm.SIGNAL_LEAD, 'Seconds before the time limit '
                       'at which a run checkpoints and requeues itself (SLURM).')
  flags.DEFINE_string('setup', '', 'Shell lines before srun (SLURM).')
  flags.DEFINE_multi_string('sbatch', [], 'Extra #SBATCH options (SLURM).')


def submit_slurm(runs) -> None:
  """Writes (and with --submit, submits) one job array of the unfinished runs."""
  todo = [run for run in runs if not os.path.exists(os.path.join(run[0], 'results.json'))]
  print(f'{len(runs) - len(todo)} of {len(runs)} runs finished (results.json): skipped.')
  if not todo:
    return
  name = os.path.splitext(os.path.basename(FLAGS.config))[0]
  base = os.path.join(os.path.abspath(FLAGS.workdir), name)
  lines = ''.join(' '.join(args) + '\n' for _, _, args in todo)
  digest = hashlib.sha1(lines.encode()).hexdigest()[:8]
  prefix = os.path.join(base, f'{FLAGS.sweep}-{digest}')
  log_dir = os.path.join(base, 'slurm')
  script = slurm.render(
      FLAGS.template, config='', workdir=base, nodes=FLAGS.nodes,
      gpus_per_node=FLAGS.gpus_per_node, tasks_per_node=FLAGS.tasks_per_node,
      cpus_per_task=FLAGS.cpus_per_task, time=FLAGS.time, signal_lead=FLAGS.signal_lead,
      job_name=f'{name}-{FLAGS.sweep}', log_dir=log_dir, setup=FLAGS.setup,
      sbatch_extra=[f'--array=0-{len(todo) - 1}', *FLAGS.sbatch],
      args_from_file=prefix + '.args')
  for i, (run_dir, _, _) in enumerate(todo):
    print(f'  task {i}: {run_dir}')
  if FLAGS.dry_run:
    print(script, end='')
    return
  slurm.make_log_dir(log_dir)
  for run_dir, info, _ in todo:
    write_launch_json(run_dir, info)
  with open(prefix + '.args', 'w') as f:
    f.write(lines)
  with open(prefix + '.sbatch', 'w') as f:
    f.write(script)
  if not FLAGS.submit:
    print(f'{len(todo)} runs: sbatch {prefix}.sbatch')
    return
  try:
    out = subprocess.run(['sbatch', '--parsable', prefix + '.sbatch'], check=True,
                         capture_output=True, text=True).stdout
  except FileNotFoundError:
    sys.exit(f'Error: sbatch not found: submit {prefix}.sbatch on a SLURM login node.')
  except subprocess.CalledProcessError as e:
    sys.exit(f'Error: sbatch {prefix}.sbatch failed: {e.stderr.strip()}')
  job = out.strip().split(';')[0]
  print(f'Submitted job array {job} ({len(todo)} runs); logs: '
        f'{log_dir}/{name}-{FLAGS.sweep}-{job}_<task>.out')


def main(argv):
  del argv
  runs = expand(FLAGS.config, FLAGS.sweep, FLAGS.seeds, FLAGS.workdir,
                FLAGS.override)
  if FLAGS.slurm:
    try:
      submit_slurm(runs)
    except ValueError as e:
      sys.exit(f'Error: {e}')
    return
  for i, (run_dir, info, args) in enumerate(runs):
    command = [sys.executable, '-m', 'hyperproto.main', *args]
    done = os.path.exists(os.path.join(run_dir, 'results.json'))
    print(f'[{i + 1}/{len(runs)}] {"done: " if done else ""}{" ".join(command)}',
          flush=True)
    if FLAGS.dry_run or done:
      continue
    write_launch_json(run_dir, info)
    subprocess.run(command, check=True, cwd=ROOT)


if __name__ == '__main__':
  define_flags()
  flags.mark_flags_as_required(['config', 'sweep', 'workdir'])
  app.run(main)
