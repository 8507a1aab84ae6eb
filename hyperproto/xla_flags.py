"""XLA_FLAGS: the options this project sets, and how it adds one to a user's string.

XLA reads XLA_FLAGS once, when its backend starts, so whatever sets them runs before
JAX's first operation: `main.py --deterministic`, tests/conftest.py and
experiments/gpu_check.py (each of its measurements with other flags is a process of its
own). This module imports neither JAX nor absl flags, so all three can use it first.
"""

# XLA:GPU reduces with atomics and autotunes kernels in each process; this option leaves
# out the non-deterministic kernels and fixes the choice, so that a run, its repetition
# and its resume are bitwise the same (docs/performance.md#determinism). XLA:CPU is
# deterministic without it, and ignores it.
DETERMINISTIC = '--xla_gpu_deterministic_ops=true'


def option(flag: str) -> str:
  """The option a flag sets: '--xla_gpu_autotune_level=0' -> '--xla_gpu_autotune_level'."""
  return flag.split('=', 1)[0]


def with_flag(xla_flags: str, flag: str) -> str:
  """`xla_flags` with `flag` appended, unless it sets that option already (in any value:
  the user's choice is kept)."""
  if any(option(given) == option(flag) for given in xla_flags.split()):
    return xla_flags
  return f'{xla_flags} {flag}'.strip()


def with_deterministic(xla_flags: str) -> str:
  """`xla_flags` with DETERMINISTIC, unless it sets `--xla_gpu_deterministic_ops`."""
  return with_flag(xla_flags, DETERMINISTIC)
