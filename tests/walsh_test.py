"""Walsh-block certificates (walsh.py): the structure read off the array, and every
count checked against a brute-force Gram matrix. About 3 s."""

from unittest import mock

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from hyperproto.prototypes import algebraic
from hyperproto.prototypes import certificates
from hyperproto.prototypes import kerdock
from hyperproto.prototypes import walsh


def brute_force(p):
  """Every row's largest cos x d, the max |cos| x d, all pair values (i < j)."""
  d = p.shape[1]
  gram = np.rint(np.asarray(p, np.float64) @ np.asarray(p, np.float64).T * d)
  gram = gram.astype(np.int64)
  np.fill_diagonal(gram, np.iinfo(np.int64).min)
  pairs = gram[np.triu_indices(len(p), 1)]
  return gram.max(axis=1), int(np.abs(pairs).max()), pairs


def random_code(rng, d):
  """Random blocks of d rows: +-e, or +-Hadamard with one of 3 random column signs (so
  some blocks repeat: duplicates and antipodes), cut at a random row."""
  k = int(np.log2(d)) // 2
  signs = rng.choice([-1.0, 1.0], (3, d))
  blocks = []
  for _ in range(rng.integers(2, 7)):
    kind, sign = rng.integers(0, 4), rng.choice([-1.0, 1.0])
    blocks.append(sign * (np.eye(d) if kind == 0 else
                          algebraic.hadamard_matrix(d) * signs[kind - 1] * 2.0**-k))
  p = np.concatenate(blocks)
  return p[:rng.integers(d + 1, len(p) + 1)]


class WalshTest(parameterized.TestCase):

  def test_fwht(self):
    d = 16
    np.testing.assert_array_equal(walsh.fwht(np.eye(d)[:1]), np.ones((1, d)))
    h = algebraic.hadamard_matrix(d)
    np.testing.assert_array_equal(walsh.fwht(h), d * np.eye(d))  # H H = d I.
    x = np.random.default_rng(0).integers(-5, 6, (3, d))
    np.testing.assert_array_equal(walsh.fwht(x), x @ h)
    np.testing.assert_array_equal(walsh.fwht(walsh.fwht(x)), d * x)

  def test_layout_of_kerdock_prefixes(self):
    p = kerdock.kerdock_rows(16, 5 * 16 + 3, 'standard')
    lay = walsh.layout(p)
    self.assertEqual([b[:2] for b in lay.blocks],
                     [(walsh.E, 1), (walsh.E, -1), (0, 1), (0, -1), (1, 1), (1, -1)])
    self.assertEqual(lay.blocks[-1][2], 3)
    np.testing.assert_array_equal(lay.signs, kerdock.quadratic_signs(16)[:2])
    lay = walsh.layout(kerdock.kerdock_rows(16, 288, 'antipodes_last', np.float32))
    self.assertEqual(len(lay.blocks), 18)
    self.assertEqual(len(lay.signs), 8)

  def test_layout_rejects_anything_else(self):
    p = kerdock.kerdock(16)
    q = p.copy()
    q[100, 3] = -q[100, 3]  # One entry off: not a signed Hadamard block.
    self.assertIsNone(walsh.layout(q))
    self.assertIsNone(walsh.layout(p[:32]))  # Only +-e: nothing to gain.
    self.assertIsNone(walsh.layout(p[1:]))  # Blocks not aligned.
    self.assertIsNone(walsh.layout(algebraic.hadamard(32, 8)))  # d = 8 is not 4^k.
    self.assertIsNone(walsh.layout(np.random.default_rng(0).normal(size=(40, 16))))

  @parameterized.parameters(4, 16, 64)
  def test_counts_equal_brute_force(self, d):
    rng = np.random.default_rng(d)
    codes = [kerdock.kerdock_rows(d, c, order) for order in kerdock.ORDERS
             for c in (d + 1, 3 * d, 3 * d - 1, 5 * d + 1, kerdock.code_size(d) - 1)]
    codes += [random_code(rng, d) for _ in range(12)]
    for p in codes:
      lay = walsh.layout(p)
      if lay is None:  # The prefix or random code is +-e only.
        self.assertTrue(all(abs(p[i, 0]) == 1 for i in range(0, len(p), d)))
        continue
      scan = walsh.WalshScan(lay)
      nearest, max_abs, pairs = brute_force(p)
      np.testing.assert_array_equal(scan.nearest, nearest)
      self.assertEqual(scan.max_abs, max_abs)
      best = int(nearest.max())
      self.assertEqual(scan.pairs_at(best), int(np.sum(pairs == best)))
      self.assertEqual(scan.pairs_at(d), int(np.sum(pairs == d)))  # Duplicates.
      self.assertEqual(scan.pairs_at(d + 1), 0)
      with self.assertRaisesRegex(ValueError, 'at the max'):
        scan.pairs_at(best - 1)

  @parameterized.parameters(('standard', 16), ('antipodes_last', 16), ('standard', 64))
  def test_certify_equals_the_dense_certificate(self, order, d):
    for c in (3 * d + 5, kerdock.code_size(d)):
      p = kerdock.kerdock_rows(d, c, order, np.float32)
      fast = certificates.certify(p)
      with mock.patch.object(walsh, 'layout', return_value=None):
        dense = certificates.certify(p)
      self.assertEqual(fast.pop('walsh_blocks'), -(-c // d))
      self.assertEqual(dense.pop('walsh_blocks'), 0)
      self.assertEqual(fast, dense)
