"""Native CPU convolution kernels (csrc/): forward pass and kernel gradient, AVX2/FMA.

On XLA:CPU the kernel gradient of a convolution is the slowest part of a CNN training step;
the direct kernel of csrc/conv_kernel_grad.cc is 1.5-3x faster than the chunked im2col of
`conv.kernel_grad_im2col` on ResNet-32's layers. csrc/conv_forward.cc computes the forward
pass (and, through conv.py, a stride-1 input gradient) faster than XLA's own convolution
on those layers (experiments/benchmark.py --layers). Both are XLA FFI custom calls,
compiled on first use with the system C++ compiler into $HYPERPROTO_KERNEL_CACHE
(default ~/.cache/hyperproto/kernels), keyed by the sources, flags, compiler and JAX
version: about 6 s (one compiler per source, in parallel), once per machine. Nothing is
downloaded.

`available()` is False, and models/conv.py uses its pure-JAX fallback, when JAX's default
backend is not the CPU, the CPU lacks AVX2/FMA, no C++ compiler is found ($CXX, else
c++/g++), or the build fails (logged once, with the compiler's message).
"""

import concurrent.futures
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

CSRC = pathlib.Path(__file__).parent / 'csrc'
SOURCES = (CSRC / 'conv_forward.cc', CSRC / 'conv_kernel_grad.cc')
HEADERS = (CSRC / 'common.h',)
# FFI target name -> the handler symbol the library exports.
TARGETS = {'hyperproto_conv_forward': 'HyperprotoConvForward',
           'hyperproto_conv_kernel_grad': 'HyperprotoConvKernelGrad'}
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
  """Compiles SOURCES (or reuses the cached library); raises RuntimeError on failure."""
  include = jax.ffi.include_dir()
  key = hashlib.sha256(b'\0'.join([
      *(f.read_bytes() for f in SOURCES + HEADERS), ' '.join(FLAGS).encode(),
      cxx.encode(), jax.__version__.encode(), include.encode()])).hexdigest()[:16]
  path = cache_dir() / f'conv_kernels-{key}.so'
  if path.exists():
    return path
  path.parent.mkdir(parents=True, exist_ok=True)
  # Build beside the target, then rename: concurrent processes never see half a file.
  with tempfile.TemporaryDirectory(dir=path.parent) as work:
    objects = [os.path.join(work, f'{source.stem}.o') for source in SOURCES]
    # One compiler per source, in parallel (~5 s each), then the link.
    with concurrent.futures.ThreadPoolExecutor(len(SOURCES)) as pool:
      list(pool.map(lambda source, obj: _compile(cxx, '-isystem', include, '-c',
                                                 str(source), '-o', obj),
                    SOURCES, objects))
    library = os.path.join(work, path.name)
    _compile(cxx, *objects, '-o', library)
    os.replace(library, path)
  return path


def _compile(cxx: str, *args: str) -> None:
  result = subprocess.run([cxx, *FLAGS, *args], capture_output=True, text=True,
                          timeout=300, check=False)
  if result.returncode:
    raise RuntimeError(f'{cxx} failed on {CSRC}:\n{result.stderr[-2000:]}')


@functools.lru_cache(maxsize=None)
def _load() -> bool:
  if jax.default_backend() != 'cpu' or not cpu_supported():
    return False
  cxx = compiler()
  if cxx is None:
    logging.warning('No C++ compiler found ($CXX, c++, g++): convolutions use XLA\'s '
                    'kernels and the slower pure-JAX im2col kernel gradient on this CPU.')
    return False
  try:
    path = build(cxx)
    library = ctypes.cdll.LoadLibrary(str(path))
    for target, symbol in TARGETS.items():
      jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)),
                                  platform='cpu')
  except (RuntimeError, OSError, AttributeError, subprocess.SubprocessError) as e:
    logging.warning('Native convolution kernels unavailable, using XLA\'s convolutions '
                    'and the pure-JAX im2col kernel gradient: %s', e)
    return False
  logging.info('Convolutions on CPU: native AVX2 kernels %s', path)
  return True


def available() -> bool:
  """Whether the kernels can run here (builds and registers them on the first call)."""
  with _lock:
    return _load()


def kernel_grad(x: jax.Array, dy: jax.Array, *, kernel_size: Sequence[int],
                strides: Sequence[int], pads: Sequence[tuple[int, int]]) -> jax.Array:
  """dL/dW (HWIO, float32) of an NHWC convolution; raises RuntimeError if not `available()`.

  x: [B, H, W, Cin]; dy: [B, Ho, Wo, Cout]. Inputs of other float dtypes are converted to
  float32 (exactly, for bfloat16 and float16). The bottom/right padding is implied by
  dy's spatial size.
  """
  kh, kw = kernel_size
  out = jax.ShapeDtypeStruct((kh, kw, x.shape[-1], dy.shape[-1]), jnp.float32)
  return _call('hyperproto_conv_kernel_grad', out, x, dy, strides, pads)


def forward(x: jax.Array, w: jax.Array, *, strides: Sequence[int],
            pads: Sequence[tuple[int, int]]) -> jax.Array:
  """The NHWC convolution of x [B, H, W, Cin] with w [kh, kw, Cin, Cout] (HWIO), float32.

  Cout must be a multiple of 8 and the pads non-negative; inputs of other float dtypes are
  converted to float32. Raises RuntimeError if not `available()`.
  """
  (kh, kw), (sh, sw) = w.shape[:2], strides
  if w.shape[-1] % 8 or any(p < 0 for pad in pads for p in pad):
    raise ValueError(f'forward: needs Cout % 8 == 0 and pads >= 0, got kernel shape '
                     f'{w.shape} and pads {pads}; use lax.conv_general_dilated.')
  ho, wo = ((size + lo + hi - k) // s + 1
            for size, (lo, hi), k, s in zip(x.shape[1:3], pads, (kh, kw), (sh, sw)))
  out = jax.ShapeDtypeStruct((x.shape[0], ho, wo, w.shape[-1]), jnp.float32)
  return _call('hyperproto_conv_forward', out, x, w, strides, pads)


def _call(target: str, out: jax.ShapeDtypeStruct, a: jax.Array, b: jax.Array,
          strides: Sequence[int], pads: Sequence[tuple[int, int]]) -> jax.Array:
  if not available():
    raise RuntimeError(
        'The native convolution kernels are not available here: they need JAX on CPU, an '
        'x86 CPU with AVX2/FMA and a C++ compiler (see the log). Use '
        'lax.conv_general_dilated or hyperproto.models.conv.kernel_grad_im2col instead.')
  (sh, sw), ((pad_top, _), (pad_left, _)) = strides, pads
  call = jax.ffi.ffi_call(target, out, vmap_method='sequential')
  return call(a.astype(jnp.float32), b.astype(jnp.float32), stride_h=np.int64(sh),
              stride_w=np.int64(sw), pad_top=np.int64(pad_top), pad_left=np.int64(pad_left))
