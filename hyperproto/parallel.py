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


def _put(tree: Any, sharding: NamedSharding) -> Any:
  """Host arrays -> global arrays. Every process holds the same full host values and
  contributes the slices its own devices need, so this works on any number of hosts."""

  def put(x):
    if isinstance(x, jax.Array):
      return jax.device_put(x, sharding)
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree.map(put, tree)


def replicate(tree: Any, mesh: Mesh) -> Any:
  """A copy of `tree` on every device of the mesh."""
  return _put(tree, NamedSharding(mesh, P()))


def shard_batch(batch: Any, mesh: Mesh) -> Any:
  """Places a global (host) batch on the mesh, split along the first axis."""
  return _put(batch, NamedSharding(mesh, P(AXIS)))


def batch_to_devices(batch: Any, mesh: Mesh, kind: str = 'shard_map', *,
                     process_local: bool = False) -> Any:
  """A host batch -> what `map_step(kind)` takes for a batch argument.

  `process_local`: the batch is this process's share of the global batch (streaming
  input, one share per host) rather than the whole global batch (every process holds
  it). shard_map takes global arrays; pmap takes each process's share as NumPy.
  """
  if kind == 'pmap':
    if process_local or jax.process_count() == 1:
      return batch
    i, n = jax.process_index(), jax.process_count()
    return jax.tree.map(lambda x: x[i * (len(x) // n):(i + 1) * (len(x) // n)], batch)
  if process_local:
    sharding = NamedSharding(mesh, P(AXIS))
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)
  return shard_batch(batch, mesh)


MAPPERS = ('shard_map', 'pmap')


def map_step(step: Callable, mesh: Mesh, *, kind: str = 'shard_map',
             batch_argnums: tuple[int, ...] = (1,), num_args: int = 3,
             donate_argnums: tuple[int, ...] = ()) -> Callable:
  """Runs the per-device `step` on every device of the 1-D `mesh`.

  Arguments in `batch_argnums` are global batches split along their first axis over
  AXIS, the others are replicated; outputs are replicated (the step reduces them with
  collectives over AXIS). Both kinds take and return the same global arrays, so the
  trainer, checkpoints and tests do not depend on the kind:
    shard_map  `jax.jit(jax.shard_map(step))` (default);
    pmap       `jax.pmap(step, axis_name=AXIS)` with unmapped (None) state in and out;
               batch arguments are this process's NumPy share (`batch_to_devices`).
  """
  if kind == 'shard_map':
    in_specs = tuple(P(AXIS) if i in batch_argnums else P() for i in range(num_args))
    mapped = jax.shard_map(step, mesh=mesh, in_specs=in_specs, out_specs=P())
    return jax.jit(mapped, donate_argnums=donate_argnums)
  if kind == 'pmap':
    # pmap needs one mapped argument even when the step maps none (data resident on the
    # devices): a dummy of one element per device, dropped before the step.
    in_axes = tuple(0 if i in batch_argnums else None for i in range(num_args)) + (0,)
    mapped = jax.pmap(lambda *args: step(*args[:-1]), axis_name=AXIS, in_axes=in_axes,
                      out_axes=None, devices=list(mesh.devices.flat),
                      donate_argnums=donate_argnums)
    n = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
    dummy = np.zeros(n, np.int32)

    def split(x):  # This process's batch -> (local devices, per-device batch, ...).
      return np.reshape(x, (n, x.shape[0] // n) + x.shape[1:])

    def call(*args):
      return mapped(*(jax.tree.map(split, a) if i in batch_argnums else a
                      for i, a in enumerate(args)), dummy)

    return call
  raise ValueError(f'Unknown parallel mapper {kind!r}; use one of {MAPPERS}.')
