"""Orbax checkpoints of the train state in `workdir/checkpoints`.

The state is one pytree (step, params, BatchNorm statistics, optimiser state, RNG, and a
method's own state such as DL2PA's label-to-prototype assignment); the data position is
a function of the step, so this is all a run needs to resume exactly.
"""

import os
import time
from typing import Any

import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp
from absl import flags
from absl import logging

_ORBAX_BARRIER_FLAG = 'experimental_orbax_use_distributed_barrier'


def _barriers_without_collectives() -> None:
  """Makes Orbax synchronise processes through the JAX distributed client, not with a
  collective over the devices (its default, `sync_global_devices`).

  Orbax runs some of its barriers on a background thread while the training thread
  launches its own computations: on CPU (gloo) collectives are matched by their order
  on each process, so a barrier psum on one process could pair with a training psum on
  another, and both processes then waited forever in the next collective (seen as an
  intermittent hang of the two-process test at its final evaluation). A barrier in the
  coordination service involves no device collective. Applied to multi-process runs, and
  only where the flag has been parsed and the user did not set it.
  """
  flag = flags.FLAGS[_ORBAX_BARRIER_FLAG] if _ORBAX_BARRIER_FLAG in flags.FLAGS else None
  if flag is not None and not flag.present:
    flag.value = True


class Checkpointer:
  """Decides when a run saves (`due`: every `every_steps` steps; the loop also saves at
  the end and on a signal), keeps the newest `max_to_keep`, and restores the newest
  readable checkpoint. Orbax saves whenever asked: its own interval and preemption
  policies are not used, so this class is the one place that times the saves."""

  def __init__(self, directory: str, *, every_steps: int, max_to_keep: int = 2):
    if every_steps < 1:
      raise ValueError(f'checkpoint_every_steps must be >= 1, got {every_steps}.')
    if jax.process_count() > 1:
      _barriers_without_collectives()
    self.every_steps = every_steps
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    self._manager = ocp.CheckpointManager(os.path.abspath(directory), options=options)

  def due(self, step: int) -> bool:
    """Whether `step` is one of the periodic saves."""
    return step % self.every_steps == 0

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def restore(self, state: Any) -> Any:
    """The newest checkpoint restored into `state`'s structure and shardings, or `state`
    itself when there is none. An unreadable checkpoint falls back to the one before."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    unreadable = []
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
      except Exception as e:  # pylint: disable=broad-except
        logging.warning('Checkpoint at step %d is unreadable (%s: %s); trying an older '
                        'one.', step, type(e).__name__, str(e)[:500])
        unreadable.append(step)
        continue
      logging.info('Restored the checkpoint of step %d.', step)
      self._set_aside(unreadable)
      return restored
    if self._manager.all_steps():
      raise RuntimeError(
          f'No checkpoint in {self._manager.directory} could be read. Move the '
          f'directory away to start from scratch.')
    return state

  def _set_aside(self, steps: list[int]) -> None:
    """Moves unreadable checkpoints to `<directory>_unreadable/` (kept for inspection),
    so that the resumed run can save those steps again."""
    if not steps:
      return
    if jax.process_index() == 0:
      directory = os.fspath(self._manager.directory)
      aside = directory.rstrip('/') + '_unreadable'
      os.makedirs(aside, exist_ok=True)
      for step in steps:
        target = os.path.join(aside, f'{step}.{int(time.time())}')
        os.replace(os.path.join(directory, str(step)), target)
        logging.warning('Moved the unreadable checkpoint of step %d to %s.', step, target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices('hyperproto_set_aside_checkpoints')
    self._manager.reload()

  def save(self, step: int, state: Any) -> None:
    """Saves `state` as `step`, whether or not it is `due`. Asynchronous: call `wait`
    before exiting."""
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
