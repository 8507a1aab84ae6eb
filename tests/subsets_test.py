"""data.subsets: long-tailed and few-shot training splits, held-out classes, and the
open-set metrics (AUROC against scikit-learn, FPR@95TPR by hand)."""

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from sklearn import metrics as sk_metrics

from hyperproto import data
from hyperproto.data import subsets
from hyperproto.data.base import Dataset, DatasetInfo


def balanced(num_classes=10, per_class=30, test_per_class=5, seed=0):
  """A balanced toy dataset; each example's `target` is its index, to track it."""
  rng = np.random.default_rng(seed)
  splits = {}
  for split, n in (('train', per_class), ('test', test_per_class)):
    labels = rng.permutation(np.repeat(np.arange(num_classes, dtype=np.int32), n))
    splits[split] = {'image': np.zeros((len(labels), 2, 2, 1), np.uint8), 'label': labels,
                     'target': np.arange(len(labels), dtype=np.float32)}
  info = DatasetInfo(name='toy', num_classes=num_classes,
                     class_names=tuple(f'c{c}' for c in range(num_classes)),
                     image_shape=(2, 2, 1), mean=(0.5,), std=(0.25,))
  return Dataset(info=info, splits=splits)


class ProfileTest(parameterized.TestCase):

  def test_cifar_lt_counts(self):
    # CIFAR-10-LT / CIFAR-100-LT at RHO = 0.01 (LDAM-DRW's get_img_num_per_cls).
    c10 = subsets.long_tail_counts(5000, 10, 0.01)
    np.testing.assert_array_equal(
        c10, [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])
    self.assertEqual(c10.sum(), 12406)
    c100 = subsets.long_tail_counts(500, 100, 0.01)
    self.assertEqual((c100[0], c100[-1], c100.sum()), (500, 5, 10847))
    self.assertEqual(subsets.long_tail_counts(500, 100, 0.1).sum(), 19573)

  @parameterized.parameters(0.01, 0.02, 0.1, 0.5, 1.0)
  def test_counts_follow_the_formula(self, rho):
    counts = subsets.long_tail_counts(600, 7, rho)
    expected = [int(np.floor(600 * rho ** (c / 6))) for c in range(7)]
    np.testing.assert_array_equal(counts, expected)
    self.assertTrue(np.all(np.diff(counts) <= 0))

  def test_imbalanced_train_split(self):
    ds = balanced()
    out = subsets.apply(ds, 'train', imbalance=0.1)
    counts = np.bincount(out.splits['train']['label'], minlength=10)
    np.testing.assert_array_equal(counts, subsets.long_tail_counts(30, 10, 0.1))
    np.testing.assert_array_equal(counts, subsets.train_class_counts(out, 'train'))
    # Kept examples are original ones (by index), in the original order.
    kept = out.splits['train']['target'].astype(int)
    self.assertTrue(np.all(np.diff(kept) > 0))
    np.testing.assert_array_equal(ds.splits['train']['label'][kept],
                                  out.splits['train']['label'])
    # The test split stays balanced and untouched; the loader's dataset is not mutated.
    for k, v in ds.splits['test'].items():
      np.testing.assert_array_equal(out.splits['test'][k], v)
    self.assertLen(ds.splits['train']['label'], 300)
    self.assertEqual(out.info, ds.info)

  def test_deterministic_in_subset_seed_only(self):
    ds = balanced()
    kept = lambda **kw: subsets.apply(ds, 'train', **kw).splits['train']['target']
    np.testing.assert_array_equal(kept(imbalance=0.1), kept(imbalance=0.1))
    np.testing.assert_array_equal(kept(imbalance=0.1), kept(imbalance=0.1, subset_seed=0))
    self.assertFalse(np.array_equal(kept(imbalance=0.1),
                                    kept(imbalance=0.1, subset_seed=1)))

  def test_ldam_drw_draw(self):
    # np.random.seed(0), then per class in order: shuffle its indices, keep the first n_c.
    ds = balanced()
    labels = ds.splits['train']['label']
    np.random.seed(0)
    expected = []
    for c, n in enumerate(subsets.long_tail_counts(30, 10, 0.1)):
      idx = np.where(labels == c)[0]
      np.random.shuffle(idx)
      expected.extend(idx[:n])
    out = subsets.apply(ds, 'train', imbalance=0.1)
    np.testing.assert_array_equal(out.splits['train']['target'].astype(int),
                                  np.sort(expected))

  def test_train_per_class(self):
    ds = balanced()
    out = subsets.apply(ds, 'train', train_per_class=4)
    np.testing.assert_array_equal(subsets.train_class_counts(out, 'train'), [4] * 10)
    # Combined with imbalance: the profile starts at N.
    both = subsets.apply(ds, 'train', train_per_class=20, imbalance=0.1)
    np.testing.assert_array_equal(subsets.train_class_counts(both, 'train'),
                                  subsets.long_tail_counts(20, 10, 0.1))
    with self.assertRaisesRegex(ValueError, r'class 0 \(c0\) of toy has only 30'):
      subsets.apply(ds, 'train', train_per_class=31)

  def test_train_per_class_names_the_short_class(self):
    ds = balanced()
    drop = np.flatnonzero(ds.splits['train']['label'] == 3)[:25]
    keep = np.setdiff1d(np.arange(300), drop)
    ds.splits['train'] = {k: v[keep] for k, v in ds.splits['train'].items()}
    with self.assertRaisesRegex(ValueError, r'class 3 \(c3\) of toy has only 5 .* at '
                                            r'most 5'):
      subsets.apply(ds, 'train', train_per_class=6)
    empty = Dataset(info=ds.info, splits={'train': {
        k: v[ds.splits['train']['label'] != 4] for k, v in ds.splits['train'].items()}})
    with self.assertRaisesRegex(ValueError, 'class 4 of toy has no example'):
      subsets.apply(empty, 'train', imbalance=0.5)
    # imbalance alone takes the smallest class as n_max.
    out = subsets.apply(ds, 'train', imbalance=0.5)
    np.testing.assert_array_equal(subsets.train_class_counts(out, 'train'),
                                  subsets.long_tail_counts(5, 10, 0.5))

  def test_unknown_classes(self):
    ds = balanced()
    for spec in ((2, 5, 9), [9, 5, 2], '2,5,9'):
      out = subsets.apply(ds, 'train', unknown_classes=spec)
      self.assertEqual(out.info.num_classes, 7)
      self.assertEqual(out.info.class_names, ('c0', 'c1', 'c3', 'c4', 'c6', 'c7', 'c8'))
      train = out.splits['train']
      np.testing.assert_array_equal(np.bincount(train['label']), [30] * 7)
      old = ds.splits['train']['label'][train['target'].astype(int)]
      np.testing.assert_array_equal(np.array([0, 1, 3, 4, 6, 7, 8])[train['label']], old)
      self.assertNotIn('known', train)
      test, old = out.splits['test'], ds.splits['test']['label']
      self.assertLen(test['label'], 50)  # unknown test examples stay, for AUROC
      np.testing.assert_array_equal(test['known'], ~np.isin(old, (2, 5, 9)))
      np.testing.assert_array_equal(test['label'] == -1, np.isin(old, (2, 5, 9)))
      np.testing.assert_array_equal(
          np.array([0, 1, 3, 4, 6, 7, 8])[test['label'][test['known'] > 0]],
          old[test['known'] > 0])
    # With imbalance: the profile is over the known classes.
    out = subsets.apply(ds, 'train', unknown_classes='6,7,8,9', imbalance=0.1)
    np.testing.assert_array_equal(subsets.train_class_counts(out, 'train'),
                                  subsets.long_tail_counts(30, 6, 0.1))

  def test_no_option_is_the_identity(self):
    ds = balanced()
    self.assertIs(subsets.apply(ds, 'train'), ds)
    self.assertIs(subsets.apply(ds, 'train', subset_seed=3, unknown_classes=''), ds)

  def test_split_options(self):
    # As base_config declares them: off unless set.
    loader, options = subsets.split_options(dict(
        image_size=16, imbalance=0.1, train_per_class=None, unknown_classes='',
        subset_seed=2))
    self.assertEqual(loader, dict(image_size=16))
    self.assertEqual(options, dict(imbalance=0.1, subset_seed=2))

  @parameterized.parameters(
      (dict(imbalance=0.0), r'imbalance must lie in \(0, 1\]'),
      (dict(imbalance=1.5), r'imbalance must lie in \(0, 1\]'),
      (dict(imbalance=0.001), 'leaves class 5 with no training example'),
      (dict(train_per_class=0), 'train_per_class must be an integer >= 1'),
      (dict(train_per_class=2.5), 'train_per_class must be an integer >= 1'),
      (dict(unknown_classes=(3, 10)), r'has \[10\], outside the class indices 0..9'),
      (dict(unknown_classes=(-1,)), r'outside the class indices'),
      (dict(unknown_classes=4), 'give class indices .*, not a count'),
      (dict(unknown_classes=tuple(range(9))), 'leaves fewer than 2'),
      (dict(unknown_classes='a,b'), 'give class indices separated by commas'),
      (dict(unknown_classes=()), 'is empty'),
  )
  def test_validation(self, kwargs, error):
    with self.assertRaisesRegex(ValueError, error):
      subsets.apply(balanced(), 'train', **kwargs)

  def test_dataset_errors(self):
    ds = balanced()
    with self.assertRaisesRegex(ValueError, "no training split 'val'"):
      subsets.apply(ds, 'val', imbalance=0.1)
    unlabelled = Dataset(info=ds.info, splits={'train': {'image': ds.splits['train']['image']}})
    with self.assertRaisesRegex(ValueError, 'need class labels'):
      subsets.apply(unlabelled, 'train', imbalance=0.1)

    class Streamed:  # Anything but an in-memory Dataset.
      info = ds.info
    with self.assertRaisesRegex(ValueError, 'need a dataset held in memory; toy is streamed'):
      subsets.apply(Streamed(), 'train', train_per_class=3)

  def test_on_a_real_loader(self):
    ds = data.load('digits', image_size=8)
    out = subsets.apply(ds, 'train', imbalance=0.1)
    n_max = np.bincount(ds.splits['train']['label']).min()
    np.testing.assert_array_equal(subsets.train_class_counts(out, 'train'),
                                  subsets.long_tail_counts(n_max, 10, 0.1))
    self.assertEqual(out.num_examples('test'), 359)


class GroupsTest(absltest.TestCase):

  def test_group_thresholds(self):
    # many > 100, medium 20..100, few < 20 training examples (OLTR's shot_acc).
    counts = np.array([101, 100, 20, 19, 500])
    acc = np.array([0.9, 0.5, 0.3, 0.1, 0.7])
    got = subsets.group_accuracies(acc, counts)
    self.assertAlmostEqual(got['many_shot_accuracy'], 0.8)
    self.assertAlmostEqual(got['medium_shot_accuracy'], 0.4)
    self.assertAlmostEqual(got['few_shot_accuracy'], 0.1)
    self.assertEqual(set(subsets.group_accuracies(acc[:2], counts[:2])),
                     {'many_shot_accuracy', 'medium_shot_accuracy'})
    # A class without evaluation examples (NaN) does not count.
    acc[0], acc[3] = np.nan, np.nan
    got = subsets.group_accuracies(acc, counts)
    self.assertAlmostEqual(got['many_shot_accuracy'], 0.7)
    self.assertNotIn('few_shot_accuracy', got)


class OpenSetMetricsTest(parameterized.TestCase):

  @parameterized.parameters(0, 1, 2, 3)
  def test_auroc_matches_sklearn(self, seed):
    rng = np.random.default_rng(seed)
    n = 200
    known = rng.random(n) < 0.6
    # Rounded scores: many ties, across and within the two groups.
    scores = np.round(rng.normal(size=n) + known, 1).astype(np.float32)
    self.assertAlmostEqual(subsets.auroc(scores, known),
                           sk_metrics.roc_auc_score(known, scores), places=12)
    fpr, tpr, _ = sk_metrics.roc_curve(known, scores, drop_intermediate=False)
    ours_fpr, ours_tpr = subsets.roc_curve(scores, known)
    np.testing.assert_allclose(ours_fpr, fpr)
    np.testing.assert_allclose(ours_tpr, tpr)

  def test_auroc_known_answers(self):
    self.assertEqual(subsets.auroc([3, 2, 1, 0], [1, 1, 0, 0]), 1.0)
    self.assertEqual(subsets.auroc([0, 1, 2, 3], [1, 1, 0, 0]), 0.0)
    self.assertEqual(subsets.auroc([1, 1, 1, 1], [1, 1, 0, 0]), 0.5)  # all tied
    # Pairs (known, unknown): (2>1) (2>0) (1=1 half) (1>0) -> 3.5 / 4.
    self.assertEqual(subsets.auroc([2, 1, 1, 0], [1, 1, 0, 0]), 0.875)

  def test_fpr_at_95_tpr_by_hand(self):
    # 20 known scored 20, 19, ..., 1; accepting 95% of them (19 of 20) puts the
    # threshold at 2.
    known_scores = np.arange(20, 0, -1.0)
    unknown_scores = np.array([18.5, 17.5, 1.5, 1.0, 0.5, 0.0, -1, -2, -3, -4])
    scores = np.r_[known_scores, unknown_scores]
    known = np.r_[np.ones(20), np.zeros(10)]
    # Threshold 2 (19 of 20 known): unknowns >= 2 are 18.5 and 17.5 -> 2 / 10.
    self.assertAlmostEqual(subsets.fpr_at_tpr(scores, known), 0.2)
    # A tie at the threshold counts the tied unknown as accepted: 3 / 10.
    scores[22] = 2.0
    self.assertAlmostEqual(subsets.fpr_at_tpr(scores, known), 0.3)
    # TPR 90% (18 of 20: threshold 3) accepts only the two high unknowns.
    self.assertAlmostEqual(subsets.fpr_at_tpr(scores, known, 0.9), 0.2)
    got = subsets.open_set_metrics({'max_cos': scores}, known)
    self.assertEqual(set(got), {'max_cos_auroc', 'max_cos_fpr95'})
    self.assertAlmostEqual(got['max_cos_fpr95'], 0.3)

  def test_needs_both_groups(self):
    with self.assertRaisesRegex(ValueError, 'got 3 known and 0 unknown'):
      subsets.auroc([1, 2, 3], [1, 1, 1])


if __name__ == '__main__':
  absltest.main()
