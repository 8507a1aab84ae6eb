r"""One command that measures the whole accelerator path in a few minutes.

  experiments/gpu_check.sh --out=DIR                  # a bare GPU machine: wheels first
  python experiments/gpu_check.py --out=DIR           # with the dependencies installed
  python experiments/gpu_check.py --allow_cpu --out=DIR   # the same parts, tiny, on a CPU

Parts, in this order (what has never run on a GPU first, then the speed parts), on
whatever accelerator JAX sees:
  devices    device kind, memory, jax/jaxlib and package versions, nvidia-smi, JAX's
             backends, then `python -m hyperproto.check_devices` (an all-reduce);
  deterministic  with XLA_FLAGS --xla_gpu_deterministic_ops=true (what main.py
             --deterministic sets): the float32 ResNet-32 step (its cost in speed, as a
             ratio to the precision part's float32), then DETERMINISM_TESTS (DL2PA's
             bitwise resume, which failed in the last bit on the first GPU run);
  tests      `pytest -m device` (train step, shard_map/pmap, bfloat16, resume,
             on-device input; tests needing more devices than there are skip) with
             JAX_PLATFORMS set to the backends the devices part found (e.g. cuda,cpu:
             tests/conftest.py runs them on the CPU otherwise), in parallel workers
             (pytest-xdist, one per 2 host cores, at most 8, each test to whichever
             worker is free) where it is installed;
  precision  experiments/bench_precision.py: the ResNet-32 (CIFAR, batch 128) and
             ResNet-34 (224 px, batch 64) train steps under each candidate cause of
             bfloat16's slowness (matmul precision, BatchNorm dtype, padded stem, float16
             with loss scaling, convolution layout and autotuning flags: one process per
             XLA_FLAGS group): images/s and the ratio to float32;
  train      `train.train_and_evaluate` with configs/cifar100.py (the paper recipe) on
             synthetic data of CIFAR-100's shape (50,000 32x32 uint8, 100 classes) for
             --train_steps steps: steady images/s, first step and final evaluation
             seconds (from the run's metrics.jsonl), and the projected time of the
             250-epoch recipe;
  input      the 224 streaming pipeline (JPEG decode + RandomResizedCrop + flip, grain)
             with one worker per host core: images/s, train and eval.

Each part runs in processes of its own, one after another: a process of JAX takes 75% of
a GPU's memory, a crash or hang stays in its part, and a process past its time gets
Ctrl-C, then SIGKILL 15 s later (so pytest still reports the failures it saw).
Part i gets (time left) x share_i / (shares of parts i..end), so time a part leaves
unused goes to the rest and the whole keeps to --budget_s; a part that would get less
than 10 s is skipped ('skipped: time budget'). Each part's result or error (with the tail
of its traceback) goes to DIR/gpu_check.json, rewritten after every part; DIR/gpu_check.md
is the summary (also printed) and DIR/gpu_check.log every process's output.
"""

import datetime
import importlib.util
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

from experiments import bench_precision  # pylint: disable=g-import-not-at-top,wrong-import-position
from experiments import time_limit  # pylint: disable=g-import-not-at-top,wrong-import-position
from hyperproto import xla_flags  # pylint: disable=g-import-not-at-top,wrong-import-position

_OUT = flags.DEFINE_string('out', None, 'Folder for gpu_check.json / .md / .log.')
_BUDGET = flags.DEFINE_float('budget_s', 420.0, 'Time budget of the whole run (s).')
_ALLOW_CPU = flags.DEFINE_bool('allow_cpu', False, 'Tiny versions of the parts, and no '
                               'error when JAX sees only a CPU (the suite runs this).')
_ONLY = flags.DEFINE_list('only', [], 'Run only these parts (default: all).')
_TESTS = flags.DEFINE_list('tests', None, 'What the tests part gives pytest, with '
                           '-m device (default: tests/, all of them but the '
                           'deterministic part\'s; with --allow_cpu, CPU_TESTS[1:]).')
_WORKERS = flags.DEFINE_integer('test_workers', -1, 'pytest-xdist workers of the tests '
                                'part (-1: one per 2 host cores, at most 8, where '
                                'pytest-xdist is installed, none with --allow_cpu).')
_PRECISION_CASES = flags.DEFINE_list('precision_cases', None, 'Cases of the precision '
                                     'part (default: resnet32,resnet34; --allow_cpu: '
                                     'resnet32).')
_PRECISION_VARIANTS = flags.DEFINE_list('precision_variants', None, 'Its variants '
                                        '(default: all of bench_precision.VARIANTS; '
                                        '--allow_cpu: TINY_VARIANTS).')
_COMPILE_THREADS = flags.DEFINE_integer('compile_threads', 4, 'Variants the precision '
                                        'part compiles at once.')
_TRAIN_STEPS = flags.DEFINE_integer('train_steps', 0, 'Steps of the train part '
                                    '(0: 1000 on an accelerator, 8 with --allow_cpu).')
_CHILD = flags.DEFINE_string('child', None, 'Internal: run this part here, write its '
                             'results to --child_out.')
_CHILD_OUT = flags.DEFINE_string('child_out', None, 'Internal.')
_CHILD_GROUP = flags.DEFINE_string('child_group', 'default', 'Internal: the precision '
                                   'group the child runs.')
_CHILD_SECONDS = flags.DEFINE_float('child_seconds', 0.0, 'Internal: the child\'s time.')

# name: share of the time budget, in the order the parts run. From the first run on one
# H200 (2026-11-30, budget 400 s): devices 8.5 s, the three steps of the old benchmark
# part 82 s (compilation 9-15 s each), train 39 s, input 35 s, the first 18 device tests
# in 115 s in one process, the same 18 about 8x faster than on this 2-core CPU (busy).
# Estimates from there (the CPU's times of every device test: docs/performance.md): the
# deterministic part ~70 s (a step, DL2PA's reference run and its resume), the other
# device tests ~450 s in one process, so ~100 s in 8 workers; the precision part's 22
# steps compiled 4 at a time, ~130 s.
SHARES = {'devices': 0.03, 'deterministic': 0.17, 'tests': 0.25, 'precision': 0.31,
          'train': 0.13, 'input': 0.11}
MIN_PART_S = 10.0
GRACE_S = 15.0  # between the Ctrl-C at a part's time limit and the SIGKILL
RECIPE_EPOCHS = 250  # configs/cifar100.py (config_lib.paper_recipe)
# --allow_cpu: reduced instances of the same networks (and XLA's optimisations off).
TINY_MODELS = bench_precision.TINY_MODELS
# --allow_cpu: the code paths of the precision part (the loss-scaled float16 step, a
# model option, a process of its own for a flag group), ResNet-32 only.
TINY_VARIANTS = ['float32', 'float16_loss_scale', 'bfloat16_stem8', 'bfloat16_nhwc']
# The tests that compare runs bitwise, run by the deterministic part (and left out of
# the tests part): DL2PA's failed on the first GPU run, by the last bit of 35 weights.
DETERMINISM_TESTS = [
    'tests/dl2pa_test.py::EndToEndTest::test_checkpointed_state',
    'tests/dl2pa_test.py::EndToEndTest::'
    'test_sigterm_then_resume_is_bitwise_the_uninterrupted_run']
CPU_TESTS = [  # --allow_cpu: the first for the deterministic part, the rest for tests.
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
  out['backends'] = _backends()
  try:
    limit = (device.memory_stats() or {}).get('bytes_limit')  # None on CPU
    out['memory_gib'] = round(limit / 2**30, 1) if limit else None
  except Exception as e:  # pylint: disable=broad-except
    out['memory_gib'] = f'unknown ({type(e).__name__}: {e})'
  versions = {}
  for name in ('flax', 'optax', 'orbax-checkpoint', 'numpy', 'tensorflow-datasets',
               'grain', 'array_record', 'ml-collections', 'tensorboardX', 'etils',
               'protobuf', 'pytest', 'pytest-xdist', 'jax-cuda13-plugin',
               'jax-cuda12-plugin'):
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


def _backends() -> Optional[list[str]]:
  """The backends JAX started, the default first (e.g. ['cuda', 'cpu']): what
  JAX_PLATFORMS must name so that a test process starts them or fails (never falls
  back to the CPU in silence). JAX's private registry: None if it moved."""
  try:
    from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
    names = list(xla_bridge.backends())
  except Exception:  # pylint: disable=broad-except
    return None
  return sorted(names, key=lambda name: name == 'cpu')


def _precision(out: dict, emit: Callable[[], None], cases, names) -> None:
  """bench_precision.run_group for this child's group, into out['variants'], stopping
  before a wave of compilations the child's time would not fit."""
  start = time.time()
  seconds = _CHILD_SECONDS.value or float('inf')
  out.update(group=_CHILD_GROUP.value, xla_flags=os.environ.get('XLA_FLAGS', ''),
             variants={})
  emit()

  def report(key, result):
    out['variants'][key] = result
    emit()

  # Stop starting waves with the last tenth (the Ctrl-C comes before the end) left.
  bench_precision.run_group(_CHILD_GROUP.value, cases, names, tiny=_ALLOW_CPU.value,
                            compile_threads=_COMPILE_THREADS.value,
                            deadline=start + 0.85 * seconds, report=report)
  failed = [k for k, v in out['variants'].items() if 'error' in v]
  if failed:
    out['error'] = f'failed: {", ".join(failed)}'


def precision_cases() -> list[str]:
  return _PRECISION_CASES.value or (['resnet32'] if _ALLOW_CPU.value
                                    else list(bench_precision.CASES))


def precision_variants() -> list[str]:
  return _PRECISION_VARIANTS.value or (TINY_VARIANTS if _ALLOW_CPU.value
                                       else list(bench_precision.VARIANTS))


def part_precision(out: dict, emit: Callable[[], None]) -> None:
  _precision(out, emit, precision_cases(), precision_variants())


def part_deterministic(out: dict, emit: Callable[[], None]) -> None:
  """The float32 ResNet-32 step, in a process whose XLA_FLAGS make every op
  deterministic (what `main.py --deterministic` sets): its cost in speed."""
  _precision(out, emit, ['resnet32'], ['float32'])


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


CHILD_PARTS = {'devices': part_devices, 'deterministic': part_deterministic,
               'precision': part_precision, 'train': part_train, 'input': part_input}


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
    self.platforms = None  # JAX_PLATFORMS for the tests: what the devices part found

  def left(self) -> float:
    return self.deadline - time.monotonic()

  def run(self, cmd: list[str], timeout: float, env: Optional[dict] = None
          ) -> tuple[Optional[int], str]:
    """(return code or None on timeout, combined output)."""
    with open(self.log_path, 'a') as log:
      log.write(f'\n===== {shlex.join(cmd)} (timeout {timeout:.0f} s)\n')
    with tempfile.TemporaryFile('w+') as buf:
      # At the time limit, Ctrl-C first (pytest then reports what it ran, failures with
      # their tracebacks, and writes its XML), SIGKILL after a grace period.
      grace = min(GRACE_S, timeout / 10)
      rc = time_limit.run(cmd, timeout - grace, stop_signal=signal.SIGINT, grace_s=grace,
                          stdout=buf, stderr=subprocess.STDOUT, cwd=ROOT,
                          env=env or self.env, text=True)
      buf.seek(0)
      output = buf.read()
    with open(self.log_path, 'a') as log:
      log.write(output)
      log.write(f'===== exit {rc if rc is not None else "timeout"}\n')
    return rc, output

  def child(self, name: str, timeout: float, env: Optional[dict] = None,
            args: tuple[str, ...] = ()) -> dict:
    path = os.path.join(tempfile.gettempdir(), f'gpu_check_{os.getpid()}_{name}.json')
    forwarded = [a for a in sys.argv[1:] if not a.startswith(('--child', '--only'))]
    rc, output = self.run([sys.executable, os.path.abspath(__file__), f'--child={name}',
                           f'--child_out={path}', f'--child_seconds={timeout:.0f}',
                           *args, *forwarded], timeout, env=env)
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

  def test_env(self) -> dict:
    """The tests' environment: JAX_PLATFORMS naming the backends the devices part found
    (tests/conftest.py sets cpu otherwise); '' (JAX's choice) if it did not run."""
    return dict(self.env, JAX_PLATFORMS=','.join(self.platforms or []))


def run_pytest(runner: Runner, tests: list[str], timeout: float, env: dict,
               extra: tuple[str, ...] = ()) -> dict:
  """`pytest -m device` on `tests`; per-test outcomes from its JUnit XML."""
  xml = os.path.join(tempfile.gettempdir(), f'gpu_check_{os.getpid()}_tests.xml')
  cmd = [sys.executable, '-m', 'pytest', *tests, '-m', 'device', '-o', 'addopts=',
         '-p', 'no:cacheprovider', *extra, '--continue-on-collection-errors', '-v',
         f'--junitxml={xml}']
  rc, output = runner.run(cmd, timeout, env=env)
  result = {'command': shlex.join(cmd[1:]), 'jax_platforms': env.get('JAX_PLATFORMS'),
            'exit_code': rc}
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


def test_workers() -> int:
  if _WORKERS.value >= 0:
    return _WORKERS.value
  if _ALLOW_CPU.value or importlib.util.find_spec('xdist') is None:
    return 0
  return max(1, min(8, (os.cpu_count() or 2) // 2))


def run_tests(runner: Runner, timeout: float) -> dict:
  """Every `device` test but the deterministic part's, on the accelerator."""
  if _TESTS.value:
    tests, extra = _TESTS.value, []
  elif _ALLOW_CPU.value:
    tests, extra = CPU_TESTS[1:], []
  else:
    tests = ['tests']
    extra = [a for test in DETERMINISM_TESTS for a in ('--deselect', test)]
  env = runner.test_env()
  workers = test_workers()
  if workers:
    # Each worker is a JAX process: memory on demand instead of 75% of the GPU each.
    env['XLA_PYTHON_CLIENT_PREALLOCATE'] = 'false'
    # One test at a time to whichever worker is free: TrainTest alone holds half of the
    # time, so --dist=loadscope (a class per worker) would leave it to one.
    extra += ['-n', str(workers), '--dist=worksteal']
  else:
    extra += ['-p', 'no:xdist']
  result = run_pytest(runner, tests, timeout, env, tuple(extra))
  result['workers'] = workers
  return result


def run_deterministic(runner: Runner, timeout: float) -> dict:
  """The step's speed and DETERMINISM_TESTS, both with --xla_gpu_deterministic_ops."""
  env = dict(runner.env, XLA_FLAGS=xla_flags.with_deterministic(
      runner.env.get('XLA_FLAGS', '')))
  start = time.monotonic()
  result = runner.child('deterministic', timeout * 0.4, env=env)
  tests = CPU_TESTS[:1] if _ALLOW_CPU.value else DETERMINISM_TESTS
  test_env = dict(runner.test_env(), XLA_FLAGS=env['XLA_FLAGS'])
  result['tests'] = run_pytest(runner, tests, timeout - (time.monotonic() - start),
                               test_env, ('-p', 'no:xdist'))
  if 'error' in result['tests']:
    result['error'] = '; '.join(x for x in (result.get('error'),
                                            f'tests: {result["tests"]["error"]}') if x)
  return result


def run_precision(runner: Runner, timeout: float) -> dict:
  """bench_precision's variants, one child process per XLA_FLAGS group, each with a
  share of the part's time in proportion to 2 + its variants (a process's start-up and
  its float32 parameters cost about what two variants do)."""
  cases, names = precision_cases(), precision_variants()
  unknown = (set(cases) - set(bench_precision.CASES)) | (set(names) -
                                                       set(bench_precision.VARIANTS))
  if unknown:
    return {'error': f'unknown cases or variants {sorted(unknown)}'}
  groups = {}
  for name in names:
    group = bench_precision.VARIANTS[name].group
    groups[group] = groups.get(group, 2) + len(cases)
  order = list(groups)
  result = {'cases': cases, 'groups': {}, 'variants': {}}
  end = time.monotonic() + timeout
  for i, group in enumerate(order):
    seconds = (end - time.monotonic()) * groups[group] / sum(groups[g]
                                                             for g in order[i:])
    if seconds < MIN_PART_S:
      result['groups'][group] = {'status': 'skipped: time budget'}
      result['variants'].update(
          {f'{c}/{n}': {'case': c, 'variant': n, 'skipped': 'time budget'}
           for n in names for c in cases if bench_precision.VARIANTS[n].group == group})
      continue
    env = dict(runner.env, XLA_FLAGS=bench_precision.group_xla_flags(
        group, runner.env.get('XLA_FLAGS', '')))
    child = runner.child('precision', seconds, env=env, args=(f'--child_group={group}',))
    result['variants'].update(child.pop('variants', {}))
    child['status'] = 'error' if 'error' in child else 'ok'
    result['groups'][group] = child
  bench_precision.with_ratios(result['variants'])
  order = [f'{c}/{n}' for n in names for c in cases]
  result['variants'] = dict(sorted(result['variants'].items(),
                                   key=lambda kv: order.index(kv[0])))
  failed = [g for g, r in result['groups'].items() if r['status'] == 'error']
  if failed:
    result['error'] = f'failed: {", ".join(failed)} (see groups)'
  return result


def run_devices(runner: Runner, timeout: float) -> dict:
  start = time.monotonic()
  result = runner.child('devices', timeout * 0.6)
  runner.platforms = result.get('backends')
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


def _tests_cell(p: dict) -> str:
  return (f'{p.get("passed", 0)} passed, {p.get("failed", 0)} failed, '
          f'{p.get("skipped", 0)} skipped' + ''.join(
              f'; FAILED {f["test"]}' for f in p.get('failures', [])))


def _rate(r: dict) -> str:
  if 'images_per_s' in r:
    ratio = r.get('ratio_to_float32')
    return f'{r["images_per_s"]}' + (f' ({ratio:.2f}x)' if ratio is not None else '')
  return r.get('error') or (f'skipped: {r["skipped"]}' if 'skipped' in r else '')


def precision_table(p: dict) -> str:
  """The precision part's variants x cases: images/s (ratio to float32), compile s."""
  variants = p.get('variants', {})
  cases = p.get('cases') or sorted({k.split('/')[0] for k in variants})
  names = list(dict.fromkeys(k.split('/')[1] for k in variants))
  if not names:
    return ''
  lines = ['| variant | ' + ' | '.join(f'{c}: images/s (x float32) | compile s'
                                       for c in cases) + ' |',
           '|---|' + '---|---|' * len(cases)]
  for name in names:
    cells = []
    for case in cases:
      r = variants.get(f'{case}/{name}', {})
      cells += [_rate(r).replace('|', '/'), str(r.get('compile_s', ''))]
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  shapes = []
  for case in cases:  # From any measured variant of the case (all have its shape).
    r = next((r for k, r in variants.items()
              if k.startswith(f'{case}/') and 'windows' in r), None)
    if r:
      shapes.append(f'{case} batch {r["batch"]} at {r["image_size"]} px'
                    + (' (reduced)' if 'reduced' in r else '')
                    + f', timed windows {r["windows"]}')
  note = f'\nSteps of {"; ".join(shapes)}.\n' if shapes else ''
  return '\n'.join(lines) + '\n' + note


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
              f'{p.get("host_cpus")}, backends {",".join(p.get("backends") or [])}; '
              f'check_devices ok: {check.get("ok")}')
    if name == 'tests':
      return (_tests_cell(p) + f' (JAX_PLATFORMS={p.get("jax_platforms")}, '
              f'{p.get("workers", 0)} workers)')
    if name == 'deterministic':
      r = p.get('variants', {}).get('resnet32/float32', {})
      base = parts.get('precision', {}).get('variants', {}).get(
          'resnet32/float32', {}).get('images_per_s')
      ratio = (f' ({r["images_per_s"] / base:.2f}x the precision part\'s float32)'
               if base and 'images_per_s' in r else '')
      return (f'resnet32 float32 step: {r.get("images_per_s", _rate(r))} images/s'
              f'{ratio}; tests: {_tests_cell(p.get("tests", {}))}')
    if name == 'precision':
      measured = [r for r in p.get('variants', {}).values() if 'images_per_s' in r]
      best = {}
      for r in measured:
        if r.get('ratio_to_float32') and r['variant'] != 'float32' and (
            r['case'] not in best or r['ratio_to_float32'] > best[r['case']][1]):
          best[r['case']] = (r['variant'], r['ratio_to_float32'])
      return (f'{len(measured)} of {len(p.get("variants", {}))} variants measured; '
              'fastest against float32: ' + ', '.join(
                  f'{c} {v} {x:.2f}x' for c, (v, x) in best.items()) +
              ' (table below)')
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
  table = precision_table(parts.get('precision', {}))
  if table:
    lines += ['', '## precision', '', table]
  return '\n'.join(lines) + '\n'


RUNNERS = {'devices': run_devices, 'deterministic': run_deterministic,
           'tests': run_tests, 'precision': run_precision}


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
      if name in RUNNERS:
        result = RUNNERS[name](runner, timeout)
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
