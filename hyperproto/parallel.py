"""Data parallelism: one per-device step, mapped over a 1-D device mesh.

Steps are written per device with collectives over AXIS (`psum` of the summed-loss
gradients and of metric sums, BatchNorm statistics synchronised over it). `map_step`
runs such a step under `jax.jit(jax.shard_map(...))`: state and prototypes replicated,
the batch split along its first axis.
"""

from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = 'batch'


def make_mesh(num_devices: int = 0) -> Mesh:
  """A 1-D mesh over the first `num_devices` devices (0: all)."""
  devices = jax.devices()
  if num_devices:
    if num_devices > len(devices):
      raise ValueError(f'num_devices={num_devices} but only {len(devices)} devices are '
                       f'visible ({devices[0].platform}).')
    devices = devices[:num_devices]
  return Mesh(np.asarray(devices), (AXIS,))


def check_batch_size(batch_size: int, mesh: Mesh, what: str = 'batch_size') -> int:
  """The per-device batch; a clear error when the global batch does not divide."""
  n = mesh.size
  if batch_size <= 0 or batch_size % n:
    raise ValueError(f'{what}={batch_size} is not divisible by the {n} devices: use a '
                     f'multiple of {n} (or set num_devices).')
  return batch_size // n


def replicate(tree: Any, mesh: Mesh) -> Any:
  return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(batch: Any, mesh: Mesh) -> Any:
  """Places a global (host) batch on the mesh, split along the first axis."""
  return jax.device_put(batch, NamedSharding(mesh, P(AXIS)))


def map_step(step: Callable, mesh: Mesh, *, batch_argnums: tuple[int, ...] = (1,),
             num_args: int = 3, donate_argnums: tuple[int, ...] = ()) -> Callable:
  """jit(shard_map(step)): args in `batch_argnums` split over AXIS, others replicated;
  outputs replicated (the step must reduce them with collectives)."""
  in_specs = tuple(P(AXIS) if i in batch_argnums else P() for i in range(num_args))
  mapped = jax.shard_map(step, mesh=mesh, in_specs=in_specs, out_specs=P())
  return jax.jit(mapped, donate_argnums=donate_argnums)
