"""Prints an sbatch script and creates its log folder: `python -m hyperproto.slurm --help`.

  python -m hyperproto.slurm --config=configs/digits.py --workdir=/scratch/run \
      --setup='source .venv/bin/activate' > job.sbatch && sbatch job.sbatch
"""

import os
import sys

from absl import app
from absl import flags

from hyperproto import slurm

_TEMPLATE = flags.DEFINE_enum('template', 'process_per_gpu', slurm.TEMPLATES, 'Layout.')
_CONFIG = flags.DEFINE_string('config', None, 'Config file[:arg] of the run.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Workdir of the run (shared filesystem).')
_OVERRIDES = flags.DEFINE_multi_string('override', [], '--config.x=y, repeatable.')
_NODES = flags.DEFINE_integer('nodes', 1, 'Nodes.')
_GPUS = flags.DEFINE_integer('gpus_per_node', 8, 'GPUs per node; 0: CPU nodes (no GRES).')
_TASKS = flags.DEFINE_integer('tasks_per_node', None, 'Processes per node (default: one '
                              'per GPU with process_per_gpu, else 1).')
_CPUS = flags.DEFINE_integer('cpus_per_task', None, f'CPUs per process (default: '
                             f'{slurm.CPUS_PER_GPU} per GPU; none given on CPU nodes).')
_TIME = flags.DEFINE_string('time', '24:00:00', 'Time limit.')
_SIGNAL_LEAD = flags.DEFINE_integer(
    'signal_lead', slurm.SIGNAL_LEAD, 'Seconds before the time limit at which the run '
    'saves a checkpoint and the job requeues itself.')
_JOB_NAME = flags.DEFINE_string('job_name', 'hyperproto', 'Job name (and the log\'s).')
_LOG_DIR = flags.DEFINE_string('slurm_log_dir', None, 'Log folder (default: '
                               'WORKDIR/slurm); created now: SLURM needs it at the start.')
_SETUP = flags.DEFINE_string('setup', '', 'Shell lines before srun (activate a venv).')
_EXTRA = flags.DEFINE_multi_string('sbatch', [], 'Extra #SBATCH options, repeatable.')


def main(argv):
  del argv
  # Absolute paths: the job may be submitted from another directory.
  path, colon, arg = _CONFIG.value.partition(':')
  config = os.path.abspath(path) + colon + arg
  workdir = os.path.abspath(_WORKDIR.value)
  log_dir = os.path.abspath(_LOG_DIR.value or os.path.join(workdir, 'slurm'))
  try:
    script = slurm.render(
        _TEMPLATE.value, config=config, workdir=workdir,
        overrides=_OVERRIDES.value, nodes=_NODES.value, gpus_per_node=_GPUS.value,
        tasks_per_node=_TASKS.value, cpus_per_task=_CPUS.value, time=_TIME.value,
        signal_lead=_SIGNAL_LEAD.value, job_name=_JOB_NAME.value,
        log_dir=log_dir, setup=_SETUP.value, sbatch_extra=_EXTRA.value)
    slurm.make_log_dir(log_dir)
  except ValueError as e:
    sys.exit(f'Error: {e}')
  limit = slurm.time_limit_seconds(_TIME.value)
  if limit is not None and limit - _SIGNAL_LEAD.value < 300:
    print(f'Warning: each attempt gets at most {limit - _SIGNAL_LEAD.value} s, start-up '
          f'included, before the time-limit signal (--time={_TIME.value} minus '
          f'--signal_lead={_SIGNAL_LEAD.value} s; SLURM may send it 30 s sooner): a run '
          f'that starts slowly progresses a step per attempt.', file=sys.stderr)
  for path in slurm.sourced_paths_missing(_SETUP.value):
    print(f'Warning: --setup sources {path}, which does not exist here: the job will '
          f'fail at once unless it exists on the compute nodes.', file=sys.stderr)
  print(script, end='')
  print(f'Log: {log_dir}/{_JOB_NAME.value}-<job id>.out', file=sys.stderr)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main)
