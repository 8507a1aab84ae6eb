"""XLA_FLAGS helpers: the deterministic option added once, a user's choice kept."""

import subprocess
import sys

from absl.testing import absltest

from hyperproto import xla_flags


class XlaFlagsTest(absltest.TestCase):

  def test_deterministic_flag_is_added_once(self):
    self.assertEqual(xla_flags.with_deterministic(''), xla_flags.DETERMINISTIC)
    self.assertEqual(xla_flags.with_deterministic('--a=1'),
                     '--a=1 ' + xla_flags.DETERMINISTIC)
    once = xla_flags.with_deterministic('--a=1')
    self.assertEqual(xla_flags.with_deterministic(once), once)
    for given in ('--xla_gpu_deterministic_ops=false', '--a --xla_gpu_deterministic_ops'):
      self.assertEqual(xla_flags.with_deterministic(given), given)  # the user's choice

  def test_an_option_is_matched_whole(self):
    # A longer option that starts with the same name is another option.
    self.assertEqual(xla_flags.with_flag('--xla_gpu_autotune_level_x=1',
                                         '--xla_gpu_autotune_level=0'),
                     '--xla_gpu_autotune_level_x=1 --xla_gpu_autotune_level=0')
    self.assertEqual(xla_flags.option('--xla_gpu_autotune_level=0'),
                     '--xla_gpu_autotune_level')

  def test_imports_neither_jax_nor_absl_flags(self):
    # main.py, conftest.py and gpu_check.py use it before JAX starts.
    code = ('import sys; from hyperproto import xla_flags; '
            'print(sorted(m for m in ("jax", "absl.flags") if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    self.assertEqual(out.strip(), '[]')


if __name__ == '__main__':
  absltest.main()
