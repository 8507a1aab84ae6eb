"""Direct sums and subsets of codes, `auto`'s choice among them, and certificates."""

import math
from unittest import mock

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
import jax

import helpers
from hyperproto import prototypes
from hyperproto.prototypes import algebraic
from hyperproto.prototypes import certificates
from hyperproto.prototypes import closed_form
from hyperproto.prototypes import codes
from hyperproto.prototypes import kerdock
from hyperproto.prototypes import metrics
from hyperproto.prototypes import separation


def gram(p):
  p = np.asarray(p, np.float64)
  cos = p @ p.T
  np.fill_diagonal(cos, -np.inf)
  return cos


class DirectSumTest(absltest.TestCase):

  def test_rule(self):
    # 24-cell (max cos 1/2) + icosahedron (1/sqrt 5): 36 points in R^7 at max cos 1/2,
    # every cosine between the two codes exactly 0.
    a, b = kerdock.kerdock(4), closed_form.icosahedron()
    s = codes.direct_sum(a, b)
    self.assertEqual(s.shape, (36, 7))
    cos = gram(s)
    np.testing.assert_array_equal(cos[:24, 24:], 0.0)
    np.testing.assert_array_equal(cos[:24, :24], gram(a))
    np.testing.assert_array_equal(cos[24:, 24:], gram(b))
    self.assertEqual(cos.max(), 0.5)

  def test_two_kerdock_256_in_512(self):
    # Listed without building: 132,096 points at 1/16.
    (two,) = [c for c in codes.candidates(512) if c.name == '2 x kerdock(256)']
    self.assertEqual((two.size, two.max_cos), (132_096, 1 / 16))

  def test_cross_polytope_fills_the_rest(self):
    (c,) = [c for c in codes.candidates(21) if c.name.startswith('kerdock(16)')]
    self.assertEqual(c.name, 'kerdock(16) + cross_polytope(5)')
    p = c.build(c.size)
    self.assertEqual(p.shape, (288 + 10, 21))
    self.assertEqual(gram(p).max(), 0.25)


class SubsetTest(absltest.TestCase):

  def test_antipodes_last(self):
    p = kerdock.kerdock(4)  # 24 points, 12 antipodal pairs.
    order = codes.antipode_order(p)
    first, last = p[order[:12]], p[order[12:]]
    cos = gram(first)
    self.assertGreater(cos[np.isfinite(cos)].min(), -1.0)  # No antipodes among them.
    for row in last:
      self.assertTrue(np.any(np.all(first == -row, axis=1)))

  def test_greedy_lowers_the_max(self):
    # The octahedron plus (1,1,1)/sqrt 3: that point is in 3 pairs at 1/sqrt 3, and six
    # of the points have max cos 0. Antipode order alone keeps it; the greedy drops it.
    extra = np.full((1, 3), 1 / math.sqrt(3))
    code = np.concatenate([np.eye(3), -np.eye(3), extra])
    self.assertAlmostEqual(gram(codes.subset(code, 6, greedy=False)).max(), 1 / math.sqrt(3))
    self.assertEqual(gram(codes.subset(code, 6)).max(), 0.0)

  def test_welch_tight_for_six_icosahedron_diagonals(self):
    # One point of each antipodal pair of the icosahedron: 6 lines in R^3 with
    # |cos| = 1/sqrt 5 = Welch's bound sqrt((6 - 3) / (3 * 5)).
    p = codes.subset(closed_form.icosahedron(), 6)
    c = certificates.certify(p)
    self.assertAlmostEqual(c['max_abs_cos'], 1 / math.sqrt(5), places=6)
    self.assertAlmostEqual(c['welch_bound'], 1 / math.sqrt(5), places=15)
    self.assertAlmostEqual(c['gap_to_welch'], 0.0, places=6)

  def test_large_path_builds_prefixes(self):
    # Above GREEDY_MAX every block gives its antipode-free points first.
    (two,) = [c for c in codes.candidates(32) if c.name == '2 x kerdock(16)']
    with mock.patch.object(codes, 'GREEDY_MAX', 0):
      p = two.build(288)  # 2 x 144 antipode-free points.
      self.assertEqual(p.shape, (288, 32))
      np.testing.assert_array_equal(np.count_nonzero(p[:, :16], axis=1) > 0,
                                    np.arange(288) < 144)
      self.assertEqual(certificates.certify(p)['max_abs_cos'], 0.25)  # No antipodes.
      q = two.build(400)
      self.assertEqual(gram(q).max(), 0.25)
      self.assertEqual(certificates.certify(q)['max_abs_cos'], 1.0)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, 'No algebraic construction in dim=16 has 300'):
      codes.construct(300, 16)
    with self.assertRaisesRegex(ValueError, 'has no subset of 5'):
      codes.subset(np.eye(4), 5)


class ConstructTest(parameterized.TestCase):

  @parameterized.parameters(
      (1000, 64, 'kerdock(64)', 0.125),
      (100, 25, 'kerdock(16) + cross_polytope(9)', 0.25),
      (600, 32, 'gold(31) + cross_polytope(1)', 7 / 31),
      (40, 8, 'gold(7) + cross_polytope(1)', 3 / 7),  # Beats 2 x kerdock(4) at 1/2.
  )
  def test_best_construction(self, c, d, name, value):
    best = codes.best_construction(c, d)
    self.assertEqual(best.name, name)
    p = prototypes.place('construction', c, d)
    self.assertEqual(p.shape, (c, d))
    self.assertAlmostEqual(metrics.max_cos(p), value, delta=1e-7)
    self.assertEqual(metrics.separation_metrics(p)['num_duplicates'], 0)

  def test_gold_511_beats_two_kerdock_codes_at_d512(self):
    best = codes.best_construction(100_000, 512)
    self.assertEqual(best.name, 'gold(511) + cross_polytope(1)')
    self.assertAlmostEqual(best.max_cos, 31 / 511)  # (t - 2) / N, t = 2^5 + 1.

  def test_kerdock_1024_subsets_built_alone(self):
    # From d = 1024 the 1024-d Kerdock code (1/32) is the best construction; a subset is
    # its first rows in antipode order, built without the other 1,045,624 (4.3 GB).
    best = codes.best_construction(5000, 1024)
    self.assertEqual(best.name, 'kerdock(1024)')
    p = codes.construct(5000, 1024)
    self.assertEqual(p.dtype, np.float32)
    np.testing.assert_array_equal(
        p, kerdock.kerdock_rows(1024, 5000, 'antipodes_last', np.float32))
    c = certificates.certify(p)
    self.assertEqual((c['max_cos'], c['max_abs_cos']), (1 / 32, 1 / 32))  # No antipodes.
    self.assertEqual(c['walsh_blocks'], 5)
    self.assertEqual(prototypes.auto_placement(5000, 1024)[1], 'construction: kerdock(1024)')
    (two,) = [c for c in codes.candidates(2048) if c.name == '2 x kerdock(1024)']
    self.assertEqual((two.size, two.max_cos), (2 * 1_050_624, 1 / 32))

  def test_antipode_order_of_kerdock_codes(self):
    # The direct construction of the order equals `antipode_order` on the whole code.
    for d0 in (4, 16, 64):
      points = kerdock.kerdock(d0)
      np.testing.assert_array_equal(
          kerdock.kerdock_rows(d0, len(points), 'antipodes_last'),
          points[codes.antipode_order(points)])

  def test_auto_keeps_the_better(self):
    code = codes.construct(200, 16)  # Kerdock(16) subset: max cos 1/4.
    worse = np.random.default_rng(0).standard_normal((200, 16))
    better = code.copy()
    with mock.patch.object(separation, 'separation', return_value=worse):
      p, resolved = prototypes.auto_placement(200, 16, 0)
    self.assertEqual(resolved, 'construction: kerdock(16)')
    np.testing.assert_array_equal(p, code)
    with mock.patch.object(separation, 'separation', return_value=better):
      # A tie goes to the random-start result: earlier cells keep their placements.
      _, resolved = prototypes.auto_placement(200, 16, 0)
    self.assertEqual(resolved, 'separation')
    with mock.patch.object(separation, 'separation', return_value=worse) as opt:
      prototypes.auto_placement(1000, 64, 0)  # Over budget: random starts cut to fit.
    work = 1000**2 * (64 + prototypes.PAIR_WORK) * 4  # Per step of 4 restarts.
    self.assertEqual(opt.call_args_list[0].kwargs['steps'],
                     int(prototypes.AUTO_BUDGET / work))
    self.assertIn('init', opt.call_args.kwargs)  # And the polished construction.
    with mock.patch.object(separation, 'separation', return_value=worse) as opt:
      prototypes.auto_placement(3000, 64, 0)  # Not even MIN_STEPS fit: no random starts.
    self.assertLen(opt.call_args_list, 1)
    self.assertIn('init', opt.call_args.kwargs)


class ShardedTest(absltest.TestCase):

  @helpers.needs_devices(8)
  def test_neighbour_search_same_on_1_and_8_devices(self):
    p = np.random.default_rng(0).standard_normal((1000, 16)).astype(np.float32)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    one = separation.nearest_neighbours_sharded(p, k=5, block_rows=64,
                                                devices=jax.devices()[:1])
    eight = separation.nearest_neighbours_sharded(p, k=5, block_rows=64,
                                                  devices=jax.devices()[:8])
    plain = separation.nearest_neighbours(p, k=5, block_rows=64)
    for a, b, c in zip(one, eight, plain):
      np.testing.assert_array_equal(a, b)
      np.testing.assert_array_equal(a, c)
    init = np.random.default_rng(1).standard_normal((600, 8))
    runs = [separation.separation_large(600, 8, init=init, rounds=3, refresh=5,
                                        block_rows=64, devices=jax.devices()[:n])
            for n in (1, 8)]
    np.testing.assert_array_equal(runs[0], runs[1])
    self.assertLess(metrics.max_cos(runs[0]), metrics.max_cos(init))


class CertificateTest(parameterized.TestCase):

  def test_hand_computed_bounds(self):
    c = certificates.certificate(6, 3, max_cos=0.1, max_abs_cos=0.5)
    self.assertEqual(c['bounds']['simplex'], -0.2)  # -1/(C-1).
    self.assertEqual(c['bounds']['rankin'], 0.0)  # C >= d + 2.
    self.assertAlmostEqual(c['gaps']['simplex'], 0.3)
    self.assertAlmostEqual(c['welch_bound'], math.sqrt(3 / 15))
    self.assertAlmostEqual(c['gap_to_welch'], 0.5 - math.sqrt(0.2))
    self.assertEqual(c['best_known'], 0.0)  # The octahedron.
    self.assertAlmostEqual(c['gap_to_best_known'], 0.1)
    small = certificates.certificate(4, 5, max_cos=-1 / 3)
    self.assertNotIn('rankin', small['bounds'])  # C < d + 2.
    self.assertNotIn('welch_bound', small)  # C <= d.
    self.assertEqual(small['best_bound_name'], 'simplex')
    self.assertAlmostEqual(small['gaps']['simplex'], 0.0)
    self.assertAlmostEqual(certificates.welch_bound(288, 16), math.sqrt(272 / (16 * 287)))

  @parameterized.parameters((3, -0.5), (4, -1 / 3), (6, 0.0), (12, 1 / math.sqrt(5)),
                            (24, math.cos(math.radians(43.6907671))))
  def test_best_known_3d(self, n, value):
    self.assertAlmostEqual(certificates.best_known(n, 3)[0], value, places=12)
    # A proven optimum is never below a valid lower bound.
    self.assertGreaterEqual(value + 1e-9, max(certificates.lower_bounds(n, 3).values()))

  def test_every_tabulated_value_respects_the_bounds(self):
    for n in range(3, 131):
      value, source = certificates.best_known(n, 3)
      self.assertEqual('not proven' in source, 14 < n != 24, n)
      self.assertGreaterEqual(value + 1e-9, max(certificates.lower_bounds(n, 3).values()))
      if n > 3:  # Dropping a point of an (N+1)-packing never raises its max cos.
        self.assertLessEqual(certificates.best_known(n - 1, 3)[0], value + 1e-9, n)
    self.assertIsNone(certificates.best_known(131, 3))

  @parameterized.parameters((15, 53.6578501), (30, 38.5971159), (50, 29.7529564),
                            (100, 21.0312020), (130, 18.5103522))
  def test_best_known_3d_packings(self, n, degrees):
    # The min angles of Sloane's table (neilsloane.com/packings/index.html, 7 decimals).
    value, source = certificates.best_known(n, 3)
    self.assertAlmostEqual(math.degrees(math.acos(value)), degrees, delta=6e-8)
    self.assertIn(f'pack.3.{n}.txt', source)
    c = certificates.certificate(n, 3, max_cos=value + 1e-4)
    self.assertEqual(c['best_known'], value)
    self.assertAlmostEqual(c['gap_to_best_known'], 1e-4, places=15)

  def test_kerdock_cell(self):
    m = metrics.separation_metrics(kerdock.kerdock(16))
    self.assertEqual(m['best_known'], 0.25)
    self.assertEqual(m['gap_to_best_known'], 0.0)
    self.assertEqual(m['best_bound_name'], 'levenshtein')
    self.assertGreater(m['gaps']['levenshtein'], 0.0)

  @parameterized.named_parameters(
      ('random', lambda: np.random.default_rng(0).standard_normal((300, 8))),
      ('kerdock', lambda: kerdock.kerdock(16)),
      ('direct_sum', lambda: codes.construct(100, 25)),
      ('cross_polytope', lambda: np.concatenate([np.eye(5), -np.eye(5)])),
      ('gold', lambda: algebraic.gold(500, 40)),  # Cyclic: 33 orbits, 15-16 rows each.
      ('gold_whole_orbits', lambda: algebraic.gold(33 * 31, 31)),
      # Cyclic orbits longer than the rows: shifts wrap around, so rows repeat.
      ('cyclic_with_duplicates', lambda: np.stack([
          np.roll(np.random.default_rng(3).choice([-1.0, 1.0], (3, 4))[i % 3], -(i // 3))
          for i in range(50)])),
      ('random_blocks', lambda: codes.direct_sum(
          *np.random.default_rng(1).standard_normal((2, 40, 3)))),
      ('duplicates', lambda: np.repeat(np.random.default_rng(2).normal(size=(20, 4)), 2,
                                       axis=0)),
  )
  def test_certify_equals_separation_metrics(self, make):
    p = make()
    a = certificates.certify(p, block_rows=37)  # Many blocks: the recount path too.
    b = metrics.separation_metrics(p)
    for key, value in b.items():
      if isinstance(value, dict):
        for k, v in value.items():
          self.assertAlmostEqual(a[key][k], v, delta=1e-15, msg=f'{key}[{k}]')
      elif isinstance(value, float):
        self.assertAlmostEqual(a[key], value, delta=1e-15, msg=key)
      else:
        self.assertEqual(a[key], value, msg=key)
    cos = gram(p / np.linalg.norm(p, axis=1, keepdims=True))
    self.assertAlmostEqual(a['max_abs_cos'], np.abs(cos[np.isfinite(cos)]).max(),
                           delta=1e-15)

  def test_certify_is_exact_for_codes(self):
    c = certificates.certify(codes.direct_sum(kerdock.kerdock(16), kerdock.kerdock(16)))
    self.assertTrue(c['exact_arithmetic'])
    self.assertEqual(c['components'], 2)
    self.assertEqual(c['max_cos'], 0.25)
    # Pairs at 1/4: those within each code, none across the two.
    per_code = int(np.sum(np.triu(gram(kerdock.kerdock(16)) == 0.25, 1)))
    self.assertEqual(c['num_pairs_at_max'], 2 * per_code)
    self.assertFalse(certificates.certify(
        np.random.default_rng(0).normal(size=(10, 3)))['exact_arithmetic'])

  def test_cyclic_orbits_are_found_and_only_where_they_hold(self):
    # Gold rows are cyclic shifts listed shift-major: certified from the correlations.
    p = algebraic.gold(2000, 128)  # Length 127: 129 orbits; plus an unused coordinate.
    self.assertEqual(certificates.certify(p)['cyclic_components'], 1)
    self.assertEqual(certificates._cyclic_stride(p[:, :127]), 129)  # pylint: disable=protected-access
    q = p.copy()
    q[1500, :127] = np.roll(q[1500, :127], 1)  # One row off its orbit: the dense path.
    self.assertIsNone(certificates._cyclic_stride(q[:, :127]))  # pylint: disable=protected-access
    self.assertEqual(certificates.certify(q)['cyclic_components'], 0)


if __name__ == '__main__':
  absltest.main()
