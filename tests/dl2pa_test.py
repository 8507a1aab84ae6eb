"""DL2PA: the matching (a permutation; known and brute-forced optima), the feature memory
against the reference formula, the loss and scores, and end to end: resume is bitwise,
1 and 8 devices agree, a tiny run learns."""

import itertools
import os
import shutil
import tempfile
from unittest import mock

import jax
import numpy as np
import pytest
from absl.testing import absltest
from absl.testing import parameterized

import helpers
import train_test
from hyperproto import export
from hyperproto import objectives
from hyperproto import parallel
from hyperproto import prototypes
from hyperproto import train
from hyperproto.methods import dl2pa
from hyperproto.prototypes import uniformity


def unit_rows(x):
  return x / np.linalg.norm(x, axis=1, keepdims=True)


def ref_forward_momentum(queue, x, labels, m=0.9):
  """backbone/classifiers/fixed.py: forward_momentum, for labels without repeats."""
  queue = queue.copy()
  x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  queue[labels, :] += m * queue[labels, :] + (1 - m) * x
  return queue / np.maximum(np.sqrt(np.sum(queue ** 2, axis=1, keepdims=True)), 1e-8)


def dl2pa_config(**overrides):
  config = helpers.tiny_config('task=classification', **overrides)
  config.method = 'dl2pa'
  config.prototypes.placement = dl2pa.METHOD.placement
  config.method_kwargs.dl2pa.refresh_every_steps = 2  # The epoch (89 steps) is longer.
  # A memory that follows the features fast enough for the matching to move classes
  # within these 6 steps (with 0.9 it keeps the initial assignment here).
  config.method_kwargs.dl2pa.momentum = 0.0
  return config


def final_method_state(workdir):
  return jax.device_get(export.load_checkpoint(workdir)[1]['method_state'])


class AssignmentTest(absltest.TestCase):

  def test_is_a_permutation(self):
    rng = np.random.default_rng(1)
    for c, d in ((7, 3), (20, 8), (10, 64)):
      assignment = dl2pa.solve_assignment(rng.standard_normal((c, d)),
                                          unit_rows(rng.standard_normal((c, d))))
      self.assertEqual(assignment.dtype, np.int32)
      np.testing.assert_array_equal(np.sort(assignment), np.arange(c))

  def test_known_matching(self):
    # The memory of class c points at prototype perm[c]: the matching is perm.
    perm = np.array([2, 0, 3, 1])
    classes = np.eye(4, dtype=np.float32)
    np.testing.assert_array_equal(dl2pa.solve_assignment(classes[perm], classes), perm)

  def test_maximises_the_total_score_by_brute_force(self):
    rng = np.random.default_rng(2)
    queue, classes = rng.standard_normal((6, 3)), unit_rows(rng.standard_normal((6, 3)))
    score = queue @ classes.T
    best = max(itertools.permutations(range(6)),
               key=lambda p: sum(score[i, j] for i, j in enumerate(p)))
    np.testing.assert_array_equal(dl2pa.solve_assignment(queue, classes), best)

  def test_initial_state_is_seeded(self):
    classes = unit_rows(np.random.default_rng(3).standard_normal((5, 4)))
    a, b = dl2pa.state_init(classes, 7), dl2pa.state_init(classes, 7)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    np.testing.assert_array_equal(a['assignment'],
                                  dl2pa.solve_assignment(a['queue'], classes))


class UniformityPlacementTest(absltest.TestCase):

  def test_loss_matches_the_reference_formula(self):
    w = np.random.default_rng(5).standard_normal((6, 4)).astype(np.float32)
    p = unit_rows(w)  # Prototype_Estimation.py: l2_norm, then uniform_loss(t=2)
    pdist_sq = [np.sum((p[i] - p[j]) ** 2) for i in range(6) for j in range(i + 1, 6)]
    np.testing.assert_allclose(uniformity.uniform_loss(w),
                               np.log(np.mean(np.exp(-2.0 * np.array(pdist_sq)))),
                               rtol=1e-5)

  def test_reaches_the_simplex_and_is_seeded(self):
    protos = prototypes.place('uniformity', 8, 16, seed=0)
    np.testing.assert_allclose(np.linalg.norm(protos, axis=1), 1.0, rtol=1e-6)
    cos = protos @ protos.T
    off_diagonal = cos[~np.eye(8, dtype=bool)]
    np.testing.assert_allclose(off_diagonal, -1 / 7, atol=1e-4)
    np.testing.assert_array_equal(protos, prototypes.place('uniformity', 8, 16, seed=0))

  def test_batches_of_classes(self):
    # 7 classes in shuffled batches of 3 (a last batch of 1 is skipped): the loss over
    # all classes goes down from the init (epochs=0); one batch is the order-free case.
    kw = dict(seed=1, batch_size=3)
    init = uniformity.uniformity(7, 3, epochs=0, **kw)
    trained = uniformity.uniformity(7, 3, epochs=100, **kw)
    self.assertLess(float(uniformity.uniform_loss(trained)),
                    float(uniformity.uniform_loss(init)) - 0.1)
    np.testing.assert_array_equal(uniformity.uniformity(7, 3, seed=1, epochs=5),
                                  uniformity.uniformity(7, 3, seed=1, epochs=5,
                                                        batch_size=50))


class MemoryAndLossTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(4)
    self.queue = rng.standard_normal((5, 3)).astype(np.float32)
    self.classes = unit_rows(rng.standard_normal((5, 3))).astype(np.float32)
    self.z = rng.standard_normal((4, 3)).astype(np.float32)

  def update(self, z_NxBxD, labels_NxB, mask_NxB):
    """state_update with the batch split over N 'devices' (vmap with an axis name)."""
    fn = jax.vmap(lambda z, l, m: dl2pa.state_update(
        {'queue': self.queue}, z, l, m, 'devices')['queue'], axis_name='devices')
    return np.asarray(fn(z_NxBxD, labels_NxB, mask_NxB))

  def test_memory_update_matches_the_reference(self):
    labels = np.array([3, 0, 4, 1])  # no repeats: the reference's update is defined
    want = ref_forward_momentum(self.queue, self.z, labels)
    got = self.update(self.z[None], labels[None], np.ones((1, 4)))
    np.testing.assert_allclose(got[0], want, rtol=1e-6, atol=1e-7)
    # Split over two devices: the psum-ed class sums give the same memory.
    got2 = self.update(self.z.reshape(2, 2, 3), labels.reshape(2, 2), np.ones((2, 2)))
    np.testing.assert_allclose(got2[0], want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(got2[0], got2[1])

  def test_repeated_labels_use_the_normalised_class_mean_and_masks_drop(self):
    labels = np.array([2, 2, 2, 1])
    mask = np.array([1.0, 1.0, 1.0, 0.0])  # class 1 is padding: only renormalised
    mean = unit_rows(self.z[:3]).sum(0, keepdims=True)
    want = ref_forward_momentum(self.queue, mean, np.array([2]))
    got = self.update(self.z[None], labels[None], mask[None])[0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)

  def test_loss_and_scores_use_the_assigned_prototypes(self):
    assignment = np.array([1, 2, 0, 4, 3], np.int32)
    protos = {'classes': self.classes, 'assignment': assignment}
    labels = np.array([0, 1, 2, 3])
    cos = unit_rows(self.z) @ self.classes[assignment].T  # B x C
    np.testing.assert_allclose(dl2pa.loss(self.z, protos, labels),
                               (1 - cos[np.arange(4), labels]) ** 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dl2pa.scores(self.z, protos), cos, rtol=1e-5, atol=1e-6)
    # A hand case: z on prototype 4, which class 3 owns -> predicted class 3, loss 0.
    z = self.classes[4:5] * 2.0
    self.assertEqual(int(np.argmax(dl2pa.scores(z, protos))), 3)
    self.assertAlmostEqual(float(dl2pa.loss(z, protos, np.array([3]))[0]), 0.0, places=6)

  def test_long_tailed_loss_is_dot_regression_against_ew_weighted_prototypes(self):
    # utils/LT_utils.py: WP = produce_Ew(target) * polars (column c: the prototype
    # assigned to class c), LTloss(feat, WP[:, y].T) = mean_i 1/2 (h.w - |w||h|)^2 / |h|,
    # feat = the normalised output (the reference's BatchNorm is our Dense head).
    assignment = np.array([1, 2, 0, 4, 3], np.int32)
    protos = {'classes': self.classes, 'assignment': assignment}
    labels = np.array([0, 3, 3, 1])
    counts = np.bincount(labels, minlength=5)
    gamma = len(labels) / np.count_nonzero(counts)
    ew = np.where(counts > 0, np.sqrt(gamma / np.maximum(counts, 1)), 1.0)
    w = self.classes[assignment][labels] * ew[labels][:, None]
    h = unit_rows(self.z)
    h_len = np.linalg.norm(h, axis=1)
    want = 0.5 * (np.sum(h * w, 1) - np.linalg.norm(w, axis=1) * h_len) ** 2 / h_len
    got = dl2pa.loss(self.z, protos, labels, loss='dr')
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    self.assertGreater(float(np.max(want)), 1e-3)  # a real case, not all zeros
    with self.assertRaisesRegex(ValueError, "Unknown dl2pa loss 'ce'"):
      dl2pa.loss(self.z, protos, labels, loss='ce')

  def test_objective_state_round_trip(self):
    objective = objectives.Objective(task='classification', method='dl2pa', dim=3,
                                     num_classes=5, hparams=(('momentum', 0.5),))
    self.assertTrue(objective.has_method_state)
    self.assertEqual(objective.method_state_every(89), 89)
    protos = objective.prototypes(self.classes)
    state = objective.init_method_state(protos, seed=0)
    state['queue'] = self.classes[[3, 4, 0, 1, 2]]
    np.testing.assert_array_equal(objective.refresh_method_state(state, protos)
                                  ['assignment'], [3, 4, 0, 1, 2])
    hpn = objectives.Objective(task='classification', method='hpn', dim=3, num_classes=5)
    self.assertFalse(hpn.has_method_state)
    self.assertEqual(hpn.init_method_state(protos, 0), {})
    self.assertEqual(hpn.method_state_every(89), 0)


class EndToEndTest(parameterized.TestCase):
  """6 steps of the tiny digits run, the assignment re-solved every 2 steps."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.ref_dir = tempfile.mkdtemp(prefix='hyperproto_dl2pa_ref_')
    cls.ref = train.train_and_evaluate(dl2pa_config(), cls.ref_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.ref_dir, ignore_errors=True)
    super().tearDownClass()

  def workdir(self):
    return helpers.tmpdir(self, 'hyperproto_dl2pa_')

  @pytest.mark.device
  def test_checkpointed_state(self):
    state = final_method_state(self.ref_dir)
    np.testing.assert_array_equal(np.sort(state['assignment']), np.arange(10))
    np.testing.assert_allclose(np.linalg.norm(state['queue'], axis=1), 1.0, rtol=1e-6)
    # The matching moved classes during the run (4 of 10, measured), so a resume that
    # lost the checkpointed assignment would differ.
    classes, _ = prototypes.load(os.path.join(self.ref_dir, 'prototypes.npy'))
    initial = dl2pa.state_init(classes, dl2pa_config().seed)['assignment']
    self.assertFalse(np.array_equal(initial, state['assignment']))

  @pytest.mark.device
  def test_sigterm_then_resume_is_bitwise_the_uninterrupted_run(self):
    workdir = self.workdir()
    # Interrupted after step 3, between the refreshes of steps 2 and 4.
    with mock.patch.object(parallel, 'map_step', train_test.sigterm_in_train_call(3)):
      with self.assertRaises(train.TrainingInterrupted):
        train.train_and_evaluate(dl2pa_config(checkpoint_every_steps=100), workdir)
    results = train.train_and_evaluate(dl2pa_config(checkpoint_every_steps=100), workdir)
    jax.tree.map(np.testing.assert_array_equal, helpers.final_params(self.ref_dir),
                 helpers.final_params(workdir))
    jax.tree.map(np.testing.assert_array_equal, final_method_state(self.ref_dir),
                 final_method_state(workdir))
    self.assertEqual(results['test/accuracy'], self.ref['test/accuracy'])

  @parameterized.named_parameters(('one_device', dict(num_devices=1)),
                                  ('pmap', dict(parallel='pmap')))
  @pytest.mark.device
  @helpers.needs_devices(8)
  def test_one_device_and_pmap_agree_with_eight_under_shard_map(self, overrides):
    workdir = self.workdir()
    results = train.train_and_evaluate(dl2pa_config(**overrides), workdir)
    ref_state, state = final_method_state(self.ref_dir), final_method_state(workdir)
    np.testing.assert_array_equal(ref_state['assignment'], state['assignment'])
    np.testing.assert_allclose(ref_state['queue'], state['queue'], rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5),
                 helpers.final_params(self.ref_dir), helpers.final_params(workdir))
    self.assertAlmostEqual(results['test/accuracy'], self.ref['test/accuracy'], places=2)

  @pytest.mark.device
  def test_tiny_run_learns(self):
    config = dl2pa_config(num_steps=100, lr=0.002, batch_size=32, log_every_steps=50,
                          checkpoint_every_steps=100, num_devices=1)
    config.model.kwargs.widths = (16, 32)
    config.method_kwargs.dl2pa.refresh_every_steps = 0  # once an epoch (44 steps), theirs
    config.method_kwargs.dl2pa.momentum = 0.9  # theirs
    results = train.train_and_evaluate(config, self.workdir())
    self.assertGreater(results['test/accuracy'], 0.5)  # chance: 0.1


if __name__ == '__main__':
  absltest.main()
