"""Placement: the exact simplex, the original recipe's known value, metrics, storage."""

from concurrent import futures
import hashlib
import os
import tempfile

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from hyperproto import prototypes
from hyperproto.prototypes import store


def pairwise_cos(p):
  p = np.asarray(p, np.float64)
  cos = p @ p.T
  return cos[np.triu_indices(len(p), 1)]


class SimplexTest(parameterized.TestCase):

  @parameterized.parameters((2, 1), (3, 2), (10, 9), (10, 20), (5, 4), (46, 46))
  def test_every_pair_at_minus_one_over_c_minus_one(self, c, d):
    p = prototypes.place('simplex', c, d)
    self.assertEqual(p.shape, (c, d))
    self.assertEqual(p.dtype, np.float32)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(pairwise_cos(p), -1.0 / (c - 1), atol=1e-6)

  def test_too_few_dimensions(self):
    with self.assertRaisesRegex(ValueError, 'needs dim >= 9, got dim=5'):
      prototypes.place('simplex', 10, 5)

  def test_unknown_method(self):
    with self.assertRaisesRegex(ValueError, "Unknown prototype placement 'tammes'"):
      prototypes.place('tammes', 10, 5)


class HPNRecipeTest(absltest.TestCase):

  def test_reproduces_the_original_value(self):
    # ../shared/reference/HPN.md section 5: (C, d) = (100, 10), 10,000 steps -> 0.3760.
    p = prototypes.place('hpn', 100, 10)
    metrics = prototypes.separation_metrics(p)
    self.assertAlmostEqual(metrics['max_cos'], 0.376, delta=0.015)
    self.assertEqual(metrics['num_duplicates'], 0)

  def test_deterministic_and_better_than_random(self):
    a = prototypes.place('hpn', 20, 5, seed=1, steps=300)
    b = prototypes.place('hpn', 20, 5, seed=1, steps=300)
    np.testing.assert_array_equal(a, b)
    init = np.random.default_rng(1).standard_normal((20, 5))
    self.assertLess(pairwise_cos(a).max(),
                    pairwise_cos(init / np.linalg.norm(init, axis=1)[:, None]).max())

  def test_keep_momentum_changes_the_result(self):
    a = prototypes.place('hpn', 20, 5, steps=100)
    b = prototypes.place('hpn', 20, 5, steps=100, keep_momentum=True)
    self.assertGreater(np.abs(a - b).max(), 1e-3)

  def test_duplicates_are_flagged(self):
    # HPN.md section 5: at d = 3 the original recipe merges prototypes (1k steps too).
    with self.assertLogs(level='WARNING') as logs:
      p = prototypes.place('hpn', 100, 3, steps=1000)
    self.assertIn('duplicated prototypes', '\n'.join(logs.output))
    self.assertGreater(prototypes.separation_metrics(p)['num_duplicates'], 0)


class MetricsTest(absltest.TestCase):

  def test_simplex_metrics(self):
    m = prototypes.separation_metrics(prototypes.place('simplex', 4, 3))
    self.assertAlmostEqual(m['max_cos'], -1 / 3, places=6)
    self.assertAlmostEqual(m['min_angle_deg'], 109.4712, places=3)
    self.assertEqual(m['num_pairs_at_max'], 6)
    self.assertAlmostEqual(m['gap_to_bound'], 0.0, places=6)
    self.assertAlmostEqual(m['norm_of_mean'], 0.0, places=6)

  def test_duplicates_and_cross_polytope_bound(self):
    p = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [-1.0, 0, 0]])
    m = prototypes.separation_metrics(p)
    self.assertEqual(m['num_duplicates'], 1)
    self.assertAlmostEqual(m['max_cos'], 1.0)
    self.assertEqual(m['bound'], 0.0)
    self.assertEqual(m['bound_name'], 'rankin')
    # Beyond 2d the Levenshtein bound applies (HPN.md section 5: 0.2784).
    self.assertAlmostEqual(prototypes.lower_bound(100, 10), 0.2784, delta=1e-4)


class StoreTest(absltest.TestCase):

  def test_round_trip_and_checksum(self):
    p = prototypes.place('simplex', 5, 4)
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, 'p.npy')
      prototypes.save(path, p, {'method': 'simplex'})
      loaded, meta = prototypes.load(path)
      np.testing.assert_array_equal(loaded, p)
      self.assertEqual(meta['method'], 'simplex')
      self.assertEqual(meta['shape'], [5, 4])
      np.save(path, p * 2)  # Edit the array behind the metadata's back.
      with self.assertRaisesRegex(ValueError, 'do not match the checksum'):
        prototypes.load(path)
      with open(path, 'wb') as f:
        f.write(b'garbage')
      with self.assertRaisesRegex(ValueError, 'Cannot read prototypes'):
        prototypes.load(path)

  def test_checksum_in_blocks(self):
    # Hashed block by block (no copy of a 4.3 GB array): the digest of the whole bytes.
    p = np.random.default_rng(0).standard_normal((1000, 7))
    whole = hashlib.sha256(p.astype(np.float32).tobytes()).hexdigest()
    self.assertEqual(store.sha256(p, block_rows=64), whole)
    self.assertEqual(store.sha256(np.asfortranarray(p), block_rows=999), whole)

  def test_concurrent_saves_of_one_placement(self):
    # Every process of a multi-host run saves the same placement into one shared cache.
    # With one temporary name for all writers, a rename could find its file gone (and
    # that process died while the others waited for it in a collective).
    p = prototypes.place('simplex', 5, 4)
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, 'p.npy')

      def writer():
        for _ in range(25):
          prototypes.save(path, p, {'method': 'simplex'})
          np.testing.assert_array_equal(prototypes.load(path)[0], p)

      with futures.ThreadPoolExecutor(8) as pool:
        for job in [pool.submit(writer) for _ in range(8)]:
          job.result()  # Re-raises a writer's error.
      self.assertEqual(sorted(os.listdir(tmp)), ['p.json', 'p.npy'])  # No leftovers.


if __name__ == '__main__':
  absltest.main()
