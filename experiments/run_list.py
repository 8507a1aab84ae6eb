r"""The GPU run list: every minute of a GPU turns into table cells, across sessions.

  experiments/gpu_check.sh --run_list --budget_s=540      # a bare GPU machine (wheels)
  python experiments/run_list.py --budget_s=540            # dependencies installed
  python experiments/run_list.py --status                  # what is done, what is next
  python experiments/run_list.py --allow_cpu --tiny --budget_s=300 --state=/tmp/rl  # here

A fixed, ordered list of cells (`CELLS`: configs/cifar10.py's `paper_lt` then
`paper_full` sweeps, seed 0): CIFAR-10-LT at imbalance 0.01 with ResNet-32 under each
paper's recipe (softmax and ETF + DR: ETF's; DL2PA: its long-tailed one; HPN: HPN's),
then imbalance 0.005 and 0.02, then HPN (d = 10) and softmax on all of CIFAR-10 (HPN's
recipe, 250 epochs). Each call runs the next unfinished cells, one after another, until
--budget_s is spent:

  * a cell runs `python -m hyperproto.main` in its own workdir,
    STATE/work/cifar10/<cell>/seed0 (with the launch.json experiments/tables.py reads);
  * a cell still running when the budget ends gets SIGTERM: the trainer saves a
    checkpoint and stops, and the next call resumes it from there (where the workdir
    came back; else the cell restarts);
  * a finished cell leaves STATE/records/<cell>.json: the value (final test accuracy
    %), the published number beside it, the command, the machine, the commit, the wall
    time of every call that worked on it, and the data (the CIFAR-10 JPEG copy); its
    checkpoints are deleted (results.json and metrics.jsonl stay);
  * STATE/run_list.md, rewritten at the end of every call, is the list: each cell's
    status, value, published number and time.

STATE (--state) defaults to experiments/results/run_list, so that it travels with the
code: on a GPU machine give a folder that comes back (the device's $OUT) and copy it
over experiments/results/run_list afterwards (docs/reproduce.md). The dataset is
prepared once per machine from --cifar10_jpeg (the 19 MB JPEG copy: a small, known
accuracy cost against the original PNGs) into --data_dir.

--allow_cpu lets it run where JAX sees only a CPU; --tiny (for tests and a dry
rehearsal) shrinks every cell: the demo CNN at widths 4/8, --tiny_steps steps of batch
16, no intermediate evaluation. Tiny records say so and are no measurement of anything.
"""

import datetime
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Optional

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import launch  # pylint: disable=g-import-not-at-top,wrong-import-position
import tables  # pylint: disable=g-import-not-at-top,wrong-import-position
import time_limit  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIG = 'configs/cifar10.py'
SWEEPS = ('paper_lt', 'paper_full')
SEED = 0
DATA_NOTE = ('CIFAR-10 from its JPEG copy (../shared/data/cifar10_jpeg, the '
             'CIFAR-10-images re-encoding): a small, known accuracy cost against the '
             'original PNG/binary files')
# From SIGTERM (the trainer finishes its step, checkpoints, stops) to SIGKILL; a cell's
# time ends this much before the budget, so that its checkpoint fits in it.
GRACE_S = 45.0
MIN_CELL_S = GRACE_S + 60.0  # no cell starts with less time left (--tiny: 5 s)


def cells() -> list[str]:
  """The fixed order of the list: `:arg` strings of configs/cifar10.py."""
  module = launch.load_config_module(os.path.join(ROOT, CONFIG))
  return [cell for sweep in SWEEPS for cell in module.get_sweep(sweep)]


def cell_dir(state: str, cell: str) -> str:
  return os.path.join(state, 'work', 'cifar10', launch.slug(cell), f'seed{SEED}')


def record_path(state: str, cell: str) -> str:
  return os.path.join(state, 'records', f'{launch.slug(cell)}.json')


def read_json(path: str, default=None):
  if not os.path.exists(path):
    return default
  with open(path) as f:
    return json.load(f)


def write_json(path: str, value) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(value, f, indent=1, sort_keys=True)
  os.replace(tmp, path)


def checkpoint_step(run_dir: str) -> Optional[int]:
  """The newest checkpoint's step in `run_dir` (None: no checkpoint)."""
  steps = []
  ckpt = os.path.join(run_dir, 'checkpoints')
  if os.path.isdir(ckpt):
    steps = [int(d) for d in os.listdir(ckpt) if d.isdigit()]
  return max(steps) if steps else None


def commit() -> str:
  """The checkout's commit (+ '-dirty' with uncommitted changes outside experiments/
  results/), else $HYPERPROTO_COMMIT, else 'unknown' (a copy without .git)."""
  try:
    head = subprocess.run(['git', 'rev-parse', '--short=12', 'HEAD'], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--', '.',
                            ':!experiments/results'], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.strip()
    return head + ('-dirty' if dirty else '')
  except (OSError, subprocess.CalledProcessError):
    return os.environ.get('HYPERPROTO_COMMIT', 'unknown')


def probe_machine(env: dict) -> dict:
  """What JAX sees, asked in a child process (this one never starts JAX, so the runs
  get the whole accelerator)."""
  code = ('import jax, json; d = jax.devices()[0]; print(json.dumps(dict(platform='
          'd.platform, device_kind=d.device_kind, device_count=jax.device_count(), '
          'jax=jax.__version__)))')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                       env=dict(env, XLA_PYTHON_CLIENT_PREALLOCATE='false'), timeout=300)
  if out.returncode:
    raise RuntimeError(f'JAX did not start:\n{out.stderr[-2000:]}')
  info = json.loads(out.stdout.strip().splitlines()[-1])
  info['host'] = socket.gethostname()
  info['name'] = (f'{info["device_count"]} x {info["device_kind"]} ({info["platform"]}, '
                  f'jax {info["jax"]}), host {info["host"]}')
  return info


def prepare_data(cifar10_jpeg: str, data_dir: str, env: dict) -> None:
  """Prepares the JPEG copy into `data_dir` unless it is there already."""
  if os.path.isdir(os.path.join(data_dir, 'hyperproto_cifar10_jpeg')):
    return
  if not os.path.exists(cifar10_jpeg):
    raise FileNotFoundError(
        f'No CIFAR-10 JPEG copy at {cifar10_jpeg} and none prepared in {data_dir}: '
        f'pass --cifar10_jpeg=DIR (the folder or archive of ../shared/data/cifar10_jpeg)'
        f' or --data_dir=a data dir that has it prepared.')
  print(f'[run_list] preparing {cifar10_jpeg} into {data_dir}', flush=True)
  subprocess.run([sys.executable, '-m', 'hyperproto.data.prepare',
                  '--dataset=cifar10_jpeg', f'--manual_dir={cifar10_jpeg}',
                  f'--data_dir={data_dir}'], cwd=ROOT, env=env, check=True)


def command(cell: str, run_dir: str, data_dir: str, tiny_steps: int) -> list[str]:
  """The trainer's command for `cell` (--tiny_steps > 0: the reduced version)."""
  arg = cell
  extra = []
  if tiny_steps:
    arg = cell.replace('backbone=resnet32', 'backbone=cnn')
    extra = [f'--config.num_steps={tiny_steps}', '--config.batch_size=16',
             '--config.model.kwargs.widths=(4,8)', '--config.eval_every_epochs=0',
             '--config.log_every_steps=1', f'--config.checkpoint_every_steps={tiny_steps}']
  return [sys.executable, '-m', 'hyperproto.main', f'--config={CONFIG}:{arg}',
          f'--workdir={run_dir}', f'--config.seed={SEED}',
          f'--config.data.data_dir={data_dir}', *extra]


def run(cmd: list[str], timeout: float, env: dict, log_path: str) -> Optional[int]:
  """Runs `cmd` (output appended to `log_path`); past `timeout`, SIGTERM (the trainer
  checkpoints and stops), SIGKILL after GRACE_S. The return code, None if stopped."""
  with open(log_path, 'a') as log:
    log.write(f'\n===== {shlex.join(cmd)} (up to {timeout:.0f} s)\n')
    log.flush()
    return time_limit.run(cmd, timeout, stop_signal=signal.SIGTERM, grace_s=GRACE_S,
                          stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)


def best_eval(run_dir: str) -> Optional[float]:
  """The best test accuracy (%) over the run's evaluations (the LT references log the
  best over all epochs, 'Best Prec@1'), from metrics.jsonl."""
  path = os.path.join(run_dir, 'metrics.jsonl')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    values = [json.loads(l).get('test/accuracy') for l in f if l.strip()]
  values = [v for v in values if v is not None]
  return round(100 * max(values), 2) if values else None


def finish(state: str, cell: str, run_dir: str, calls: list, machine: dict,
           tiny: bool) -> dict:
  """The record of a finished cell; its checkpoints go (results.json stays)."""
  results = read_json(os.path.join(run_dir, 'results.json'))
  record = dict(
      cell=cell, config=CONFIG, seed=SEED,
      value=round(100 * results['test/accuracy'], 2), metric='test accuracy (%), final',
      best_eval_value=best_eval(run_dir),
      groups={k.split('/')[1]: round(100 * v, 2) for k, v in results.items()
              if k.endswith('_shot_accuracy')},
      published=[dict(table=t, value=v, source=s)
                 for t, v, s in tables.published_value('cifar10', cell)],
      command=shlex.join(['python'] + calls[-1]['command'][1:]),
      machine=machine['name'], commit=commit(),
      wall_s=round(sum(c['wall_s'] for c in calls), 1), calls=calls,
      steps=results['step'], train_seconds=round(results['train_seconds'], 1),
      data=DATA_NOTE, tiny=tiny,
      finished=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))
  write_json(record_path(state, cell), record)
  shutil.rmtree(os.path.join(run_dir, 'checkpoints'), ignore_errors=True)
  return record


def summary(state: str) -> str:
  """The Markdown list: each cell's status, value, published number and time."""
  lines = ['# GPU run list', '',
           f'`python experiments/run_list.py`: cells of {CONFIG} (sweeps '
           f'{", ".join(SWEEPS)}), seed {SEED}, in this order. {DATA_NOTE}.', '',
           '| # | cell | status | test accuracy (%) | best eval | published | wall (s) | '
           'machine | commit |', '|---|---|---|---|---|---|---|---|---|']
  for i, cell in enumerate(cells()):
    record = read_json(record_path(state, cell))
    if record:
      published = '; '.join(f'{p["value"]}' for p in record['published']) or '–'
      status = 'done (tiny: not a measurement)' if record['tiny'] else 'done'
      best = record['best_eval_value']
      lines.append(f'| {i + 1} | `{cell}` | {status} | {record["value"]} | '
                   f'{"–" if best is None else best} | {published} | {record["wall_s"]} | '
                   f'{record["machine"]} | {record["commit"]} |')
      continue
    step = checkpoint_step(cell_dir(state, cell))
    partial = read_json(os.path.join(cell_dir(state, cell), 'run_list_calls.json'), [])
    status = (f'started: checkpoint at step {step}' if step is not None
              else 'started: no checkpoint' if partial else 'to do')
    if partial and partial[-1]['exit'] not in (0, None):
      status = f'failed (exit {partial[-1]["exit"]}): see run_list.log'
    published = '; '.join(v for _, v, _ in tables.published_value('cifar10', cell)) or '–'
    wall = round(sum(c['wall_s'] for c in partial), 1) if partial else ''
    lines.append(f'| {i + 1} | `{cell}` | {status} | | | {published} | {wall} | | |')
  return '\n'.join(lines) + '\n'


def define_flags():
  flags.DEFINE_float('budget_s', 540.0, 'Wall time this call may spend (s).')
  flags.DEFINE_string('state', os.path.join(ROOT, 'experiments', 'results', 'run_list'),
                      'Records, workdirs and run_list.md.')
  flags.DEFINE_string('data_dir', '/tmp/hyperproto_data', 'TFDS data dir of the '
                      'prepared CIFAR-10 JPEG copy (prepared there if missing).')
  flags.DEFINE_string('cifar10_jpeg', os.path.join(ROOT, '..', 'shared', 'data',
                                                   'cifar10_jpeg'),
                      'The JPEG copy (folder or archive), if it must be prepared.')
  flags.DEFINE_bool('allow_cpu', False, 'Run where JAX sees only a CPU.')
  flags.DEFINE_bool('tiny', False, 'Shrink every cell (tests, a rehearsal).')
  flags.DEFINE_integer('tiny_steps', 3, 'Steps of a --tiny cell.')
  flags.DEFINE_integer('max_cells', 0, 'Stop after finishing this many (0: no limit).')
  flags.DEFINE_bool('status', False, 'Print the list and exit.')


def main(argv):
  del argv
  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  state = os.path.abspath(FLAGS.state)
  if FLAGS.status:
    print(summary(state), end='')
    return
  deadline = time.monotonic() + FLAGS.budget_s
  env = dict(os.environ, PYTHONUNBUFFERED='1')
  env['PYTHONPATH'] = os.pathsep.join(p for p in (ROOT, env.get('PYTHONPATH')) if p)
  if FLAGS.tiny:
    env['JAX_DISABLE_MOST_OPTIMIZATIONS'] = '1'  # Compile in seconds; nothing is timed.
  machine = probe_machine(env)
  if machine['platform'] == 'cpu' and not FLAGS.allow_cpu:
    raise app.UsageError(f'JAX sees no accelerator ({machine["name"]}); pass '
                         f'--allow_cpu to run the list on a CPU anyway.')
  data_dir = os.path.abspath(FLAGS.data_dir)
  prepare_data(os.path.abspath(FLAGS.cifar10_jpeg), data_dir, env)
  os.makedirs(state, exist_ok=True)
  log_path = os.path.join(state, 'run_list.log')
  tiny_steps = FLAGS.tiny_steps if FLAGS.tiny else 0
  min_cell_s = 5.0 if FLAGS.tiny else MIN_CELL_S
  finished = 0
  for cell in cells():
    if os.path.exists(record_path(state, cell)):
      continue
    left = deadline - time.monotonic()
    if left < min_cell_s or (FLAGS.max_cells and finished >= FLAGS.max_cells):
      break
    run_dir = cell_dir(state, cell)
    launch.write_launch_json(run_dir, dict(config='cifar10', config_path=CONFIG,
                                           arg=cell, seed=SEED, sweep='run_list'))
    calls_path = os.path.join(run_dir, 'run_list_calls.json')
    calls = read_json(calls_path, [])
    cmd = command(cell, run_dir, data_dir, tiny_steps)
    start_step = checkpoint_step(run_dir)
    print(f'[run_list] {cell}: ' + (f'resuming from step {start_step}' if start_step
                                    else 'starting') + f', up to {left:.0f} s', flush=True)
    t = time.monotonic()
    # The budget ends GRACE_S early for this cell, so its checkpoint fits in it.
    rc = run(cmd, left - (0.0 if FLAGS.tiny else GRACE_S), env, log_path)
    calls.append(dict(command=cmd, machine=machine['name'], resumed_from_step=start_step,
                      wall_s=round(time.monotonic() - t, 1), exit=rc,
                      started=datetime.datetime.now(datetime.timezone.utc).strftime(
                          '%Y-%m-%d %H:%M UTC')))
    write_json(calls_path, calls)
    if rc == 0 and os.path.exists(os.path.join(run_dir, 'results.json')):
      record = finish(state, cell, run_dir, calls, machine, bool(tiny_steps))
      finished += 1
      print(f'[run_list] {cell}: {record["value"]}% in {record["wall_s"]} s', flush=True)
      continue
    if rc is None:
      print(f'[run_list] {cell}: stopped at the budget; checkpoint at step '
            f'{checkpoint_step(run_dir)} (the next call resumes it)', flush=True)
    else:
      print(f'[run_list] {cell}: failed (exit {rc}); see {log_path}', flush=True)
    break
  text = summary(state)
  with open(os.path.join(state, 'run_list.md'), 'w') as f:
    f.write(text)
  print(text, end='')


if __name__ == '__main__':
  define_flags()
  app.run(main)
