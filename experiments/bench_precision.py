r"""Which change makes mixed precision pay: the train step under each candidate cause.

  python experiments/bench_precision.py                       # every variant, both cases
  python experiments/bench_precision.py --cases=resnet32 --variants=float32,bfloat16
  python experiments/bench_precision.py --tiny --cases=resnet32   # reduced networks (CPU)

The one GPU run so far (experiments/results/gpu_check.md) found the bfloat16 ResNet-32
step slower than the float32 one (18,904 against 25,460 images/s on an H200). Each
variant below is experiments/benchmark.py's step (ResNet-32 CIFAR batch 128, ResNet-34 at
224 px batch 64: gather, crop + flip, forward, HPN loss, backward, SGD) with one change,
so that one run tells which change makes bfloat16 (or float16) faster than float32:

  float32               default precision: on an Ampere or newer GPU XLA runs float32
                        convolutions and products on TF32 tensor cores already
  float32_highest       jax.default_matmul_precision('highest'): true float32 products
  bfloat16              as the trainer runs it (BatchNorm statistics in float32, its
                        output in bfloat16)
  bfloat16_bn_float32   BatchNorm (and the ReLUs and residual sums after it) in float32
  bfloat16_bn_bfloat16  BatchNorm wholly in bfloat16: no float32 casts around it
  bfloat16_stem4/8      the 3-channel first convolution padded to 4 / 8 channels
  float16_loss_scale    float16 with dynamic loss scaling (flax DynamicScale), as Flax's
                        ImageNet example does on GPUs (a benchmark-only step:
                        `loss_scaled_train_step`; the trainer has no such option)
  bfloat16_nhwc / _nchw  XLA_FLAGS --xla_gpu_force_conv_nhwc / _nchw: the convolution
                        layout XLA:GPU picks for cuDNN
  bfloat16_autotune0    XLA_FLAGS --xla_gpu_autotune_level=0: no autotuning of kernels

XLA reads XLA_FLAGS once per process, so the variants of each GROUPS entry run in a
process of their own (`--group`: this process runs only that group's variants, with its
flags already set; without it, one child process per group). In a process, the variants'
steps are compiled `--compile_threads` at a time (XLA compiles with the GIL released)
and then timed one after another, so that no compilation (nor its autotuning, which runs
kernels on the GPU) overlaps a timed window. Every variant of a case starts from the
same float32 parameters. Prints one JSON object per variant, with images/s and, where
float32 was measured in the same run, the ratio to it.
"""

import concurrent.futures
import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Optional

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # experiments/ and hyperproto/ from a checkout.

from experiments import benchmark  # pylint: disable=g-import-not-at-top,wrong-import-position
from hyperproto import xla_flags  # pylint: disable=g-import-not-at-top,wrong-import-position


@dataclasses.dataclass(frozen=True)
class Variant:
  dtype: str
  group: str = 'default'  # a GROUPS key: the XLA_FLAGS of its process
  precision: Optional[str] = None  # jax.default_matmul_precision while compiling
  model_kwargs: tuple = ()  # (key, value) pairs for models.build
  loss_scale: bool = False  # loss_scaled_train_step instead of the trainer's step


# XLA_FLAGS of each group's process.
GROUPS = {
    'default': (),
    'nhwc': ('--xla_gpu_force_conv_nhwc=true',),
    'nchw': ('--xla_gpu_force_conv_nchw=true',),
    'autotune0': ('--xla_gpu_autotune_level=0',),
}
# In the order they run (and are reported): the reference and today's first.
VARIANTS = {
    'float32': Variant('float32'),
    'bfloat16': Variant('bfloat16'),
    'float32_highest': Variant('float32', precision='highest'),
    'float16_loss_scale': Variant('float16', loss_scale=True),
    'bfloat16_bn_float32': Variant('bfloat16', model_kwargs=(('norm_dtype', 'float32'),)),
    'bfloat16_bn_bfloat16': Variant('bfloat16',
                                    model_kwargs=(('norm_dtype', 'bfloat16'),)),
    'bfloat16_stem4': Variant('bfloat16', model_kwargs=(('stem_channels', 4),)),
    'bfloat16_stem8': Variant('bfloat16', model_kwargs=(('stem_channels', 8),)),
    'bfloat16_nhwc': Variant('bfloat16', group='nhwc'),
    'bfloat16_nchw': Variant('bfloat16', group='nchw'),
    'bfloat16_autotune0': Variant('bfloat16', group='autotune0'),
}
CASES = ('resnet32', 'resnet34')
# Steps per timed window, windows (median): about a second per variant on an H200 at
# the rates of the first GPU run.
WINDOWS = {'resnet32': (30, 5), 'resnet34': (20, 5)}
WARMUP_STEPS = 3
# --tiny: reduced instances of the same networks (tests, and a rehearsal on a CPU).
TINY_MODELS = {'resnet32': dict(depth=8),
               'resnet34': dict(stage_sizes=(1, 1, 1, 1), width=8, pool_size=None)}
TINY_SIZES = dict(batch=8, size=32)


def group_xla_flags(group: str, base: str = '') -> str:
  """XLA_FLAGS for a group's process: `base` (the user's) with the group's flags."""
  for flag in GROUPS[group]:
    base = xla_flags.with_flag(base, flag)
  return base


def loss_scaled_train_step(carry, data, protos, *, global_batch: int, augment: str,
                           model, tx, objective, mean, std):
  """`train.resident_train_step` with dynamic loss scaling: float16 as Flax's ImageNet
  example trains it on GPUs (`flax.training.dynamic_scale.DynamicScale`).

  `carry` is (TrainState, DynamicScale). The loss is multiplied by the scale before the
  backward pass and the gradients divided by it after; a step whose gradients are not
  finite leaves the parameters and optimiser state as they were and halves the scale
  (which doubles after 2,000 finite steps). Benchmark-only: no mixup and no method
  state. DynamicScale averages gradients over the devices (pmean), so the loss is
  multiplied by the device count first: pmean(n g) = psum(g), the trainer's sum.
  """
  # pylint: disable=g-import-not-at-top
  import jax
  import jax.numpy as jnp
  import optax
  from hyperproto import train
  from hyperproto.data import device_input
  # pylint: enable=g-import-not-at-top
  state, scale = carry
  axis = train.AXIS
  batch = device_input.local_batch(data, state.rng, state.step, axis_name=axis,
                                   global_batch=global_batch, augment=augment)
  images = train.normalize_images(batch['image'], mean, std)
  count = jax.lax.psum(jnp.asarray(images.shape[0], jnp.float32), axis)
  devices = jax.lax.axis_size(axis)

  def loss_fn(params):
    z, updates = model.apply({'params': params, 'batch_stats': state.batch_stats},
                             images, train=True, mutable=['batch_stats'])
    loss_sum = train.batch_loss_sum(objective, z, batch, protos)
    per_device = 1.0 / count if objective.reduction == 'mean' else 1.0
    return loss_sum * per_device * devices, (loss_sum, z, updates['batch_stats'])

  params = jax.lax.pcast(state.params, axis, to='varying')
  scale, finite, (_, (loss_sum, z, batch_stats)), grads = scale.value_and_grad(
      loss_fn, has_aux=True, axis_name=axis)(params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  keep = lambda new, old: jax.tree.map(functools.partial(jnp.where, finite), new, old)
  new_state = state.replace(
      step=state.step + 1, batch_stats=batch_stats,
      params=keep(optax.apply_updates(state.params, updates), state.params),
      opt_state=keep(opt_state, state.opt_state))
  sums = objective.metric_sums(jax.lax.stop_gradient(z), batch, protos)
  sums['loss'] = loss_sum
  return (new_state, scale), jax.lax.psum(sums, axis)


def initial_scale(mesh, scale: float = 65536.0):
  """Flax's DynamicScale (scale 2^16, as its default), replicated over `mesh`."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from flax.training import dynamic_scale  # pylint: disable=g-import-not-at-top
  from hyperproto import parallel  # pylint: disable=g-import-not-at-top
  return parallel.replicate(dynamic_scale.DynamicScale(
      fin_steps=jnp.zeros((), jnp.int32), scale=jnp.asarray(scale, jnp.float32)), mesh)


def prepare(case: str, name: str, tiny: bool, dim: int, state: Any
            ) -> tuple[benchmark.Step, dict]:
  """A variant's step (not compiled yet) and its description."""
  from hyperproto import parallel  # pylint: disable=g-import-not-at-top
  variant = VARIANTS[name]
  model_kwargs = dict(TINY_MODELS[case] if tiny else {}, **dict(variant.model_kwargs))
  step = benchmark.make_step(
      case, variant.dtype, dim, model_kwargs=model_kwargs, state=state,
      step_fn=loss_scaled_train_step if variant.loss_scale else None,
      **(TINY_SIZES if tiny else {}))
  if variant.loss_scale:
    state, *rest = step.args
    step.args = ((state, initial_scale(parallel.make_mesh(1))), *rest)
  info = dict(case=case, variant=name, dtype=variant.dtype, batch=step.batch,
              image_size=step.size, precision=variant.precision or 'default',
              xla_flags=' '.join(GROUPS[variant.group]),
              model_kwargs=dict(variant.model_kwargs), loss_scale=variant.loss_scale)
  if tiny:
    info['reduced'] = TINY_MODELS[case]
  return step, info


def compile_step(step: benchmark.Step, precision: Optional[str]
                 ) -> tuple[Callable, float]:
  """The step compiled ahead of time (under `precision`), and the seconds it took."""
  import jax  # pylint: disable=g-import-not-at-top
  t = time.perf_counter()
  with jax.default_matmul_precision(precision or 'default'):
    compiled = step.fn.lower(*step.args).compile()
  return compiled, time.perf_counter() - t


def measure(compiled: Callable, step: benchmark.Step, tiny: bool) -> dict:
  """Warm-up steps, then the median images/s of the timed windows."""
  steps, repeats = (2, 1) if tiny else WINDOWS[step.case]
  _, args = benchmark.time_step(compiled, step.args, WARMUP_STEPS, 1, step.batch)
  rates, _ = benchmark.time_step(compiled, args, steps, repeats, step.batch)
  return dict(images_per_s=round(statistics.median(rates), 1),
              windows=f'{repeats} x {steps} steps')


def run_group(group: str, cases, names, *, tiny: bool, dim: int = 64,
              compile_threads: int = 4, deadline: float = float('inf'),
              report: Callable[[str, dict], None] = lambda key, result: None) -> dict:
  """Runs the variants `names` of `group` (this process's XLA_FLAGS must be the group's)
  for each case: compiled `compile_threads` at a time, then timed one at a time.

  A wave of compilations starts only while time is left before `deadline` (time.time()
  seconds); a variant not reached is reported as skipped. `report(key, result)` is
  called as each result comes (key 'case/variant'). Returns {key: result}.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from hyperproto import parallel  # pylint: disable=g-import-not-at-top
  results = {}

  def done(key, result):
    results[key] = result
    report(key, result)

  # Both cases of a variant next to each other: a wave cut short by the deadline
  # leaves the variants at the end of VARIANTS' order unmeasured, not a case.
  todo = [(c, n) for n in names for c in cases if VARIANTS[n].group == group]
  states = {}
  for case in dict.fromkeys(c for c, _ in todo):
    # One float32 start for every variant of the case (the parameters are float32 in
    # all of them); each step donates its copy.
    step = benchmark.make_step(case, 'float32', dim,
                               model_kwargs=TINY_MODELS[case] if tiny else None,
                               **(TINY_SIZES if tiny else {}))
    states[case] = jax.device_get(step.args[0])
  mesh = parallel.make_mesh(1)
  wave_s = 0.0
  with concurrent.futures.ThreadPoolExecutor(compile_threads) as pool:
    for i in range(0, len(todo), compile_threads):
      wave = todo[i:i + compile_threads]
      if time.time() + wave_s > deadline:
        for case, name in wave + todo[i + compile_threads:]:
          done(f'{case}/{name}', {'case': case, 'variant': name,
                                  'skipped': 'time budget'})
        break
      t = time.time()
      jobs = []
      for case, name in wave:
        try:
          step, info = prepare(case, name, tiny, dim,
                               parallel.replicate(states[case], mesh))
          jobs.append((step, info, pool.submit(compile_step, step,
                                               VARIANTS[name].precision)))
        except Exception as e:  # pylint: disable=broad-except
          done(f'{case}/{name}', {'case': case, 'variant': name,
                                  'error': f'{type(e).__name__}: {e}'})
      for step, info, job in jobs:  # Timed one at a time, once all have compiled.
        job.exception()
      for step, info, job in jobs:
        key = f'{info["case"]}/{info["variant"]}'
        try:
          compiled, compile_s = job.result()
          info.update(measure(compiled, step, tiny), compile_s=round(compile_s, 2),
                      devices=str(jax.devices()[0].platform), jax=jax.__version__)
        except Exception as e:  # pylint: disable=broad-except
          info['error'] = f'{type(e).__name__}: {e}'
        done(key, info)
      wave_s = time.time() - t
  return results


def with_ratios(results: dict) -> dict:
  """Adds `ratio_to_float32` (images/s over the same case's float32 images/s)."""
  for key, result in results.items():
    base = results.get(f'{key.split("/")[0]}/float32', {}).get('images_per_s')
    if base and result.get('images_per_s'):
      result['ratio_to_float32'] = round(result['images_per_s'] / base, 3)
  return results


def define_flags():
  flags.DEFINE_list('cases', list(CASES), f'Any of {list(CASES)}.')
  flags.DEFINE_list('variants', list(VARIANTS), f'Any of {list(VARIANTS)}.')
  flags.DEFINE_string('group', None, f'Run only this group\'s variants, here (one of '
                      f'{list(GROUPS)}; its XLA_FLAGS must be set already). Default: '
                      'one child process per group.')
  flags.DEFINE_bool('tiny', False, 'Reduced networks at batch 8 (a smoke run).')
  flags.DEFINE_integer('compile_threads', 4, 'Variants compiled at once.')
  flags.DEFINE_integer('dim', 64, 'Output dimension (prototypes of 100 classes).')


def main(argv):
  del argv
  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  unknown = (set(FLAGS.cases) - set(CASES)) | (set(FLAGS.variants) - set(VARIANTS))
  if unknown:
    raise app.UsageError(f'Unknown cases or variants {sorted(unknown)}; use some of '
                         f'{list(CASES)} and {list(VARIANTS)}.')
  if FLAGS.group:
    from hyperproto import cpu_tuning  # pylint: disable=g-import-not-at-top
    cpu_tuning.configure()  # Before JAX starts (nothing on an accelerator).
    run_group(FLAGS.group, FLAGS.cases, FLAGS.variants, tiny=FLAGS.tiny, dim=FLAGS.dim,
              compile_threads=FLAGS.compile_threads,
              report=lambda key, result: print(json.dumps(result), flush=True))
    return
  results = {}
  for group in GROUPS:
    if not any(VARIANTS[n].group == group for n in FLAGS.variants):
      continue
    env = dict(os.environ, XLA_FLAGS=group_xla_flags(group, os.environ.get('XLA_FLAGS',
                                                                          '')))
    args = [a for a in sys.argv[1:] if not a.startswith('--group')]
    out = subprocess.run([sys.executable, __file__, f'--group={group}', *args], env=env,
                         capture_output=True, text=True, cwd=ROOT, check=False)
    for line in out.stdout.splitlines():
      if line.startswith('{'):
        result = json.loads(line)
        results[f'{result["case"]}/{result["variant"]}'] = result
    if out.returncode:
      print(json.dumps({'group': group, 'error': f'exit code {out.returncode}',
                        'stderr_tail': out.stderr[-2000:]}), flush=True)
  order = [f'{c}/{n}' for n in FLAGS.variants for c in FLAGS.cases]
  for key, result in sorted(with_ratios(results).items(), key=lambda kv:
                            order.index(kv[0])):
    print(json.dumps(result), flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
