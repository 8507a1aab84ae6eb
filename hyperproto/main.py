"""Command-line entry point.

  python -m hyperproto.main --config=configs/digits.py:task=joint --workdir=/tmp/run \
      [--config.lr=0.05 ...]

Re-running the same command on an existing workdir resumes from its newest checkpoint.
SIGINT (Ctrl-C), SIGTERM or SIGUSR1 saves a checkpoint and exits with status 130
(`interrupts.EXIT_STATUS`): run the same command again to resume.
"""

import logging as std_logging
import os
import sys

from hyperproto import interrupts
from hyperproto import xla_flags

if __name__ == '__main__':  # Before JAX loads (seconds): see interrupts.py.
  interrupts.record_until_training()

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from hyperproto import config_lib
from hyperproto import cpu_tuning
from hyperproto import distributed
from hyperproto import train

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file, optionally with `:arg` (see the config docstring).',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Directory for checkpoints, metrics and results (resumed if it '
    'holds a checkpoint).')
flags.mark_flags_as_required(['config', 'workdir'])
_DETERMINISTIC = flags.DEFINE_bool(
    'deterministic', False, 'GPU: every op deterministic (XLA_FLAGS gets '
    '--xla_gpu_deterministic_ops=true, before JAX starts), so that a run, its repetition '
    'and its resume after an interruption are bitwise the same, at some cost in speed. '
    'XLA:CPU is deterministic already. See docs/performance.md#determinism.')
distributed.define_flags()  # Multi-process runs (see distributed.py).

class _QuietOrbax(std_logging.Filter):
  """Orbax logs every checkpoint step at INFO; keep its warnings and errors only."""

  def filter(self, record):
    return record.levelno >= std_logging.WARNING or '/orbax/' not in record.pathname


def parse_flags(argv):
  """absl's flag parsing, with a misspelt `--config.FIELD=` answered in one line
  (the field, the nearest ones) instead of ml_collections' chained traceback."""
  try:
    return app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError):
    problem = config_lib.override_error(argv)
    if problem is None:
      raise
    print(f'FATAL Flags parsing error: {problem}', file=sys.stderr)
    sys.exit(1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_QuietOrbax())
  if _DETERMINISTIC.value:  # Before JAX starts, like the CPU settings.
    os.environ['XLA_FLAGS'] = xla_flags.with_deterministic(os.environ.get('XLA_FLAGS', ''))
    logging.info('--deterministic: XLA_FLAGS=%s', os.environ['XLA_FLAGS'])
  tuned = cpu_tuning.configure()  # Before JAX starts (see cpu_tuning.py).
  if tuned:
    logging.info('XLA:CPU settings: %s', '; '.join(tuned))
  distributed.initialize_from_flags()
  logging.info('JAX process %d of %d; local devices: %s', jax.process_index(),
               jax.process_count(), jax.local_devices())
  try:
    results = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except train.TrainingInterrupted as e:
    logging.warning('%s', e)
    print(e, file=sys.stderr)
    sys.exit(interrupts.EXIT_STATUS)
  summary = ', '.join(f'{k} = {v:.4f}' for k, v in results.items()
                      if isinstance(v, float) and '/' in k)
  has_mae = any(k.endswith('/mae') for k in results)
  unit = results.get('target_unit') if has_mae else None
  if jax.process_index() != 0:
    return
  print(f'Final results after {results["step"]} steps: {summary}'
        + (f' (mae in {unit})' if unit else '') + f'. Workdir: {_WORKDIR.value}')


if __name__ == '__main__':
  jax.config.config_with_absl()
  app.run(main, flags_parser=parse_flags)
