"""Preparing the small datasets from tiny files in their real formats, written here.

CIFAR-100 (python pickles and binary rows, archived as the official tarballs), MNIST idx
files (plain and gzip), CIFAR-10 JPEG and ImageNet-200 ImageFolder trees, and the raw
Tiny-ImageNet-200 zip: each test writes a handful of examples with known pixels and
labels, prepares them with our TFDS builders and checks they come back, plus the errors
for bad or missing input. TensorFlow is never imported (checked at the end).
"""

import glob
import gzip
import io
import os
import pickle
import sys
import tarfile
import zipfile

import numpy as np
from absl.testing import absltest
from PIL import Image

import helpers
from hyperproto import data
from hyperproto.data import cifar, prepare, reader, sources


def tmpdir(test: absltest.TestCase) -> str:
  return helpers.tmpdir(test, 'hyperproto_data_test')


FINE = ('apple', 'bear', 'cloud', 'dolphin', 'elephant')
COARSE = ('fruit', 'animal')


def _cifar_arrays(n, seed):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
  return images, rng.integers(0, 5, n), rng.integers(0, 2, n)


def _add(tar, name, payload: bytes):
  info = tarfile.TarInfo(name)
  info.size = len(payload)
  tar.addfile(info, io.BytesIO(payload))


def _planes(images):
  return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def write_cifar100_python(path, splits):
  """cifar-100-python.tar.gz as the official one: pickles with byte-string keys."""
  with tarfile.open(path, 'w:gz') as tar:
    for split, (images, fine, coarse) in splits.items():
      d = {b'data': _planes(images), b'fine_labels': [int(x) for x in fine],
           b'coarse_labels': [int(x) for x in coarse], b'batch_label': b'x'}
      _add(tar, f'cifar-100-python/{split}', pickle.dumps(d, protocol=2))
    meta = {b'fine_label_names': [n.encode() for n in FINE],
            b'coarse_label_names': [n.encode() for n in COARSE]}
    _add(tar, 'cifar-100-python/meta', pickle.dumps(meta, protocol=2))


def write_cifar100_binary(folder, splits):
  """cifar-100-binary/ unpacked: 3,074-byte rows (coarse, fine, pixels)."""
  os.makedirs(folder)
  for split, (images, fine, coarse) in splits.items():
    rows = np.concatenate([np.stack([coarse, fine], 1).astype(np.uint8), _planes(images)], 1)
    with open(os.path.join(folder, f'{split}.bin'), 'wb') as f:
      f.write(rows.tobytes())
  for name, names in (('fine', FINE), ('coarse', COARSE)):
    with open(os.path.join(folder, f'{name}_label_names.txt'), 'w') as f:
      f.write('\n'.join(names) + '\n')


def jpeg(colour, size=(32, 32), fmt='JPEG') -> bytes:
  buf = io.BytesIO()
  Image.new('RGB', size, colour).save(buf, fmt, quality=95)
  return buf.getvalue()


class CifarTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = tmpdir(self)
    self.splits = {'train': _cifar_arrays(7, 0), 'test': _cifar_arrays(3, 1)}

  def _check(self, ds):
    self.assertEqual(ds.info.class_names, FINE)
    self.assertEqual(ds.info.coarse_class_names, COARSE)
    self.assertEqual(ds.info.mean, (0.507, 0.487, 0.441))
    for split, (images, fine, coarse) in self.splits.items():
      got = ds.splits[split]
      np.testing.assert_array_equal(got['image'], images)
      np.testing.assert_array_equal(got['label'], fine)
      np.testing.assert_array_equal(got['coarse_label'], coarse)
      self.assertEqual(got['label'].dtype, np.int32)

  def test_python_archive(self):
    manual = os.path.join(self.tmp, 'manual')
    os.makedirs(manual)
    write_cifar100_python(os.path.join(manual, 'cifar-100-python.tar.gz'), self.splits)
    report = prepare.prepare('cifar100', manual, self.tmp)
    self.assertEqual((report['train_examples'], report['source_format']), (7, 'python'))
    self._check(data.load('cifar100', data_dir=self.tmp))
    # The direct parser of raw records gives what TFDS's generic decoding gives.
    b = reader.open_prepared(cifar.Cifar100, self.tmp)
    keys = ['image', 'label', 'coarse_label']
    fast, generic = (reader.read_arrays(b, 'train', keys, fast=f) for f in (True, False))
    for k in keys:
      np.testing.assert_array_equal(fast[k], generic[k])
      self.assertEqual(fast[k].dtype, generic[k].dtype)

  def test_binary_folder(self):
    write_cifar100_binary(os.path.join(self.tmp, 'm', 'cifar-100-binary'), self.splits)
    report = prepare.prepare('cifar100', os.path.join(self.tmp, 'm'), self.tmp)
    self.assertEqual(report['source_format'], 'binary')
    self._check(data.load('cifar100', data_dir=self.tmp))

  def test_truncated_binary_and_missing_files(self):
    folder = os.path.join(self.tmp, 'm', 'cifar-100-binary')
    write_cifar100_binary(folder, self.splits)
    with open(os.path.join(folder, 'test.bin'), 'ab') as f:
      f.write(b'\0' * 10)
    with self.assertRaisesRegex(ValueError, 'not a whole number of 3,074-byte'):
      prepare.prepare('cifar100', os.path.join(self.tmp, 'm'), self.tmp)
    with self.assertRaisesRegex(FileNotFoundError, 'cifar-100-python.tar.gz'):
      prepare.prepare('cifar100', self.tmp, self.tmp)

  def test_not_prepared_and_corrupt(self):
    with self.assertRaisesRegex(data.NotPreparedError,
                                r'(?s)cifar-100-python.tar.gz.*hyperproto.data.prepare '
                                r'--dataset=cifar100 --manual_dir=DIR'):
      data.load('cifar100', data_dir=self.tmp)
    manual = os.path.join(self.tmp, 'manual')
    os.makedirs(manual)
    write_cifar100_python(os.path.join(manual, 'cifar-100-python.tar.gz'), self.splits)
    prepare.prepare('cifar100', manual, self.tmp)
    path, = glob.glob(os.path.join(self.tmp, 'hyperproto_cifar100', '1.0.0',
                                   '*-test.array_record*'))
    with open(path, 'r+b') as f:
      f.seek(-100, 2)
      last = f.read(1)
      f.seek(-100, 2)
      f.write(b'\x01' if last != b'\x01' else b'\x02')
    with self.assertRaisesRegex(ValueError, 'does not match the SHA-256'):
      data.load('cifar100', data_dir=self.tmp)
    with open(path, 'ab') as f:
      f.write(b'\0')
    with self.assertRaisesRegex(ValueError, 'truncated or was changed'):
      data.load('cifar100', data_dir=self.tmp, verify_checksums=False)
    os.remove(path)
    with self.assertRaisesRegex(data.NotPreparedError, r'(?s)test split\) is missing.*'
                                '--dataset=cifar100'):
      data.load('cifar100', data_dir=self.tmp)

  def test_version_mismatch(self):
    manual = os.path.join(self.tmp, 'manual')
    os.makedirs(manual)
    write_cifar100_python(os.path.join(manual, 'cifar-100-python.tar.gz'), self.splits)
    prepare.prepare('cifar100', manual, self.tmp)
    root = os.path.join(self.tmp, 'hyperproto_cifar100')
    os.rename(os.path.join(root, '1.0.0'), os.path.join(root, '0.9.0'))
    with self.assertRaisesRegex(data.NotPreparedError,
                                r'holds version\(s\) 0.9.0 .* reads version 1.0.0'):
      data.load('cifar100', data_dir=self.tmp)

  def test_failed_prepare_keeps_the_old_copy(self):
    good = os.path.join(self.tmp, 'good')
    write_cifar100_binary(os.path.join(good, 'cifar-100-binary'), self.splits)
    prepare.prepare('cifar100', good, self.tmp)
    with self.assertRaisesRegex(FileExistsError, 'already prepared; pass --overwrite'):
      prepare.prepare('cifar100', good, self.tmp)
    bad = os.path.join(self.tmp, 'bad', 'cifar-100-binary')
    write_cifar100_binary(bad, {'train': _cifar_arrays(9, 2), 'test': _cifar_arrays(2, 3)})
    with open(os.path.join(bad, 'test.bin'), 'ab') as f:
      f.write(b'\0' * 10)  # the test split fails after train was written
    with self.assertRaisesRegex(ValueError, 'not a whole number'):
      prepare.prepare('cifar100', os.path.dirname(bad), self.tmp, overwrite=True)
    self._check(data.load('cifar100', data_dir=self.tmp))  # the old copy, intact
    self.assertEqual(sorted(os.listdir(self.tmp)), ['bad', 'good', 'hyperproto_cifar100'])
    os.remove(os.path.join(bad, 'test.bin'))
    write_cifar100_binary(bad + '2', {'train': _cifar_arrays(9, 2),
                                      'test': _cifar_arrays(2, 3)})
    os.rename(bad + '2', os.path.join(self.tmp, 'new'))
    os.makedirs(os.path.join(self.tmp, 'newm'))
    os.rename(os.path.join(self.tmp, 'new'), os.path.join(self.tmp, 'newm',
                                                          'cifar-100-binary'))
    prepare.prepare('cifar100', os.path.join(self.tmp, 'newm'), self.tmp, overwrite=True)
    self.assertEqual(data.load('cifar100', data_dir=self.tmp).num_examples('train'), 9)

  def test_truncated_archive(self):
    manual = os.path.join(self.tmp, 'manual')
    os.makedirs(manual)
    archive = os.path.join(manual, 'cifar-100-python.tar.gz')
    write_cifar100_python(archive, self.splits)
    with open(archive, 'r+b') as f:
      f.truncate(os.path.getsize(archive) // 2)
    with self.assertRaisesRegex(ValueError, r'cifar-100-python.tar.gz is truncated or '
                                'corrupt'):
      prepare.prepare('cifar100', manual, self.tmp)
    self.assertEqual(sorted(os.listdir(self.tmp)), ['manual'])  # nothing half-written

  def test_pickle_cannot_run_code(self):
    class Evil:
      def __reduce__(self):
        return (os.system, ('true',))
    with self.assertRaisesRegex(pickle.UnpicklingError, 'refusing'):
      sources.load_pickle(pickle.dumps(Evil()))


class MnistTest(absltest.TestCase):

  def _write(self, folder, n_train, n_test, gz):
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    arrays = {}
    for stem, n in (('train', n_train), ('t10k', n_test)):
      images = np.zeros((n, 28, 28), np.uint8)
      images[:, 8:20, 12:16] = rng.integers(100, 256, (n, 1, 1))  # a vertical bar
      labels = rng.integers(0, 10, n).astype(np.uint8)
      for kind, array, magic in (('images-idx3', images, 3), ('labels-idx1', labels, 1)):
        payload = (bytes([0, 0, 8, magic]) + np.asarray(array.shape, '>u4').tobytes()
                   + array.tobytes())
        name = f'{stem}-{kind}-ubyte' + ('.gz' if gz else '')
        with open(os.path.join(folder, name), 'wb') as f:
          f.write(gzip.compress(payload) if gz else payload)
      arrays[stem] = (images, labels)
    return arrays

  def test_idx_plain_and_gz_and_rotation(self):
    tmp = tmpdir(self)
    for gz in (False, True):
      manual = os.path.join(tmp, f'm{gz}')
      arrays = self._write(manual, 6, 4, gz)
      report = prepare.prepare('mnist', manual, tmp, overwrite=True)
      self.assertEqual((report['train_examples'], report['test_examples']), (6, 4))
      ds = data.load('mnist', data_dir=tmp)
      np.testing.assert_array_equal(ds.splits['train']['image'][..., 0], arrays['train'][0])
      np.testing.assert_array_equal(ds.splits['test']['label'], arrays['t10k'][1])
    rot = data.load('mnist_rotated', data_dir=tmp, max_angle=90.0)
    again = data.load('mnist_rotated', data_dir=tmp, max_angle=90.0)  # from the cache
    target = rot.splits['train']['target']
    self.assertTrue(np.all(np.abs(target) <= 90.0) and np.std(target) > 1.0)
    self.assertEqual(rot.info.target_range, (-90.0, 90.0))
    np.testing.assert_array_equal(rot.splits['train']['image'], again.splits['train']['image'])
    np.testing.assert_array_equal(rot.splits['train']['label'], arrays['train'][1])
    # A vertical bar rotated by ~90 degrees lies (mostly) horizontally.
    i = int(np.argmax(np.abs(target)))
    image = rot.splits['train']['image'][i, ..., 0].astype(float)
    rows, cols = np.nonzero(image > 50)
    self.assertGreater(np.ptp(cols) / max(np.ptp(rows), 1), 1.5, target[i])

  def test_bad_idx(self):
    with self.assertRaisesRegex(ValueError, 'not an idx file'):
      sources.read_idx(b'\x01\x02\x03\x04')
    with self.assertRaisesRegex(ValueError, 'truncated'):
      sources.read_idx(bytes([0, 0, 8, 1]) + np.asarray([5], '>u4').tobytes() + b'\0\0')
    with self.assertRaisesRegex(FileNotFoundError, 't10k-labels-idx1-ubyte'):
      tmp = tmpdir(self)
      self._write(tmp, 2, 2, False)
      os.remove(os.path.join(tmp, 't10k-labels-idx1-ubyte'))
      prepare.prepare('mnist', tmp, tmp)


class ImageFolderTest(absltest.TestCase):

  COLOURS = {'cat': (200, 30, 30), 'airplane': (30, 200, 30), 'ship': (30, 30, 200)}

  def _tree(self, add, size=(32, 32)):
    for split, per_class in (('train', 2), ('test', 1)):
      for cls, colour in self.COLOURS.items():
        for k in range(per_class):
          add(f'{split}/{cls}/{k:04d}.jpg', jpeg(colour, size))

  def _check(self, ds, size, num_test=3):
    self.assertEqual(ds.info.class_names, ('airplane', 'cat', 'ship'))  # sorted
    self.assertEqual(ds.num_examples('train'), 6)
    self.assertEqual(ds.num_examples('test'), num_test)
    for split in ('train', 'test'):
      images, labels = ds.splits[split]['image'], ds.splits[split]['label']
      self.assertEqual(images.shape[1:], (size, size, 3))
      for image, label in zip(images, labels):
        colour = self.COLOURS[ds.info.class_names[label]]
        np.testing.assert_allclose(image.reshape(-1, 3).mean(0), colour, atol=3)

  def test_cifar10_jpeg_archive(self):
    tmp = tmpdir(self)
    os.makedirs(os.path.join(tmp, 'm'))
    with tarfile.open(os.path.join(tmp, 'm', 'CIFAR-10-images-x.tar.gz'), 'w:gz') as tar:
      _add(tar, 'README.md', b'hello')
      _add(tar, '._train', b'macOS debris')
      self._tree(lambda name, payload: _add(tar, name, payload))
    report = prepare.prepare('cifar10_jpeg', os.path.join(tmp, 'm'), tmp)
    self.assertEqual(report['train_examples'], 6)
    self._check(data.load('cifar10_jpeg', data_dir=tmp), 32)

  def test_imagenet200_folder_resizes_and_checks_classes(self):
    tmp = tmpdir(self)
    root = os.path.join(tmp, 'm', 'imagenet200')

    def add(name, payload):
      os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
      with open(os.path.join(root, name), 'wb') as f:
        f.write(payload)

    self._tree(add, (64, 64))
    add('train/cat/odd.png', jpeg(self.COLOURS['cat'], (80, 70), 'PNG'))
    report = prepare.prepare('imagenet200', os.path.join(tmp, 'm'), tmp)
    self.assertEqual((report["resized"], report["train_examples"]), (1, 7))
    ds = data.load('imagenet200', data_dir=tmp)
    self.assertEqual(ds.info.std, (0.229, 0.224, 0.225))
    self.assertEqual(ds.num_examples('train'), 7)
    add('test/zebra/0.jpg', jpeg((0, 0, 0), (64, 64)))
    with self.assertRaisesRegex(ValueError, r"classes with no train/ folder: \['zebra'\]"):
      prepare.prepare('imagenet200', os.path.join(tmp, 'm'), tmp, overwrite=True)

  def test_tiny_imagenet_zip(self):
    tmp = tmpdir(self)
    os.makedirs(os.path.join(tmp, 'm'))
    wnids = {'n02': 'cat', 'n01': 'airplane', 'n03': 'ship'}
    with zipfile.ZipFile(os.path.join(tmp, 'm', 'tiny-imagenet-200.zip'), 'w') as z:
      p = 'tiny-imagenet-200/'
      z.writestr(p + 'wnids.txt', '\n'.join(wnids) + '\n')
      z.writestr(p + 'words.txt', ''.join(f'{w}\t{n}, other\n' for w, n in wnids.items()))
      notes = []
      for wnid, cls in wnids.items():
        for k in range(2):
          z.writestr(f'{p}train/{wnid}/images/{wnid}_{k}.JPEG',
                     jpeg(self.COLOURS[cls], (64, 64)))
        z.writestr(f'{p}train/{wnid}/{wnid}_boxes.txt', 'ignored')
        z.writestr(f'{p}val/images/val_{cls}.JPEG', jpeg(self.COLOURS[cls], (64, 64)))
        notes.append(f'val_{cls}.JPEG\t{wnid}\t0\t0\t63\t63')
      z.writestr(p + 'val/val_annotations.txt', '\n'.join(notes) + '\n')
      z.writestr(p + 'test/images/test_0.JPEG', jpeg((0, 0, 0), (64, 64)))
    report = prepare.prepare('tiny_imagenet200', os.path.join(tmp, 'm'), tmp)
    self.assertEqual(report['wnids'], ['n01', 'n02', 'n03'])
    self._check(data.load('tiny_imagenet200', data_dir=tmp), 64)


class NoTensorFlowTest(absltest.TestCase):

  def test_prepare_and_read_never_import_tensorflow(self):
    tmp = tmpdir(self)
    manual = os.path.join(tmp, 'm')
    os.makedirs(manual)
    write_cifar100_python(os.path.join(manual, 'cifar-100-python.tar.gz'),
                          {'train': _cifar_arrays(3, 0), 'test': _cifar_arrays(2, 1)})
    prepare.prepare('cifar100', manual, tmp)
    self.assertEqual(data.load('cifar100', data_dir=tmp).num_examples('test'), 2)
    self.assertNotIn('tensorflow', sys.modules)


if __name__ == '__main__':
  absltest.main()
