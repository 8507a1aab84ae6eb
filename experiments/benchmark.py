"""Train-step throughput and compile time, with the PyTorch comparator side by side.

  python experiments/benchmark.py                      # ResNet-32 / ResNet-34 / ViT, f32 + bf16
  python experiments/benchmark.py --cases=resnet32 --torch_python=/path/to/venv/bin/python
  python experiments/benchmark.py --ablation --dtypes=float32   # the CPU work, step by step
  python experiments/benchmark.py --layers --repeats=15         # one conv per ResNet-32 stage

Times the trainer's own step (`input_pipeline.resident_train_step` around
`train.train_step`: gather from the uint8 split held on the device, crop + flip, forward,
HPN loss, backward, SGD with momentum and weight decay, the step's norms and rate) on synthetic data, one device, buffers donated, no host synchronisation
inside a timed window. Compile time is the first call; throughput is the median over
`--repeats` windows of `--steps` steps each (one block_until_ready per window).
With `--torch_python`, runs ../shared/bench/torch_resnet32.py (the original ResNet-32
step in PyTorch) in alternation with ours, pinned to the same threads, and prints the
ratio. `--ablation` times ResNet-32 under each of VARIANTS: XLA's own convolutions with and
without cpu_tuning, then with cpu_tuning the im2col kernel gradient (models/conv.py), the
native AVX2 kernel gradient (models/cpu_kernels.py), and the native forward pass, input
and kernel gradients; the last is the default. `--layers` times one conv per ResNet-32
stage. Prints one JSON object per line.
"""

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

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_BENCH = os.path.join(ROOT, '..', 'shared', 'bench', 'torch_resnet32.py')

# name: (backbone, image size, batch, augment in the step)
CASES = {
    'resnet32': ('resnet32', 32, 128, 'crop_flip'),
    'resnet34': ('resnet34', 224, 64, 'none'),
    'vit_s4': ('vit_s4', 32, 128, 'crop_flip'),
}


def define_flags():
  flags.DEFINE_list('cases', list(CASES), f'Any of {list(CASES)}.')
  flags.DEFINE_list('dtypes', ['float32', 'bfloat16'], 'Computation dtypes.')
  flags.DEFINE_integer('steps', 10, 'Steps per timed window.')
  flags.DEFINE_integer('repeats', 5, 'Timed windows (median).')
  flags.DEFINE_integer('dim', 64, 'Output dimension (prototypes of 100 classes).')
  flags.DEFINE_string('torch_python', None, 'Python with PyTorch: run the comparator.')
  flags.DEFINE_list('torch_modes', ['f32', 'channels_last', 'bf16'], 'Comparator modes.')
  flags.DEFINE_integer('rounds', 2, 'Alternations of ours and the comparator.')
  flags.DEFINE_bool('layers', False, 'Per-layer conv timings (forward, input gradient, '
                    'kernel gradient by XLA / native / im2col) instead of whole steps.')
  flags.DEFINE_bool('ablation', False, 'ResNet-32 under each of VARIANTS (XLA\'s convs '
                    'without / with cpu_tuning, then im2col, native kernel gradient and '
                    'all native, with it).')


@dataclasses.dataclass
class Step:
  """A compiled-on-first-call train step of one case and what it is called with."""
  fn: Callable  # jit(shard_map(step)); donates its first argument
  args: tuple   # (state, data, protos)
  case: str
  dtype: str
  batch: int
  size: int


def make_step(case: str, dtype: str, dim: int, batch: int = 0, size: int = 0,
              model_kwargs: Optional[dict] = None, step_fn: Optional[Callable] = None,
              state: Any = None) -> Step:
  """The trainer's step for one case of CASES on synthetic data, ready to run.

  Args:
    case: a CASES key.
    dtype: the computation dtype, 'float32', 'bfloat16' or 'float16' (float16 only for
      benchmarks: the trainer has no loss scaling, see bench_precision.py).
    dim: output dimension (prototypes of 100 classes).
    batch, size: 0 for the case's; smaller for a smoke run.
    model_kwargs: passed to models.build (e.g. a reduced network, norm_dtype).
    step_fn: a per-device step in place of the trainer's
      (`input_pipeline.resident_train_step` around `train.train_step`), called with
      the keywords global_batch, augment, model, tx, objective, mean and std.
    state: the initial TrainState (default: created here, which compiles the init).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from hyperproto import config_lib, input_pipeline, models, objectives, optim, parallel, prototypes, train  # pylint: disable=g-import-not-at-top,g-multiple-import

  backbone, case_size, case_batch, augment = CASES[case]
  size, batch = size or case_size, batch or case_batch
  num_classes = 100
  objective = objectives.Objective(task='classification', method='hpn', dim=dim,
                                   num_classes=num_classes)
  protos = objective.prototypes(prototypes.place('auto', num_classes, dim))
  mesh = parallel.make_mesh(1)
  model = models.build(backbone, output_dim=objective.output_dim,
                       dtype='float32' if dtype == 'float16' else dtype,
                       axis_name=parallel.AXIS, **(model_kwargs or {}))
  if dtype == 'float16':  # models.build refuses it: see the docstring.
    model = model.clone(backbone=model.backbone.clone(dtype=jnp.float16))
  config = config_lib.paper_recipe(config_lib.base_config())  # SGD 0.9, wd 1e-4, steps
  config.lr = 0.01
  tx = optim.optimizer(config, num_steps=1000, steps_per_epoch=100)
  lr = optim.learning_rate(config, num_steps=1000, steps_per_epoch=100)
  if state is None:
    state = train.create_train_state(jax.random.PRNGKey(0), model, tx, (size, size, 3),
                                     mesh)
  rng = np.random.default_rng(0)
  n = batch * 4
  data = parallel.replicate({
      'image': rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
      'label': rng.integers(0, num_classes, n).astype(np.int32)}, mesh)
  step_kwargs = dict(model=model, tx=tx, objective=objective, mean=(0.5,) * 3,
                     std=(0.25,) * 3)
  if step_fn is None:  # The trainer's: train_step on the batch gathered on the device.
    step_fn = functools.partial(
        input_pipeline.resident_train_step,
        train_step=functools.partial(train.train_step, learning_rate=lr, **step_kwargs))
  else:
    step_fn = functools.partial(step_fn, **step_kwargs)
  fn = parallel.map_step(
      functools.partial(step_fn, global_batch=batch, augment=augment),
      mesh, batch_argnums=(), donate_argnums=(0,))
  return Step(fn=fn, args=(state, data, parallel.replicate(protos, mesh)), case=case,
              dtype=dtype, batch=batch, size=size)


def time_step(fn: Callable, args: tuple, steps: int, repeats: int, batch: int
              ) -> tuple[list[float], tuple]:
  """images/s of `repeats` windows of `steps` calls (one block_until_ready per window),
  and the arguments to go on with (the first one is donated and replaced each call)."""
  import jax  # pylint: disable=g-import-not-at-top
  carry, rest = args[0], args[1:]
  rates = []
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(steps):
      carry, sums = fn(carry, *rest)
    jax.block_until_ready((carry, sums))
    rates.append(steps * batch / (time.perf_counter() - t))
  return rates, (carry, *rest)


def bench_ours(case: str, dtype: str, steps: int, repeats: int, dim: int,
               batch: int = 0, size: int = 0, model_kwargs: Optional[dict] = None) -> dict:
  """One case of CASES; `batch`, `size` (0: the case's) and `model_kwargs` (passed to
  models.build) shrink it for a smoke run."""
  import jax  # pylint: disable=g-import-not-at-top
  step = make_step(case, dtype, dim, batch, size, model_kwargs)
  t = time.perf_counter()
  state, sums = step.fn(*step.args)
  jax.block_until_ready(sums)
  compile_s = time.perf_counter() - t
  rates, _ = time_step(step.fn, (state, *step.args[1:]), steps, repeats, step.batch)
  return dict(impl='hyperproto', case=case, dtype=dtype, batch=step.batch,
              image_size=step.size, images_per_s=round(statistics.median(rates), 1),
              compile_s=round(compile_s, 2), devices=str(jax.devices()[0].platform),
              jax=jax.__version__)


def bench_torch(python: str, mode: str, steps: int) -> dict:
  env = dict(os.environ, OMP_WAIT_POLICY='PASSIVE', OMP_NUM_THREADS=str(os.cpu_count()))
  out = subprocess.run([python, TORCH_BENCH, '--mode', mode, '--batch', '128',
                        '--steps', str(steps), '--threads', str(os.cpu_count())],
                       capture_output=True, text=True, env=env, check=True)
  result = json.loads(out.stdout.strip().splitlines()[-1])
  return dict(result, impl='pytorch', mode=mode)


def bench_layers(repeats: int) -> None:
  """One 3x3 conv of each ResNet-32 stage (batch 128): the forward pass and input gradient
  by XLA and by the native kernel, and the kernel gradient by XLA, the native kernel and
  im2col (ms, median of `repeats`; None where the native kernels are unavailable)."""
  import jax  # pylint: disable=g-import-not-at-top
  from jax import lax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from hyperproto.models import conv  # pylint: disable=g-import-not-at-top
  from hyperproto.models import cpu_kernels  # pylint: disable=g-import-not-at-top

  def ms(fn, *args):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
      t = time.perf_counter()
      jax.block_until_ready(fn(*args))
      times.append(time.perf_counter() - t)
    return round(1000 * statistics.median(times), 2)

  def native_ms(fn, *args):
    return ms(jax.jit(fn), *args) if cpu_kernels.available() else None

  pads = ((1, 1), (1, 1))
  native = functools.partial(cpu_kernels.forward, strides=(1, 1), pads=pads)
  for size, channels in ((32, 16), (16, 32), (8, 64)):
    rng = np.random.default_rng(0)
    x, dy = (rng.normal(size=(128, size, size, channels)).astype(np.float32)
             for _ in range(2))
    w = rng.normal(size=(3, 3, channels, channels)).astype(np.float32)
    fwd = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), pads,
                                                dimension_numbers=conv.NHWC)
    vjp = lambda x, w, dy: jax.vjp(fwd, x, w)[1](dy)
    print(json.dumps(dict(
        layer=f'3x3 conv {size}x{size}x{channels}, batch 128',
        forward_xla_ms=ms(jax.jit(fwd), x, w),
        forward_native_ms=native_ms(native, x, w),
        input_grad_xla_ms=ms(jax.jit(lambda x, w, dy: vjp(x, w, dy)[0]), x, w, dy),
        # As models/conv.py computes it: the forward kernel on dy, w flipped and swapped.
        input_grad_native_ms=native_ms(
            lambda w, dy: native(dy, jax.numpy.flip(w, (0, 1)).swapaxes(2, 3)), w, dy),
        kernel_grad_xla_ms=ms(jax.jit(lambda x, w, dy: vjp(x, w, dy)[1]), x, w, dy),
        kernel_grad_native_ms=native_ms(functools.partial(
            cpu_kernels.kernel_grad, kernel_size=(3, 3), strides=(1, 1), pads=pads), x, dy),
        kernel_grad_im2col_ms=ms(jax.jit(functools.partial(
            conv.kernel_grad_im2col, kernel_size=(3, 3), strides=(1, 1), pads=pads)),
                               x, dy))), flush=True)


# Ablation of the CPU work (experiments/results/benchmark.md): environment per variant.
VARIANTS = {
    'xla': dict(HYPERPROTO_CPU_CONV='xla', HYPERPROTO_CPU_TUNING='0'),
    'tuning': dict(HYPERPROTO_CPU_CONV='xla', HYPERPROTO_CPU_TUNING='1'),
    'im2col+tuning': dict(HYPERPROTO_CPU_CONV='im2col', HYPERPROTO_CPU_TUNING='1'),
    'native_dw+tuning': dict(HYPERPROTO_CPU_CONV='native_dw', HYPERPROTO_CPU_TUNING='1'),
    'native+tuning': dict(HYPERPROTO_CPU_CONV='native', HYPERPROTO_CPU_TUNING='1'),
}
DEFAULT_VARIANT = 'native+tuning'


def run_ours(dtype: str, variant: str = DEFAULT_VARIANT) -> dict:
  """ResNet-32 in a fresh process (the settings apply before JAX starts)."""
  out = subprocess.run(
      [sys.executable, __file__, '--cases=resnet32', f'--dtypes={dtype}',
       f'--steps={FLAGS.steps}', f'--repeats={FLAGS.repeats}', f'--dim={FLAGS.dim}'],
      capture_output=True, text=True, check=True, cwd=ROOT,
      env=dict(os.environ, **VARIANTS[variant]))
  return dict(json.loads(out.stdout.strip().splitlines()[-1]), variant=variant)


def main(argv):
  del argv
  if FLAGS.ablation or FLAGS.torch_python:  # Everything in subprocesses, alternating.
    for round_ in range(FLAGS.rounds):
      results = {}
      for dtype in FLAGS.dtypes:
        for variant in (VARIANTS if FLAGS.ablation else [DEFAULT_VARIANT]):
          results[dtype] = run_ours(dtype, variant)
          print(json.dumps(dict(results[dtype], round=round_)), flush=True)
      for mode in FLAGS.torch_modes if FLAGS.torch_python else ():
        theirs = bench_torch(FLAGS.torch_python, mode, FLAGS.steps * FLAGS.repeats)
        print(json.dumps(dict(theirs, round=round_)), flush=True)
        ours = results.get('bfloat16' if mode == 'bf16' else 'float32')
        if ours:
          print(json.dumps({'round': round_,
                            'compare': f'ours {ours["dtype"]} / torch {mode}',
                            'ratio': round(ours['images_per_s'] / theirs['img_per_s'],
                                           3)}), flush=True)
    return
  from hyperproto import cpu_tuning  # pylint: disable=g-import-not-at-top
  cpu_tuning.configure()  # Before JAX starts; HYPERPROTO_CPU_TUNING=0 turns it off.
  if FLAGS.layers:
    bench_layers(FLAGS.repeats)
    return
  for case in FLAGS.cases:
    for dtype in FLAGS.dtypes:
      print(json.dumps(bench_ours(case, dtype, FLAGS.steps, FLAGS.repeats, FLAGS.dim)),
            flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
