"""Objective: output dimensions, prototype validation, predictions and metric sums."""

import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from hyperproto import objectives


def make(task, method='hpn', dim=5, num_classes=4, **kw):
  return objectives.Objective(task=task, method=method, dim=dim, num_classes=num_classes,
                              target_range=(-60.0, 60.0), **kw)


class ObjectiveTest(parameterized.TestCase):

  @parameterized.parameters(
      ('classification', 'hpn', 5, 5), ('regression', 'hpn', 5, 5), ('joint', 'hpn', 5, 5),
      ('classification', 'baseline', 5, 4), ('regression', 'baseline', 5, 1),
      ('joint', 'baseline', 5, 5))
  def test_output_dim(self, task, method, dim, expected):
    self.assertEqual(make(task, method, dim).output_dim, expected)

  def test_class_prototype_dim(self):
    self.assertEqual(make('classification').class_prototype_dim, 5)
    self.assertEqual(make('joint').class_prototype_dim, 4)
    self.assertIsNone(make('regression').class_prototype_dim)
    self.assertIsNone(make('joint', 'baseline').class_prototype_dim)

  @parameterized.parameters(
      (dict(task='detection'), 'Unknown task'),
      (dict(task='joint', method='arcface'), 'Unknown method'),
      (dict(task='regression', dim=1), 'output dimension >= 2'),
      (dict(task='joint', weight=1.5), 'joint weight'),
      (dict(task='classification', num_classes=1), 'num_classes >= 2'))
  def test_bad_settings_are_clear_errors(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      make(**kwargs)

  def test_wrong_number_of_prototypes(self):
    with self.assertRaisesRegex(ValueError, r'Got 3 prototypes .* for 4 classes'):
      make('classification').prototypes(np.eye(3, 5))

  def test_wrong_prototype_dimension(self):
    with self.assertRaisesRegex(ValueError, r'Prototype dimension 5 .* expected 4 '
                                r'\(output dim - 1 for the joint task\)'):
      make('joint').prototypes(np.eye(4, 5))

  def test_joint_prototypes(self):
    protos = make('joint').prototypes(np.eye(4, 4))
    self.assertEqual(protos['classes'].shape, (4, 4))
    np.testing.assert_array_equal(protos['upper'], [1, 0, 0, 0, 0])

  def test_hpn_joint_predictions(self):
    obj = make('joint', dim=3, num_classes=2)
    protos = obj.prototypes(np.array([[1.0, 0.0], [0.0, 1.0]]))
    # z[1:] points at class 1; cos(z, e_0) = 0.5 -> r = 0.5 -> 30 degrees.
    z = jnp.array([[1.0, 0.0, np.sqrt(3.0)]])
    pred = obj.predict(z, protos)
    self.assertEqual(int(pred['label'][0]), 1)
    np.testing.assert_allclose(pred['target'], [30.0], rtol=1e-5)

  def test_baseline_regression_is_clipped_to_range(self):
    pred = make('regression', 'baseline').predict(jnp.array([[3.0], [-0.5]]), {})
    np.testing.assert_allclose(pred['target'], [60.0, -30.0])

  def test_metric_sums_respect_mask(self):
    obj = make('joint', 'baseline', num_classes=2)
    z = jnp.array([[0.0, 5.0, 0.0], [0.5, 0.0, 5.0], [1.0, 5.0, 0.0]])
    batch = {'label': jnp.array([0, 0, 1]), 'target': jnp.array([0.0, 0.0, 0.0]),
             'mask': jnp.array([1.0, 1.0, 0.0])}
    sums = obj.metric_sums(z, batch, {})
    self.assertEqual(float(sums['count']), 2.0)
    self.assertEqual(float(sums['correct']), 1.0)
    np.testing.assert_allclose(sums['abs_error'], 30.0)
    self.assertEqual(objectives.summarize(dict(sums, loss=4.0)),
                     {'accuracy': 0.5, 'mae': 15.0, 'loss': 2.0})


if __name__ == '__main__':
  absltest.main()
