"""TFRecord without TensorFlow: CRC32C, framing, and a TFDS dataset converted to array_record.

The tfrecord dataset is written by TFDS itself (a `GeneratorBasedBuilder` prepared with
`file_format='tfrecord'`: its shard names, dataset_info.json, features.json, label
files and `tf.train.Example` serialization), with one line replaced: the
`tf.io.TFRecordWriter` call, by `tfrecord.write`, whose bytes are checked against a
file TensorFlow wrote. TensorFlow is never imported.
"""

import binascii
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from unittest import mock

import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from absl.testing import absltest
from array_record.python import array_record_module
from PIL import Image
from tensorflow_datasets.core import file_adapters

from hyperproto import data
from hyperproto import train
from hyperproto.data import generic
from hyperproto.data import prepare
from hyperproto.data import tfrecord
import helpers

# grain 0.2.18's grain/_src/python/testdata/morris_sequence_first_5.tfrecord (written by
# TensorFlow): the records b'1', b'1 1', b'2 1', b'1 2 1 1', b'1 1 1 2 2 1'.
TF_WRITTEN = binascii.unhexlify(
    '01000000000000000175de4131c30c4ad60300000000000000b099490e312031'
    '59bed8de0300000000000000b099490e322031b4f2345f0700000000000000bb'
    'd79f11312032203120319886ebb80b000000000000008615f504312031203120'
    '322032203161692698')
MORRIS = [b'1', b'1 1', b'2 1', b'1 2 1 1', b'1 1 1 2 2 1']
NAMES = ['cat', 'dog', 'owl']
SIZES = {'train': 12, 'test': 5}


def crc32c_bitwise(data: bytes) -> int:
  """CRC-32C from its definition, one bit at a time (no tables)."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc ^= byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
  return crc ^ 0xFFFFFFFF


def example(split: str, i: int) -> dict:
  """Example i of a split: random pixels (so that any change shows), a label, a text
  id and a float32 that no decimal string holds exactly."""
  rng = np.random.default_rng([len(split), i])
  return {'image': rng.integers(0, 256, (10, 10, 3), dtype=np.uint8), 'label': i % 3,
          'id': f'{split}-{i}', 'weight': np.float32(i / 3 + 0.1)}


def png(pixels: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, 'PNG')
  return buf.getvalue()


class Pets(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A TFDS dataset as `tfds build` writes one: PNG images, a label, text, a float."""
  VERSION = tfds.core.Version('1.2.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        'image': tfds.features.Image(shape=(10, 10, 3)),
        'label': tfds.features.ClassLabel(names=NAMES),
        'id': tfds.features.Text(), 'weight': np.float32}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(split) for split in SIZES}

  def _generate_examples(self, split):
    for i in range(SIZES[split]):
      ex = example(split, i)
      yield i, dict(ex, image=png(ex['image']))


def write_tfrecord_dataset(data_dir: str) -> str:
  """Pets prepared by TFDS as tfrecord, 2 shards a split; returns its directory."""
  def write_examples(cls, path, iterator):  # TFDS: tf.io.TFRecordWriter(path).write
    del cls
    tfrecord.write(os.fspath(path), (record for _, record in iterator))
  with mock.patch.object(file_adapters.TfRecordFileAdapter, 'write_examples',
                         classmethod(write_examples)):
    builder = Pets(data_dir=data_dir, file_format='tfrecord')
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(num_shards=2))
  return os.fspath(builder.data_dir)


def listing(root: str) -> dict[str, bytes]:
  """Every file and folder under root (hidden ones too), with the files' bytes."""
  out = {}
  for d, dirs, files in os.walk(root):
    for name in dirs:
      out[os.path.relpath(os.path.join(d, name), root) + '/'] = b''
    for name in files:
      with open(os.path.join(d, name), 'rb') as f:
        out[os.path.relpath(os.path.join(d, name), root)] = f.read()
  return out


def array_records(path: str) -> list[bytes]:
  reader = array_record_module.ArrayRecordReader(path)
  try:
    return reader.read_all()
  finally:
    reader.close()


class Crc32cAndFramingTest(absltest.TestCase):

  def test_known_answers(self):
    # RFC 3720 (iSCSI), B.4, and the usual check value.
    self.assertEqual(tfrecord.crc32c(b'123456789'), 0xE3069283)
    self.assertEqual(tfrecord.crc32c(bytes(32)), 0x8A9136AA)
    self.assertEqual(tfrecord.crc32c(b'\xff' * 32), 0x62A8AB43)
    self.assertEqual(tfrecord.crc32c(bytes(range(32))), 0x46DD794E)
    self.assertEqual(tfrecord.crc32c(bytes(range(31, -1, -1))), 0x113FDB5C)
    self.assertEqual(tfrecord.crc32c(b''), 0)

  def test_every_range_matches_the_definition(self):
    rng = np.random.default_rng(0)
    buf = rng.integers(0, 256, 1000, dtype=np.uint8).tobytes()
    # Lengths 0 .. 3 blocks and starts at every phase of a block.
    starts = rng.integers(0, 700, 400)
    ends = np.minimum(starts + rng.integers(0, 3 * tfrecord._BLOCK + 2, 400), len(buf))
    starts[:2], ends[:2] = (0, 937), (len(buf), len(buf))
    got = tfrecord.crc32c_ranges(buf, starts, ends)
    want = [crc32c_bitwise(buf[a:b]) for a, b in zip(starts, ends)]
    np.testing.assert_array_equal(got, np.asarray(want, np.uint32))

  def test_reads_and_writes_what_tensorflow_writes(self):
    tmp = helpers.tmpdir(self)
    path = os.path.join(tmp, 'tf.tfrecord')
    with open(path, 'wb') as f:
      f.write(TF_WRITTEN)
    for chunk in (tfrecord.CHUNK_BYTES, 7, 20):  # records cut across chunks too
      self.assertEqual(list(tfrecord.read(path, chunk)), MORRIS)
    self.assertEqual(tfrecord.write(os.path.join(tmp, 'ours'), MORRIS), 5)
    self.assertEqual(open(os.path.join(tmp, 'ours'), 'rb').read(), TF_WRITTEN)

  def test_corrupt_and_truncated_files(self):
    tmp = helpers.tmpdir(self)
    records = [bytes([i]) * (i * 37) for i in range(8)]
    good = tfrecord.frames(records)
    at = len(tfrecord.frames(records[:5]))  # record 5 starts here
    cases = {
        'data': (good[:at + 20] + b'\x00' + good[at + 21:],
                 rf'record 5 \(at byte {at}\) fails its data checksum'),
        'length': (good[:at] + b'\x00\x01' + good[at + 2:],  # a plausible length
                   rf'record 5 \(at byte {at}\) fails its length checksum'),
        'huge_length': (good[:at + 7] + b'\x70' + good[at + 8:],
                        rf'record 5 \(at byte {at}\) fails its length checksum'),
        'cut_data': (good[:-3], r'record 7 .* the file ends first: the file is truncated'),
        'cut_header': (good + good[:5], r'record 8 .* the file is truncated'),
    }
    for name, (content, message) in cases.items():
      path = os.path.join(tmp, name)
      with open(path, 'wb') as f:
        f.write(content)
      for chunk in (tfrecord.CHUNK_BYTES, 50):
        with self.subTest(name, chunk=chunk):
          with self.assertRaisesRegex(tfrecord.CorruptRecordError,
                                      f'{path}: {message}.*Copy or prepare'):
            list(tfrecord.read(path, chunk))


class ConvertTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.prepared = tempfile.mkdtemp(prefix='hyperproto_tfrecord_test')
    cls.addClassCleanup(shutil.rmtree, cls.prepared, ignore_errors=True)
    write_tfrecord_dataset(cls.prepared)

  def setUp(self):
    super().setUp()
    self.tmp = helpers.tmpdir(self, 'hyperproto_tfrecord_test')
    shutil.copytree(self.prepared, self.tmp, dirs_exist_ok=True)
    self.path = os.path.join(self.tmp, 'pets', '1.2.0')

  def info(self, root=None) -> dict:
    with open(os.path.join(root or self.path, 'dataset_info.json')) as f:
      return json.load(f)

  def shard(self, split: str, i: int, suffix: str = 'tfrecord') -> str:
    return os.path.join(self.path, f'pets-{split}.{suffix}-{i:05d}-of-00002')

  def test_tfds_layout(self):  # What the other tests rely on: TFDS's own files.
    self.assertEqual(sorted(os.listdir(self.path)), [
        'dataset_info.json', 'features.json', 'label.labels.txt',
        *[f'pets-{s}.tfrecord-0000{i}-of-00002' for s in ('test', 'train') for i in (0, 1)]])
    info = self.info()
    self.assertEqual(info['fileFormat'], 'tfrecord')
    self.assertEqual({s['name']: sum(map(int, s['shardLengths'])) for s in info['splits']},
                     SIZES)
    with self.assertRaisesRegex(ValueError, r'(?s)prepared as tfrecord only.*\n  python '
                                r'-m hyperproto.data.prepare --dataset=tfds:pets:1.2.0 '
                                f'--data_dir={self.tmp}$'):
      data.load('tfds:pets', data_dir=self.tmp)
    info['fileFormat'] = 'riegeli'
    with open(os.path.join(self.path, 'dataset_info.json'), 'w') as f:
      json.dump(info, f)
    with self.assertRaisesRegex(ValueError, 'prepared as riegeli; only tfrecord is '
                                'converted'):
      prepare.prepare('tfds:pets', data_dir=self.tmp)

  def test_converts_bit_for_bit_and_trains(self):
    report = prepare.prepare('tfds:pets', data_dir=self.tmp)
    self.assertEqual((report['train_examples'], report['test_examples'], report['shards']),
                     (12, 5, 4))
    self.assertEqual(report['converted'], self.path)
    for split in SIZES:  # the same records, byte for byte, in the same order
      for i in range(2):
        self.assertEqual(array_records(self.shard(split, i, 'array_record')),
                         list(tfrecord.read(self.shard(split, i))))
    info = self.info()  # as `tfds convert_format` records a format added beside
    self.assertEqual((info['fileFormat'], info['alternativeFileFormats']),
                     ('tfrecord', ['array_record']))

    source = tfds.data_source('pets', data_dir=self.tmp)
    for split, n in SIZES.items():
      got = sorted((source[split][i] for i in range(len(source[split]))),
                   key=lambda e: int(e['id'].decode().split('-')[1]))
      self.assertLen(got, n)
      for i, e in enumerate(got):
        want = example(split, i)
        np.testing.assert_array_equal(e['image'], want['image'])
        self.assertEqual((e['label'], e['id']), (want['label'], want['id'].encode()))
        self.assertEqual(np.float32(e['weight']).tobytes(), want['weight'].tobytes())

    ds = data.load('tfds:pets', data_dir=self.tmp)
    self.assertEqual(ds.info.class_names, tuple(NAMES))
    config = helpers.tiny_config('task=classification,dim=3', batch_size=4, num_steps=2,
                                 num_devices=1)
    config.data.name = 'tfds:pets'  # What --config.data.name=tfds:pets sets.
    config.data.kwargs = ml_collections.ConfigDict()
    config.data.data_dir = self.tmp
    results = train.train_and_evaluate(config, os.path.join(self.tmp, 'work'))
    self.assertEqual((results['dataset'], results['test/num_examples']), ('tfds:pets', 5))
    self.assertNotIn('tensorflow', sys.modules)

    with self.assertRaisesRegex(FileExistsError, 'alternativeFileFormats.*--overwrite'):
      prepare.prepare('tfds:pets', data_dir=self.tmp)
    prepare.prepare('tfds:pets', data_dir=self.tmp, overwrite=True)
    self.assertEqual(self.info()['alternativeFileFormats'], ['array_record'])

  def test_into_another_data_dir(self):
    before = listing(self.tmp)
    out = os.path.join(self.tmp, 'elsewhere')
    report = generic.convert('pets:1.2.0', self.tmp, out_data_dir=out)
    final = os.path.join(out, 'pets', '1.2.0')
    self.assertEqual(report['converted'], final)
    self.assertEqual(sorted(os.listdir(out)), ['pets'])  # (no temporary left)
    self.assertEqual(sorted(os.listdir(final)), [
        'dataset_info.json', 'features.json', 'label.labels.txt',
        *[f'pets-{s}.array_record-0000{i}-of-00002' for s in ('test', 'train') for i in (0, 1)]])
    info = self.info(final)
    self.assertEqual(info['fileFormat'], 'array_record')
    self.assertEqual(info['dataSourceAccesses'][0]['tfdsDataset'],
                     {'name': 'pets', 'version': '1.2.0', 'dataDir': self.tmp})
    self.assertEqual({k: v for k, v in listing(self.tmp).items()
                      if not k.startswith('elsewhere')}, before)  # the source as it was
    ds = data.load('tfds:pets', data_dir=out)
    self.assertEqual(ds.info.class_names, tuple(NAMES))  # (from label.labels.txt)
    self.assertEqual(ds.num_examples('train'), 12)
    with self.assertRaisesRegex(FileExistsError, f'{final} exists.*--overwrite'):
      generic.convert('pets', self.tmp, out_data_dir=out)
    with self.assertRaisesRegex(ValueError, 'array_record already: nothing to convert'):
      generic.convert('pets', out)
    # Converted beside the tfrecord shards too, then again elsewhere: the copy's one
    # format is array_record.
    generic.convert('pets', self.tmp)
    shards = {f: listing(final)[f] for f in os.listdir(final) if 'array_record-' in f}
    generic.convert('pets', self.tmp, out_data_dir=out, overwrite=True)
    self.assertEqual(sorted(os.listdir(out)), ['pets'])
    self.assertEqual({f: listing(final)[f] for f in shards}, shards)
    self.assertNotIn('alternativeFileFormats', self.info(final))
    self.assertEqual(self.info(final)['fileFormat'], 'array_record')

  def test_bad_shards_leave_nothing_behind(self):
    path = self.shard('train', 1)
    records = list(tfrecord.read(path))
    good = open(path, 'rb').read()
    flipped = bytearray(good)
    flipped[-30] ^= 1  # in the data of the last record
    n = len(records)
    cases = {
        'corrupt': (bytes(flipped), rf'{path}: record {n - 1} .* fails its data checksum'),
        'truncated': (good[:-9], rf'{path}: record {n - 1} .* the file is truncated'),
        'a record short': (tfrecord.frames(records[:-1]),
                           rf'{path} holds {n - 1} records; dataset_info.json says {n} '
                           r'\(shardLengths of the train split\)'),
    }
    for name, (content, message) in cases.items():
      with self.subTest(name):
        with open(path, 'wb') as f:
          f.write(content)
        before = listing(self.tmp)
        with self.assertRaisesRegex(ValueError, message):
          prepare.prepare('tfds:pets', data_dir=self.tmp)
        with self.assertRaisesRegex(ValueError, message):
          prepare.prepare('tfds:pets', data_dir=self.tmp,
                          out_data_dir=os.path.join(self.tmp, 'out'))
        self.assertEqual(listing(self.tmp), before)  # no shard, no temporary, same json
    os.remove(path)
    with self.assertRaisesRegex(FileNotFoundError, rf'{path} \(train split, shard 2 of '
                                r'2\) is missing'):
      prepare.prepare('tfds:pets', data_dir=self.tmp)

  def test_command_line_never_imports_tensorflow(self):
    # A `tensorflow` that records any attempt to import it, first on the path.
    fake = os.path.join(self.tmp, 'fake', 'tensorflow')
    os.makedirs(fake)
    with open(os.path.join(fake, '__init__.py'), 'w') as f:
      f.write(f'open({os.path.join(self.tmp, "imported")!r}, "w").close()\n'
              'raise ImportError("tensorflow must not be imported")\n')
    script = textwrap.dedent(f"""
        import atexit, runpy, sys
        atexit.register(lambda: print('tensorflow loaded:', 'tensorflow' in sys.modules))
        sys.argv = ['prepare', '--dataset=tfds:pets', '--data_dir={self.tmp}']
        runpy.run_module('hyperproto.data.prepare', run_name='__main__')
        """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(fake), helpers.ROOT]))
    done = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True,
                          text=True, timeout=120)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    self.assertIn(f"Prepared 'tfds:pets' in {self.path}.", done.stdout)
    self.assertIn('--config.data.name=tfds:pets', done.stdout)
    self.assertIn('tensorflow loaded: False', done.stdout)
    self.assertFalse(os.path.exists(os.path.join(self.tmp, 'imported')))
    self.assertEqual(self.info()['alternativeFileFormats'], ['array_record'])


if __name__ == '__main__':
  absltest.main()
