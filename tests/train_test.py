"""End to end on tiny rotated digits: outputs, resume, devices, bad input."""

import json
import os
import shutil
import signal
import tempfile
from unittest import mock

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl.testing import absltest
from absl.testing import parameterized

import helpers
from hyperproto import prototypes
from hyperproto.data import base as data_base
from hyperproto import train


def final_params(workdir):
  manager = ocp.CheckpointManager(os.path.join(workdir, 'checkpoints'))
  state = manager.restore(manager.latest_step())
  manager.close()
  return state['params']


def read_jsonl(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


class TrainTest(parameterized.TestCase):

  def workdir(self):
    path = tempfile.mkdtemp(prefix='hyperproto_test_')
    self.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path

  @parameterized.parameters(('joint', 'hpn'), ('classification', 'hpn'),
                            ('regression', 'hpn'), ('joint', 'baseline'))
  def test_end_to_end_outputs(self, task, method):
    workdir = self.workdir()
    results = train.train_and_evaluate(
        helpers.tiny_config(f'task={task},method={method}'), workdir)
    for name in ('config.json', 'metrics.jsonl', 'results.json', 'prototypes.npy'
                 if method == 'hpn' else 'config.json'):
      self.assertTrue(os.path.exists(os.path.join(workdir, name)), name)
    self.assertTrue(any(f.startswith('events.out.tfevents') for f in os.listdir(workdir)))
    self.assertEqual(results['step'], 6)
    self.assertEqual(results['test/num_examples'], 359)  # every test example, once
    if task != 'regression':
      self.assertBetween(results['test/accuracy'], 0.0, 1.0)
    if task != 'classification':
      self.assertBetween(results['test/mae'], 0.0, 120.0)
    lines = read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
    self.assertEqual([l['step'] for l in lines if 'train/loss' in l], [2, 4, 6])
    self.assertTrue(all(np.isfinite(l['train/loss']) for l in lines if 'train/loss' in l))
    if method == 'hpn' and task != 'regression':
      self.assertAlmostEqual(lines[0]['protos/max_cos'], -1 / 9, places=5)

  def test_training_learns(self):
    config = helpers.tiny_config('task=classification', num_steps=100, lr=0.002,
                                 batch_size=32, log_every_steps=25,
                                 checkpoint_every_steps=100)
    config.model.kwargs.widths = (16, 32)
    workdir = self.workdir()
    results = train.train_and_evaluate(config, workdir)
    losses = [l['train/loss'] for l in read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
              if 'train/loss' in l]
    self.assertLen(losses, 4)
    self.assertLess(losses[-1], 0.5 * losses[0])
    self.assertGreater(results['test/accuracy'], 0.5)  # chance: 0.1

  def test_interrupt_and_resume_match_an_uninterrupted_run(self):
    straight, resumed = self.workdir(), self.workdir()
    r_straight = train.train_and_evaluate(helpers.tiny_config(), straight)

    fetch = data_base.Dataset.train_batch

    def sigterm_during_step_3(ds, split, step, *args, **kwargs):
      if step == 2:  # 0-based: the batch of step 3
        os.kill(os.getpid(), signal.SIGTERM)
      return fetch(ds, split, step, *args, **kwargs)

    with mock.patch.object(data_base.Dataset, 'train_batch', sigterm_during_step_3):
      with self.assertRaises(train.TrainingInterrupted) as cm:
        train.train_and_evaluate(helpers.tiny_config(), resumed)
    self.assertEqual(cm.exception.step, 3)
    self.assertFalse(os.path.exists(os.path.join(resumed, 'results.json')))

    r_resumed = train.train_and_evaluate(helpers.tiny_config(), resumed)
    jax.tree.map(np.testing.assert_array_equal, final_params(straight),
                 final_params(resumed))
    self.assertEqual(r_straight['test/accuracy'], r_resumed['test/accuracy'])
    self.assertEqual(r_straight['test/mae'], r_resumed['test/mae'])
    # A finished workdir just re-evaluates.
    again = train.train_and_evaluate(helpers.tiny_config(), resumed)
    self.assertEqual(again['test/mae'], r_resumed['test/mae'])

  def test_one_and_eight_devices_agree(self):
    # The loss is a sum over the global batch: the psum of per-device gradients must give
    # the same update on 1 and 8 devices (a missing or doubled reduction would not).
    one, eight = self.workdir(), self.workdir()
    r1 = train.train_and_evaluate(helpers.tiny_config(num_devices=1), one)
    r8 = train.train_and_evaluate(helpers.tiny_config(num_devices=8), eight)
    self.assertEqual(jax.device_count(), 8)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5),
                 final_params(one), final_params(eight))
    self.assertAlmostEqual(r1['test/mae'], r8['test/mae'], places=2)

  def test_mean_reduction_is_device_invariant_too(self):
    one, eight = self.workdir(), self.workdir()
    kw = dict(loss_reduction='mean', lr=0.5, num_steps=3)
    train.train_and_evaluate(helpers.tiny_config(num_devices=1, **kw), one)
    train.train_and_evaluate(helpers.tiny_config(num_devices=8, **kw), eight)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5),
                 final_params(one), final_params(eight))

  def test_nan_loss_stops_with_the_step_and_keeps_a_good_checkpoint(self):
    workdir = self.workdir()
    config = helpers.tiny_config('task=classification,method=baseline', lr=1e30,
                                 num_steps=20, log_every_steps=1, checkpoint_every_steps=1)
    with self.assertRaisesRegex(FloatingPointError, r'at step \d+'):
      train.train_and_evaluate(config, workdir)
    if os.path.exists(os.path.join(workdir, 'checkpoints')):
      manager = ocp.CheckpointManager(os.path.join(workdir, 'checkpoints'))
      if manager.latest_step() is not None:
        params = manager.restore(manager.latest_step())['params']
        self.assertTrue(all(np.all(np.isfinite(p)) for p in jax.tree.leaves(params)))
      manager.close()

  def test_unknown_task(self):
    with self.assertRaisesRegex(ValueError, "Unknown task 'segmentation'"):
      train.train_and_evaluate(helpers.tiny_config(task='segmentation'), self.workdir())

  def test_wrong_number_of_prototypes_in_workdir(self):
    workdir = self.workdir()
    prototypes.save(os.path.join(workdir, 'prototypes.npy'),
                    prototypes.place('simplex', 8, 9))
    with self.assertRaisesRegex(ValueError, r'Got 8 prototypes .* for 10 classes'):
      train.train_and_evaluate(helpers.tiny_config(), workdir)

  def test_prototype_dim_mismatch_in_workdir(self):
    workdir = self.workdir()
    prototypes.save(os.path.join(workdir, 'prototypes.npy'),
                    prototypes.place('simplex', 10, 12))
    with self.assertRaisesRegex(ValueError, 'Prototype dimension 12 does not match'):
      train.train_and_evaluate(helpers.tiny_config(), workdir)

  def test_unwritable_workdir(self):
    blocker = os.path.join(self.workdir(), 'a_file')
    with open(blocker, 'w') as f:
      f.write('x')
    with self.assertRaisesRegex(PermissionError, 'Cannot write to the workdir'):
      train.train_and_evaluate(helpers.tiny_config(), os.path.join(blocker, 'run'))

  def test_batch_not_divisible_by_devices(self):
    with self.assertRaisesRegex(ValueError, 'batch_size=12 is not divisible by the 8'):
      train.train_and_evaluate(helpers.tiny_config(batch_size=12), self.workdir())


if __name__ == '__main__':
  absltest.main()
