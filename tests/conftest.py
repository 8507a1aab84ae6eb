"""Test set-up: 8 virtual CPU devices, so multi-device code runs here as on a GPU node."""

import os

from hyperproto import xla_flags

# On a GPU (experiments/gpu_check.py runs the `device` tests there) XLA's atomics and
# autotuning differ from run to run; the tests that compare runs bitwise need them fixed
# (main.py --deterministic). XLA:CPU is deterministic either way.
os.environ['XLA_FLAGS'] = xla_flags.with_deterministic(
    os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8')
# The CPU, unless JAX_PLATFORMS says otherwise: gpu_check.py sets it to the platforms it
# found (e.g. 'cuda,cpu'), so that the `device` tests run on the GPU or fail loudly.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

from hyperproto import cpu_tuning  # pylint: disable=g-import-not-at-top,wrong-import-position
cpu_tuning.configure()  # As in main.py: the tests run the same XLA:CPU settings.

# Prototype placements and built kernels go to a throw-away directory, not ~/.cache.
import tempfile  # pylint: disable=g-import-not-at-top,wrong-import-position
os.environ.setdefault('HYPERPROTO_CACHE', tempfile.mkdtemp(prefix='hyperproto_cache_'))
# The native CPU kernel (models/cpu_kernels.py) is built there too (~5 s per worker).
os.environ.setdefault('HYPERPROTO_KERNEL_CACHE',
                      os.path.join(os.environ['HYPERPROTO_CACHE'], 'kernels'))

# TFDS's progress bars would fill the logs of every prepare.
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top,wrong-import-position
tfds.disable_progress_bar()


def pytest_collection_modifyitems(items):
  """The SLURM tests first: they mostly wait for the scheduler (about 3 minutes), so with
  `--dist=loadfile` they then overlap with the rest of the suite instead of ending it."""
  items.sort(key=lambda item: item.path.name != 'slurm_test.py')
