"""The command line, as a user runs it: overrides, Ctrl-C, and resuming."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from absl.testing import absltest

import helpers

TIMEOUT_S = 240


def command(workdir, *overrides):
  return [sys.executable, '-m', 'hyperproto.main',
          f'--config={os.path.join(helpers.ROOT, "configs", "digits.py")}:runlocal',
          f'--workdir={workdir}', '--config.data.kwargs.image_size=16',
          '--config.model.kwargs.widths=(8,16)', '--config.batch_size=16',
          *overrides]


class MainTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.workdir = tempfile.mkdtemp(prefix='hyperproto_main_')
    self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
    self.env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='',
                    PYTHONPATH=helpers.ROOT)

  def test_ctrl_c_then_the_same_command_resumes(self):
    cmd = command(self.workdir, '--config.num_steps=400',
                  '--config.checkpoint_every_steps=1000')
    proc = subprocess.Popen(cmd, env=self.env, cwd=helpers.ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = os.path.join(self.workdir, 'metrics.jsonl')
    deadline = time.time() + TIMEOUT_S
    # Wait until training is under way (a few train/loss lines), then press Ctrl-C.
    while time.time() < deadline and proc.poll() is None:
      if os.path.exists(metrics) and open(metrics).read().count('train/loss') >= 2:
        break
      time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=TIMEOUT_S)
    self.assertEqual(proc.returncode, 130, err[-2000:])
    self.assertIn('Run the same command again to resume', err)
    steps = sorted(int(s) for s in os.listdir(os.path.join(self.workdir, 'checkpoints'))
                   if s.isdigit())
    self.assertLen(steps, 1)
    self.assertBetween(steps[0], 10, 399)  # interrupted mid-run, saved on the signal
    self.assertFalse(os.path.exists(os.path.join(self.workdir, 'results.json')))

    done = subprocess.run(cmd, env=self.env, cwd=helpers.ROOT, text=True,
                          capture_output=True, timeout=TIMEOUT_S)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    self.assertIn(f'Resuming from step {steps[0]} of 400', done.stderr)
    self.assertIn('Final results after 400 steps', done.stdout)
    with open(os.path.join(self.workdir, 'results.json')) as f:
      results = json.load(f)
    self.assertEqual(results['step'], 400)
    self.assertEqual(results['test/num_examples'], 359)
    with open(os.path.join(self.workdir, 'config.json')) as f:
      self.assertEqual(json.load(f)['batch_size'], 16)  # the override was applied

  def test_bad_override_is_rejected(self):
    done = subprocess.run(command(self.workdir, '--config.lrr=0.1'), env=self.env,
                          cwd=helpers.ROOT, text=True, capture_output=True,
                          timeout=TIMEOUT_S)
    self.assertNotEqual(done.returncode, 0)
    self.assertIn('Did you mean', done.stderr)


if __name__ == '__main__':
  absltest.main()
