"""Known answers for every loss, and the paper's closed-form gradient."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from hyperproto import losses

jax.config.update('jax_enable_x64', False)


class CosineTest(parameterized.TestCase):

  def test_known_values(self):
    a = jnp.array([[1.0, 0.0], [1.0, 1.0], [3.0, 4.0]])
    b = jnp.array([[0.0, 2.0], [1.0, 0.0], [-3.0, -4.0]])
    np.testing.assert_allclose(losses.cosine_similarity(a, b),
                               [0.0, 1 / np.sqrt(2), -1.0], rtol=1e-6)

  def test_zero_vector_gives_zero_not_nan(self):
    self.assertEqual(float(losses.cosine_similarity(jnp.zeros(3), jnp.ones(3))), 0.0)

  def test_gradient_is_finite_at_a_zero_row(self):
    # One all-zero output row must not turn the update into NaN (jnp.linalg.norm's
    # gradient is 0/0 there); the other rows' gradients are as without that row.
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 3)).astype(np.float32)
    z[2] = 0.0
    protos = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
    labels = jnp.array([0, 1, 2, 3])
    for fn in (lambda z: losses.classification_loss(z, protos, labels),
               lambda z: jnp.sum(losses.cosine_similarity(z, protos[labels]))):
      grad = jax.grad(fn)(jnp.asarray(z))
      self.assertTrue(np.all(np.isfinite(grad)), grad)
      keep = np.array([True, True, False, True])
      rest = jax.grad(lambda z_: fn(jnp.asarray(z).at[keep].set(z_)))(jnp.asarray(z[keep]))
      np.testing.assert_allclose(grad[keep], rest, rtol=1e-6)

  def test_safe_norm_is_the_norm_away_from_zero(self):
    # Compiled, as in the train step: the same bits as jnp.linalg.norm, value and
    # gradient, so no number of a run changes.
    x = jnp.asarray(np.random.default_rng(1).normal(size=(64, 10)), jnp.float32)
    ours = jax.jit(lambda x: losses.safe_norm(x))
    theirs = jax.jit(lambda x: jnp.linalg.norm(x, axis=-1))
    np.testing.assert_array_equal(ours(x), theirs(x))
    np.testing.assert_array_equal(jax.jit(jax.grad(lambda x: ours(x).sum()))(x),
                                  jax.jit(jax.grad(lambda x: theirs(x).sum()))(x))

  def test_computed_in_float32_from_bfloat16(self):
    a = jnp.array([1.0, 2.0, 3.0], jnp.bfloat16)
    out = losses.cosine_similarity(a, a)
    self.assertEqual(out.dtype, jnp.float32)
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)

  def test_matrix_matches_pairwise(self):
    rng = np.random.default_rng(0)
    z, p = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    expected = [[losses.cosine_similarity(zi, pj) for pj in p] for zi in z]
    np.testing.assert_allclose(losses.cosine_matrix(z, p), expected, rtol=1e-5)


class PrototypeLossTest(parameterized.TestCase):

  protos = jnp.array([[1.0, 0.0], [0.0, 1.0]])

  @parameterized.parameters(('sum', 1.0), ('mean', 0.5))
  def test_classification_known_answer(self, reduction, expected):
    # cos = 1 (loss 0) for the first, cos = 0 (loss 1) for the second example.
    z = jnp.array([[2.0, 0.0], [0.0, 3.0]])
    loss = losses.classification_loss(z, self.protos, jnp.array([0, 0]),
                                      reduction=reduction)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)

  def test_mask_drops_examples(self):
    z = jnp.array([[2.0, 0.0], [0.0, 3.0]])
    loss = losses.classification_loss(z, self.protos, jnp.array([0, 0]),
                                      reduction='mean', mask_B=jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(loss, 0.0, atol=1e-7)

  def test_opposite_prototype_gives_maximal_loss(self):
    loss = losses.classification_loss(jnp.array([[-1.0, 0.0]]), self.protos,
                                      jnp.array([0]))
    np.testing.assert_allclose(loss, 4.0, rtol=1e-6)

  def test_gradient_equals_closed_form(self):
    # Paper: d/dz (1 - cos)^2 = -2 (1 - cos) (p / (|z||p|) - cos z / |z|^2).
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 6)).astype(np.float32)
    protos = rng.normal(size=(3, 6)).astype(np.float32)
    labels = np.array([0, 2, 1, 2])
    grad = jax.grad(lambda z: losses.classification_loss(z, protos, labels))(z)
    p = protos[labels]
    zn = np.linalg.norm(z, axis=1, keepdims=True)
    pn = np.linalg.norm(p, axis=1, keepdims=True)
    cos = np.sum(z * p, axis=1, keepdims=True) / (zn * pn)
    expected = -2.0 * (1.0 - cos) * (p / (zn * pn) - cos * z / zn ** 2)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)

  def test_dimension_mismatch_is_a_clear_error(self):
    with self.assertRaisesRegex(ValueError, 'Output dimension 3 does not match'):
      losses.classification_loss(jnp.ones((2, 3)), self.protos, jnp.array([0, 1]))

  def test_unknown_reduction(self):
    with self.assertRaisesRegex(ValueError, 'Unknown reduction'):
      losses.reduce(jnp.ones(3), 'max')


class RegressionTest(parameterized.TestCase):

  @parameterized.parameters((-60.0, -1.0), (60.0, 1.0), (0.0, 0.0), (30.0, 0.5))
  def test_target_mapping(self, y, r):
    np.testing.assert_allclose(losses.to_unit_interval(y, -60.0, 60.0), r, atol=1e-7)
    np.testing.assert_allclose(losses.from_unit_interval(r, -60.0, 60.0), y, atol=1e-5)

  def test_target_mapping_round_trip(self):
    y = np.random.default_rng(0).uniform(1000, 1932, size=50)
    r = losses.to_unit_interval(y, 1000.0, 1932.0)
    self.assertTrue(np.all((r >= -1) & (r <= 1)))
    np.testing.assert_allclose(losses.from_unit_interval(r, 1000.0, 1932.0), y,
                               rtol=1e-6)

  def test_regression_known_answer(self):
    z = jnp.array([[1.0, 1.0], [0.0, 5.0]])  # cos with e_0: 1/sqrt(2), 0
    upper = jnp.array([1.0, 0.0])
    loss = losses.regression_loss(z, upper, jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(loss, 0.5 + 1.0, rtol=1e-6)
    np.testing.assert_allclose(losses.predict_unit_interval(z, upper),
                               [1 / np.sqrt(2), 0.0], rtol=1e-6)

  def test_joint_uses_full_z_for_regression_and_the_rest_for_classes(self):
    z = jnp.array([[1.0, 1.0, 0.0]])
    upper = jnp.array([1.0, 0.0, 0.0])
    class_protos = jnp.array([[1.0, 0.0], [0.0, 1.0]])  # in D - 1 = 2 dimensions
    # L_r = (0 - 1/sqrt(2))^2 = 0.5; z[1:] = (1, 0) -> cos 1 with class 0: L_c = 0,
    # and cos 0 with class 1: L_c = 1.
    for label, l_c in ((0, 0.0), (1, 1.0)):
      for w in (0.0, 0.3, 1.0):
        loss = losses.joint_loss(z, class_protos, upper, jnp.array([label]),
                                 jnp.array([0.0]), weight=w)
        np.testing.assert_allclose(loss, (1 - w) * 0.5 + w * l_c, rtol=1e-6,
                                   atol=1e-7)


class BaselineTest(absltest.TestCase):

  def test_softmax_uniform_logits(self):
    loss = losses.softmax_cross_entropy(jnp.zeros((3, 4)), jnp.array([0, 1, 3]))
    np.testing.assert_allclose(loss, 3 * np.log(4.0), rtol=1e-6)

  def test_label_smoothing_is_pytorchs(self):
    # torch.nn.CrossEntropyLoss(label_smoothing=e): -sum_c ((1 - e) [c = y] + e / C)
    # log p_c, by hand.
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], np.float32)
    labels = np.array([0, 2])
    log_p = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    target = 0.9 * np.eye(3)[labels] + 0.1 / 3
    want = -np.sum(target * log_p)
    got = losses.softmax_cross_entropy(logits, labels, label_smoothing=0.1)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(losses.softmax_cross_entropy(logits, labels),
                               -log_p[[0, 1], labels].sum(), rtol=1e-6)

  def test_mse(self):
    np.testing.assert_allclose(
        losses.mse_loss(jnp.array([0.5, -1.0]), jnp.array([0.0, 1.0])), 4.25)

  def test_multitask_layout(self):
    out = jnp.array([[0.5, 0.0, 0.0, 0.0, 0.0]])  # column 0: regression; 4 logits
    loss = losses.multitask_loss(out, jnp.array([2]), jnp.array([0.0]), weight=0.25)
    np.testing.assert_allclose(loss, 0.75 * 0.25 + 0.25 * np.log(4.0), rtol=1e-6)


if __name__ == '__main__':
  absltest.main()
