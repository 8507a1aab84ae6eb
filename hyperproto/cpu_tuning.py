"""Process-level settings that make XLA:CPU training faster; call `configure()` first.

Both settings must be in place before JAX starts its CPU client (the first JAX operation),
so `main.py`, the benchmark and the tests call `configure()` before anything else. Each was
measured on the ResNet-32 training step (batch 128, 2-core AMD EPYC; numbers in
experiments/results/benchmark.md):

1. XLA flag `--xla_cpu_experimental_ynn_fusion_type=reduce`. By default this jaxlib hands
   convolutions, dots and elementwise fusions to YNNPACK, whose convolutions are slower
   here than XLA's Eigen/oneDNN ones and split elementwise fusions; reductions stay on
   YNNPACK (XLA's own large reductions become slow reduce-windows). Added only for the
   jaxlib versions it was measured on (an unknown XLA flag aborts the process) and only
   if XLA_FLAGS does not already choose the YNNPACK fusions.
2. glibc malloc: one arena, no mmap for large blocks, no trimming. XLA allocates each
   step's temporaries (~0.5 GB here) fresh; with glibc's defaults these come from mmap and
   go back to the OS on free, so every step page-faults them in again (140k faults and
   0.3-0.4 s of kernel time per ResNet-32 step). The cost: the process keeps its peak heap.
   Skipped when a GPU/TPU plugin is installed (unless JAX_PLATFORMS=cpu) and off Linux.

HYPERPROTO_CPU_TUNING=0 turns both off.
"""

import ctypes
import importlib.util
import os
import sys

from absl import logging

from hyperproto import xla_flags

YNN_FLAG = '--xla_cpu_experimental_ynn_fusion_type=reduce'
# jaxlib versions the flag exists in and was measured with (prefix match).
YNN_FLAG_VERSIONS = ('0.10.',)
_ACCELERATOR_PLUGINS = ('jax_cuda12_plugin', 'jax_cuda13_plugin', 'jax_rocm7_plugin',
                        'libtpu')
# mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -2, -4, -8

_done = False


def configure() -> list[str]:
  """Applies the settings once (idempotent); returns what it applied, for the log."""
  global _done
  if _done or os.environ.get('HYPERPROTO_CPU_TUNING', '1') == '0':
    return []
  _done = True
  if 'jax' in sys.modules and _backend_started():
    logging.warning('cpu_tuning.configure() ran after JAX started; nothing applied.')
    return []
  applied = []
  if _set_xla_flag():
    applied.append(YNN_FLAG)
  if _cpu_only() and _tune_malloc():
    applied.append('malloc: one arena, no mmap, no trim')
  return applied


def _backend_started() -> bool:
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  return bool(getattr(xla_bridge, '_backends', None))


def _set_xla_flag() -> bool:
  flags = os.environ.get('XLA_FLAGS', '')
  with_ynn = xla_flags.with_flag(flags, YNN_FLAG)
  if with_ynn == flags:  # The user's XLA_FLAGS choose the YNNPACK fusions already.
    return False
  try:
    from importlib.metadata import version  # pylint: disable=g-import-not-at-top
    jaxlib_version = version('jaxlib')
  except Exception:  # pylint: disable=broad-except
    return False
  if not jaxlib_version.startswith(YNN_FLAG_VERSIONS):
    return False
  os.environ['XLA_FLAGS'] = with_ynn
  return True


def _cpu_only() -> bool:
  platforms = os.environ.get('JAX_PLATFORMS', '')
  if platforms:
    return platforms.strip().lower() == 'cpu'
  return not any(importlib.util.find_spec(p) for p in _ACCELERATOR_PLUGINS)


def _tune_malloc() -> bool:
  if not sys.platform.startswith('linux'):
    return False
  try:
    libc = ctypes.CDLL('libc.so.6')
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1),
                (_M_TOP_PAD, 256 << 20))
    return all(libc.mallopt(option, value) == 1 for option, value in settings)
  except (OSError, AttributeError):  # Not glibc (e.g. musl): leave malloc alone.
    return False
