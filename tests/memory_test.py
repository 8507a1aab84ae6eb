"""The memory check before a placement allocates (memory.py). About 12 s, most of it two
fresh processes (the CLI; a measured peak)."""

import json
import os
import resource
import subprocess
import sys
from unittest import mock

from absl.testing import absltest

from hyperproto import prototypes
from hyperproto.prototypes import memory

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EstimateTest(absltest.TestCase):

  def test_output_and_exact_codes(self):
    e = memory.estimate('auto', 1_050_624, 1024, certify=True)
    self.assertEqual(e.resolved, 'kerdock')
    self.assertEqual(e.output, 1_050_624 * 1024 * 4)  # 4.3 GB, nothing copied.
    self.assertLess(e.total, 1.03 * e.output)
    e = memory.estimate('auto', 10**7, 4096, certify=True)
    self.assertEqual(e.output, 10**7 * 4096 * 4)  # 164 GB.
    self.assertGreater(e.total, e.output)
    # An optimiser's C x C arrays grow with C^2 and the restarts.
    small, large = (memory.estimate('separation', c, 16).total for c in (1000, 4000))
    self.assertGreater(large, 3 * small)
    self.assertGreater(memory.estimate('separation', 4000, 16, restarts=8).total, large)

  def test_estimate_against_the_measured_peak(self):
    # The optimiser (4 restarts, C x C arrays) placed and certified in a fresh process
    # (experiments/memory_table.py): the estimate is not below the measured peak and
    # at most 2x it (docs/placement.md#memory). Linux only (/proc/self/clear_refs).
    if not os.access('/proc/self/clear_refs', os.W_OK):
      self.skipTest('needs /proc/self/clear_refs (Linux) to reset the peak')
    cell = json.dumps(['separation', 1000, 64, {'steps': 20}])
    done = subprocess.run(
        [sys.executable, 'experiments/memory_table.py', f'--cell={cell}'],
        capture_output=True, text=True, cwd=REPO, check=True,
        env=dict(os.environ, PYTHONPATH=REPO))
    m = json.loads(done.stdout.strip().splitlines()[-1])
    self.assertGreater(m['measured'], 10**7)
    self.assertLessEqual(m['measured'], m['estimate'])
    self.assertLessEqual(m['estimate'], 2 * m['measured'])


class CheckTest(absltest.TestCase):

  def test_impossible_request_fails_before_allocating(self):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with self.assertRaises(memory.NotEnoughMemory) as caught:
      prototypes.place('auto', 10**7, 4096)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KiB
    self.assertLess(grown, 100 * 1024)  # Nothing of the 164 GB was allocated.
    message = str(caught.exception)
    self.assertIn('Placing 10,000,000 prototypes in dim=4096', message)
    self.assertRegex(message, r'needs about [\d.]+ TB of memory \(the output \(float32\) '
                     '164 GB')
    self.assertRegex(message, r'is available \((MemAvailable|HYPERPROTO|the cgroup)')
    self.assertIn("Alternatives that fit: method='kerdock' with dim=1024", message)
    self.assertIn('num_classes <= ', message)
    self.assertIsInstance(caught.exception, MemoryError)

  def test_limit_from_the_environment(self):
    with mock.patch.dict(os.environ, {memory.LIMIT_ENV: '2G'}):
      self.assertEqual(memory.available(), (2 << 30, 'HYPERPROTO_MEMORY_LIMIT=2G'))
      with self.assertRaisesRegex(memory.NotEnoughMemory, 'needs about'):
        memory.check('separation', 20_000, 512)  # Above LARGE_C: neighbour lists.
      memory.check('separation', 1000, 64)  # Fits: no error.
    with mock.patch.dict(os.environ, {memory.LIMIT_ENV: 'off'}):
      self.assertIsNone(memory.available()[0])
      memory.check('auto', 10**7, 4096)  # Not checked.
    with mock.patch.dict(os.environ, {memory.LIMIT_ENV: 'lots'}):
      with self.assertRaisesRegex(ValueError, 'is not a size'):
        memory.available()

  def test_detected_memory(self):
    with mock.patch.dict(os.environ, {memory.LIMIT_ENV: ''}):
      room, source = memory.available()
    self.assertGreater(room, 0)
    self.assertRegex(source, 'MemAvailable|cgroup')

  def test_cli_prints_one_line_and_exits_1(self):
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu')
    env.pop(memory.LIMIT_ENV, None)
    done = subprocess.run([sys.executable, '-m', 'hyperproto.prototypes',
                           '--num_classes=10000000', '--dim=4096', '--method=auto',
                           '--output=/tmp/never-written.npy'],
                          capture_output=True, text=True, env=env, cwd=REPO, check=False)
    self.assertEqual(done.returncode, 1)
    self.assertIn('error: Placing 10,000,000 prototypes', done.stderr)
    self.assertNotIn('Traceback', done.stderr)
    self.assertFalse(os.path.exists('/tmp/never-written.npy'))


if __name__ == '__main__':
  absltest.main()
