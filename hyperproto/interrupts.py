"""Stopping a run on a signal: its exit status, and signals that come during the set-up.

SIGINT (Ctrl-C), SIGTERM (`kill`, SLURM's preemption and cancel) and SIGUSR1 (what the
sbatch scripts pass on before the time limit) make `train.train_and_evaluate` save a
checkpoint after the current step and stop; `python -m hyperproto.main` then exits with
EXIT_STATUS, and running the same command again resumes. This module imports nothing
heavy, so that main.py records SIGTERM and SIGUSR1 from its first line: one that comes
while JAX loads or the data are read then stops the run after its first step, rather
than killing it (every attempt of a requeued job makes progress).
"""

import os
import signal
import threading

from absl import logging

# A run stopped by a signal after saving a checkpoint exits with this status; the sbatch
# scripts requeue a job whose run stopped so at the time limit.
EXIT_STATUS = 130
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
_recorded: list[int] = []


def _record(signum, frame):
  del frame
  if signum == signal.SIGTERM and signum in _recorded:  # A second SIGTERM: stop now.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return
  if signum not in _recorded:
    logging.warning('Got %s during the set-up: stopping after the first step%s.',
                    signal.Signals(signum).name,
                    ' (SIGTERM again stops at once)' if signum == signal.SIGTERM else '')
  _recorded.append(signum)


def record_until_training() -> None:
  """Records SIGTERM and SIGUSR1 until training starts (`take_recorded`). SIGINT, and a
  second SIGTERM, still stop the process at once."""
  if threading.current_thread() is threading.main_thread():
    for sig in (signal.SIGTERM, signal.SIGUSR1):
      signal.signal(sig, _record)


def take_recorded() -> list[int]:
  """The signals recorded so far (then forgotten)."""
  taken = list(_recorded)
  _recorded.clear()
  return taken
