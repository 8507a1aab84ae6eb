"""The rotated-digits dataset and exact, resumable batching."""

import numpy as np
from absl.testing import absltest

from hyperproto import data


class DigitsTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.ds = data.load('digits', image_size=16)

  def test_split_sizes_and_stratification(self):
    self.assertEqual(self.ds.num_examples('train') + self.ds.num_examples('test'), 1797)
    self.assertEqual(self.ds.num_examples('test'), 359)
    counts = np.bincount(self.ds.splits['test']['label'], minlength=10)
    self.assertTrue(np.all((counts >= 35) & (counts <= 37)), counts)

  def test_images_and_angles(self):
    train = self.ds.splits['train']
    self.assertEqual(train['image'].shape[1:], (16, 16, 1))
    self.assertEqual(train['image'].dtype, np.uint8)
    self.assertTrue(np.all(np.abs(train['target']) <= 60.0))
    self.assertGreater(np.std(train['target']), 30.0)  # uniform in [-60, 60]: ~34.6
    self.assertEqual(self.ds.info.target_range, (-60.0, 60.0))
    # The canvas border stays (almost) black: rotation never cuts the digit.
    self.assertLessEqual(int(train['image'][:, 0, :].max()), 2)

  def test_rotation_is_applied(self):
    # Same data seed -> same angles; the image of a digit changes with its angle.
    other = data.load('digits', image_size=16, max_angle=1.0)
    self.assertFalse(np.array_equal(self.ds.splits['train']['image'],
                                    other.splits['train']['image']))
    np.testing.assert_array_equal(self.ds.splits['train']['label'],
                                  other.splits['train']['label'])

  def test_train_batches_are_epoch_permutations(self):
    n, bs = self.ds.num_examples('train'), 100
    per_epoch = self.ds.steps_per_epoch('train', bs)
    seen = np.concatenate([self.ds.train_batch('train', s, bs, seed=3)['target']
                           for s in range(per_epoch)])
    self.assertLen(np.unique(seen), per_epoch * bs)  # no repeats within an epoch
    a = self.ds.train_batch('train', per_epoch + 2, bs, seed=3)
    b = self.ds.train_batch('train', per_epoch + 2, bs, seed=3)
    c = self.ds.train_batch('train', 2, bs, seed=3)
    np.testing.assert_array_equal(a['image'], b['image'])
    self.assertFalse(np.array_equal(a['target'], c['target']))  # new epoch order
    self.assertLess(per_epoch * bs, n + 1)

  def test_eval_batches_count_each_example_once(self):
    batches = list(self.ds.eval_batches('test', 64))
    self.assertLen(batches, 6)
    self.assertEqual(sum(int(b['mask'].sum()) for b in batches), 359)
    self.assertTrue(all(len(b['label']) == 64 for b in batches))
    labels = np.concatenate([b['label'][b['mask'] > 0] for b in batches])
    np.testing.assert_array_equal(labels, self.ds.splits['test']['label'])

  def test_eval_batches_per_process_are_shares_of_the_global_batches(self):
    # 359 = 5 x 64 + 39: with 4 processes the last global batch leaves process 3 only
    # padding. Each process gets 6 batches of 16; side by side they are the global ones.
    whole = list(self.ds.eval_batches('test', 64))
    shares = [list(self.ds.eval_batches('test', 64, p, 4)) for p in range(4)]
    self.assertEqual([len(s) for s in shares], [6] * 4)
    self.assertEqual(shares[3][-1]['mask'].sum(), 0)
    for b, global_batch in enumerate(whole):
      for key, value in global_batch.items():
        np.testing.assert_array_equal(
            np.concatenate([shares[p][b][key] for p in range(4)]), value, key)
    with self.assertRaisesRegex(ValueError, 'not a multiple of the 3 processes'):
      next(self.ds.eval_batches('test', 64, 0, 3))

  def test_clear_errors(self):
    with self.assertRaisesRegex(ValueError, "Unknown dataset 'mnist2'"):
      data.load('mnist2')
    with self.assertRaisesRegex(ValueError, "no split 'val'"):
      self.ds.num_examples('val')
    with self.assertRaisesRegex(ValueError, 'exceeds the 359 examples'):
      self.ds.steps_per_epoch('test', 1000)


if __name__ == '__main__':
  absltest.main()
