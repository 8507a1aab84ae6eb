"""Checkpointer: restores the newest checkpoint, or the one before if that is broken."""

import os
import shutil
import tempfile

import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from hyperproto import checkpointing


def state(step):
  return {'step': jnp.asarray(step, jnp.int32), 'w': jnp.full((3,), float(step))}


class CheckpointerTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = os.path.join(tempfile.mkdtemp(prefix='hyperproto_ckpt_'), 'checkpoints')
    self.addCleanup(shutil.rmtree, os.path.dirname(self.dir), ignore_errors=True)

  def save_steps(self, steps, max_to_keep=3):
    ckpt = checkpointing.Checkpointer(self.dir, every_steps=1, max_to_keep=max_to_keep)
    for step in steps:
      ckpt.save(step, state(step))
    ckpt.wait()
    ckpt.close()

  def restore(self):
    ckpt = checkpointing.Checkpointer(self.dir, every_steps=1)
    self.addCleanup(ckpt.close)
    return ckpt.restore(state(0))

  def test_restores_the_newest(self):
    self.save_steps([1, 2, 3])
    restored = self.restore()
    self.assertEqual(int(restored['step']), 3)
    np.testing.assert_array_equal(restored['w'], [3.0, 3.0, 3.0])

  def test_keeps_max_to_keep(self):
    self.save_steps([1, 2, 3], max_to_keep=2)
    self.assertEqual(sorted(os.listdir(self.dir)), ['2', '3'])

  def test_unreadable_newest_falls_back_and_is_set_aside(self):
    self.save_steps([1, 2])
    for root, _, files in os.walk(os.path.join(self.dir, '2')):
      for name in files:
        open(os.path.join(root, name), 'w').close()
    with self.assertLogs(level='WARNING'):
      restored = self.restore()
    self.assertEqual(int(restored['step']), 1)
    self.assertEqual(os.listdir(self.dir), ['1'])
    self.assertLen(os.listdir(self.dir + '_unreadable'), 1)

  def test_due_every_n_steps_and_saves_whenever_asked(self):
    ckpt = checkpointing.Checkpointer(self.dir, every_steps=3)
    self.addCleanup(ckpt.close)
    self.assertEqual([s for s in range(1, 10) if ckpt.due(s)], [3, 6, 9])
    for step in (1, 3, 4):  # 1 and 4 are not due: saved all the same (the loop's end,
      ckpt.save(step, state(step))  # a signal).
    ckpt.wait()
    self.assertEqual(sorted(os.listdir(self.dir)), ['3', '4'])  # max_to_keep=2
    with self.assertRaisesRegex(ValueError, 'checkpoint_every_steps must be >= 1'):
      checkpointing.Checkpointer(self.dir, every_steps=0)

  def test_no_checkpoint_returns_the_given_state(self):
    self.assertEqual(int(self.restore()['step']), 0)


if __name__ == '__main__':
  absltest.main()
