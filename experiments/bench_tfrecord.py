r"""Converting a TFDS dataset from tfrecord to array_record without TensorFlow: speed here.

Writes two synthetic TFDS datasets in tfrecord, each prepared by a TFDS builder (its
shards, dataset_info.json, `tf.train.Example` records; the framing by
`hyperproto.data.tfrecord.write`, where TFDS would call TensorFlow):
- `small`: --small_images 32x32 PNG images and a label (CIFAR-like records, ~3 KB);
- `large`: --large_images 500x375 JPEG images and a label (CUB-like, ~40 KB);
then converts each as `python -m hyperproto.data.prepare --dataset=tfds:NAME` does
(`generic.convert`, into another data directory) and reports, per dataset:
- `records`, `megabytes` (of the tfrecord shards);
- `convert_records_per_second`, `convert_megabytes_per_second`: the whole conversion
  (every record read and both its checksums checked, written to array_record, the
  metadata written);
- `read_records_per_second`, `read_megabytes_per_second`: `tfrecord.read` alone;
- `convert_cpu_seconds`, `read_cpu_seconds`: the CPU time this process took for each
  (on a machine shared with other jobs, records / CPU seconds is closer to what an idle
  core does than the wall-clock rates, which are then lower bounds).
And `crc32c/numpy_megabytes_per_second` (`tfrecord.crc32c` on 32 MiB) next to
`crc32c/python_table_megabytes_per_second` (the textbook byte-at-a-time table loop in
Python, on 1 MiB).

  python experiments/bench_tfrecord.py --work_dir=/tmp/hyperproto_bench_tfrecord

Prints one JSON object.
"""

import io
import json
import os
import shutil
import sys
import time
from unittest import mock

from absl import app
from absl import flags
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image
from tensorflow_datasets.core import file_adapters

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
# pylint: disable=g-import-not-at-top,wrong-import-position
from hyperproto.data import generic
from hyperproto.data import tfrecord
# pylint: enable=g-import-not-at-top,wrong-import-position

_WORK_DIR = flags.DEFINE_string('work_dir', '/tmp/hyperproto_bench_tfrecord',
                                'Where the datasets are written (emptied first).')
_SMALL = flags.DEFINE_integer('small_images', 20_000, '32x32 PNG images.')
_LARGE = flags.DEFINE_integer('large_images', 1_000, '500x375 JPEG images.')

SHAPES = {'small': ((32, 32, 3), 'png'), 'large': ((375, 500, 3), 'jpeg')}


def image(shape, fmt: str, rng: np.random.Generator) -> bytes:
  """A smooth random image with some noise (compresses as photographs roughly do)."""
  coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
  smooth = np.asarray(coarse.resize(shape[1::-1], Image.BICUBIC), np.int16)
  noisy = np.clip(smooth + rng.integers(-12, 13, shape), 0, 255).astype(np.uint8)
  buf = io.BytesIO()
  Image.fromarray(noisy).save(buf, fmt.upper(), **({'quality': 90} if fmt == 'jpeg' else {}))
  return buf.getvalue()


def builder(name: str, count: int, data_dir: str) -> tfds.core.DatasetBuilder:
  """A TFDS builder of `count` images of the kind `name` and a label (10 classes)."""
  shape, fmt = SHAPES[name]

  class Bench(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version('1.0.0')

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
          'image': tfds.features.Image(shape=shape, encoding_format=fmt),
          'label': tfds.features.ClassLabel(num_classes=10)}))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {'train': self._generate_examples()}

    def _generate_examples(self):
      rng = np.random.default_rng(0)
      for i in range(count):
        yield i, {'image': image(shape, fmt, rng), 'label': i % 10}

  Bench.name = f'bench_{name}'
  return Bench(data_dir=data_dir, file_format='tfrecord')


def write_tfrecord(b: tfds.core.DatasetBuilder) -> None:
  """Prepares `b` as TFDS does, with our framing where TFDS calls TensorFlow."""
  def write_examples(cls, path, iterator):
    del cls
    tfrecord.write(os.fspath(path), (record for _, record in iterator))
  with mock.patch.object(file_adapters.TfRecordFileAdapter, 'write_examples',
                         classmethod(write_examples)):
    b.download_and_prepare()


def measure(name: str, count: int, work_dir: str) -> dict:
  b = builder(name, count, os.path.join(work_dir, 'tfrecord'))
  write_tfrecord(b)
  shards = sorted(os.path.join(b.data_dir, f) for f in os.listdir(b.data_dir)
                  if '.tfrecord-' in f)
  megabytes = sum(os.path.getsize(f) for f in shards) / 1e6
  start, cpu = time.perf_counter(), time.process_time()
  records = sum(1 for f in shards for _ in tfrecord.read(f))
  read_seconds, read_cpu = time.perf_counter() - start, time.process_time() - cpu
  start, cpu = time.perf_counter(), time.process_time()
  generic.convert(b.name, os.path.join(work_dir, 'tfrecord'),
                  out_data_dir=os.path.join(work_dir, 'array_record'))
  seconds, convert_cpu = time.perf_counter() - start, time.process_time() - cpu
  return {f'{name}/records': records, f'{name}/megabytes': round(megabytes, 1),
          f'{name}/convert_records_per_second': round(records / seconds),
          f'{name}/convert_megabytes_per_second': round(megabytes / seconds, 1),
          f'{name}/convert_cpu_seconds': round(convert_cpu, 2),
          f'{name}/read_records_per_second': round(records / read_seconds),
          f'{name}/read_megabytes_per_second': round(megabytes / read_seconds, 1),
          f'{name}/read_cpu_seconds': round(read_cpu, 2)}


def crc_rates() -> dict:
  """MB/s of tfrecord.crc32c and of a Python byte-at-a-time table loop."""
  rng = np.random.default_rng(0)
  big = rng.integers(0, 256, 32 << 20, dtype=np.uint8).tobytes()
  start = time.perf_counter()
  tfrecord.crc32c(big)
  numpy_rate = len(big) / 1e6 / (time.perf_counter() - start)
  table = [int(x) for x in tfrecord._byte_table()]  # pylint: disable=protected-access
  small = big[:1 << 20]
  start = time.perf_counter()
  crc = 0xFFFFFFFF
  for byte in small:
    crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  python_rate = len(small) / 1e6 / (time.perf_counter() - start)
  assert crc ^ 0xFFFFFFFF == tfrecord.crc32c(small)
  return {'crc32c/numpy_megabytes_per_second': round(numpy_rate, 1),
          'crc32c/python_table_megabytes_per_second': round(python_rate, 2)}


def main(argv):
  del argv
  tfds.disable_progress_bar()
  shutil.rmtree(_WORK_DIR.value, ignore_errors=True)
  results = {'cpus': os.cpu_count(), **crc_rates()}
  for name, count in (('small', _SMALL.value), ('large', _LARGE.value)):
    results.update(measure(name, count, _WORK_DIR.value))
  shutil.rmtree(_WORK_DIR.value, ignore_errors=True)
  print(json.dumps(results, indent=1))


if __name__ == '__main__':
  app.run(main)
