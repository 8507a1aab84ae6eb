"""Objective: output dimensions, prototype validation, predictions and metric sums."""

import functools
from unittest import mock

import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from hyperproto import methods
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



def _inputs(obj, batch_size=6, seed=0):
  """Random outputs, a batch (labels / targets, a mask) and the protos for `obj`."""
  rng = np.random.default_rng(seed)
  classes = None
  if obj.class_prototype_dim is not None:
    classes = rng.standard_normal((obj.num_classes, obj.class_prototype_dim))
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
  protos = obj.prototypes(classes)
  protos = {**protos, **obj.init_method_state(protos, seed=0)}
  z = jnp.asarray(rng.standard_normal((batch_size, obj.output_dim)), jnp.float32)
  batch = {'label': jnp.asarray(rng.integers(0, obj.num_classes, batch_size)),
           'target': jnp.asarray(rng.uniform(-60, 60, batch_size), jnp.float32),
           'mask': jnp.asarray([1.0] * (batch_size - 1) + [0.0])}
  return z, batch, protos


# Every (method, task) the registry trains, with an output dimension it accepts.
CELLS = [(name, task, 4 if name == 'maxsep' else 6)
         for name, method in methods.METHODS.items() for task in method.tasks]
OPEN_SET = {'hpn': {'max_cos'}, 'baseline': {'max_logit', 'msp'}}


class RegistryTest(parameterized.TestCase):
  """HPN, the baseline and the fixed-classifier methods behind one `Method`."""

  @parameterized.parameters(*CELLS)
  def test_every_entry_through_the_objective(self, name, task, dim):
    obj = make(task, name, dim=dim, num_classes=5)
    z, batch, protos = _inputs(obj)
    loss = obj.loss(z, batch, protos)
    self.assertEqual(loss.shape, ())
    self.assertTrue(np.isfinite(loss))
    # The masked example (the last) does not count.
    moved = z.at[-1].set(10.0 * z[-1] + 1.0)
    self.assertEqual(float(obj.loss(moved, batch, protos)), float(loss))
    pred = obj.predict(z, protos)
    self.assertEqual(set(pred), {'label', 'target'} & {
        *(['label'] if obj.has_classes else []),
        *(['target'] if obj.has_regression else [])})
    if obj.has_regression:  # Inside the target's range.
      self.assertTrue(np.all(np.abs(pred['target']) <= 60.0 + 1e-4))
    if obj.has_classes:
      scores = obj.scores(z, protos)
      self.assertEqual((scores.shape, scores.dtype), ((6, 5), jnp.float32))
      np.testing.assert_array_equal(pred['label'], np.argmax(scores, axis=1))
      open_set = obj.open_set_scores(z, protos)
      self.assertEqual(set(open_set), OPEN_SET.get(name, {'max_cos', 'max_score'}))
      for value in open_set.values():
        self.assertEqual(value.shape, (6,))

  def test_the_joint_loss_is_the_weighted_parts(self):
    # (1 - w) L_r(z) + w L_c(z[..., 1:]), for HPN and the baseline alike.
    for name in ('hpn', 'baseline'):
      joint = make('joint', name, dim=6, num_classes=5, weight=0.3)
      z, batch, protos = _inputs(joint)
      classification = make('classification', name, dim=5, num_classes=5)
      regression = make('regression', name, dim=6, num_classes=5)
      want = (0.7 * regression.loss(z[..., :regression.output_dim], batch, protos)
              + 0.3 * classification.loss(z[..., 1:], batch, protos))
      np.testing.assert_allclose(joint.loss(z, batch, protos), want, rtol=1e-6)

  def test_hyper_parameters_are_bound_by_name(self):
    for name, method in methods.METHODS.items():
      bound = method.bind()
      taken = set()
      for field in ('loss', 'scores', 'regression_loss', 'regress', 'state_init',
                    'state_update', 'state_refresh', 'refresh_every'):
        fn = getattr(bound, field)
        if isinstance(fn, functools.partial):
          self.assertLessEqual(set(fn.keywords), set(method.defaults), (name, field))
          taken |= set(fn.keywords)
      # No hyper-parameter is declared without a function that takes it.
      self.assertEqual(taken, set(method.defaults), name)
    dl2pa = methods.METHODS['dl2pa'].bind({'refresh_every_steps': 7})
    self.assertEqual(dl2pa.refresh_every(100), 7)
    self.assertEqual(dl2pa.defaults['momentum'], 0.9)
    self.assertEqual(dict(dl2pa.state_update.keywords), {'momentum': 0.9})

  @parameterized.parameters(
      ('softmax', 'classification'), ('mse', 'regression'), ('multitask', 'joint'))
  def test_the_baseline_by_its_tables_name(self, name, task):
    named, generic = make(task, name), make(task, 'baseline')
    self.assertEqual(named.method, name)  # As given (results.json records it).
    self.assertEqual(named.output_dim, generic.output_dim)
    z, batch, protos = _inputs(generic)
    np.testing.assert_array_equal(named.loss(z, batch, protos),
                                  generic.loss(z, batch, protos))

  @parameterized.parameters(
      (dict(task='joint', method='softmax'), 'use method=multitask'),
      (dict(task='classification', method='mse'), 'use method=softmax'),
      (dict(task='regression', method='etf'), 'is a classification method'),
      (dict(task='classification', hparams=(('momentum', 0.9),)),
       r"Unknown method_kwargs \['momentum'\] for method 'hpn'; accepted: none"))
  def test_names_that_do_not_fit(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      make(**kwargs)

  def test_a_new_method_plugs_in_with_one_entry(self):
    # A toy method: loss -z.p_y, scores z P^T; nothing else changes.
    toy = methods.Method(
        name='toy', paper='a test', placement='simplex',
        loss=lambda z, protos, labels, *, scale=1.0: -scale * jnp.sum(
            z * protos['classes'][labels], axis=-1),
        scores=lambda z, protos: z @ protos['classes'].T, defaults={'scale': 1.0})
    with mock.patch.dict(methods.METHODS, toy=toy):
      obj = make('classification', 'toy', dim=3, num_classes=4, reduction='mean',
                 hparams=(('scale', 2.0),))
      z, batch, protos = _inputs(obj)
      p = protos['classes']
      mask = np.asarray(batch['mask'])
      want = -2.0 * np.sum(np.sum(np.asarray(z) * p[batch['label']], 1) * mask) / mask.sum()
      np.testing.assert_allclose(obj.loss(z, batch, protos), want, rtol=1e-6)
      self.assertEqual(set(obj.open_set_scores(z, protos)), {'max_cos', 'max_score'})
      with self.assertRaisesRegex(ValueError, 'is a classification method'):
        make('joint', 'toy')


if __name__ == '__main__':
  absltest.main()
