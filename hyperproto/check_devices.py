"""Prints what each process sees, then checks one collective over all devices.

  srun python -m hyperproto.check_devices      # on a cluster (one line per process)
  python -m hyperproto.check_devices           # here

Use it before a long multi-host run: every process must report the same device count,
and the all-reduce must give the number of devices.
"""

import json

import jax
import numpy as np
from absl import app
from jax.sharding import PartitionSpec as P

from hyperproto import distributed
from hyperproto import parallel


def report() -> dict:
  """This process's view, and the result of a psum of ones over every device."""
  mesh = parallel.make_mesh()
  ones = parallel.shard_batch(np.ones(mesh.size, np.float32), mesh)
  total = jax.jit(jax.shard_map(lambda x: jax.lax.psum(x.sum(), parallel.AXIS), mesh=mesh,
                                in_specs=P(parallel.AXIS), out_specs=P()))(ones)
  return {
      'process_index': jax.process_index(),
      'process_count': jax.process_count(),
      'platform': jax.devices()[0].platform,
      'device_count': jax.device_count(),
      'local_devices': [str(d) for d in jax.local_devices()],
      'psum_over_devices': float(total),
      'ok': float(total) == jax.device_count(),
  }


def main(argv):
  del argv
  distributed.initialize_from_flags()
  print(json.dumps(report()), flush=True)


if __name__ == '__main__':
  distributed.define_flags()
  app.run(main)
