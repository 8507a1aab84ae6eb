r"""Input pipeline throughput next to the train step's consumption rate, on this machine.

Measures (host only, no device transfer):
- `whole_split/{raw,png}_*`: a CIFAR-100-sized split (50,000 32x32x3 uint8, 100
  classes, random pixels) prepared by a TFDS builder into array_record, once with the
  image as a raw uint8 `Tensor` feature stored as bytes (what our small-image builders
  use) and once as a PNG `Image` feature, then read whole into host memory with
  `tfds.data_source` (the target: <= 5 s on 2 cores): prepare seconds, read seconds, MB;
- `load/<name>_seconds`, `arrays/<name>`: prepared real data (MNIST and the CIFAR-10
  JPEG copy, prepared first into --data_dir if they are not there): `data.load` time,
  and the in-memory `Dataset.train_batch` (permutation + gather) in examples/s;
- `stream/train_224_workers{N}`, `stream/eval_224_workers{N}`: the streaming 224
  pipeline (JPEG decode + RandomResizedCrop + flip / resize + centre crop, batch 64)
  through grain with N worker processes (0: in this process, on grain's threads), on a
  synthetic image folder of --stream_images 500x375 JPEGs (CUB-like sizes) prepared
  with the `folder` builder; and `stream/predicted_train_224_16_cores`: the best
  per-worker rate times 16 (a prediction for a 16-core GPU host: measure it there);
- `train_step/...`: what the trainer's compiled `train_step` consumes, for the digits
  CNN at 32x32x3 (batch 128) and at 224x224x3 (batch 16), on JAX's default device.

  python experiments/bench_input.py --mnist_dir=../shared/data/mnist \
      --cifar10_dir=../shared/data/cifar10_jpeg --data_dir=/tmp/hyperproto_bench

Prints one JSON object. Missing real data is reported and skipped, not faked.
"""

import functools
import io
import json
import os
import shutil
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
# pylint: disable=g-import-not-at-top,wrong-import-position
from hyperproto import data as data_lib
from hyperproto.data import builder as builder_lib
from hyperproto.data import prepare, reader
# pylint: enable=g-import-not-at-top,wrong-import-position

_MNIST = flags.DEFINE_string('mnist_dir', '../shared/data/mnist', 'MNIST idx files.')
_CIFAR10 = flags.DEFINE_string('cifar10_dir', '../shared/data/cifar10_jpeg',
                               'Folder with the CIFAR-10 JPEG archive.')
_DATA_DIR = flags.DEFINE_string('data_dir', '/tmp/hyperproto_bench', 'Prepared data.')
_SPLIT = flags.DEFINE_integer('split_examples', 50_000, 'Examples of the whole-split '
                              'benchmark (CIFAR-100: 50,000).')
_STREAM_IMAGES = flags.DEFINE_integer('stream_images', 256, 'Synthetic JPEGs to write.')
_STREAM_BATCH = flags.DEFINE_integer('stream_batch', 64, 'Batch size of the 224 stream.')
_WORKERS = flags.DEFINE_list('workers', ['0', '1', '2'], 'grain worker processes to try.')
_SECONDS = flags.DEFINE_float('seconds', 5.0, 'Time budget per measurement.')
_PARTS = flags.DEFINE_list('parts', ['whole_split', 'arrays', 'stream', 'train_step'],
                           'Which measurements to make.')


def _rate(fn, batch_size: int, seconds: float) -> float:
  """Examples/s of fn(i) -> batch, over about `seconds` after one warm-up call."""
  fn(0)
  start, n = time.perf_counter(), 0
  while time.perf_counter() - start < seconds:
    fn(n + 1)
    n += 1
  return round(n * batch_size / (time.perf_counter() - start), 1)


class CifarSized(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A CIFAR-100-sized split of random pixels (raw tensors or PNG, by config)."""
  VERSION = tfds.core.Version('1.0.0')
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name='raw'),
                     tfds.core.BuilderConfig(name='png')]

  def _info(self):
    image = (builder_lib.image_tensor((32, 32, 3)) if self.builder_config.name == 'raw'
             else tfds.features.Image(shape=(32, 32, 3)))
    return tfds.core.DatasetInfo(builder=self, disable_shuffling=True,
                                 features=tfds.features.FeaturesDict({
                                     'image': image,
                                     'label': tfds.features.ClassLabel(num_classes=100)}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'train': self._generate_examples()}

  def _generate_examples(self):
    rng = np.random.default_rng(0)
    for i in range(_SPLIT.value):
      image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
      if self.builder_config.name == 'png':
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, 'PNG')
        image = buf.getvalue()
      yield i, {'image': image, 'label': i % 100}


def bench_whole_split(results: dict) -> None:
  root = tempfile.mkdtemp(prefix='hyperproto_bench_split')
  try:
    for encoding in ('raw', 'png'):
      t = time.perf_counter()
      b = CifarSized(data_dir=root, config=encoding, file_format='array_record')
      b.download_and_prepare()
      results[f'whole_split/{encoding}_prepare_seconds'] = round(
          time.perf_counter() - t, 1)
      path = reader.find(f'{CifarSized.name}/{encoding}', root)
      results[f'whole_split/{encoding}_MB'] = round(sum(
          os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)) / 1e6, 1)
      t = time.perf_counter()
      arrays = reader.read_arrays(reader.open_builder(path), 'train', ['image', 'label'])
      results[f'whole_split/{encoding}_read_seconds'] = round(time.perf_counter() - t, 2)
      assert arrays['image'].shape == (_SPLIT.value, 32, 32, 3), arrays['image'].shape
  finally:
    shutil.rmtree(root, ignore_errors=True)


def bench_arrays(results: dict) -> None:
  for name, manual in (('mnist', _MNIST.value), ('cifar10_jpeg', _CIFAR10.value)):
    try:
      try:
        ds = data_lib.load(name, data_dir=_DATA_DIR.value)
      except data_lib.NotPreparedError:
        t = time.perf_counter()
        prepare.prepare(name, manual, _DATA_DIR.value, overwrite=True)
        results[f'prepare/{name}_seconds'] = round(time.perf_counter() - t, 1)
        ds = data_lib.load(name, data_dir=_DATA_DIR.value)
    except (FileNotFoundError, ValueError) as e:
      results[f'arrays/{name}'] = f'skipped: {e}'.splitlines()[0]
      continue
    for verify in (True, False):
      t = time.perf_counter()
      data_lib.load(name, data_dir=_DATA_DIR.value, verify_checksums=verify)
      key = 'load' if verify else 'load_unverified'
      results[f'{key}/{name}_seconds'] = round(time.perf_counter() - t, 2)
    results[f'arrays/{name}'] = _rate(
        lambda i, ds=ds: ds.train_batch('train', i, 128, seed=0), 128, _SECONDS.value)


def _synthetic_folder(root: str, n: int) -> None:
  """n random-texture 500x375 JPEGs (CUB-like sizes) in train/ and test/ of 10 classes."""
  rng = np.random.default_rng(0)
  for k in range(n):
    small = rng.integers(0, 256, (47, 63, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((500, 375), Image.BILINEAR)
    for split in ('train', 'test'):
      os.makedirs(os.path.join(root, split, str(k % 10)), exist_ok=True)
      img.save(os.path.join(root, split, str(k % 10), f'{k}.jpg'), 'JPEG', quality=90)


def bench_stream(results: dict, *, images: int, batch: int, workers: list[int],
                 seconds: float, evaluate: bool = True) -> None:
  """The 224 pipeline on `images` synthetic JPEGs, train (and eval: each pass starts
  its workers anew) per worker count."""
  with tempfile.TemporaryDirectory(prefix='hyperproto_bench_stream') as root:
    _synthetic_folder(os.path.join(root, 'm'), images)
    prepare.prepare('folder', os.path.join(root, 'm'), root, name='synthetic')
    best = 0.0
    for n in workers:
      ds = data_lib.load('folder:synthetic', data_dir=root, image_size=224,
                         num_workers=n)
      it = ds.train_batches('train', 0, batch, seed=0)
      rate = _rate(lambda i, it=it: next(it), batch, seconds)
      results[f'stream/train_224_workers{n}'] = rate
      if n:
        best = max(best, rate / n)
      it.close()
      if not evaluate:
        continue

      def eval_pass(i, ds=ds):
        del i
        for _ in ds.eval_batches('test', batch):
          pass
      results[f'stream/eval_224_workers{n}'] = _rate(
          eval_pass, ds.num_examples('test'), seconds)
    if best:
      results['stream/predicted_train_224_16_cores'] = round(16 * best)


def bench_train_step(results: dict) -> None:
  # pylint: disable=g-import-not-at-top
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
  tfds.disable_progress_bar()
  results = {'cpus': os.cpu_count()}
  stream = functools.partial(bench_stream, images=_STREAM_IMAGES.value,
                             batch=_STREAM_BATCH.value,
                             workers=[int(n) for n in _WORKERS.value],
                             seconds=_SECONDS.value)
  parts = {'whole_split': bench_whole_split, 'arrays': bench_arrays, 'stream': stream,
           'train_step': bench_train_step}
  for part in _PARTS.value:
    parts[part](results)
  print(json.dumps(results, indent=1))


if __name__ == '__main__':
  app.run(main)
