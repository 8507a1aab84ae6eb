"""Prints an sbatch script: `python -m hyperproto.slurm --help`."""

from absl import app
from absl import flags

from hyperproto import slurm

_TEMPLATE = flags.DEFINE_enum('template', 'process_per_gpu', slurm.TEMPLATES, 'Layout.')
_CONFIG = flags.DEFINE_string('config', None, 'Config file[:arg] of the run.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Workdir of the run (shared filesystem).')
_OVERRIDES = flags.DEFINE_multi_string('override', [], '--config.x=y, repeatable.')
_NODES = flags.DEFINE_integer('nodes', 1, 'Nodes.')
_GPUS = flags.DEFINE_integer('gpus_per_node', 8, 'GPUs per node.')
_TIME = flags.DEFINE_string('time', '24:00:00', 'Time limit.')
_JOB_NAME = flags.DEFINE_string('job_name', 'hyperproto', 'Job name.')
_SETUP = flags.DEFINE_string('setup', '', 'Shell lines before srun (e.g. activate a venv).')
_EXTRA = flags.DEFINE_multi_string('sbatch', [], 'Extra #SBATCH options, repeatable.')


def main(argv):
  del argv
  print(slurm.render(_TEMPLATE.value, config=_CONFIG.value, workdir=_WORKDIR.value,
                     overrides=_OVERRIDES.value, nodes=_NODES.value,
                     gpus_per_node=_GPUS.value, time=_TIME.value,
                     job_name=_JOB_NAME.value, setup=_SETUP.value,
                     sbatch_extra=_EXTRA.value), end='')


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main)
