"""Multi-process runs (two real JAX processes on this CPU) and launcher detection (the
sbatch scripts: slurm_test.py)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from unittest import mock

import jax
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import helpers
from hyperproto import distributed

TIMEOUT_S = 300


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def env(num_devices):
  return dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=helpers.ROOT,
              XLA_FLAGS=f'--xla_force_host_platform_device_count={num_devices}')


def run_processes(args, num_processes=2, devices_per_process=2):
  """Starts `python -m ARGS` as processes of one JAX run; returns their stdouts.

  If one process fails, the others (waiting for it in a collective) are killed at once
  and its stderr is raised, rather than the test hanging until TIMEOUT_S.
  """
  port = free_port()
  logs = [(tempfile.TemporaryFile('w+'), tempfile.TemporaryFile('w+'))
          for _ in range(num_processes)]
  procs = [subprocess.Popen(
      [sys.executable, '-m', *args, f'--coordinator_address=localhost:{port}',
       f'--num_processes={num_processes}', f'--process_id={i}'],
      env=env(devices_per_process), cwd=helpers.ROOT, text=True,
      stdout=out, stderr=err) for i, (out, err) in enumerate(logs)]
  deadline = time.monotonic() + TIMEOUT_S
  try:
    while any(p.poll() is None for p in procs):
      failed = [i for i, p in enumerate(procs) if p.poll()]
      if failed or time.monotonic() > deadline:
        for p in procs:
          p.kill()
        i = failed[0] if failed else 0
        logs[i][1].seek(0)
        raise AssertionError(f'process {i} {"failed" if failed else "timed out"}: '
                             f'{logs[i][1].read()[-3000:]}')
      time.sleep(0.1)
    outs = []
    for p, (out, err) in zip(procs, logs):
      err.seek(0)
      if p.returncode:
        raise AssertionError(f'process failed ({p.returncode}): {err.read()[-3000:]}')
      out.seek(0)
      outs.append(out.read())
    return outs
  finally:
    for out, err in logs:
      out.close()
      err.close()


class MultiProcessTest(absltest.TestCase):

  def test_check_devices_sees_every_process(self):
    outs = run_processes(['hyperproto.check_devices'])
    reports = sorted((json.loads(line) for out in outs for line in out.splitlines()
                      if line.startswith('{')), key=lambda r: r['process_index'])
    self.assertEqual([r['process_index'] for r in reports], [0, 1])
    for r in reports:
      self.assertEqual((r['process_count'], r['device_count']), (2, 4))
      self.assertLen(r['local_devices'], 2)
      self.assertEqual(r['psum_over_devices'], 4.0)

  def test_two_processes_train_like_one_with_all_the_devices(self):
    tmp = tempfile.mkdtemp(prefix='hyperproto_mp_')
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
    args = ['hyperproto.main',
            f'--config={os.path.join(helpers.ROOT, "configs", "digits.py")}:runlocal',
            '--config.data.kwargs.image_size=16', '--config.model.kwargs.widths=(8,16)',
            '--config.batch_size=16', '--config.num_steps=6',
            '--config.checkpoint_every_steps=3']
    outs = run_processes(args + [f'--workdir={tmp}/multi'])
    one = subprocess.run([sys.executable, '-m', *args, f'--workdir={tmp}/single'],
                         env=env(4), cwd=helpers.ROOT, text=True, capture_output=True,
                         timeout=TIMEOUT_S)
    self.assertEqual(one.returncode, 0, one.stderr[-3000:])
    # Results are printed and written once, by process 0.
    self.assertEqual(sum('Final results' in out for out in outs), 1)
    results = [json.load(open(os.path.join(tmp, w, 'results.json')))
               for w in ('multi', 'single')]
    self.assertAlmostEqual(results[0]['test/mae'], results[1]['test/mae'], places=3)
    self.assertEqual(results[0]['test/num_examples'], 359)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5),
                 helpers.final_params(os.path.join(tmp, 'multi')),
                 helpers.final_params(os.path.join(tmp, 'single')))


class LauncherDetectionTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('laptop', {}, None),
      ('slurm_one_task', {'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '1'}, None),
      ('slurm', {'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '16'}, 'slurm'),
      ('openmpi', {'OMPI_COMM_WORLD_SIZE': '4'}, 'openmpi'),
      ('explicit', {'JAX_COORDINATOR_ADDRESS': 'node0:1234'}, 'explicit'))
  def test_detects_multi_process_launchers(self, variables, expected):
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(('SLURM_', 'OMPI_', 'JAX_COORDINATOR'))}
    with mock.patch.dict(os.environ, dict(clean, **variables), clear=True):
      self.assertEqual(distributed.multi_process_environment(), expected)
      with mock.patch('jax.distributed.initialize') as init:
        self.assertEqual(distributed.initialize(), expected is not None)
        self.assertEqual(init.called, expected is not None)


if __name__ == '__main__':
  absltest.main()
