"""A child process with a time limit: a signal to stop it, a grace period, then SIGKILL.

One helper for the two scripts that stop their children at a deadline, each with the
signal its child handles: gpu_check.py (each part; SIGINT, so that pytest still reports
what it ran) and run_list.py (each training cell; SIGTERM, so that the trainer saves a
checkpoint and stops).
"""

import os
import signal
import subprocess
from typing import Any, Optional


def _signal_group(pid: int, signum: int) -> None:
  try:
    os.killpg(pid, signum)
  except ProcessLookupError:  # The whole group is gone already.
    pass


def run(cmd: list[str], limit_s: float, *, stop_signal: int, grace_s: float,
        **popen_kwargs: Any) -> Optional[int]:
  """Runs `cmd` until it exits or `limit_s` seconds pass, then stops it.

  The child runs in a session of its own, so the signals reach its whole process group
  (grain's workers, pytest's). At the limit it gets `stop_signal`, and SIGKILL `grace_s`
  seconds later if it is still there; if this process is interrupted while waiting, the
  group is killed at once (no orphans on a GPU the next part needs).

  Args:
    cmd: the command.
    limit_s: seconds before `stop_signal` (at least 1).
    stop_signal: the signal that asks the child to stop (signal.SIGINT, SIGTERM).
    grace_s: seconds between it and SIGKILL.
    **popen_kwargs: for subprocess.Popen (stdout, env, cwd, text, ...).

  Returns:
    The child's exit status, or None if it was stopped at the limit.
  """
  proc = subprocess.Popen(cmd, start_new_session=True, **popen_kwargs)
  try:
    try:
      return proc.wait(timeout=max(limit_s, 1.0))
    except subprocess.TimeoutExpired:
      pass
    _signal_group(proc.pid, stop_signal)
    try:
      proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
      _signal_group(proc.pid, signal.SIGKILL)
      proc.wait()
    return None
  except BaseException:
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()
    raise
