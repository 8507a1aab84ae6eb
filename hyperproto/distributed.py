"""Multi-process (multi-host) start-up: `jax.distributed.initialize` only when needed.

A run is multi-process when SLURM or Open MPI started several tasks, or when the
coordinator is given explicitly (flags or JAX_COORDINATOR_ADDRESS). One process per GPU
(the default of our sbatch templates) needs nothing else; one process per node passes
`local_device_ids` (all GPUs of the node) as the process-per-node template does.
Single-process runs (a laptop, one GPU, `srun -n1`) never call initialize.
"""

import os
from typing import Optional, Sequence

import jax
from absl import flags
from absl import logging


def multi_process_environment() -> Optional[str]:
  """The name of the launcher that started several processes, or None."""
  if int(os.environ.get('SLURM_NTASKS', '1')) > 1 and 'SLURM_JOB_ID' in os.environ:
    return 'slurm'
  if int(os.environ.get('OMPI_COMM_WORLD_SIZE', '1')) > 1:
    return 'openmpi'
  if os.environ.get('JAX_COORDINATOR_ADDRESS'):
    return 'explicit'
  return None


def initialize(coordinator_address: Optional[str] = None,
               num_processes: Optional[int] = None, process_id: Optional[int] = None,
               local_device_ids: Optional[Sequence[int]] = None) -> bool:
  """Calls `jax.distributed.initialize` when this is one process of several.

  Explicit arguments win; otherwise JAX detects SLURM / Open MPI itself. Must run before
  anything touches the devices. Returns whether it initialised.
  """
  explicit = coordinator_address is not None or num_processes is not None
  launcher = 'explicit' if explicit else multi_process_environment()
  if launcher is None:
    return False
  kwargs = {}
  if coordinator_address is not None:
    kwargs['coordinator_address'] = coordinator_address
  if num_processes is not None:
    kwargs['num_processes'] = num_processes
  if process_id is not None:
    kwargs['process_id'] = process_id
  if local_device_ids:
    kwargs['local_device_ids'] = list(local_device_ids)
  logging.info('Multi-process run (%s): jax.distributed.initialize(%s).', launcher,
               kwargs or 'auto-detected')
  jax.distributed.initialize(**kwargs)
  logging.info('Process %d of %d; %d local of %d devices.', jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  return True


def define_flags() -> None:
  """The multi-process flags of our programs (`main`, `check_devices`); SLURM and Open MPI
  are detected without them."""
  flags.DEFINE_string('coordinator_address', None,
                      'host:port of process 0 (multi-process runs; else auto-detected).')
  flags.DEFINE_integer('num_processes', None, 'Number of processes.')
  flags.DEFINE_integer('process_id', None, 'This process.')
  flags.DEFINE_list('local_device_ids', None,
                    'Devices of this process (one process per node).')


def initialize_from_flags() -> bool:
  """`initialize` with the values of `define_flags`' flags."""
  f = flags.FLAGS
  return initialize(f.coordinator_address, f.num_processes, f.process_id,
                    [int(i) for i in f.local_device_ids or []])
