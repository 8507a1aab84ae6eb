"""CUB and OmniArt from tiny files in their real layouts, and the streaming pipeline.

Each image is a solid colour that names it, so a crop of it still says which example it
is: the tests check that labels, order, padding, per-host shares and resumed batches are
exactly right. Images are small and the output side is 32 to keep the tests fast.
"""

import csv
import io
import itertools
import multiprocessing
import os
import shutil
import sys
import tarfile
import tempfile

import numpy as np
from absl import flags
from absl.testing import absltest
from PIL import Image

import helpers
from hyperproto import data
from hyperproto.data import prepare, streaming

SMALL = dict(image_size=32, resize_size=36, num_workers=0)


def tmpdir(test: absltest.TestCase) -> str:
  return helpers.tmpdir(test, 'hyperproto_stream_test')


def jpeg(colour, size=(48, 40)) -> bytes:
  buf = io.BytesIO()
  Image.new('RGB', size, colour).save(buf, 'JPEG', quality=95)
  return buf.getvalue()


def colour_of(k: int) -> tuple[int, int, int]:
  """A distinct, JPEG-robust colour for example k < 36."""
  return (20 + 40 * (k % 6), 20 + 40 * (k // 6), 128)


def index_of(image: np.ndarray) -> int:
  r, g, _ = image.reshape(-1, 3).mean(0)
  return int(round((r - 20) / 40)) + 6 * int(round((g - 20) / 40))


def write_cub(path: str) -> dict:
  """A CUB_200_2011.tgz with 3 classes and 9 listed images: 1 missing, 1 unreadable."""
  classes = ['001.Black_footed_Albatross', '002.Laysan_Albatross', '003.Sooty_Albatross']
  images, labels, split, files = [], [], [], {}
  for i in range(1, 10):
    cls = (i - 1) % 3
    rel = f'{classes[cls]}/bird_{i}.jpg'
    images.append(f'{i} {rel}')
    labels.append(f'{i} {cls + 1}')
    split.append(f'{i} {int(i <= 6)}')
    if i == 5:
      continue  # listed, but missing from images/
    files[rel] = b'not a jpeg' if i == 8 else jpeg(colour_of(i))
  with tarfile.open(path, 'w:gz') as tar:
    def add(name, payload):
      info = tarfile.TarInfo(name)
      info.size = len(payload)
      tar.addfile(info, io.BytesIO(payload))
    add('attributes.txt', b'1 has_bill_shape::curved\n')
    for rel, payload in files.items():  # images first, the tables last
      add(f'CUB_200_2011/images/{rel}', payload)
    for name, lines in (('images', images), ('image_class_labels', labels),
                        ('train_test_split', split),
                        ('classes', [f'{k + 1} {c}' for k, c in enumerate(classes)])):
      add(f'CUB_200_2011/{name}.txt', ('\n'.join(lines) + '\n').encode())
  return {'classes': classes}


class TransformTest(absltest.TestCase):

  def test_random_resized_crop_box(self):
    rng = np.random.default_rng(0)
    for _ in range(200):
      left, top, right, bottom = streaming.random_resized_crop_box(300, 200, rng)
      w, h = right - left, bottom - top
      self.assertTrue(0 <= left < right <= 300 and 0 <= top < bottom <= 200)
      self.assertBetween(w / h, 3 / 4 - 0.02, 4 / 3 + 0.02)
      self.assertBetween(w * h / (300 * 200), 0.08 - 0.01, 1.0)
    # A sliver image: no try fits, so the fallback centre crop with the ratio clamped.
    self.assertEqual(streaming.random_resized_crop_box(1000, 10, rng, scale=(1.0, 1.0)),
                     (493, 0, 506, 10))  # w = round(10 * 4/3) = 13

  def test_centre_crop_box(self):
    # Resize(256) of 400x300 -> 341.3x256; centre 224 -> 262.5 original pixels.
    left, top, right, bottom = streaming.centre_crop_box(400, 300)
    self.assertAlmostEqual(right - left, 262.5)
    self.assertAlmostEqual(bottom - top, 262.5)
    self.assertAlmostEqual((left + right) / 2, 200)
    self.assertAlmostEqual((top + bottom) / 2, 150)

  def test_transform_flips_and_crops(self):
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :30] = 255  # left half white
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, 'PNG')
    centre = streaming.transform(buf.getvalue(), 16, None)
    self.assertEqual(centre.shape, (16, 16, 3))
    self.assertGreater(centre[:, :4].mean(), 200)  # left stays white
    self.assertLess(centre[:, -4:].mean(), 50)
    flips = [streaming.transform(buf.getvalue(), 16, np.random.default_rng(s))
             for s in range(20)]
    left_white = [f[:, 0].mean() > f[:, -1].mean() for f in flips]
    self.assertTrue(any(left_white) and not all(left_white))


def rng_of(seed):
  """A random crop's generator, or None (the centre crop)."""
  return None if seed is None else np.random.default_rng(seed)


def smooth_jpeg(width: int, height: int, mode: str = 'RGB', fmt: str = 'JPEG') -> bytes:
  """A smooth colour pattern (photograph-like frequencies), encoded."""
  y, x = np.mgrid[0:height, 0:width] / 40.0
  image = np.stack([128 + 100 * np.sin(x + 0.5 * y), 128 + 100 * np.cos(0.7 * x - y),
                    128 + 90 * np.sin(x * y / 30 + 1)], -1).astype(np.uint8)
  buf = io.BytesIO()
  Image.fromarray(image).convert(mode).save(buf, fmt, quality=90)
  return buf.getvalue()


class ReducedDecodingTest(absltest.TestCase):

  def test_jpeg_reduction_keeps_the_crop_at_least_the_output_size(self):
    for box, scale in (((0, 0, 447, 900), 1), ((0, 0, 448, 448), 2),
                       ((10, 10, 906, 1000), 4), ((0, 0, 1792, 1800), 8),
                       ((0, 0, 5000, 5000), 8), ((0.5, 0, 100.5, 100), 1)):
      self.assertEqual(streaming.jpeg_reduction(box, 224), scale, box)
    self.assertEqual(streaming.jpeg_reduction((0, 0, 64, 64), 32), 2)

  def test_without_reduction_the_pixels_of_the_full_decode(self):
    # Crops of a 120x90 image at 64 allow no reduction (every side < 128): the new
    # transform gives the old one's pixels exactly, for JPEG (colour and grey) and PNG.
    for data in (smooth_jpeg(120, 90), smooth_jpeg(120, 90, 'L'),
                 smooth_jpeg(120, 90, fmt='PNG')):
      for seed in (None, 0, 1, 2, 3):
        old = streaming.transform_full_decode(data, 64, rng_of(seed), resize=72)
        for reduced in (True, False):
          new = streaming.transform(data, 64, rng_of(seed), resize=72,
                                    reduced_decoding=reduced)
          self.assertEqual(new.shape, (64, 64, 3))
          np.testing.assert_array_equal(new, old)
    # A large image without reduction: the same pixels too.
    big = smooth_jpeg(512, 384)
    np.testing.assert_array_equal(
        streaming.transform(big, 32, np.random.default_rng(5), reduced_decoding=False),
        streaming.transform_full_decode(big, 32, np.random.default_rng(5)))

  def test_reduced_decoding_is_smaller_and_close(self):
    big = smooth_jpeg(512, 384)
    with Image.open(io.BytesIO(big)) as img:
      box = streaming._draft(img, (100, 50, 400, 330), 32)  # side 280 >= 8 * 32
      img.load()
      self.assertEqual(img.size, (64, 48))  # decoded at 1/8
      self.assertEqual(box, (12.5, 6.25, 50, 41.25))
    scales = set()
    for size, seed in itertools.product((32, 64), [None] + list(range(8))):
      resize = size * 9 // 8
      new = streaming.transform(big, size, rng_of(seed), resize=resize).astype(int)
      old = streaming.transform_full_decode(big, size, rng_of(seed), resize=resize)
      box, _ = streaming._crop_and_flip(512, 384, size, rng_of(seed), True, resize)
      scales.add(streaming.jpeg_reduction(box, size))
      # Measured: mean 0.2-0.6, max 3 uint8 levels; a box not mapped to the reduced
      # image would crop elsewhere (tens of levels).
      self.assertLess(np.abs(new - old).mean(), 1.5)
      self.assertLessEqual(np.abs(new - old).max(), 10)
    self.assertContainsSubset({2, 4, 8}, scales)


class CubTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='hyperproto_cub_test')
    os.makedirs(os.path.join(cls.tmp, 'm'))
    cls.meta = write_cub(os.path.join(cls.tmp, 'm', 'CUB_200_2011.tgz'))
    cls.report = prepare.prepare('caltech_birds2011', os.path.join(cls.tmp, 'm'), cls.tmp)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_report_and_info(self):
    self.assertEqual(self.report['missing_images'], [
        '002.Laysan_Albatross/bird_5.jpg'])
    self.assertLen(self.report['unreadable_images'], 1)
    self.assertIn('bird_8.jpg', self.report['unreadable_images'][0])
    self.assertEqual((self.report['train_examples'], self.report['test_examples']), (5, 2))
    self.assertFalse(self.report['complete_official_release'])
    ds = data.load('cub', data_dir=self.tmp, **SMALL)
    self.assertEqual(ds.info.class_names, tuple(self.meta['classes']))
    self.assertEqual(ds.info.image_shape, (32, 32, 3))
    self.assertEqual(ds.info.mean, (0.485, 0.456, 0.406))
    np.testing.assert_array_equal(ds.example_ids('train'), [1, 2, 3, 4, 6])
    np.testing.assert_array_equal(ds.example_ids('test'), [7, 9])

  def test_train_batches_exact_resumable_and_sharded(self):
    ds = data.load('cub', data_dir=self.tmp, **SMALL)
    ids = ds.example_ids('train')
    full = list(ds.train_batches('train', 0, 4, seed=1, num_steps=3))  # epoch = 1 step
    orders = set()
    for batch in full:
      self.assertEqual(batch['image'].shape, (4, 32, 32, 3))
      self.assertEqual(batch['image'].dtype, np.uint8)
      got = [index_of(im) for im in batch['image']]
      self.assertLen(set(got), 4)  # no repeats within a batch
      self.assertContainsSubset(got, ids)
      np.testing.assert_array_equal(batch['label'], [(i - 1) % 3 for i in got])
      orders.add(tuple(got))
    self.assertLen(orders, 3)  # each epoch a permutation of its own
    resumed = next(ds.train_batches('train', 2, 4, seed=1))
    np.testing.assert_array_equal(resumed['image'], full[2]['image'])
    np.testing.assert_array_equal(ds.train_batch('train', 1, 4, 1)['image'],
                                  full[1]['image'])
    shares = [next(ds.train_batches('train', 1, 4, seed=1, process_index=p,
                                    process_count=2)) for p in range(2)]
    np.testing.assert_array_equal(np.concatenate([s['image'] for s in shares]),
                                  full[1]['image'])
    other = list(ds.train_batches('train', 0, 4, seed=2, num_steps=3))
    self.assertFalse(all(np.array_equal(a['image'], b['image'])
                         for a, b in zip(other, full)))  # another seed, other batches
    with self.assertRaisesRegex(ValueError, 'not a multiple of the 3 processes'):
      next(ds.train_batches('train', 0, 4, seed=1, process_count=3))

  def test_worker_processes_give_the_same_batches_and_live_for_the_run(self):
    inline = data.load('cub', data_dir=self.tmp, **SMALL)
    before = {p.pid for p in multiprocessing.active_children()}
    parsed = flags.FLAGS.is_parsed()
    workers = data.load('cub', data_dir=self.tmp, **dict(SMALL, num_workers=2))
    train = workers.train_batches('train', 3, 4, seed=1)  # left open, as in a run
    for a, b in zip(inline.train_batches('train', 3, 4, seed=1, num_steps=3), train):
      for k in ('image', 'label'):
        np.testing.assert_array_equal(a[k], b[k])
    self.assertNotIn('tensorflow', sys.modules)
    # grain's workers start without a parsed command line (pytest's case), and this
    # module leaves absl's flags as they were (parsed or not).
    self.assertEqual(flags.FLAGS.is_parsed(), parsed)
    # Evaluation: its workers start on the first pass and serve the next ones.
    passes, children = [], []
    for _ in range(3):
      passes.append(list(workers.eval_batches('test', 1)))
      children.append({p.pid for p in multiprocessing.active_children()} - before)
    self.assertLen(children[0], 4)  # 2 training + 2 evaluation workers
    self.assertEqual(children[1], children[0])
    self.assertEqual(children[2], children[0])
    expected = list(inline.eval_batches('test', 1))
    for got in passes:
      self.assertLen(got, 2)
      for a, b in zip(expected, got):
        for k in ('image', 'label', 'mask'):
          np.testing.assert_array_equal(a[k], b[k])
    # close() stops every worker, the open training iterator's too.
    workers.close()
    self.assertEqual({p.pid for p in multiprocessing.active_children()} - before, set())
    for pid in children[0]:
      with self.assertRaises(ProcessLookupError):
        os.kill(pid, 0)
    with self.assertRaisesRegex(ValueError, 'closed iterator'):
      next(train)

  def test_eval_pipeline_is_kept_between_passes_and_replaced_mid_pass(self):
    ds = data.load('cub', data_dir=self.tmp, **SMALL)
    expected = [b['image'] for b in ds.eval_batches('test', 1)]
    kept = ds._eval_pipelines[('test', 1, 0, 1, 0)]
    first = next(ds.eval_batches('test', 1))  # a pass left after its first batch
    np.testing.assert_array_equal(first['image'], expected[0])
    self.assertIs(ds._eval_pipelines[('test', 1, 0, 1, 0)], kept)
    again = [b['image'] for b in ds.eval_batches('test', 1)]  # from the start again
    np.testing.assert_array_equal(np.stack(again), np.stack(expected))
    self.assertIsNot(ds._eval_pipelines[('test', 1, 0, 1, 0)], kept)
    # Two passes read at once: each gets all the batches, in order.
    for a, b in zip(ds.eval_batches('test', 1), ds.eval_batches('test', 1)):
      np.testing.assert_array_equal(a['image'], b['image'])
    with ds:
      self.assertLen(list(ds.eval_batches('test', 1)), 2)
    self.assertEqual((ds._open, ds._eval_pipelines), (set(), {}))

  def test_eval_counts_each_example_once_on_any_number_of_hosts(self):
    ds = data.load('cub', data_dir=self.tmp, **SMALL)
    for process_count in (1, 2, 4):
      seen = []
      for p in range(process_count):
        batches = list(ds.eval_batches('test', 4, p, process_count))
        self.assertLen(batches, 1)
        for b in batches:
          self.assertLen(b['mask'], 4 // process_count)
          seen += [index_of(im) for im, m in zip(b['image'], b['mask']) if m]
          self.assertTrue(np.all(b['image'][b['mask'] == 0] == 0))
      self.assertEqual(seen, [7, 9])
    # Centre crops: the colour of the example, deterministically.
    batch = next(ds.eval_batches('test', 2))
    np.testing.assert_array_equal(batch['label'], [0, 2])

  def test_faithful_random_eval(self):
    plain = data.load('cub', data_dir=self.tmp, **SMALL)
    faithful = data.load('cub', data_dir=self.tmp, faithful_random_eval=True, **SMALL)
    a, b = (next(faithful.eval_batches('test', 2)) for _ in range(2))
    np.testing.assert_array_equal(a['image'], b['image'])  # repeatable
    np.testing.assert_array_equal(a['label'], [0, 2])
    self.assertIsNotNone(faithful._eval_spec('test', 0, 2, 0, 0, 1)[1][0])
    self.assertIsNone(plain._eval_spec('test', 0, 2, 0, 0, 1)[1][0])


class CropSeedTest(absltest.TestCase):
  """Crops and flips are keyed by the position in the global batch: seen on images with
  texture (the colour tests above cannot see a crop)."""

  def test_each_host_crops_its_share_as_one_host_would(self):
    tmp = tmpdir(self)
    y, x = np.mgrid[0:60, 0:80]
    for k in range(6):
      image = np.stack([(x * 3 + k * 7) % 256, (y * 4) % 256, (x * y + k) % 256], -1)
      path = os.path.join(tmp, 'm', 'train' if k < 4 else 'test', f'c{k % 2}')
      os.makedirs(path, exist_ok=True)
      Image.fromarray(image.astype(np.uint8)).save(os.path.join(path, f'{k}.png'))
    prepare.prepare('folder', os.path.join(tmp, 'm'), tmp, name='textured')
    ds = data.load('folder:textured', data_dir=tmp, image_size=24, resident=False,
                   num_workers=0, resize_size=28)
    full = ds.train_batch('train', 5, 4, seed=3)
    shares = [next(ds.train_batches('train', 5, 4, seed=3, process_index=p,
                                    process_count=2)) for p in range(2)]
    np.testing.assert_array_equal(np.concatenate([s['image'] for s in shares]),
                                  full['image'])
    # The same step and seed give the same crops again; another seed, other crops.
    again = ds.train_batch('train', 5, 4, seed=3)
    np.testing.assert_array_equal(again['image'], full['image'])
    self.assertFalse(np.array_equal(full['image'],
                                    ds.train_batch('train', 5, 4, seed=4)['image']))


class OmniArtTest(absltest.TestCase):

  def test_bad_rows_are_counted_and_policies_apply(self):
    tmp = tmpdir(self)
    root = os.path.join(tmp, 'm')
    rows = {
        'train': [('t1', '1500', 'Italian'), ('t2', '1650.0', 'Dutch'),
                  ('t3', 'c. 1600', 'Dutch'),  # unparsable year
                  ('t4', '1700', ''),  # no school
                  ('t2', '1651', 'Dutch'),  # duplicate id
                  ('t5', '1800', 'French'),  # image missing
                  ('t6', '900', 'Italian'),  # year out of range
                  ('t7', '1750', 'French')],  # unreadable image
        'test': [('s1', '1520', 'Italian'), ('s2', '1900', 'Spanish'),  # unseen style
                 ('s3', '1610', 'Dutch'), ('s4', '2001', 'Dutch')],  # out of range
    }
    for split, table in rows.items():
      os.makedirs(os.path.join(root, split))
      with open(os.path.join(root, f'{split}_complete.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['omni_id', 'creation_year', 'century', 'school'])
        for k, (omni_id, year, school) in enumerate(table):
          w.writerow([omni_id, year, '16th', school])
          if omni_id != 't5':
            payload = b'garbage' if omni_id == 't7' else jpeg(colour_of(k))
            with open(os.path.join(root, split, f'{omni_id}.jpg'), 'wb') as img:
              img.write(payload)
    with open(os.path.join(root, 'train', 'orphan.jpg'), 'wb') as img:
      img.write(jpeg((0, 0, 0)))
    report = prepare.prepare('omniart', root, tmp)
    train, test = report['train'], report['test']
    self.assertEqual(train['unparsable_rows']['count'], 2)
    self.assertEqual(train['duplicate_ids']['count'], 1)
    self.assertEqual(train['missing_images']['count'], 1)
    self.assertEqual(train['unreadable_images']['count'], 1)
    self.assertEqual(train['out_of_range_years']['count'], 1)
    self.assertEqual((train['csv_rows'], train['stored']), (8, 3))
    self.assertEqual(test['unseen_styles'], {'count': 1, 'examples': [
        "test line 3: 'Spanish'"]})
    self.assertEqual(test['out_of_range_years']['count'], 1)
    # French has parsable train rows (t5, t7), but neither image is stored: still a
    # class (the classes come from the train CSV, as in the original), and reported.
    self.assertEqual(report['classes_without_train_images'], ['French'])

    ds = data.load('omniart', data_dir=tmp, **SMALL)
    self.assertEqual(ds.info.class_names, ('Dutch', 'French', 'Italian'))
    self.assertEqual(ds.info.target_range, (1000.0, 1932.0))
    self.assertEqual(ds.num_examples('train'), 2)  # t6 (year 900) left out
    self.assertEqual(ds.num_examples('test'), 2)  # s2 (unseen), s4 (2001) left out
    batch = next(ds.eval_batches('test', 4))
    np.testing.assert_array_equal(batch['mask'], [1, 1, 0, 0])
    np.testing.assert_array_equal(batch['label'][:2], [2, 0])
    np.testing.assert_allclose(batch['target'][:2], [1520, 1610])
    np.testing.assert_array_equal(ds.example_ids('test'), ['s1', 's3'])
    keep = data.load('omniart', data_dir=tmp, unseen_test_styles='keep',
                     out_of_range_years='keep', **SMALL)
    np.testing.assert_array_equal(next(keep.eval_batches('test', 4))['label'],
                                  [2, -1, 0, 0])
    self.assertEqual(keep.num_examples('train'), 3)
    with self.assertRaisesRegex(ValueError, "'drop' or 'keep'"):
      data.load('omniart', data_dir=tmp, unseen_test_styles='ignore')

  def test_missing_files_are_listed(self):
    tmp = tmpdir(self)
    with self.assertRaisesRegex(FileNotFoundError,
                                r"(?s)lacks \['train_complete.csv'.*DIR/train/<omni_id>"):
      prepare.prepare('omniart', tmp, tmp)
    with self.assertRaisesRegex(data.NotPreparedError, '--dataset=omniart'):
      data.load('omniart', data_dir=tmp)


if __name__ == '__main__':
  absltest.main()
