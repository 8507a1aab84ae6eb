r"""One command that measures the whole accelerator path in a few minutes.

  experiments/gpu_check.sh --out=DIR                  # a bare GPU machine: wheels first
  python experiments/gpu_check.py --out=DIR           # with the dependencies installed
  python experiments/gpu_check.py --allow_cpu --out=DIR   # the same parts, tiny, on a CPU

Parts, in this order, on whatever accelerator JAX sees:
  devices    device kind, memory, jax/jaxlib and package versions, nvidia-smi, then
             `python -m hyperproto.check_devices` (an all-reduce over every device);
  benchmark  experiments/benchmark.py's step: ResNet-32 CIFAR batch 128 in float32 and
             bfloat16, ResNet-34 at 224 batch 64 in bfloat16 (images/s, compile s);
  deterministic  the float32 ResNet-32 step again with --xla_gpu_deterministic_ops=true
             (what main.py --deterministic sets): its cost in speed;
  train      `train.train_and_evaluate` with configs/cifar100.py (the paper recipe) on
             synthetic data of CIFAR-100's shape (50,000 32x32 uint8, 100 classes) for
             --train_steps steps: steady images/s, first step and final evaluation
             seconds (from the run's metrics.jsonl), and the projected time of the
             250-epoch recipe;
  input      the 224 streaming pipeline (JPEG decode + RandomResizedCrop + flip, grain)
             with one worker per host core: images/s, train and eval;
  tests      `pytest -m device` on the accelerator (train step, shard_map/pmap, bfloat16,
             resume, on-device input; tests needing more devices than there are skip),
             last, with all the time the others left; with XLA_FLAGS
             --xla_gpu_deterministic_ops=true (tests/conftest.py), which the tests that
             compare runs bitwise need on a GPU.

Each part runs in its own process, one after another: a process of JAX takes 75% of a
GPU's memory, a crash or hang stays in its part, and a part past its time gets Ctrl-C,
then SIGKILL 15 s later (so pytest still reports the failures it saw).
Part i gets (time left) x share_i / (shares of parts i..end), so time a part leaves
unused goes to the rest and the whole keeps to --budget_s; a part that would get less
than 10 s is skipped ('skipped: time budget'). Each part's result or error (with the tail
of its traceback) goes to DIR/gpu_check.json, rewritten after every part; DIR/gpu_check.md
is the summary (also printed) and DIR/gpu_check.log every part's output.
"""

import datetime
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Callable, Optional
from xml.etree import ElementTree

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # configs/, experiments/ and hyperproto/ from a checkout.

_OUT = flags.DEFINE_string('out', None, 'Folder for gpu_check.json / .md / .log.')
_BUDGET = flags.DEFINE_float('budget_s', 420.0, 'Time budget of the whole run (s).')
_ALLOW_CPU = flags.DEFINE_bool('allow_cpu', False, 'Tiny versions of the parts, and no '
                               'error when JAX sees only a CPU (the suite runs this).')
_ONLY = flags.DEFINE_list('only', [], 'Run only these parts (default: all).')
_TESTS = flags.DEFINE_list('tests', None, 'What the tests part gives pytest, with '
                           '-m device (default: tests/, all of them; with --allow_cpu, '
                           'CPU_TESTS, a quick two).')
_TRAIN_STEPS = flags.DEFINE_integer('train_steps', 0, 'Steps of the train part '
                                    '(0: 1000 on an accelerator, 8 with --allow_cpu).')
_CHILD = flags.DEFINE_string('child', None, 'Internal: run this part here, write its '
                             'results to --child_out.')
_CHILD_OUT = flags.DEFINE_string('child_out', None, 'Internal.')

# name: share of the time budget, in the order the parts run. From the first run on one
# H200 (2026-11-30, budget 400 s): devices 8.5 s, benchmark 82 s, train 39 s, input 35 s;
# the 41 device tests did not fit in 115 s, so they run last and get what is left.
SHARES = {'devices': 0.04, 'benchmark': 0.26, 'deterministic': 0.07, 'train': 0.14,
          'input': 0.12, 'tests': 0.44}
MIN_PART_S = 10.0
GRACE_S = 15.0  # between the Ctrl-C at a part's time limit and the SIGKILL
RECIPE_EPOCHS = 250  # configs/cifar100.py (config_lib.paper_recipe)
# --allow_cpu: reduced instances of the same networks (and XLA's optimisations off).
TINY_MODELS = {'resnet32': dict(depth=8),
               'resnet34': dict(stage_sizes=(1, 1, 1, 1), width=8, pool_size=None)}
CPU_TESTS = [
    'tests/device_input_test.py::DeviceInputTest::'
    'test_each_epoch_is_a_permutation_cut_into_batches',
    'tests/device_input_test.py::DeviceInputTest::'
    'test_crop_flip_covers_all_offsets_and_both_orientations']


def _tail(text: str, n: int = 3000) -> str:
  return text[-n:] if text else ''


# ----------------------------------------------------------------------------------
# The parts, each run in a child process (`--child=NAME`). Each fills `out` as it goes;
# `emit()` writes it, so a part killed at its time limit keeps what it measured.


def part_devices(out: dict, emit: Callable[[], None]) -> None:
  import importlib.metadata  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  device = jax.devices()[0]
  out.update(platform=device.platform, device_kind=device.device_kind,
             device_count=jax.device_count(), process_count=jax.process_count(),
             local_devices=[str(d) for d in jax.local_devices()],
             jax=jax.__version__, jaxlib=jaxlib.__version__,
             python=sys.version.split()[0], host_cpus=os.cpu_count())
  try:
    limit = (device.memory_stats() or {}).get('bytes_limit')  # None on CPU
    out['memory_gib'] = round(limit / 2**30, 1) if limit else None
  except Exception as e:  # pylint: disable=broad-except
    out['memory_gib'] = f'unknown ({type(e).__name__}: {e})'
  versions = {}
  for name in ('flax', 'optax', 'orbax-checkpoint', 'numpy', 'tensorflow-datasets',
               'grain', 'array_record', 'ml-collections', 'tensorboardX', 'etils',
               'protobuf', 'jax-cuda13-plugin', 'jax-cuda12-plugin'):
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  out['packages'] = versions
  if shutil.which('nvidia-smi'):
    smi = subprocess.run(['nvidia-smi', '--query-gpu=name,memory.total,driver_version,'
                          'clocks.max.sm', '--format=csv,noheader'],
                         capture_output=True, text=True, timeout=30, check=False)
    out['nvidia_smi'] = smi.stdout.strip() or _tail(smi.stderr, 500)
  emit()


def part_benchmark(out: dict, emit: Callable[[], None],
                   cases=(('resnet32', 'float32'), ('resnet32', 'bfloat16'),
                          ('resnet34', 'bfloat16'))) -> None:
  from experiments import benchmark  # pylint: disable=g-import-not-at-top
  tiny = _ALLOW_CPU.value
  for case, dtype in cases:
    key = f'{case}_{dtype}'
    try:
      if tiny:  # The same step on a few images through reduced networks.
        kwargs = dict(batch=8, size=32, model_kwargs=TINY_MODELS[case])
        steps, repeats = 2, 1
      else:
        kwargs = {}
        steps, repeats = (50, 5) if case == 'resnet32' else (20, 5)
      out[key] = benchmark.bench_ours(case, dtype, steps, repeats, dim=64, **kwargs)
      if tiny:
        out[key]['model_kwargs'] = TINY_MODELS[case]
    except Exception as e:  # pylint: disable=broad-except
      out[key] = {'error': f'{type(e).__name__}: {e}',
                  'traceback_tail': _tail(traceback.format_exc())}
    emit()
  failed = [k for k, v in out.items() if 'error' in v]
  if failed:
    out['error'] = f'failed: {", ".join(failed)}'


class _MetricsFollower:
  """Follows the trainer's metrics.jsonl while it trains (a thread reads it every
  0.2 s): `records`, each (time first seen, record); calls `on_records` after new ones,
  and once more on exit, after the thread has stopped."""

  def __init__(self, path: str, on_records: Callable[[], None]):
    self.records = []
    self._path, self._on_records, self._read = path, on_records, 0
    self._done = threading.Event()
    self._thread = threading.Thread(target=self._follow, daemon=True)

  def _follow(self):
    while not self._done.wait(0.2):
      self.poll()

  def poll(self):
    if not os.path.exists(self._path):
      return
    with open(self._path, 'rb') as f:
      f.seek(self._read)
      text = f.read()
    complete = text[:text.rfind(b'\n') + 1]  # A line being written waits for next time.
    self._read += len(complete)
    now = time.time()
    new = [(now, json.loads(line)) for line in complete.splitlines() if line.strip()]
    if new:
      self.records += new
      self._on_records()

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._done.set()
    self._thread.join()
    self.poll()


def part_train(out: dict, emit: Callable[[], None]) -> None:
  # pylint: disable=g-import-not-at-top
  from absl import logging
  import ml_collections
  from configs import cifar100
  from hyperproto import train
  # pylint: enable=g-import-not-at-top
  tiny = _ALLOW_CPU.value
  num_train, num_test = (512, 256) if tiny else (50_000, 10_000)
  config = cifar100.get_config()  # The paper's recipe: ResNet-32, HPN, batch 128.
  config.data.name = 'synthetic'
  config.data.kwargs = ml_collections.ConfigDict(dict(num_train=num_train,
                                                      num_test=num_test))
  config.num_steps = _TRAIN_STEPS.value or (8 if tiny else 1000)
  if tiny:
    config.model.kwargs = ml_collections.ConfigDict(TINY_MODELS['resnet32'])
    config.batch_size = 32
    config.log_every_steps = 2
  out.update(config='configs/cifar100.py (data: synthetic)', backbone=config.model.name,
             model_kwargs=config.model.kwargs.to_dict(),
             dtype=config.model.dtype, batch_size=config.batch_size,
             num_train=num_train, num_test=num_test, steps=config.num_steps,
             log_every_steps=config.log_every_steps)
  emit()
  workdir = tempfile.mkdtemp(prefix='gpu_check_train_')

  def update():
    """The rates so far, from the trainer's metrics.jsonl (written at every new line:
    a run cut short keeps them)."""
    records = metrics.records
    windows = [(t, r) for t, r in records if 'train/loss' in r]
    first = [r['train/first_step_s'] for _, r in records if 'train/first_step_s' in r]
    out.update(first_step_s=round(first[0], 2) if first else None,
               log_points=[r['step'] for _, r in windows])
    rates = [r['train/examples_per_s'] for _, r in windows if 'train/examples_per_s' in r]
    if len(rates) < 2:
      out['steady_images_per_s'] = None
      out['note'] = (f'{len(rates)} timed log windows: a rate needs 2 (steps > 2 x '
                     f'log_every_steps = {config.log_every_steps})')
      emit()
      return
    out.pop('note', None)
    # The trainer's examples/s of its log windows from the second on (the first may
    # hold warm-up): their harmonic mean, the rate over their steps (equal windows).
    rate = len(rates[1:]) / sum(1.0 / r for r in rates[1:])
    out['steady_images_per_s'] = round(rate, 1)
    out['steady_steps_per_s'] = round(rate / config.batch_size, 2)
    # The recipe: 250 epochs of 390 steps of 128, a test evaluation every 10 epochs.
    train_s = RECIPE_EPOCHS * (50_000 // 128) * 128 / rate
    out['projected_recipe'] = (f'{RECIPE_EPOCHS} epochs x {50_000 // 128} steps of '
                               f'batch 128 at the steady rate'
                               + (f' (of batch {config.batch_size} here)' if tiny else ''))
    out['projected_recipe_train_h'] = round(train_s / 3600, 3)
    final = [t for t, r in records
             if r['step'] == config.num_steps and 'test/num_examples' in r]
    if final:
      # Checkpoint wait + evaluation of the test split (its compilation included), then
      # 25 of them, each of the real 10,000 test images.
      out['final_eval_s'] = round(final[0] - windows[-1][0], 2)
      evals = RECIPE_EPOCHS // 10
      out['projected_recipe_with_evals_h'] = round(
          (train_s + evals * out['final_eval_s'] * 10_000 / num_test) / 3600, 3)
    emit()

  logging.set_verbosity(logging.INFO)
  metrics = _MetricsFollower(os.path.join(workdir, 'metrics.jsonl'), update)
  try:
    with metrics:
      t = time.perf_counter()
      results = train.train_and_evaluate(config, workdir)
      out.update(wall_s=round(time.perf_counter() - t, 1),
                 test_accuracy=results.get('test/accuracy'))
  finally:
    shutil.rmtree(workdir, ignore_errors=True)
  update()


def part_input(out: dict, emit: Callable[[], None]) -> None:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from experiments import bench_input  # pylint: disable=g-import-not-at-top
  tfds.disable_progress_bar()
  tiny = _ALLOW_CPU.value
  workers = os.cpu_count() or 1
  images, batch, seconds = (16, 8, 1.0) if tiny else (512, 64, 8.0)
  out.update(workers=workers, images=images, batch=batch, seconds_per_measurement=seconds,
             image='500x375 JPEG -> 224, train: RandomResizedCrop + flip, eval: resize '
             '256 + centre crop, eval workers started once, kept between passes')
  emit()
  results = {}
  # --allow_cpu: no eval passes (the first starts the workers: ~6 s on 2 busy cores).
  bench_input.bench_stream(results, images=images, batch=batch, workers=[workers],
                           seconds=seconds, evaluate=not tiny)
  out['train_images_per_s'] = results[f'stream/train_224_workers{workers}']
  out['eval_images_per_s'] = results.get(f'stream/eval_224_workers{workers}')
  emit()


def part_deterministic(out: dict, emit: Callable[[], None]) -> None:
  """The float32 ResNet-32 step again, in a process whose XLA_FLAGS make every op
  deterministic (what `main.py --deterministic` sets): its cost in speed."""
  out['xla_flags'] = os.environ.get('XLA_FLAGS', '')
  part_benchmark(out, emit, cases=(('resnet32', 'float32'),))


CHILD_PARTS = {'devices': part_devices, 'benchmark': part_benchmark,
               'deterministic': part_deterministic, 'train': part_train,
               'input': part_input}


def run_child(name: str, path: str) -> None:
  """In the child: the part, then its results (or error) as JSON at `path`."""
  from hyperproto import cpu_tuning  # pylint: disable=g-import-not-at-top
  cpu_tuning.configure()  # As main.py, before JAX starts (nothing on an accelerator).
  out = {}

  def emit():
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(out, f, indent=1, default=str)
    os.replace(tmp, path)

  try:
    CHILD_PARTS[name](out, emit)
  except Exception as e:  # pylint: disable=broad-except
    out['error'] = f'{type(e).__name__}: {e}'
    out['traceback_tail'] = _tail(traceback.format_exc())
    emit()
    sys.exit(1)
  emit()


# ----------------------------------------------------------------------------------
# The parent: runs the parts one after another within the budget.


class Runner:
  """Runs commands with hard timeouts, appending their output to one log."""

  def __init__(self, out_dir: str, deadline: float, env: dict):
    self.out_dir, self.deadline, self.env = out_dir, deadline, env
    self.log_path = os.path.join(out_dir, 'gpu_check.log')
    open(self.log_path, 'w').close()

  def left(self) -> float:
    return self.deadline - time.monotonic()

  def run(self, cmd: list[str], timeout: float, env: Optional[dict] = None
          ) -> tuple[Optional[int], str]:
    """(return code or None on timeout, combined output)."""
    with open(self.log_path, 'a') as log:
      log.write(f'\n===== {shlex.join(cmd)} (timeout {timeout:.0f} s)\n')
    with tempfile.TemporaryFile('w+') as buf:
      # A session of its own, so a timeout kills grain's workers and pytest's children.
      proc = subprocess.Popen(cmd, stdout=buf, stderr=subprocess.STDOUT, cwd=ROOT,
                              env=env or self.env, start_new_session=True, text=True)
      # At the time limit, Ctrl-C first (pytest then reports what it ran, failures with
      # their tracebacks, and writes its XML), SIGKILL after a grace period.
      grace = min(GRACE_S, timeout / 10)
      try:
        rc = proc.wait(timeout=max(timeout - grace, 1.0))
      except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
          proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
          os.killpg(proc.pid, signal.SIGKILL)
          proc.wait()
        rc = None
      buf.seek(0)
      output = buf.read()
    with open(self.log_path, 'a') as log:
      log.write(output)
      log.write(f'===== exit {rc if rc is not None else "timeout"}\n')
    return rc, output

  def child(self, name: str, timeout: float, env: Optional[dict] = None) -> dict:
    path = os.path.join(tempfile.gettempdir(), f'gpu_check_{os.getpid()}_{name}.json')
    forwarded = [a for a in sys.argv[1:] if not a.startswith(('--child', '--only'))]
    rc, output = self.run([sys.executable, os.path.abspath(__file__), f'--child={name}',
                           f'--child_out={path}'] + forwarded, timeout, env=env)
    result = {}
    if os.path.exists(path):
      with open(path) as f:
        result = json.load(f)
      os.remove(path)
    if rc is None:
      result['error'] = f'timeout: killed after {timeout:.0f} s (what it had is kept)'
    elif rc and 'error' not in result:
      result['error'] = f'exit code {rc}'
      result['traceback_tail'] = _tail(output)
    return result


def run_tests(runner: Runner, timeout: float) -> dict:
  """`pytest -m device` on the accelerator; per-test outcomes from its JUnit XML."""
  tests = _TESTS.value or (CPU_TESTS if _ALLOW_CPU.value else ['tests'])
  xml = os.path.join(tempfile.gettempdir(), f'gpu_check_{os.getpid()}_tests.xml')
  cmd = [sys.executable, '-m', 'pytest', *tests, '-m', 'device', '-o', 'addopts=',
         '-p', 'no:cacheprovider', '-p', 'no:xdist', '--continue-on-collection-errors',
         '-v', f'--junitxml={xml}']
  env = dict(runner.env)
  if not _ALLOW_CPU.value:
    # tests/conftest.py defaults JAX_PLATFORMS to cpu; '' lets JAX take the accelerator
    # (and keeps the CPU backend, which the host-side code asks for).
    env['JAX_PLATFORMS'] = ''
  rc, output = runner.run(cmd, timeout, env=env)
  result = {'command': shlex.join(cmd[1:]), 'exit_code': rc}
  if os.path.exists(xml):
    cases = ElementTree.parse(xml).getroot().iter('testcase')
    counts = dict(passed=0, failed=0, skipped=0)
    failures, skips, slowest = [], [], []
    for case in cases:
      name = f'{case.get("classname", "").split(".")[-1]}::{case.get("name")}'
      slowest.append((float(case.get('time', 0)), name))
      bad = case.find('failure') if case.find('failure') is not None else case.find(
          'error')
      if bad is not None:
        counts['failed'] += 1
        failures.append({'test': name, 'message': _tail(bad.get('message', ''), 500),
                         'traceback_tail': _tail(bad.text or '', 1500)})
      elif case.find('skipped') is not None:
        counts['skipped'] += 1
        skips.append(f'{name}: {case.find("skipped").get("message", "")}')
      else:
        counts['passed'] += 1
    result.update(counts, failures=failures, skips=skips,
                  slowest=[f'{n} {s:.1f}s' for s, n in sorted(slowest)[::-1][:8]])
    os.remove(xml)
  else:  # Killed before the report: count the verbose lines.
    lines = [l for l in output.splitlines() if '::' in l]
    result.update(passed=sum(' PASSED' in l for l in lines),
                  failed=sum(' FAILED' in l or ' ERROR' in l for l in lines),
                  skipped=sum(' SKIPPED' in l for l in lines))
  if rc is None:
    result['error'] = f'timeout: pytest killed after {timeout:.0f} s'
  elif rc not in (0, 5) and not result.get('failed'):
    result['error'] = f'pytest exit code {rc}'
    result['traceback_tail'] = _tail(output)
  elif result.get('failed'):
    result['error'] = f'{result["failed"]} test(s) failed'
  return result


def run_devices(runner: Runner, timeout: float) -> dict:
  start = time.monotonic()
  result = runner.child('devices', timeout * 0.6)
  rc, output = runner.run([sys.executable, '-m', 'hyperproto.check_devices'],
                          timeout - (time.monotonic() - start))
  lines = [l for l in output.splitlines() if l.startswith('{')]
  if rc == 0 and lines:
    result['check_devices'] = json.loads(lines[-1])
  else:
    result['check_devices'] = {'error': 'timeout' if rc is None else f'exit code {rc}',
                               'traceback_tail': _tail(output)}
  if not result['check_devices'].get('ok'):
    result.setdefault('error', 'check_devices failed (see check_devices)')
  return result


def summary(report: dict) -> str:
  """The Markdown summary of a report."""
  parts = report['parts']
  dev = parts.get('devices', {})
  lines = [f'# gpu_check: {dev.get("device_count", "?")} x '
           f'{dev.get("device_kind", "?")} ({dev.get("platform", "?")}), '
           f'{report["started"]}', '',
           f'`{report["command"]}`: {report["wall_s"]} s of a {report["budget_s"]:.0f} s '
           f'budget' + (' (--allow_cpu: tiny sizes, not a measurement of anything)'
                        if report['allow_cpu'] else '') + '.', '',
           '| part | status | seconds | result |', '|---|---|---|---|']

  def fmt(name, p):
    if name == 'devices':
      check = p.get('check_devices', {})
      memory = p.get('memory_gib')
      return (f'jax {p.get("jax")}, jaxlib {p.get("jaxlib")}, memory '
              f'{"n/a" if memory is None else memory} GiB, host cores '
              f'{p.get("host_cpus")}; '
              f'check_devices ok: {check.get("ok")}')
    if name == 'tests':
      return (f'{p.get("passed", 0)} passed, {p.get("failed", 0)} failed, '
              f'{p.get("skipped", 0)} skipped' + ''.join(
                  f'; FAILED {f["test"]}' for f in p.get('failures', [])))
    if name == 'benchmark':
      cells = []
      for key, r in p.items():
        if isinstance(r, dict) and 'images_per_s' in r:
          reduced = ', reduced' if 'model_kwargs' in r else ''
          cells.append(f'{key} (batch {r["batch"]}, {r["image_size"]} px{reduced}): '
                       f'{r["images_per_s"]} images/s, compile {r["compile_s"]} s')
        elif isinstance(r, dict) and 'error' in r:
          cells.append(f'{key}: {r["error"]}')
      return '; '.join(cells)
    if name == 'deterministic':
      r = p.get('resnet32_float32', {})
      base = parts.get('benchmark', {}).get('resnet32_float32', {}).get('images_per_s')
      ratio = (f' ({r["images_per_s"] / base:.2f}x the benchmark part\'s)'
               if base and 'images_per_s' in r else '')
      return (f'resnet32_float32 with --xla_gpu_deterministic_ops=true: '
              f'{r.get("images_per_s")} images/s{ratio}')
    if name == 'train':
      return (f'steady {p.get("steady_images_per_s")} images/s (batch '
              f'{p.get("batch_size")}, {p.get("steps")} steps), first step '
              f'{p.get("first_step_s")} s, final eval {p.get("final_eval_s")} s; '
              f'projected recipe {p.get("projected_recipe_train_h")} h of steps, '
              f'{p.get("projected_recipe_with_evals_h")} h with evaluations')
    if name == 'input':
      return (f'{p.get("workers")} workers: train {p.get("train_images_per_s")}, eval '
              f'{p.get("eval_images_per_s")} images/s')
    return ''

  for name in SHARES:
    p = parts.get(name, {'status': 'not run'})
    text = p.get('error', '') if p.get('status') != 'ok' else ''
    body = fmt(name, p) if p.get('status') in ('ok', 'error') else ''
    cell = '; '.join(x for x in (body, text) if x).replace('|', '/')
    lines.append(f'| {name} | {p.get("status")} | {p.get("seconds", "")} | {cell} |')
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  if _CHILD.value:
    run_child(_CHILD.value, _CHILD_OUT.value)
    return
  if not _OUT.value:
    raise app.UsageError('--out=DIR is required.')
  os.makedirs(_OUT.value, exist_ok=True)
  unknown = set(_ONLY.value) - set(SHARES)
  if unknown:
    raise app.UsageError(f'Unknown parts {sorted(unknown)}; use some of {list(SHARES)}.')
  start = time.monotonic()
  env = dict(os.environ, PYTHONUNBUFFERED='1')
  if _ALLOW_CPU.value:
    env['JAX_DISABLE_MOST_OPTIMIZATIONS'] = '1'  # Compile in seconds; nothing is timed.
  env['PYTHONPATH'] = os.pathsep.join(p for p in (ROOT, env.get('PYTHONPATH')) if p)
  runner = Runner(_OUT.value, start + _BUDGET.value, env)
  report = {'command': shlex.join(['python', 'experiments/gpu_check.py'] + sys.argv[1:]),
            'started': datetime.datetime.now(datetime.timezone.utc).strftime(
                '%Y-%m-%d %H:%M UTC'),
            'budget_s': _BUDGET.value, 'allow_cpu': _ALLOW_CPU.value, 'parts': {}}
  todo = [p for p in SHARES if not _ONLY.value or p in _ONLY.value]

  def write():
    report['wall_s'] = round(time.monotonic() - start, 1)
    with open(os.path.join(_OUT.value, 'gpu_check.json'), 'w') as f:
      json.dump(report, f, indent=1, default=str)
    with open(os.path.join(_OUT.value, 'gpu_check.md'), 'w') as f:
      f.write(summary(report))

  for i, name in enumerate(todo):
    share = SHARES[name] / sum(SHARES[p] for p in todo[i:])
    timeout = runner.left() * share
    if timeout < MIN_PART_S:
      report['parts'][name] = {'status': 'skipped: time budget'}
      continue
    print(f'[gpu_check] {name}: up to {timeout:.0f} s', flush=True)
    t = time.monotonic()
    try:
      if name == 'devices':
        result = run_devices(runner, timeout)
      elif name == 'tests':
        result = run_tests(runner, timeout)
      elif name == 'deterministic':
        flags_ = f'{env.get("XLA_FLAGS", "")} --xla_gpu_deterministic_ops=true'.strip()
        result = runner.child(name, timeout, env=dict(env, XLA_FLAGS=flags_))
      else:
        result = runner.child(name, timeout)
    except Exception as e:  # pylint: disable=broad-except
      result = {'error': f'{type(e).__name__}: {e}', 'traceback_tail': _tail(
          traceback.format_exc())}
    result['status'] = 'error' if 'error' in result else 'ok'
    result['seconds'] = round(time.monotonic() - t, 1)
    report['parts'][name] = result
    write()
    if name == 'devices' and result.get('platform') == 'cpu' and not _ALLOW_CPU.value:
      report['error'] = ('JAX sees no accelerator (platform cpu); pass --allow_cpu for '
                         'the tiny CPU run.')
      for rest in todo[i + 1:]:
        report['parts'][rest] = {'status': 'skipped: no accelerator'}
      break
  write()
  print(summary(report), flush=True)
  print(f'[gpu_check] wrote {os.path.join(_OUT.value, "gpu_check.json")} and .md',
        flush=True)
  if report.get('error'):
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
