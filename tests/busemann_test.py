"""Busemann learning: known answers against the reference code's formulas (in NumPy),
finite gradients at the ball's boundary and at a zero output, and a tiny run that learns."""

import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest

import helpers
from configs import cifar10
from hyperproto import objectives
from hyperproto import prototypes
from hyperproto import train
from hyperproto.methods import busemann


def ref_expmap0(u):
  """helper/pmath.py: _expmap0(u, c=1, t=1)."""
  norm = np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-5)
  return np.tanh(np.clip(norm, -15, 15)) * u / norm


def ref_pebuse(p, g, dim, mult):
  """helper/hyperbolicLoss.py: PeBusePenalty(dim, 'dim', mult).forward, per example."""
  phi = mult * dim
  difference_log = 2 * np.log(np.linalg.norm(g - p, axis=1))
  proto_log = (1 + phi) * np.log(1 - np.linalg.norm(p, axis=1) ** 2 + 1e-6)
  return difference_log - proto_log + phi * np.log(2)


def ref_buse_distance_array(embedding1, embedding2):
  """helper/hyperbolicLoss.py: buse_distance_array(outputs, prototypes), B x C."""
  denom = 1 - np.linalg.norm(embedding1, axis=1) ** 2 + 1e-6
  numero = np.linalg.norm(embedding2[:, None, :] - embedding1, axis=2)
  return np.log(numero ** 2 / denom).T


def unit_rows(x):
  return x / np.linalg.norm(x, axis=1, keepdims=True)


class BusemannTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.protos = unit_rows(rng.standard_normal((5, 4))).astype(np.float32)
    self.u = (rng.standard_normal((6, 4)) * [[0.1], [0.5], [1.0], [2.0], [4.0], [0.01]]
              ).astype(np.float32)
    self.labels = np.array([0, 1, 2, 3, 4, 0])

  def test_expmap0_matches_the_reference(self):
    np.testing.assert_allclose(busemann.expmap0(self.u), ref_expmap0(self.u),
                               rtol=1e-6, atol=1e-7)
    # A hand value: |u| = 1 along e_0 maps to tanh(1) e_0 (the code has no 1/2).
    np.testing.assert_allclose(busemann.expmap0(np.array([[1.0, 0, 0, 0]])),
                               [[np.tanh(1.0), 0, 0, 0]], rtol=1e-6)

  def test_loss_matches_the_reference(self):
    for mult in (0.1, 0.75):
      got = busemann.loss(self.u, {'classes': self.protos}, self.labels, mult=mult)
      want = ref_pebuse(ref_expmap0(self.u), self.protos[self.labels], 4, mult)
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

  def test_loss_hand_value_at_the_origin(self):
    # z = 0: 2 log |p| = 0, so the loss is -(1 + phi) log(1 + 1e-6) + phi log 2.
    phi = 0.1 * 4
    got = busemann.loss(np.zeros((1, 4), np.float32), {'classes': self.protos},
                        np.array([2]))
    np.testing.assert_allclose(got, [-(1 + phi) * np.log1p(1e-6) + phi * np.log(2)],
                               rtol=1e-5)

  def test_scores_are_minus_the_busemann_distance_and_predict_as_the_code(self):
    got = busemann.scores(self.u, {'classes': self.protos})
    np.testing.assert_allclose(
        got, -ref_buse_distance_array(ref_expmap0(self.u), self.protos),
        rtol=1e-5, atol=1e-5)
    # The training script predicts by the cosine (ResNet.predict): the same argmax.
    cos = unit_rows(self.u) @ self.protos.T
    np.testing.assert_array_equal(np.argmax(got, 1), np.argmax(cos, 1))

  def test_objective_routes_and_reduces(self):
    objective = objectives.Objective(task='classification', method='busemann', dim=4,
                                     num_classes=5, hparams=(('mult', 0.3),))
    protos = objective.prototypes(self.protos)
    got = objective.loss(self.u, {'label': self.labels}, protos)
    want = ref_pebuse(ref_expmap0(self.u), self.protos[self.labels], 4, 0.3).sum()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_array_equal(objective.predict(self.u, protos)['label'],
                                  np.argmax(unit_rows(self.u) @ self.protos.T, 1))
    with self.assertRaisesRegex(ValueError, 'Unknown method_kwargs'):
      objectives.Objective(task='classification', method='busemann', dim=4,
                           num_classes=5, hparams=(('phi', 1.0),))

  def test_gradients_finite_at_zero_and_at_the_boundary(self):
    protos = {'classes': self.protos}
    u = np.zeros((3, 4), np.float32)
    u[1] = [40.0, -30.0, 0.0, 0.0]    # |u| = 50: tanh saturates, |z| = 1 in float32.
    u[2] = [1e4, 0.0, 1e4, -1e4]      # far outside the tanh clamp
    z = busemann.expmap0(u)
    self.assertLess(1.0 - float(jnp.sum(z[1] ** 2)), busemann.BALL_EPS)  # at the boundary
    labels = np.array([0, 1, 2])
    for fn in (lambda v: jnp.sum(busemann.loss(v, protos, labels)),
               lambda v: jnp.sum(busemann.scores(v, protos))):
      value, grad = jax.value_and_grad(fn)(jnp.asarray(u))
      self.assertTrue(np.isfinite(value))
      self.assertTrue(np.all(np.isfinite(grad)), grad)
    # At the origin the loss pulls towards the class prototype.
    grad0 = jax.grad(lambda v: jnp.sum(busemann.loss(v, protos, labels)))(
        jnp.asarray(u))[0]
    self.assertLess(float(np.dot(grad0, self.protos[0])), 0.0)

  def test_cifar10_config_at_d2_places_the_reference_circle(self):
    # configs/cifar10.py:method=busemann,dim=2 as training places it (no training): the
    # reference code's evenly spaced circle (prototype_learning.py, `prototype_unify`),
    # not the HPN recipe, which there put 3 of the 10 classes on one point.
    config = cifar10.get_config('method=busemann,dim=2')
    objective = objectives.Objective(task='classification', method='busemann', dim=2,
                                     num_classes=10)
    workdir = tempfile.mkdtemp(prefix='hyperproto_busemann_')
    self.addCleanup(shutil.rmtree, workdir, ignore_errors=True)
    protos = train.prepare_prototypes(config, objective, workdir)['classes']
    angles = 2 * np.pi * np.arange(10) / 10
    np.testing.assert_allclose(protos, np.stack([np.cos(angles), np.sin(angles)], 1),
                               atol=1e-7)
    self.assertEqual(prototypes.separation_metrics(protos)['num_duplicates'], 0)
    # Above d = 2 it is the HPN recipe, as in their script.
    np.testing.assert_array_equal(prototypes.place(busemann.METHOD.placement, 12, 3,
                                                   steps=50),
                                  prototypes.place('hpn', 12, 3, steps=50))

  @pytest.mark.device
  def test_tiny_run_learns(self):
    workdir = tempfile.mkdtemp(prefix='hyperproto_busemann_')
    self.addCleanup(shutil.rmtree, workdir, ignore_errors=True)
    config = helpers.tiny_config('task=classification', num_steps=100, lr=0.001,
                                 batch_size=32, log_every_steps=50,
                                 checkpoint_every_steps=100, num_devices=1)
    config.model.kwargs.widths = (16, 32)
    config.method = 'busemann'
    config.prototypes.placement = busemann.METHOD.placement
    results = train.train_and_evaluate(config, workdir)
    # Measured 0.40 (HPN reaches 0.5 in these 100 steps; Busemann learns slower here).
    self.assertGreater(results['test/accuracy'], 0.25)  # chance: 0.1


if __name__ == '__main__':
  absltest.main()
