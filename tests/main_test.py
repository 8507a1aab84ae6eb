"""The command line, as a user runs it: overrides, Ctrl-C, and resuming."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
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

  def run_until(self, cmd, ready, sig):
    """Starts `cmd`, waits until `ready()` holds, sends `sig`; returns (rc, stderr)."""
    proc = subprocess.Popen(cmd, env=self.env, cwd=helpers.ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline and proc.poll() is None and not ready():
      time.sleep(0.05)
    self.assertIsNone(proc.poll(), 'the run ended before it could be interrupted')
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=TIMEOUT_S)
    return proc.returncode, err

  def checkpoints(self, workdir):
    directory = os.path.join(workdir, 'checkpoints')
    if not os.path.isdir(directory):
      return []
    return sorted(int(s) for s in os.listdir(directory) if s.isdigit())

  def test_ctrl_c_and_kill_9_then_the_same_command_resumes_bitwise(self):
    def cmd(workdir):  # --deterministic: what a GPU run needs for this; a no-op on CPU.
      return command(workdir, '--config.num_steps=200', '--config.log_every_steps=5',
                     '--config.checkpoint_every_steps=20', '--deterministic')

    straight = os.path.join(self.workdir, 'straight')
    done = subprocess.run(cmd(straight), env=self.env, cwd=helpers.ROOT, text=True,
                          capture_output=True, timeout=TIMEOUT_S)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    self.assertIn('--deterministic: XLA_FLAGS=--xla_gpu_deterministic_ops=true', done.stderr)

    workdir = os.path.join(self.workdir, 'interrupted')
    metrics = os.path.join(workdir, 'metrics.jsonl')
    # Ctrl-C once training is under way: a checkpoint at that step, exit status 130.
    rc, err = self.run_until(
        cmd(workdir), lambda: os.path.exists(metrics)
        and open(metrics).read().count('train/loss') >= 2, signal.SIGINT)
    self.assertEqual(rc, 130, err[-2000:])
    self.assertIn('Run the same command again to resume', err)
    (first,) = self.checkpoints(workdir)
    self.assertBetween(first, 10, 199)  # interrupted mid-run, saved on the signal
    self.assertFalse(os.path.exists(os.path.join(workdir, 'results.json')))
    # The same command resumes; kill -9 after its next periodic checkpoint.
    rc, err = self.run_until(cmd(workdir), lambda: max(self.checkpoints(workdir)) > first,
                             signal.SIGKILL)
    self.assertEqual(rc, -signal.SIGKILL)
    self.assertIn(f'Resuming from step {first} of 200', err)
    second = max(self.checkpoints(workdir))
    self.assertLess(second, 200)
    # And again, to the end: bitwise the uninterrupted run.
    done = subprocess.run(cmd(workdir), env=self.env, cwd=helpers.ROOT, text=True,
                          capture_output=True, timeout=TIMEOUT_S)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    self.assertIn(f'Resuming from step {second} of 200', done.stderr)
    self.assertIn('Final results after 200 steps', done.stdout)
    jax.tree.map(np.testing.assert_array_equal, helpers.final_params(straight),
                 helpers.final_params(workdir))
    results = [json.load(open(os.path.join(w, 'results.json'))) for w in (straight, workdir)]
    for key in ('test/accuracy', 'test/mae', 'test/num_examples'):
      self.assertEqual(results[0][key], results[1][key])
    with open(os.path.join(workdir, 'config.json')) as f:
      self.assertEqual(json.load(f)['batch_size'], 16)  # the override was applied

  def test_a_signal_during_the_set_up_stops_after_the_first_step(self):
    # SLURM's time-limit warning (USR1, from the sbatch script) while JAX still loads.
    def catches_usr1(pid):  # SigCgt: the signals the process has handlers for.
      with open(f'/proc/{pid}/status') as f:
        mask = next(l for l in f if l.startswith('SigCgt:')).split()[1]
      return bool(int(mask, 16) & (1 << (signal.SIGUSR1 - 1)))

    proc = subprocess.Popen(command(self.workdir, '--config.num_steps=200'), env=self.env,
                            cwd=helpers.ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline and not catches_usr1(proc.pid):
      time.sleep(0.01)
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=TIMEOUT_S)
    self.assertEqual(proc.returncode, 130, err[-2000:])
    self.assertIn('Got SIGUSR1 before training started', err)
    self.assertEqual(self.checkpoints(self.workdir), [1])

  def test_bad_override_is_one_readable_line(self):
    done = subprocess.run(command(self.workdir, '--config.batchsize=7'), env=self.env,
                          cwd=helpers.ROOT, text=True, capture_output=True,
                          timeout=TIMEOUT_S)
    self.assertEqual(done.returncode, 1)
    self.assertNotIn('Traceback', done.stderr)
    self.assertIn("--config.batchsize=7: config has no field 'batchsize'; did you mean "
                  'batch_size', done.stderr)
    self.assertFalse(os.path.exists(os.path.join(self.workdir, 'config.json')))


if __name__ == '__main__':
  absltest.main()
