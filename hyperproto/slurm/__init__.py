"""sbatch scripts for multi-host runs, rendered from the templates in this folder.

  python -m hyperproto.slurm --template=process_per_gpu --nodes=2 --gpus_per_node=8 \
      --config=configs/digits.py --workdir=/scratch/run > job.sbatch && sbatch job.sbatch

Templates (string.Template, `${name}` fields):
  process_per_gpu   one process per GPU (default; the simplest for JAX on SLURM)
  process_per_node  one process per node with `--local_device_ids` = all its GPUs
Both send SIGTERM 120 s before the time limit and requeue: the run checkpoints on the
signal and the requeued job resumes from the same workdir.
"""

import os
import shlex
import string
from typing import Optional, Sequence

TEMPLATES = ('process_per_gpu', 'process_per_node')


def render(template: str = 'process_per_gpu', *, config: str, workdir: str,
           overrides: Sequence[str] = (), nodes: int = 1, gpus_per_node: int = 8,
           cpus_per_task: Optional[int] = None, time: str = '24:00:00',
           job_name: str = 'hyperproto', log_dir: Optional[str] = None,
           setup: str = '', sbatch_extra: Sequence[str] = (),
           args_from_file: Optional[str] = None) -> str:
  """The sbatch script for one run of `python -m hyperproto.main`.

  Args:
    template: one of TEMPLATES.
    config, workdir, overrides: the run (`--config=...`, `--workdir=...`, and
      `--config.x=y` strings).
    nodes, gpus_per_node, cpus_per_task, time, job_name: the allocation.
    log_dir: where SLURM writes stdout (default: `workdir/slurm`).
    setup: shell lines run before srun (e.g. `source .venv/bin/activate`).
    sbatch_extra: more `#SBATCH` options, e.g. `--partition=gpu`, `--array=0-4`.
    args_from_file: for job arrays: a file with the arguments of one run per line; task
      i of the array runs line i + 1 (config, workdir and overrides then come from it).
  """
  if template not in TEMPLATES:
    raise ValueError(f'Unknown sbatch template {template!r}; use one of {TEMPLATES}.')
  if nodes < 1 or gpus_per_node < 1:
    raise ValueError(f'Need nodes >= 1 and gpus_per_node >= 1, got {nodes}, '
                     f'{gpus_per_node}.')
  if cpus_per_task is None:
    cpus_per_task = 8 if template == 'process_per_gpu' else 8 * gpus_per_node
  log_dir = log_dir or os.path.join(workdir, 'slurm')
  if any(c.isspace() for c in log_dir):
    raise ValueError(f'#SBATCH --output cannot hold whitespace ({log_dir!r}): pass a '
                     f'log_dir (or workdir) without spaces.')
  args = ' '.join(shlex.quote(a) for a in
                  (f'--config={config}', f'--workdir={workdir}', *overrides))
  if args_from_file:
    args = (f'$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" '
            f'{shlex.quote(args_from_file)})')
  with open(os.path.join(os.path.dirname(__file__), f'{template}.sbatch')) as f:
    text = string.Template(f.read())
  return text.substitute(
      job_name=job_name, nodes=nodes, gpus_per_node=gpus_per_node,
      cpus_per_task=cpus_per_task, time=time,
      log_dir=log_dir,
      sbatch_extra='\n'.join(f'#SBATCH {option}' for option in sbatch_extra),
      setup=setup, args=args,
      local_device_ids=','.join(str(i) for i in range(gpus_per_node)))
