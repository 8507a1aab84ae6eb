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
- `transform/<W>x<H>/*`: today's 224 transform (`streaming.transform`: JPEGs decoded at
  1/2, 1/4, 1/8 scale where the crop allows) against the one before it
  (`transform_full_decode`), on the same --stream_images photograph-like JPEGs of each
  of --stream_sizes (crops of scikit-learn's two sample photographs, quality 90), in
  this thread (one core), each image through both back to back, --rounds times:
  images/s of each for train (RandomResizedCrop + flip) and eval (resize 256 + centre
  crop), the speed-up, the mean and largest absolute difference of their pixels (uint8
  levels) and the fraction of images decoded at reduced scale; where simplejpeg is
  installed (not a dependency), the same transform with simplejpeg's decoder too;
- `stream/loader_train_224_per_core`: what one grain worker does (read the records,
  decode and crop, build the batch of --stream_batch), in this thread, on the first
  size; `stream/predicted_train_224_16_cores` is 16 times it (a prediction for a
  16-core GPU host: measure it there);
- `stream/train_224_workers{N}`, `stream/eval_224_workers{N}`: the whole pipeline
  through grain with N worker processes (0: in this process, on grain's threads), on
  the first size, each for about --seconds: training after its first 1 + 2N batches
  (what the workers decoded while the slowest one started); evaluation in passes over
  the test split (its workers start on the first and serve the next ones): the seconds
  of each (`..._pass_seconds`) and the rate over all but the first;
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
from hyperproto.data import prepare, reader, streaming
# pylint: enable=g-import-not-at-top,wrong-import-position

_MNIST = flags.DEFINE_string('mnist_dir', '../shared/data/mnist', 'MNIST idx files.')
_CIFAR10 = flags.DEFINE_string('cifar10_dir', '../shared/data/cifar10_jpeg',
                               'Folder with the CIFAR-10 JPEG archive.')
_DATA_DIR = flags.DEFINE_string('data_dir', '/tmp/hyperproto_bench', 'Prepared data.')
_SPLIT = flags.DEFINE_integer('split_examples', 50_000, 'Examples of the whole-split '
                              'benchmark (CIFAR-100: 50,000).')
_STREAM_IMAGES = flags.DEFINE_integer('stream_images', 256, 'Synthetic JPEGs to write.')
_STREAM_SIZES = flags.DEFINE_list(
    'stream_sizes', ['500x375', '1024x768'], 'Sizes (WxH) of the synthetic JPEGs: the '
    'transforms are compared on each, the pipelines run on the first.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Passes over the images of the transform '
                               'comparison (0: none).')
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


def _photographs() -> list[Image.Image]:
  """The two photographs that ship inside scikit-learn (427x640; no download)."""
  from sklearn.datasets import load_sample_images  # pylint: disable=g-import-not-at-top
  return [Image.fromarray(a) for a in load_sample_images().images]


def _synthetic_folder(root: str, n: int, size: tuple[int, int]) -> None:
  """n photograph-like JPEGs of `size` (quality 90) in train/ and test/ of 10 classes:
  random crops (a random half to all of the side, aspect kept) of scikit-learn's two
  photographs, resized to `size` (bicubic), half of them mirrored."""
  rng = np.random.default_rng(0)
  photos = _photographs()
  width, height = size
  for k in range(n):
    photo = photos[k % len(photos)]
    side = min(photo.width, photo.height * width / height) * rng.uniform(0.5, 1.0)
    w, h = side, side * height / width
    left, top = rng.uniform(0, photo.width - w), rng.uniform(0, photo.height - h)
    img = photo.resize(size, Image.BICUBIC, box=(left, top, left + w, top + h))
    if rng.uniform() < 0.5:
      img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for split in ('train', 'test'):
      os.makedirs(os.path.join(root, split, str(k % 10)), exist_ok=True)
      img.save(os.path.join(root, split, str(k % 10), f'{k}.jpg'), 'JPEG', quality=90)


def _parse_size(text: str) -> tuple[int, int]:
  width, height = text.lower().split('x')
  return int(width), int(height)


def _simplejpeg_transform(data: bytes, size: int, rng) -> np.ndarray:
  """`streaming.transform` with the JPEG decoded by simplejpeg (libjpeg-turbo, DCT
  scaling by the same rule): a candidate, compared only where simplejpeg is installed
  (it is not a dependency)."""
  height, width, _, _ = simplejpeg.decode_jpeg_header(data)
  box, flip = streaming._crop_and_flip(width, height, size, rng, True, 256)  # pylint: disable=protected-access
  scale = streaming.jpeg_reduction(box, size)
  image = Image.fromarray(simplejpeg.decode_jpeg(
      data, min_height=-(-height // scale), min_width=-(-width // scale)))
  box = tuple(v / scale for v in box)
  out = image.resize((size, size), Image.BILINEAR, box=box)
  return np.asarray(out.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else out)


try:
  import simplejpeg  # pylint: disable=g-import-not-at-top
except ImportError:
  _simplejpeg_transform = None  # pylint: disable=invalid-name


def compare_transforms(results: dict, ds, label: str, rounds: int) -> None:
  """Today's transform (`streaming.transform`, reduced decoding) against the one before
  it (`transform_full_decode`) on the same encoded images, in this thread (one core):
  each image through both, back to back (in alternating order), so that both see the
  same moments of a shared machine's load; --rounds passes over the images, train
  (random crop + flip, 224) and eval (centre crop).

  Reports images/s of each (over all rounds), the speed-up (the ratio of their total
  times), the mean and largest absolute difference of their outputs (uint8 levels) and
  the fraction of images decoded at reduced scale."""
  source = streaming._Loader(ds.path, 'train', ds.image_key, ds.keys, 224, 256,  # pylint: disable=protected-access
                             True).source()
  encoded = [r[ds.image_key] for r in source.__getitems__(list(range(len(source))))]
  kinds = (('full_decode', streaming.transform_full_decode),
           ('reduced', streaming.transform))
  if _simplejpeg_transform is not None:
    kinds += (('simplejpeg', _simplejpeg_transform),)
  for mode in ('train', 'eval'):
    seconds = {kind: 0.0 for kind, _ in kinds}
    for r in range(rounds):
      for i, data in enumerate(encoded):
        for kind, fn in (kinds if (i + r) % 2 else kinds[::-1]):
          rng = np.random.default_rng(i) if mode == 'train' else None
          start = time.perf_counter()
          fn(data, 224, rng)
          seconds[kind] += time.perf_counter() - start
    for kind, total in seconds.items():
      rate = rounds * len(encoded) / total
      results[f'transform/{label}/{mode}_{kind}'] = round(rate, 1)
    results[f'transform/{label}/{mode}_speedup'] = round(
        seconds['full_decode'] / seconds['reduced'], 2)
    if 'simplejpeg' in seconds:
      results[f'transform/{label}/{mode}_simplejpeg_vs_reduced'] = round(
          seconds['reduced'] / seconds['simplejpeg'], 2)
  diffs, reduced = [], 0
  for i, data in enumerate(encoded):
    for seed in (i, None):  # a random crop, the centre crop
      rng = lambda seed=seed: None if seed is None else np.random.default_rng(seed)
      new = streaming.transform(data, 224, rng()).astype(np.int16)
      diffs.append(np.abs(new - streaming.transform_full_decode(data, 224, rng())))
      with Image.open(io.BytesIO(data)) as img:
        box, _ = streaming._crop_and_flip(*img.size, 224, rng(), True, 256)  # pylint: disable=protected-access
      reduced += streaming.jpeg_reduction(box, 224) > 1
  results[f'transform/{label}/mean_abs_diff'] = round(float(np.mean(diffs)), 3)
  results[f'transform/{label}/max_abs_diff'] = int(np.max(diffs))
  results[f'transform/{label}/reduced_fraction'] = round(reduced / len(diffs), 3)


def _loader_rate(ds, batch: int, seconds: float) -> float:
  """Images/s of what one grain worker does (read the records, decode and crop, build
  the batch), in this thread: training batches of step 0, 1, ..."""
  loader = streaming._Loader(ds.path, 'train', ds.image_key, ds.keys, 224, 256, True)  # pylint: disable=protected-access
  spec = streaming._TrainSpec(ds.indices['train'], batch, 0, 0, 1)  # pylint: disable=protected-access
  return _rate(lambda i: loader(spec(i)), batch, seconds)


def bench_stream(results: dict, *, images: int, batch: int, workers: list[int],
                 seconds: float, evaluate: bool = True, sizes: tuple[str, ...] = (),
                 rounds: int = 1, min_eval_passes: int = 3) -> None:
  """The 224 pipeline on `images` photograph-like JPEGs, on the first of `sizes`
  (default 500x375), per worker count: train for `seconds` (after the first batches),
  and evaluation passes until those after the first took `seconds` (at least
  `min_eval_passes` of them; the rate is over those); the transform comparison
  (`compare_transforms`) on each size when `rounds` > 0."""
  sizes = sizes or ('500x375',)
  with tempfile.TemporaryDirectory(prefix='hyperproto_bench_stream') as root:
    for k, label in enumerate(sizes):
      name = f'synthetic{k}'
      _synthetic_folder(os.path.join(root, name), images, _parse_size(label))
      prepare.prepare('folder', os.path.join(root, name), root, name=name)
      with data_lib.load(f'folder:{name}', data_dir=root, image_size=224,
                         num_workers=0) as ds:
        if rounds:
          compare_transforms(results, ds, label, rounds)
        if k:
          continue
        per_core = _loader_rate(ds, batch, seconds)
        results['stream/loader_train_224_per_core'] = per_core
        results['stream/predicted_train_224_16_cores'] = round(16 * per_core)
      for n in workers:
        with data_lib.load(f'folder:{name}', data_dir=root, image_size=224,
                           num_workers=n) as ds:
          it = ds.train_batches('train', 0, batch, seed=0)
          # Start the workers, and take what they decoded while the slowest started.
          for _ in range(1 + n * ds.prefetch):
            next(it)
          results[f'stream/train_224_workers{n}'] = _rate(lambda i, it=it: next(it),
                                                          batch, seconds)
          if not evaluate:
            continue
          # The first pass starts the workers; the next ones reuse them.
          passes = []
          while len(passes) < 1 + min_eval_passes or sum(passes[1:]) < seconds:
            start = time.perf_counter()
            for unused_batch in ds.eval_batches('test', batch):
              pass
            passes.append(time.perf_counter() - start)
          results[f'stream/eval_224_workers{n}_pass_seconds'] = [
              round(t, 2) for t in passes]
          results[f'stream/eval_224_workers{n}'] = round(
              (len(passes) - 1) * ds.num_examples('test') / sum(passes[1:]), 1)


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
                             seconds=_SECONDS.value, sizes=tuple(_STREAM_SIZES.value),
                             rounds=_ROUNDS.value)
  parts = {'whole_split': bench_whole_split, 'arrays': bench_arrays, 'stream': stream,
           'train_step': bench_train_step}
  for part in _PARTS.value:
    parts[part](results)
  print(json.dumps(results, indent=1))


if __name__ == '__main__':
  app.run(main)
