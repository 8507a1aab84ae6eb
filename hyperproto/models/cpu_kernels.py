"""Native CPU kernel for the convolution kernel gradient (csrc/conv_kernel_grad.cc).

On XLA:CPU the kernel gradient of a convolution is the slowest part of a CNN training step;
this direct AVX2 kernel is 1.5-3x faster than the chunked im2col of
`conv.kernel_grad_im2col` on ResNet-32's layers, and as fast as XLA's forward convolution
on the 32x32x16 one (experiments/benchmark.py --layers). It is an XLA FFI custom call,
compiled on first use with the system C++ compiler into $HYPERPROTO_KERNEL_CACHE
(default ~/.cache/hyperproto/kernels), keyed by the source, flags, compiler and JAX
version: about 5 s, once per machine. Nothing is downloaded.

`available()` is False, and models/conv.py uses its pure-JAX fallback, when JAX's default
backend is not the CPU, the CPU lacks AVX2/FMA, no C++ compiler is found ($CXX, else
c++/g++), or the build fails (logged once, with the compiler's message).
"""

import ctypes
import functools
import hashlib
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile
import threading
from typing import Optional, Sequence

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

SOURCE = pathlib.Path(__file__).parent / 'csrc' / 'conv_kernel_grad.cc'
TARGET = 'hyperproto_conv_kernel_grad'
FLAGS = ('-O3', '-mavx2', '-mfma', '-std=c++17', '-shared', '-fPIC')
CACHE_ENV = 'HYPERPROTO_KERNEL_CACHE'
DEFAULT_CACHE = os.path.join('~', '.cache', 'hyperproto', 'kernels')

_lock = threading.Lock()


def cache_dir() -> pathlib.Path:
  return pathlib.Path(os.path.expanduser(os.environ.get(CACHE_ENV) or DEFAULT_CACHE))


def cpu_supported() -> bool:
  """x86-64 with AVX2 and FMA (read from /proc/cpuinfo; other systems: False)."""
  if platform.machine().lower() not in ('x86_64', 'amd64'):
    return False
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      for line in f:
        if line.startswith('flags'):
          flags = set(line.split(':', 1)[1].split())
          return {'avx2', 'fma'} <= flags
  except OSError:
    pass
  return False


def compiler() -> Optional[str]:
  for name in (os.environ.get('CXX'), 'c++', 'g++'):
    path = shutil.which(name) if name else None
    if path:
      return path
  return None


def build(cxx: str) -> pathlib.Path:
  """Compiles SOURCE (or reuses the cached library); raises RuntimeError on failure."""
  include = jax.ffi.include_dir()
  source = SOURCE.read_bytes()
  key = hashlib.sha256(b'\0'.join([
      source, ' '.join(FLAGS).encode(), cxx.encode(), jax.__version__.encode(),
      include.encode()])).hexdigest()[:16]
  path = cache_dir() / f'conv_kernel_grad-{key}.so'
  if path.exists():
    return path
  path.parent.mkdir(parents=True, exist_ok=True)
  # Build beside the target, then rename: concurrent processes never see half a file.
  fd, tmp = tempfile.mkstemp(suffix='.so', dir=path.parent)
  os.close(fd)
  try:
    result = subprocess.run([cxx, *FLAGS, '-isystem', include, str(SOURCE), '-o', tmp],
                            capture_output=True, text=True, timeout=300, check=False)
    if result.returncode:
      raise RuntimeError(f'{cxx} failed on {SOURCE}:\n{result.stderr[-2000:]}')
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return path


@functools.lru_cache(maxsize=None)
def _load() -> bool:
  if jax.default_backend() != 'cpu' or not cpu_supported():
    return False
  cxx = compiler()
  if cxx is None:
    logging.warning('No C++ compiler found ($CXX, c++, g++): the convolution kernel '
                    'gradient uses the slower pure-JAX im2col path on this CPU.')
    return False
  try:
    path = build(cxx)
    library = ctypes.cdll.LoadLibrary(str(path))
    jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(library.HyperprotoConvKernelGrad),
                                platform='cpu')
  except (RuntimeError, OSError, subprocess.SubprocessError) as e:
    logging.warning('Native convolution kernel gradient unavailable, using the pure-JAX '
                    'im2col path: %s', e)
    return False
  logging.info('Convolution kernel gradients on CPU: native AVX2 kernel %s', path)
  return True


def available() -> bool:
  """Whether `kernel_grad` can run here (builds and registers the kernel on first call)."""
  with _lock:
    return _load()


def kernel_grad(x: jax.Array, dy: jax.Array, *, kernel_size: Sequence[int],
                strides: Sequence[int], pads: Sequence[tuple[int, int]]) -> jax.Array:
  """dL/dW (HWIO, float32) of an NHWC convolution; raises RuntimeError if not `available()`.

  x: [B, H, W, Cin]; dy: [B, Ho, Wo, Cout]. Inputs of other float dtypes are converted to
  float32 (exactly, for bfloat16 and float16). The bottom/right padding is implied by
  dy's spatial size.
  """
  if not available():
    raise RuntimeError(
        'The native convolution kernel gradient is not available here: it needs JAX on '
        'CPU, an x86 CPU with AVX2/FMA and a C++ compiler (see the log). Use '
        'hyperproto.models.conv.kernel_grad_im2col instead.')
  (kh, kw), (sh, sw) = kernel_size, strides
  (pad_top, _), (pad_left, _) = pads
  out = jax.ShapeDtypeStruct((kh, kw, x.shape[-1], dy.shape[-1]), jnp.float32)
  call = jax.ffi.ffi_call(TARGET, out, vmap_method='sequential')
  return call(x.astype(jnp.float32), dy.astype(jnp.float32), stride_h=np.int64(sh),
              stride_w=np.int64(sw), pad_top=np.int64(pad_top), pad_left=np.int64(pad_left))
