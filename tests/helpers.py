"""Shared by the tests: a tiny, fast version of the digits config."""

import functools
import os
import re
import shutil
import sys
import tempfile

import jax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from configs import digits  # pylint: disable=g-import-not-at-top,wrong-import-position
from hyperproto import export  # pylint: disable=g-import-not-at-top,wrong-import-position


# Reduced instances of every paper backbone family, for real forward/backward passes and
# training steps: (registry name, input size, kwargs overriding the variant's sizes).
TINY_BACKBONES = {
    'cifar_resnet': ('resnet20', 32, dict(depth=8)),
    'resnet_basic': ('resnet18', 32, dict(stage_sizes=(1, 1, 1, 1), width=8,
                                          pool_size=None)),
    'resnet_bottleneck': ('resnet50', 32, dict(stage_sizes=(1, 1, 1, 1), width=8,
                                               pool_size=None)),
    'densenet': ('densenet121', 32, dict(blocks=(1, 1, 1, 1), growth_rate=4)),
    'vit': ('vit_s4', 16, dict(depth=2, width=32, mlp_dim=64, num_heads=2)),
}


def tmpdir(test, prefix: str = 'hyperproto_test_') -> str:
  """A fresh directory, removed when `test` (a TestCase) ends."""
  path = tempfile.mkdtemp(prefix=prefix)
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def tiny_config(arg: str = '', **overrides):
  """Digits at 16x16, a 2-stage CNN of width 8/16, global batch 16, 6 steps."""
  config = digits.get_config(arg)
  config.data.kwargs.image_size = 16
  config.model.kwargs.widths = (8, 16)
  config.batch_size = 16
  config.num_steps = 6
  config.warmup_epochs = 0.0
  config.log_every_steps = 2
  config.eval_every_steps = 0
  config.checkpoint_every_steps = 2
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def needs_devices(n):
  """Skips the test where fewer than `n` devices are visible (one GPU, say); here the
  tests see 8 CPU devices (conftest.py)."""

  def decorator(test):
    @functools.wraps(test)
    def wrapper(self, *args, **kwargs):
      if jax.device_count() < n:
        self.skipTest(f'needs {n} devices; {jax.device_count()} '
                      f'{jax.default_backend()} device(s) visible')
      return test(self, *args, **kwargs)
    return wrapper

  return decorator


def final_params(workdir):
  """The params of the newest checkpoint in `workdir` (as NumPy arrays)."""
  return jax.device_get(export.load_checkpoint(workdir)[1]['params'])


def workdir_files() -> set[str]:
  """The files docs/training.md says a finished run's workdir holds (its bullet
  '**The workdir** holds ...'): the backticked names with an extension."""
  text = open(os.path.join(ROOT, 'docs', 'training.md'), encoding='utf-8').read()
  bullet = re.search(r'^- \*\*The workdir\*\* holds (.+?)(?=^- |^$)', text, re.M | re.S)
  return set(re.findall(r'`([\w.]+\.\w+)`', bullet.group(1)))
