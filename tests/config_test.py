"""Configs: every declared argument builds; parse_arg converts and rejects clearly."""

import itertools

from absl.testing import absltest
from absl.testing import parameterized
from ml_collections import config_flags

import helpers  # pylint: disable=unused-import  (puts the repo root on sys.path)
from configs import digits
from hyperproto import config_lib


class ParseArgTest(parameterized.TestCase):

  def test_types_and_defaults(self):
    arg = config_lib.parse_arg('dim=3,task=regression,runlocal,lr=0.5', dim=10,
                               task='joint', runlocal=False, lr=0.1)
    self.assertEqual((arg.dim, arg.task, arg.runlocal, arg.lr), (3, 'regression', True,
                                                                 0.5))
    self.assertEqual(config_lib.parse_arg(None, dim=10).dim, 10)
    self.assertEqual(config_lib.parse_arg('runlocal=false', runlocal=True).runlocal,
                     False)

  @parameterized.parameters(('dimm=3', 'Unknown config argument'),
                            ('dim=three', 'is not a int'),
                            ('dim', 'needs a value'),
                            ('runlocal=maybe', 'is not a bool'))
  def test_errors(self, arg, message):
    with self.assertRaisesRegex(ValueError, message):
      config_lib.parse_arg(arg, dim=10, runlocal=False)


class DigitsConfigTest(parameterized.TestCase):

  @parameterized.parameters(itertools.product(
      ('joint', 'classification', 'regression'), ('hpn', 'baseline'), (2, 10, 32),
      (False, True)))
  def test_every_argument_builds(self, task, method, dim, runlocal):
    config = digits.get_config(f'task={task},method={method},dim={dim}'
                               + (',runlocal' if runlocal else ''))
    self.assertEqual((config.task, config.method, config.dim), (task, method, dim))
    if runlocal:
      self.assertEqual(config.num_steps, 20)

  def test_defaults_are_the_demo(self):
    config = digits.get_config()
    self.assertEqual((config.task, config.method, config.dim), ('joint', 'hpn', 10))
    self.assertEqual(config.data.kwargs.max_angle, 60.0)
    self.assertIsNone(config.num_steps)

  def test_schema_is_locked(self):
    config = digits.get_config()
    config.lock()
    with self.assertRaisesRegex(AttributeError, 'Did you mean'):
      config.lrr = 0.1
    config.num_steps = 5  # A placeholder field can be set.
    self.assertEqual(config.num_steps, 5)

  def test_loads_through_config_flags(self):
    # `--config.x=` overrides are exercised through the real CLI in main_test.
    from absl import flags  # pylint: disable=g-import-not-at-top
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file('config', None, '', flag_values=fv, lock_config=True)
    fv(['prog', f'--config={digits.__file__}:task=regression,dim=3'])
    self.assertEqual((fv.config.task, fv.config.dim), ('regression', 3))

if __name__ == '__main__':
  absltest.main()
