"""A user's own image folders and any TFDS dataset in array_record, end to end.

The image folder holds solid-colour images per class in several formats and sizes, a
corrupt file, a truncated JPEG and a target CSV; the `tfds:` dataset comes from a tiny
TFDS builder defined here and prepared the way TFDS prepares any dataset. Both train for
a few steps through `train_and_evaluate`. TensorFlow is never imported.
"""

import io
import json
import os
import sys

import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from absl.testing import absltest
from PIL import Image

from hyperproto import data
from hyperproto import train
from hyperproto.data import prepare
import helpers

COLOURS = {'cat': (200, 30, 30), 'dog': (30, 200, 30), 'owl': (30, 30, 200)}


def tmpdir(test: absltest.TestCase) -> str:
  return helpers.tmpdir(test, 'hyperproto_tfds_test')


def encode(colour, size=(20, 20), fmt='JPEG', mode='RGB') -> bytes:
  buf = io.BytesIO()
  Image.new(mode, size, colour if mode == 'RGB' else colour[0]).save(buf, fmt)
  return buf.getvalue()


def write_folder(root: str, size=(20, 20)) -> None:
  """train: 3 images per class (JPEG, PNG, and one grey BMP owl), test: 1 per class."""
  def put(rel, payload):
    os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
    with open(os.path.join(root, rel), 'wb') as f:
      f.write(payload)
  for cls, colour in COLOURS.items():
    put(f'train/{cls}/a.jpg', encode(colour, size))
    put(f'train/{cls}/b.png', encode(colour, size, 'PNG'))
    put(f'test/{cls}/t.jpg', encode(colour, size))
  put('train/owl/c.bmp', encode((90, 90, 90), size, 'BMP', mode='L'))
  put('train/cat/notes.txt', b'not an image, not an image file name')
  put('train/dog/broken.jpg', b'\xff\xd8 this is not a JPEG')
  put('train/dog/cut.jpg', encode(COLOURS['dog'], (64, 64))[:200])  # truncated
  put('test/.hidden/x.jpg', encode((0, 0, 0), size))


class FolderTest(absltest.TestCase):

  def test_prepare_reports_bad_files_and_reads_back(self):
    tmp = tmpdir(self)
    write_folder(os.path.join(tmp, 'm'))
    report = prepare.prepare('folder', os.path.join(tmp, 'm'), tmp, name='pets')
    self.assertEqual(report['unreadable']['count'], 2)
    self.assertEqual(sorted(e.split(':')[0] for e in report['unreadable']['examples']),
                     ['train/dog/broken.jpg', 'train/dog/cut.jpg'])
    self.assertEqual((report['train_examples'], report['test_examples']), (7, 3))
    self.assertTrue(report['prepared'].endswith('hyperproto_folder/pets/1.0.0'))

    ds = data.load('folder:pets', data_dir=tmp)  # 20x20: held in memory, at 20
    self.assertIsInstance(ds, data.Dataset)
    self.assertEqual(ds.info.class_names, ('cat', 'dog', 'owl'))
    self.assertEqual(ds.info.image_shape, (20, 20, 3))
    for image, label in zip(ds.splits['train']['image'], ds.splits['train']['label']):
      colour = list(COLOURS.values())[label]
      if image.std() > 0 or not np.allclose(image.mean((0, 1)), 90, atol=2):
        np.testing.assert_allclose(image.reshape(-1, 3).mean(0), colour, atol=4)
    pixels = ds.splits['train']['image'].reshape(-1, 3) / 255.0
    np.testing.assert_allclose(ds.info.mean, pixels.mean(0), atol=0.01)
    np.testing.assert_allclose(ds.info.std, pixels.std(0), atol=0.01)

    small = data.load('folder:pets', data_dir=tmp, image_size=8)
    self.assertEqual(small.splits['test']['image'].shape, (3, 8, 8, 3))
    streamed = data.load('folder:pets', data_dir=tmp, image_size=16, resident=False,
                         num_workers=0, resize_size=18)
    self.assertIsInstance(streamed, data.StreamingDataset)
    batch = next(streamed.eval_batches('test', 4))
    self.assertEqual(batch['image'].shape, (4, 16, 16, 3))
    np.testing.assert_array_equal(batch['label'], [0, 1, 2, 0])
    np.testing.assert_array_equal(batch['mask'], [1, 1, 1, 0])
    self.assertNotIn('tensorflow', sys.modules)

  def test_targets_csv(self):
    tmp = tmpdir(self)
    root = os.path.join(tmp, 'm')
    for k, cls in enumerate(COLOURS):
      for split in ('train', 'test'):
        os.makedirs(os.path.join(root, split, cls))
        with open(os.path.join(root, split, cls, '0.png'), 'wb') as f:
          f.write(encode(COLOURS[cls], fmt='PNG'))
    with open(os.path.join(root, 'targets.csv'), 'w') as f:
      f.write('path,age\n' + ''.join(
          f'{s}/{c}/0.png,{10 * k + (s == "test")}\n' for k, c in enumerate(COLOURS)
          for s in ('train', 'test') if (s, c) != ('test', 'owl')))
    report = prepare.prepare('folder', root, tmp, name='aged')
    self.assertEqual(report['without_target'], {'count': 1,
                                                'examples': ['test/owl/0.png']})
    ds = data.load('folder:aged', data_dir=tmp)
    np.testing.assert_array_equal(ds.splits['train']['target'], [0, 10, 20])
    np.testing.assert_array_equal(ds.splits['test']['target'], [1, 11])
    self.assertEqual((ds.info.target_name, ds.info.target_range), ('age', (0.0, 20.0)))

  def test_bad_folders(self):
    tmp = tmpdir(self)
    root = os.path.join(tmp, 'm')
    write_folder(root)
    os.makedirs(os.path.join(root, 'train', 'empty'))
    with self.assertRaisesRegex(ValueError, r"class folders with no images: \['empty'\]"):
      prepare.prepare('folder', root, tmp, name='pets')
    with self.assertRaisesRegex(ValueError, '--name is required'):
      prepare.prepare('folder', root, tmp)
    with self.assertRaisesRegex(ValueError, 'lower-case letters'):
      prepare.prepare('folder', root, tmp, name='My Birds')
    with self.assertRaisesRegex(data.NotPreparedError,
                                r'(?s)not prepared.*--dataset=folder --manual_dir=DIR '
                                r'--name=pets'):
      data.load('folder:pets', data_dir=tmp)
    with self.assertRaisesRegex(FileNotFoundError, r'(?s)not a folder.*train/<class>'):
      prepare.prepare('folder', os.path.join(tmp, 'nowhere'), tmp, name='pets')
    self.assertEqual(sorted(os.listdir(tmp)), ['m'])  # nothing half-written

  def test_trains_by_name(self):
    tmp = tmpdir(self)
    write_folder(os.path.join(tmp, 'm'), size=(16, 16))
    prepare.prepare('folder', os.path.join(tmp, 'm'), tmp, name='pets')
    config = helpers.tiny_config('task=classification,dim=3', batch_size=4, num_steps=2,
                                 num_devices=4)
    config.data.name = 'folder:pets'
    config.data.kwargs = ml_collections.ConfigDict()  # digits' own options do not apply
    config.data.data_dir = tmp  # What --config.data.data_dir=DIR sets.
    results = train.train_and_evaluate(config, os.path.join(tmp, 'work'))
    self.assertEqual(results['test/num_examples'], 3)
    self.assertEqual(results['dataset'], 'folder:pets')


class Shapes(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A tiny TFDS dataset, as any TFDS builder would write it: PNG images, a label."""
  VERSION = tfds.core.Version('2.1.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        'picture': tfds.features.Image(shape=(12, 12, 3)),
        'kind': tfds.features.ClassLabel(names=['red', 'green']),
        'id': tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'train': self._generate_examples(10), 'validation': self._generate_examples(3)}

  def _generate_examples(self, n):
    for i in range(n):
      colour = (220, 20, 20) if i % 2 == 0 else (20, 220, 20)
      yield i, {'picture': encode(colour, (12, 12), 'PNG'), 'kind': i % 2, 'id': str(i)}


class AnyTfdsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = tmpdir(self)
    Shapes(data_dir=self.tmp, file_format='array_record').download_and_prepare()

  def test_reads_and_trains(self):
    kw = dict(data_dir=self.tmp, image_key='picture', label_key='kind')
    ds = data.load('tfds:shapes', **kw)
    self.assertEqual(ds.info.class_names, ('red', 'green'))
    self.assertEqual(ds.info.name, 'tfds:shapes')
    self.assertEqual(ds.num_examples('validation'), 3)
    images, labels = ds.splits['train']['image'], ds.splits['train']['label']
    self.assertEqual(images.shape, (10, 12, 12, 3))
    self.assertEqual(np.bincount(labels).tolist(), [5, 5])  # (TFDS shuffled the order)
    np.testing.assert_array_equal(images[:, 0, 0, 1] > 100, labels == 1)  # green = 1
    self.assertEqual(data.load('tfds:shapes:2.1.0', **kw).num_examples('train'), 10)
    config = helpers.tiny_config('task=classification,dim=2', batch_size=4, num_steps=2,
                                 num_devices=4)
    config.data.name = 'tfds:shapes'
    config.data.eval_split = 'validation'
    config.data.kwargs = ml_collections.ConfigDict(kw)
    results = train.train_and_evaluate(config, os.path.join(self.tmp, 'work'))
    self.assertEqual(results['validation/num_examples'], 3)
    self.assertNotIn('tensorflow', sys.modules)

  def test_clear_errors(self):
    with self.assertRaisesRegex(
        data.NotPreparedError, r"(?s)No prepared TFDS dataset 'flowers'.*holds: \[.*'shapes'"):
      data.load('tfds:flowers', data_dir=self.tmp)
    with self.assertRaisesRegex(data.NotPreparedError, r"holds version\(s\) 2.1.0"):
      data.load('tfds:shapes:1.0.0', data_dir=self.tmp)
    with self.assertRaisesRegex(ValueError, "has no feature 'image'.*image_key"):
      data.load('tfds:shapes', data_dir=self.tmp)
    with self.assertRaisesRegex(ValueError, 'not a TFDS dataset name'):
      data.load('tfds:Shapes!', data_dir=self.tmp)
    # The same dataset prepared as tfrecord (what `tfds build` writes by default): the
    # error names the command that converts it (tests/data_tfrecord_test.py).
    path = os.path.join(self.tmp, 'shapes', '2.1.0')
    with open(os.path.join(path, 'dataset_info.json')) as f:
      info = json.load(f)
    info['fileFormat'] = 'tfrecord'
    with open(os.path.join(path, 'dataset_info.json'), 'w') as f:
      json.dump(info, f)
    with self.assertRaisesRegex(ValueError, r'(?s)prepared as tfrecord only.*without '
                                'TensorFlow.*python -m hyperproto.data.prepare '
                                f'--dataset=tfds:shapes:2.1.0 --data_dir={self.tmp}'):
      data.load('tfds:shapes', data_dir=self.tmp, image_key='picture', label_key='kind')
    self.assertNotIn('tensorflow', sys.modules)


if __name__ == '__main__':
  absltest.main()
