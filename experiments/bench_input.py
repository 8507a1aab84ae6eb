r"""Input pipeline throughput next to the train step's consumption rate, on this machine.

Measures, in examples per second (host only, no device transfer):
- `arrays/<name>`: the in-memory `Dataset.train_batch` (per-epoch permutation + gather)
  on prepared real data: MNIST and the CIFAR-10 JPEG copy (prepared first, into
  --data_dir, if they are not there yet);
- `stream/train`, `stream/eval`: the streaming 224 pipeline (decode + RandomResizedCrop
  + flip / centre crop, thread pool + prefetch) on a synthetic folder of JPEGs it writes
  (--stream_images of them, 500x375 like CUB's, in /tmp), for several worker counts;
- `train_step/...`: what the trainer's compiled `train_step` consumes, for the digits CNN
  (the only backbone on main when this was written) at 32x32x3 (batch 128) and at
  224x224x3 (batch 16), on this machine's default JAX device.

  python experiments/bench_input.py --mnist_dir=../shared/data/mnist \
      --cifar10_dir=../shared/data/cifar10_jpeg --data_dir=/tmp/hyperproto_bench

Prints one JSON object. Missing real data is reported and skipped, not faked.
"""

import io
import json
import os
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
# pylint: disable=g-import-not-at-top,wrong-import-position
from hyperproto import data as data_lib
from hyperproto.data import prepare, store, streaming
# pylint: enable=g-import-not-at-top,wrong-import-position

_MNIST = flags.DEFINE_string('mnist_dir', '../shared/data/mnist', 'MNIST idx files.')
_CIFAR10 = flags.DEFINE_string('cifar10_dir', '../shared/data/cifar10_jpeg',
                               'Folder with the CIFAR-10 JPEG archive.')
_DATA_DIR = flags.DEFINE_string('data_dir', '/tmp/hyperproto_bench', 'Prepared data.')
_STREAM_IMAGES = flags.DEFINE_integer('stream_images', 256, 'Synthetic JPEGs to write.')
_WORKERS = flags.DEFINE_list('workers', ['1', '2', '4'], 'Decoding threads to try.')
_SECONDS = flags.DEFINE_float('seconds', 5.0, 'Time budget per measurement.')


def _rate(fn, batch_size: int, seconds: float) -> float:
  """Examples/s of fn(i) -> batch, over about `seconds` after one warm-up call."""
  fn(0)
  start, n = time.perf_counter(), 0
  while time.perf_counter() - start < seconds:
    fn(n + 1)
    n += 1
  return round(n * batch_size / (time.perf_counter() - start), 1)


def bench_arrays(results: dict) -> None:
  for name, manual in (('mnist', _MNIST.value), ('cifar10_jpeg', _CIFAR10.value)):
    try:
      try:
        ds = data_lib.load(name, data_dir=_DATA_DIR.value)
      except store.NotPreparedError:
        t = time.perf_counter()
        prepare.prepare(name, manual, _DATA_DIR.value)
        results[f'prepare/{name}_seconds'] = round(time.perf_counter() - t, 1)
        ds = data_lib.load(name, data_dir=_DATA_DIR.value)
    except (FileNotFoundError, ValueError) as e:
      results[f'arrays/{name}'] = f'skipped: {e}'.splitlines()[0]
      continue
    t = time.perf_counter()
    data_lib.load(name, data_dir=_DATA_DIR.value)
    results[f'load/{name}_seconds'] = round(time.perf_counter() - t, 2)
    results[f'arrays/{name}'] = _rate(
        lambda i, ds=ds: ds.train_batch('train', i, 128, seed=0), 128, _SECONDS.value)


def _synthetic_stream(root: str, n: int) -> streaming.StreamingDataset:
  """n random-texture 500x375 JPEGs (CUB-like sizes), written as a prepared dataset."""
  rng = np.random.default_rng(0)
  blobs = []
  for _ in range(n):
    small = rng.integers(0, 256, (47, 63, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((500, 375), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, 'JPEG', quality=90)
    blobs.append(buf.getvalue())
  info = data_lib.DatasetInfo('synthetic', 10, tuple(map(str, range(10))), (224, 224, 3),
                              (0.5,) * 3, (0.25,) * 3)
  with store.Writer('synthetic', root) as w:
    for split in ('train', 'test'):
      w.add_blobs(split, blobs)
      w.add_array(split, 'label', np.arange(n, dtype=np.int32) % 10)
    w.finish('jpeg_records', info, {})
  return streaming.load('synthetic', root, '')


def bench_stream(results: dict) -> None:
  with tempfile.TemporaryDirectory(prefix='hyperproto_bench_stream') as root:
    ds = _synthetic_stream(root, _STREAM_IMAGES.value)
    for workers in map(int, _WORKERS.value):
      ds.num_workers = workers
      it = ds.train_batches('train', 0, 64, seed=0)
      results[f'stream/train_224_workers{workers}'] = _rate(
          lambda i, it=it: next(it), 64, _SECONDS.value)
      it.close()
      def eval_pass(i, ds=ds):
        del i
        for _ in ds.eval_batches('test', 64):
          pass
      results[f'stream/eval_224_workers{workers}'] = _rate(
          eval_pass, ds.num_examples('test'), _SECONDS.value)


def bench_train_step(results: dict) -> None:
  # pylint: disable=g-import-not-at-top
  import functools
  import jax
  from configs import digits
  from hyperproto import models, optim, parallel, train
  # pylint: enable=g-import-not-at-top
  results['device'] = f'{jax.device_count()} x {jax.devices()[0].device_kind}'
  for size, batch_size in ((32, 128), (224, 16)):
    config = digits.get_config('task=classification')
    config.batch_size = batch_size
    info = data_lib.DatasetInfo('bench', 10, tuple(map(str, range(10))), (size, size, 3),
                                (0.5,) * 3, (0.25,) * 3)
    objective = train.make_objective(config, info)
    with tempfile.TemporaryDirectory() as workdir:
      protos = train.prepare_prototypes(config, objective, workdir)
    mesh = parallel.make_mesh(config.num_devices)
    model = models.build(config.model.name, output_dim=objective.output_dim,
                         axis_name=train.AXIS, **config.model.kwargs)
    tx = optim.optimizer(config, 1000, 100)
    state = parallel.replicate(
        train.create_train_state(jax.random.PRNGKey(0), model, tx, info.image_shape), mesh)
    protos = parallel.replicate({k: jax.numpy.asarray(v) for k, v in protos.items()}, mesh)
    step = parallel.map_step(functools.partial(
        train.train_step, model=model, tx=tx, objective=objective, mean=info.mean,
        std=info.std), mesh, donate_argnums=(0,))
    rng = np.random.default_rng(0)
    batch = parallel.shard_batch(
        {'image': rng.integers(0, 256, (batch_size, size, size, 3), dtype=np.uint8),
         'label': rng.integers(0, 10, batch_size).astype(np.int32)}, mesh)
    box = {'state': state}

    def run(i):
      del i
      box['state'], sums = step(box['state'], batch, protos)
      jax.block_until_ready(sums)

    results[f'train_step/digits_cnn_{size}px_batch{batch_size}'] = _rate(
        run, batch_size, _SECONDS.value)


def main(argv):
  del argv
  results = {'cpus': os.cpu_count()}
  bench_arrays(results)
  bench_stream(results)
  bench_train_step(results)
  print(json.dumps(results, indent=1))


if __name__ == '__main__':
  app.run(main)
