"""sbatch scripts for runs on SLURM, rendered from `job.sbatch` in this folder.

  python -m hyperproto.slurm --nodes=2 --gpus_per_node=8 --config=configs/digits.py \
      --workdir=/scratch/run --setup='source .venv/bin/activate' > job.sbatch
  sbatch job.sbatch

Layouts (`template`):
  process_per_gpu   one process per GPU (default; the simplest for JAX on SLURM)
  process_per_node  one process per node with `--local_device_ids` = all its GPUs
With `gpus_per_node=0` (CPU nodes) no GPU is requested and a node runs `tasks_per_node`
processes (default 1).

The script asks SLURM for USR1 `signal_lead` seconds before the time limit; it passes it
on to the run, which saves a checkpoint and exits with status 130, and then requeues the
job, which resumes from the workdir (the protocol is in job.sbatch's header). Preemption
(SIGTERM to the run) needs no help: SLURM requeues the job itself. Attempts append to one
log in `log_dir`, which must exist before the job starts (SLURM does not create it):
`make_log_dir` creates it, as the command line and `experiments/launch.py` do. Tested on a
real single-node cluster (tests/slurm_test.py).
"""

import os
import re
import shlex
from typing import Optional, Sequence

TEMPLATES = ('process_per_gpu', 'process_per_node')
# The run's warning before the time limit, in seconds. It must cover the step under way
# and a checkpoint save of the largest model we ship: ViT-B/16's train state (0.69 GB with
# SGD momentum) is saved in 3.0-12.7 s on a local disk (2 CPU cores shared with other
# work; `python experiments/checkpoint_time.py`); 120 s leaves room for a shared
# filesystem ten times slower. SLURM may send the signal up to 60 s earlier, never later.
SIGNAL_LEAD = 120
CPUS_PER_GPU = 8
_FIELD = re.compile(r'\{\{(\w+)\}\}')
_TIME = re.compile(r'(?:(\d+)-)?(\d+(?::\d+){0,2})')


def time_limit_seconds(time: str) -> Optional[int]:
  """SLURM's `--time` in seconds (minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S); None for
  no limit (UNLIMITED, INFINITE)."""
  if time.strip().upper() in ('UNLIMITED', 'INFINITE'):
    return None
  match = _TIME.fullmatch(time.strip())
  if not match:
    raise ValueError(f'--time={time!r} is not a SLURM time limit: use minutes, M:S, '
                     f'H:M:S or D-H:M:S.')
  days, rest = match.groups()
  parts = [int(p) for p in rest.split(':')]
  if days is None:  # minutes | minutes:seconds | hours:minutes:seconds
    hours, minutes, seconds = {1: (0, parts[0], 0), 2: (0, *parts), 3: parts}[len(parts)]
  else:  # days-hours[:minutes[:seconds]]
    hours, minutes, seconds = (parts + [0, 0])[:3]
  return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


def render(template: str = 'process_per_gpu', *, config: str, workdir: str,
           overrides: Sequence[str] = (), nodes: int = 1, gpus_per_node: int = 8,
           tasks_per_node: Optional[int] = None, cpus_per_task: Optional[int] = None,
           time: str = '24:00:00', signal_lead: int = SIGNAL_LEAD,
           job_name: str = 'hyperproto', log_dir: Optional[str] = None,
           setup: str = '', sbatch_extra: Sequence[str] = (),
           args_from_file: Optional[str] = None) -> str:
  """The sbatch script for one run (or a job array) of `python -m hyperproto.main`.

  Args:
    template: the layout, one of TEMPLATES.
    config, workdir, overrides: the run (`--config=...`, `--workdir=...`, and
      `--config.x=y` strings).
    nodes, gpus_per_node: the allocation; `gpus_per_node=0` requests no GPU.
    tasks_per_node: processes per node; default: one per GPU (`process_per_gpu`), else 1.
    cpus_per_task: default CPUS_PER_GPU per GPU of the process; on CPU nodes SLURM's
      default (1) unless given.
    time: the time limit (`--time`).
    signal_lead: seconds before the time limit at which the run checkpoints and the job
      requeues itself (SIGNAL_LEAD).
    job_name: `--job-name`, also the log's name.
    log_dir: where the log goes (default `workdir/slurm`); it must exist when the job
      starts: see `make_log_dir`.
    setup: shell lines run before the run (e.g. `source .venv/bin/activate`).
    sbatch_extra: more `#SBATCH` options, e.g. `--partition=gpu`, `--array=0-4`.
    args_from_file: for job arrays: a file with the arguments of one run per line; task
      i of the array runs line i + 1 (config, workdir and overrides then come from it).
  """
  if template not in TEMPLATES:
    raise ValueError(f'Unknown sbatch template {template!r}; use one of {TEMPLATES}.')
  if nodes < 1 or gpus_per_node < 0:
    raise ValueError(f'Need nodes >= 1 and gpus_per_node >= 0, got {nodes}, '
                     f'{gpus_per_node}.')
  per_node = template == 'process_per_node'
  if tasks_per_node is None:
    tasks_per_node = 1 if per_node else max(gpus_per_node, 1)
  if tasks_per_node < 1 or (per_node and tasks_per_node != 1):
    raise ValueError(f'tasks_per_node={tasks_per_node}: need >= 1, and exactly 1 with '
                     f'process_per_node.')
  if cpus_per_task is not None and cpus_per_task < 1:
    raise ValueError(f'cpus_per_task={cpus_per_task}: need >= 1.')
  limit = time_limit_seconds(time)
  if signal_lead < 1 or (limit is not None and signal_lead >= limit):
    raise ValueError(f'signal_lead={signal_lead} s must be positive and shorter than the '
                     f'time limit (--time={time}: {limit} s).')
  log_dir = log_dir or os.path.join(workdir, 'slurm')
  if any(c.isspace() for c in log_dir):
    raise ValueError(f'#SBATCH --output cannot hold whitespace ({log_dir!r}): pass a '
                     f'log_dir (or workdir) without spaces.')
  gpus_per_task = gpus_per_node if per_node else (gpus_per_node and 1)
  if cpus_per_task is None and gpus_per_task:
    cpus_per_task = CPUS_PER_GPU * gpus_per_task
  resources = ''.join(
      f'#SBATCH --{name}={value}\n' for name, value in
      (('gpus-per-node', gpus_per_node or None), ('cpus-per-task', cpus_per_task))
      if value is not None)
  array = bool(args_from_file) or any(o.startswith('--array') for o in sbatch_extra)
  args = ' '.join(shlex.quote(a) for a in
                  (f'--config={config}', f'--workdir={workdir}', *overrides))
  if args_from_file:
    args = (f'$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" '
            f'{shlex.quote(args_from_file)})')
  if per_node and gpus_per_node:
    args += ' --local_device_ids=' + ','.join(str(i) for i in range(gpus_per_node))
  layout = ('one process per node, driving all of its GPUs' if per_node and gpus_per_node
            else 'one process per GPU' if gpus_per_node
            else f'{tasks_per_node} CPU process(es) per node')
  fields = dict(
      layout=layout, job_name=job_name, nodes=nodes, tasks_per_node=tasks_per_node,
      resources=resources, time=time,
      output=os.path.join(log_dir, '%x-%A_%a.out' if array else '%x-%j.out'),
      signal_lead=signal_lead,
      sbatch_extra='\n'.join(f'#SBATCH {option}' for option in sbatch_extra),
      setup=setup, args=args)
  with open(os.path.join(os.path.dirname(__file__), 'job.sbatch')) as f:
    return _FIELD.sub(lambda m: str(fields[m.group(1)]), f.read())


def make_log_dir(log_dir: str) -> str:
  """Creates the folder of the script's `#SBATCH --output` (SLURM does not: a job whose
  log folder is missing fails at launch, with no log); returns its absolute path."""
  path = os.path.abspath(log_dir)
  try:
    os.makedirs(path, exist_ok=True)
    probe = os.path.join(path, f'.write_test.{os.getpid()}')
    with open(probe, 'w'):
      pass
    os.remove(probe)
  except OSError as e:
    raise ValueError(
        f'Cannot write the log folder {path} ({type(e).__name__}: {e.strerror or e}). '
        f'SLURM writes the job\'s log there and the run its workdir next to it: choose '
        f'a --workdir (or --slurm_log_dir) on a filesystem the job\'s nodes can '
        f'write.') from e
  return path


def sourced_paths_missing(setup: str) -> list[str]:
  """The files that `source FILE` / `. FILE` lines of `setup` name and that do not exist
  here (a venv's activate script, say): the job would fail on its first line."""
  missing = []
  for line in setup.splitlines():
    for command in re.split(r'&&|\|\||;', line):
      words = shlex.split(command, comments=True) if command.strip() else []
      if len(words) >= 2 and words[0] in ('source', '.') and '$' not in words[1]:
        path = os.path.expanduser(words[1])
        if not os.path.exists(path):
          missing.append(path)
  return missing
