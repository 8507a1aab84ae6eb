"""`conv_general_dilated` with native CPU kernels and gradients; a drop-in for `nn.Conv`.

Why: XLA:CPU's convolutions leave most of a CNN training step's time on the table. Worst
is the gradient with respect to the kernel, which XLA rewrites as a convolution over the
batch (batch as the contracted feature dimension): both the input and the output gradient
are transposed to batch-minor layouts, then a convolution with a huge kernel runs
(ResNet-32, batch 128, jaxlib 0.10.2: 2/3 of the step's thread time; one 32x32x16 3x3
conv's kernel gradient took ~37 ms against ~6 ms for its forward pass). The forward pass
and the input gradient are better, but the 3-channel stem conv takes 5-8x longer than
needed and the others up to 1.7x (`experiments/benchmark.py --layers`).

What, on CPU (`lax.platform_dependent`: on GPU and TPU everything is XLA's own, so cuDNN
and the TPU convolution units are untouched):
- forward pass: `cpu_kernels.forward`, a direct AVX2 convolution (XLA FFI custom call),
  for float32 with Cout % 8 == 0; XLA's otherwise (e.g. bfloat16).
- input gradient: for stride 1, the forward kernel on dY with the kernel flipped in space
  and its channel axes swapped (dX = conv(dY, W'), pads k - 1 - p); XLA's otherwise.
- kernel gradient, dW[i,j] = sum x_shifted(i,j)^T dY over (batch, y, x), never by
  transposing to batch-minor layouts: `cpu_kernels.kernel_grad` (AVX2, float32 after an
  exact cast) or, where the native kernels do not build, `kernel_grad_im2col` (pure JAX:
  im2col(x)^T @ dY in chunks of a few images, so each chunk's im2col stays in cache,
  accumulated in float32 by a `lax.scan`).
The native kernels need x86 with AVX2/FMA and a C++ compiler (cpu_kernels.py); each
output is summed in a fixed order, so results are the same bits on any number of cores.
Measurements (`experiments/benchmark.py --ablation` and `--layers`) are in
experiments/results/benchmark.md.

HYPERPROTO_CPU_CONV (read at import): 'native' (default: all of the above), 'native_dw'
(only the kernel gradient native), 'im2col' (only the kernel gradient, by im2col) or
'xla' (XLA's convolutions and gradients everywhere).

Scope: NHWC inputs, HWIO kernels, no dilation, one feature group, explicit or 'SAME' /
'VALID' padding. Anything else falls through to `lax.conv_general_dilated` unchanged.

  nn.Conv(..., conv_general_dilated=conv.conv_general_dilated)
"""

import functools
import os
from typing import Any, Optional, Sequence, Union

import jax
from jax import lax
import jax.numpy as jnp

from hyperproto.models import cpu_kernels

NHWC = ('NHWC', 'HWIO', 'NHWC')
# Bytes of one chunk's im2col matrix (float32): small enough to stay in a core's L2/L3
# slice, large enough that the matrix product is efficient. Chunks of 2-8 images were
# fastest for ResNet-32's layers on a 2-core AMD EPYC (4 at 32x32x16).
CHUNK_BYTES = 2_500_000

# HYPERPROTO_CPU_CONV, see the module docstring. The native modes use im2col for the
# kernel gradient and XLA for the rest where the native kernels do not build.
MODE = os.environ.get('HYPERPROTO_CPU_CONV', 'native')
MODES = ('native', 'native_dw', 'im2col', 'xla')
if MODE not in MODES:
  raise ValueError(f'HYPERPROTO_CPU_CONV={MODE!r}: expected one of {MODES}.')
if 'HYPERPROTO_CPU_KERNEL_GRAD' in os.environ:  # The old name: never silently ignored.
  raise ValueError('HYPERPROTO_CPU_KERNEL_GRAD was replaced by HYPERPROTO_CPU_CONV '
                   f'(one of {MODES}; the old native, im2col and 0 are now native_dw, '
                   'im2col and xla): unset it.')
ENABLED = MODE != 'xla'

Padding = Union[str, Sequence[tuple[int, int]]]


def conv_general_dilated(lhs, rhs, window_strides: Sequence[int], padding: Padding,
                         lhs_dilation: Optional[Sequence[int]] = None,
                         rhs_dilation: Optional[Sequence[int]] = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1,
                         batch_group_count: int = 1, precision: Any = None,
                         preferred_element_type: Any = None):
  """`lax.conv_general_dilated`, with the CPU kernels of `_conv` where they apply."""
  supported = (
      ENABLED and lhs.ndim == 4 and dimension_numbers is not None
      and (lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
           == lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC))
      and not _dilated(lhs_dilation) and not _dilated(rhs_dilation)
      and feature_group_count == 1 and batch_group_count == 1
      and preferred_element_type is None)
  if supported:
    pads = (lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
            if isinstance(padding, str) else padding)
    pads = tuple((int(lo), int(hi)) for lo, hi in pads)
    supported = all(lo >= 0 and hi >= 0 for lo, hi in pads)
  if not supported:
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count, batch_group_count=batch_group_count,
        precision=precision, preferred_element_type=preferred_element_type)
  return _conv(lhs, rhs, tuple(int(s) for s in window_strides), pads, precision)


def padded_input_channels(channels: int):
  """`conv_general_dilated` with the input's channels and the kernel's input channels
  zero-padded to `channels` (NHWC / HWIO): the same convolution, parameters and
  gradients, given to the convolution library in another shape.

  Why: a 3-channel (RGB) first convolution is a shape GPU kernels handle badly (tensor
  cores want channels in multiples of 8 for 16-bit types), so frameworks pad it to 4 or 8.
  The zeros contribute exact zeros to every sum; the result differs from the unpadded
  convolution only by the order the library sums in. The kernel parameter keeps its
  shape (the pad's gradient is a slice), so checkpoints are interchangeable.
  """

  def conv(lhs, rhs, *args, dimension_numbers: Any = None, **kwargs):
    if (lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        != lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC)):
      raise ValueError(f'padded_input_channels needs NHWC / HWIO convolutions, got '
                       f'{dimension_numbers}.')
    extra = channels - lhs.shape[-1]
    if extra < 0:
      raise ValueError(f'Cannot pad {lhs.shape[-1]} input channels to {channels}: pad '
                       f'to at least as many as there are.')
    lhs = jnp.pad(lhs, ((0, 0), (0, 0), (0, 0), (0, extra)))
    rhs = jnp.pad(rhs, ((0, 0), (0, 0), (0, extra), (0, 0)))
    return conv_general_dilated(lhs, rhs, *args, dimension_numbers=dimension_numbers,
                                **kwargs)

  return conv


def _dilated(dilation: Optional[Sequence[int]]) -> bool:
  return dilation is not None and any(d != 1 for d in dilation)


def _xla_conv(x, w, strides, pads, precision):
  return lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=NHWC,
                                  precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv(x, w, strides, pads, precision):
  return _forward(x, w, strides, pads, precision)


def _conv_fwd(x, w, strides, pads, precision):
  return _forward(x, w, strides, pads, precision), (x, w)


def _conv_bwd(strides, pads, precision, residuals, dy):
  x, w = residuals
  return (_input_grad(x, w, dy, strides, pads, precision),
          _kernel_grad(x, w, dy, strides, pads, precision))


_conv.defvjp(_conv_fwd, _conv_bwd)


def _native(*arrays) -> bool:
  """Whether the native forward kernel may run on these (float32) arrays."""
  return (MODE == 'native' and all(a.dtype == jnp.float32 for a in arrays)
          and cpu_kernels.available())


def _forward(x, w, strides, pads, precision):
  xla = functools.partial(_xla_conv, strides=strides, pads=pads, precision=precision)
  if not (_native(x, w) and w.shape[-1] % 8 == 0):
    return xla(x, w)

  def cpu(x, w):
    return _vary_like(cpu_kernels.forward(x, w, strides=strides, pads=pads), x, w)

  return lax.platform_dependent(x, w, cpu=cpu, default=xla)


def _input_grad(x, w, dy, strides, pads, precision):
  def xla(w, dy):
    _, vjp_x = jax.vjp(lambda x: _xla_conv(x, w, strides, pads, precision), x)
    return vjp_x(dy)[0]

  kernel = w.shape[:2]
  # For stride 1 the input gradient is a convolution of dy with w flipped in space and
  # its channel axes swapped, padded k - 1 - p (which must be >= 0) on each side.
  flipped_pads = tuple((k - 1 - lo, k - 1 - hi) for (lo, hi), k in zip(pads, kernel))
  if not (_native(w, dy) and tuple(strides) == (1, 1) and x.shape[-1] % 8 == 0
          and all(p >= 0 for pad in flipped_pads for p in pad)):
    return xla(w, dy)

  def cpu(w, dy):
    flipped = jnp.flip(w, (0, 1)).swapaxes(2, 3)
    dx = cpu_kernels.forward(dy, flipped, strides=(1, 1), pads=flipped_pads)
    return _sum_to(_vary_like(dx, w, dy), x)

  return lax.platform_dependent(w, dy, cpu=cpu, default=xla)


def _kernel_grad(x, w, dy, strides, pads, precision):
  def xla(x, dy):
    _, vjp_w = jax.vjp(lambda w: _xla_conv(x, w, strides, pads, precision), w)
    return vjp_w(dy)[0]

  def cpu(x, dy):
    args = dict(kernel_size=w.shape[:2], strides=strides, pads=pads)
    if MODE != 'im2col' and cpu_kernels.available():
      dw = _vary_like(cpu_kernels.kernel_grad(x, dy, **args), x, dy)
    else:
      dw = kernel_grad_im2col(x, dy, precision=precision, **args)
    return _sum_to(dw.astype(w.dtype), w)

  return lax.platform_dependent(x, dy, cpu=cpu, default=xla)


def _vary_like(y, *inputs):
  """A custom call's result has no shard_map axis types: it varies as its inputs do."""
  varying = tuple(sorted(frozenset().union(*map(_varying_axes, inputs))))
  return lax.pcast(y, varying, to='varying') if varying else y


def _sum_to(grad, primal):
  """Inside shard_map, the gradient of a value that is the same on every device (not
  `pcast` to varying) is the sum of every device's gradient, as XLA's own rules give it."""
  summed_axes = tuple(sorted(_varying_axes(grad) - _varying_axes(primal)))
  return lax.psum(grad, summed_axes) if summed_axes else grad


def _varying_axes(x) -> frozenset:
  """The shard_map axes along which `x` varies (the spelling changed in JAX 0.10)."""
  aval = jax.typeof(x)
  if hasattr(aval, 'vma'):
    return frozenset(aval.vma)
  return frozenset(aval.manual_axis_type.varying)


def kernel_grad_im2col(x, dy, *, kernel_size: Sequence[int], strides: Sequence[int],
                       pads: Sequence[tuple[int, int]], precision: Any = None,
                       chunk: Optional[int] = None):
  """dL/dW (HWIO, float32) of an NHWC convolution, as chunked im2col(x)^T @ dy.

  x: [B, H, W, Cin]; dy: [B, Ho, Wo, Cout], the gradient of the convolution's output.
  `chunk` images per matrix product (default: the largest divisor of B whose im2col fits
  in CHUNK_BYTES).
  """
  (kh, kw), (sh, sw) = kernel_size, strides
  b, _, _, cin = x.shape
  _, ho, wo, cout = dy.shape
  if (kh, kw, sh, sw) == (1, 1, 1, 1) and not any(any(p) for p in pads):
    # A 1x1 convolution's im2col is its input: one matrix product, nothing to chunk.
    return jnp.dot(x.reshape(-1, cin).T, dy.reshape(-1, cout), precision=precision,
                   preferred_element_type=jnp.float32).reshape(1, 1, cin, cout)
  if chunk is None:
    chunk = chunk_size(b, ho * wo * kh * kw * cin * 4)
  if b % chunk:
    raise ValueError(f'chunk={chunk} must divide the batch size {b}.')
  xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))

  def patches(xc):  # [c, Hp, Wp, Cin] -> [c * Ho * Wo, kh * kw * Cin], (i, j, cin) order
    cols = [lax.slice(xc, (0, i, j, 0),
                      (xc.shape[0], i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, cin),
                      (1, sh, sw, 1))
            for i in range(kh) for j in range(kw)]
    return jnp.concatenate(cols, axis=-1).reshape(-1, kh * kw * cin)

  def product(xc, dyc):
    return jnp.dot(patches(xc).T, dyc.reshape(-1, cout), precision=precision,
                   preferred_element_type=jnp.float32)

  if chunk == b:  # One chunk: no loop (cheaper to compile).
    return product(xp, dy).reshape(kh, kw, cin, cout)
  xs = xp.reshape(b // chunk, chunk, *xp.shape[1:])
  dys = dy.reshape(b // chunk, chunk, *dy.shape[1:])
  # The first chunk starts the sum (rather than zeros), so the carry has the inputs'
  # varying-across-devices type inside shard_map.
  acc, _ = lax.scan(lambda acc, c: (acc + product(*c), None), product(xs[0], dys[0]),
                    (xs[1:], dys[1:]))
  return acc.reshape(kh, kw, cin, cout)


def chunk_size(batch: int, bytes_per_image: int) -> int:
  """The largest divisor of `batch` whose im2col fits in CHUNK_BYTES (at least 1)."""
  fits = max(1, CHUNK_BYTES // max(1, bytes_per_image))
  return max(d for d in range(1, min(batch, fits) + 1) if batch % d == 0)
