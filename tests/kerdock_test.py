"""The Kerdock code in d = 1024 (1,050,624 points at 1/32), checked without building it:
the field, the Kerdock set, sampled rows, a certified prefix. About 6 s.

The whole code (4.3 GB) is placed by `python -m hyperproto.prototypes
--num_classes=1050624 --dim=1024` (docs/placement.md); here only the memory check's
refusal of it under a small limit runs."""

import os
from unittest import mock

import numpy as np
from absl.testing import absltest

from hyperproto import prototypes
from hyperproto.prototypes import algebraic
from hyperproto.prototypes import certificates
from hyperproto.prototypes import kerdock
from hyperproto.prototypes import memory
from hyperproto.prototypes import walsh

D = 1024
# The field's helpers (private to kerdock.py), tested here directly.
_FIELD, _FIELD_POLY = kerdock._field, kerdock._FIELD_POLY  # pylint: disable=protected-access
_MUL, _SQRT, _TRACE = kerdock._gf_mul, kerdock._gf_sqrt, kerdock._gf_trace  # pylint: disable=protected-access


class FieldTest(absltest.TestCase):

  def test_every_field_polynomial_is_primitive(self):
    for m in _FIELD_POLY:
      exp, log, _ = _FIELD(m)
      order = (1 << m) - 1
      self.assertLen(set(exp[:order].tolist()), order)  # x generates every unit.
      np.testing.assert_array_equal(exp[log[1:]], np.arange(1, 1 << m))
    # x^9 + x^4 + 1 is also the m-sequence polynomial of the Gold code (algebraic.py).
    self.assertEqual(algebraic._PRIMITIVE[9], (4, 0))  # pylint: disable=protected-access
    self.assertEqual(_FIELD_POLY[9], (1 << 9) | (1 << 4) | 1)

  def test_a_reducible_polynomial_is_refused(self):
    with mock.patch.dict(_FIELD_POLY, {9: (1 << 9) | 1}):  # x^9 + 1 = (x + 1)(...)
      _FIELD.cache_clear()
      try:
        with self.assertRaisesRegex(AssertionError, 'not primitive'):
          _FIELD(9)
      finally:
        _FIELD.cache_clear()

  def test_field_arithmetic(self):
    m = 9
    a = np.random.default_rng(0).integers(1, 1 << m, 200)
    b = np.random.default_rng(1).integers(1, 1 << m, 200)
    np.testing.assert_array_equal(_MUL(a, 1, m), a)
    s = _SQRT(a, m)
    np.testing.assert_array_equal(_MUL(s, s, m), a)
    # The trace is additive and Tr(a^2) = Tr(a).
    tr = lambda x: _TRACE(x, m)
    np.testing.assert_array_equal(tr(a ^ b), tr(a) ^ tr(b))
    np.testing.assert_array_equal(tr(_MUL(a, a, m)), tr(a))
    self.assertEqual(int(np.sum(tr(np.arange(1 << m)))), 1 << (m - 1))  # Balanced.


class KerdockSetTest(absltest.TestCase):

  def test_batched_rank_agrees_with_gaussian_elimination(self):
    mats = np.random.default_rng(0).integers(0, 2, (300, 6, 6))
    expected = [kerdock.gf2_rank(x) == 6 for x in mats]
    np.testing.assert_array_equal(kerdock.gf2_nonsingular(mats), expected)
    self.assertTrue(0 < sum(expected) < 300)  # Both kinds present.

  def test_n10(self):
    alt = kerdock.kerdock_set(10)  # Checks all 130,816 differences (raises if singular).
    self.assertEqual(alt.shape, (512, 10, 10))
    np.testing.assert_array_equal(alt, alt.transpose(0, 2, 1))
    self.assertFalse(np.diagonal(alt, axis1=1, axis2=2).any())
    rng = np.random.default_rng(0)
    for a, b in rng.integers(0, 512, (20, 2)):
      if a != b:
        self.assertEqual(kerdock.gf2_rank(alt[a] ^ alt[b]), 10)


class D1024Test(absltest.TestCase):

  def test_size(self):
    self.assertEqual(kerdock.code_size(D), 1_050_624)
    self.assertEqual(kerdock.code_size(D), D * D + 2 * D)
    self.assertEqual(prototypes.exact_method(1_050_624, D), 'kerdock')
    best = certificates.best_known(1_050_624, D)
    self.assertEqual(best[0], 1 / 32)

  def test_sampled_pairs_of_the_whole_code(self):
    # Rows of basis c: (-1)^(a.x) s_c(x) / 32. 4,000 random pairs of rows from any two
    # of the 512 bases, and the standard basis against them: cos 0, +-1/32 or -1 only.
    signs = kerdock.quadratic_signs(D).astype(np.float64)
    h = algebraic.hadamard_matrix(D)
    rng = np.random.default_rng(0)
    c1, c2 = rng.integers(0, 512, (2, 4000))
    a1, a2 = rng.integers(0, D, (2, 4000))
    u = h[a1] * signs[c1] / 32
    v = h[a2] * signs[c2] / 32
    np.testing.assert_array_equal(np.sum(u * u, axis=1), 1.0)
    cos = np.sum(u * v, axis=1)
    np.testing.assert_array_equal(np.abs(cos[c1 != c2]), 1 / 32)  # Unbiased bases.
    np.testing.assert_array_equal(cos[(c1 == c2) & (a1 != a2)], 0.0)
    np.testing.assert_array_equal(np.abs(u), 1 / 32)  # Against e_x: +-1/32.
    # Every pair of bases through their spectra, for 16 of the bases against all 512.
    for c in rng.integers(0, 512, 16):
      spectra = walsh.fwht(signs * signs[c])
      others = np.arange(512) != c
      np.testing.assert_array_equal(np.abs(spectra[others]), 32)

  def test_prefix_rows_and_certificate(self):
    c = 4 * D + 300  # e, -e, B_1, -B_1 and 300 rows of B_2.
    p = prototypes.place('kerdock', c, D)
    self.assertEqual(p.dtype, np.float32)
    self.assertEqual(set(np.unique(np.abs(p))), {0.0, 1 / 32, 1.0})
    np.testing.assert_array_equal(np.sum(p.astype(np.float64)**2, axis=1), 1.0)
    gram = p @ p.T  # Exact in float32: sums of at most 1024 terms +-2^-10.
    np.fill_diagonal(gram, -np.inf)
    self.assertEqual(set(np.unique(gram[np.isfinite(gram)])),
                     {-1.0, -1 / 32, 0.0, 1 / 32})
    m = prototypes.certify(p)
    self.assertEqual(m['walsh_blocks'], 5)
    self.assertEqual(m['max_cos'], 1 / 32)
    self.assertEqual(m['max_abs_cos'], 1.0)
    self.assertEqual(m['num_pairs_at_max'], int(np.sum(np.triu(gram == 1 / 32, 1))))
    self.assertEqual(m['mean_nn_cos'], float(np.mean(gram.max(axis=1))))
    self.assertTrue(m['exact_arithmetic'])

  def test_the_whole_code_is_refused_under_a_small_limit(self):
    # The suite never builds the 4.3 GB code: under a 1 GB limit `place` refuses it
    # before allocating, with the estimate, the memory and what fits.
    with mock.patch.dict(os.environ, {memory.LIMIT_ENV: '1G'}):
      with self.assertRaises(memory.NotEnoughMemory) as caught:
        prototypes.place('auto', kerdock.code_size(D), D)
    message = str(caught.exception)
    self.assertIn('(here: kerdock) needs about 4.41 GB', message)
    self.assertIn('1.07 GB is available (HYPERPROTO_MEMORY_LIMIT=1G)', message)
    self.assertIn("method='kerdock' with dim=256: up to 66,048 classes", message)
    self.assertIn('num_classes <= ', message)


if __name__ == '__main__':
  absltest.main()
