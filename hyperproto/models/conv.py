"""`conv_general_dilated` with a faster weight gradient on CPU; a drop-in for `nn.Conv`.

Why: on XLA:CPU the gradient of a convolution with respect to its kernel is the slowest
part of a CNN's training step by far. XLA rewrites it as a convolution over the batch
(batch as the contracted feature dimension), which needs both the input and the output
gradient transposed to batch-minor layouts and then runs a convolution with a huge kernel
(ResNet-32, batch 128, jaxlib 0.10.2's default flags: 2/3 of the step's thread time;
one 32x32x16 3x3 conv's kernel gradient took ~37 ms against ~6 ms for its forward pass).

What: on CPU the kernel gradient is computed directly, dW[i,j] = sum x_shifted(i,j)^T dY
over (batch, y, x), never by transposing to batch-minor layouts:
- `cpu_kernels.kernel_grad` (default where it builds: x86 with AVX2/FMA and a C++
  compiler): an AVX2 kernel called as an XLA FFI custom call; 1.5-3x faster than
  im2col on ResNet-32's layers.
- `kernel_grad_im2col` (pure JAX; the fallback): im2col(x)^T @ dY in chunks of a few
  images, so each chunk's im2col (B_c*Ho*Wo x kh*kw*Cin) stays in cache, accumulated in
  float32 by a `lax.scan`.
The forward pass and the input gradient are XLA's own. On GPU and TPU
(`lax.platform_dependent`) the kernel gradient is XLA's too, so cuDNN and the TPU
convolution units are untouched. Measurements (`experiments/benchmark.py --ablation` and
`--layers`) are in experiments/results/benchmark.md.

HYPERPROTO_CPU_KERNEL_GRAD (read at import): 'native' (default), 'im2col', or '0' (XLA's
gradient everywhere).

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

# HYPERPROTO_CPU_KERNEL_GRAD: 'native' (the AVX2 kernel of cpu_kernels.py where it builds,
# else im2col), 'im2col', or '0' (XLA's own gradient).
MODE = os.environ.get('HYPERPROTO_CPU_KERNEL_GRAD', 'native')
MODES = ('native', 'im2col', '0')
if MODE not in MODES:
  raise ValueError(f'HYPERPROTO_CPU_KERNEL_GRAD={MODE!r}: expected one of {MODES}.')
ENABLED = MODE != '0'

Padding = Union[str, Sequence[tuple[int, int]]]


def conv_general_dilated(lhs, rhs, window_strides: Sequence[int], padding: Padding,
                         lhs_dilation: Optional[Sequence[int]] = None,
                         rhs_dilation: Optional[Sequence[int]] = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1,
                         batch_group_count: int = 1, precision: Any = None,
                         preferred_element_type: Any = None):
  """`lax.conv_general_dilated`, with the CPU kernel gradient of `_conv` where it applies."""
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


def _dilated(dilation: Optional[Sequence[int]]) -> bool:
  return dilation is not None and any(d != 1 for d in dilation)


def _xla_conv(x, w, strides, pads, precision):
  return lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=NHWC,
                                  precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv(x, w, strides, pads, precision):
  return _xla_conv(x, w, strides, pads, precision)


def _conv_fwd(x, w, strides, pads, precision):
  return _xla_conv(x, w, strides, pads, precision), (x, w)


def _conv_bwd(strides, pads, precision, residuals, dy):
  x, w = residuals
  _, vjp_x = jax.vjp(lambda x: _xla_conv(x, w, strides, pads, precision), x)
  dx, = vjp_x(dy)

  def xla_dw(x, dy):
    _, vjp_w = jax.vjp(lambda w: _xla_conv(x, w, strides, pads, precision), w)
    return vjp_w(dy)[0]

  def cpu_dw(x, dy):
    args = dict(kernel_size=w.shape[:2], strides=strides, pads=pads)
    if MODE != 'im2col' and cpu_kernels.available():
      dw = cpu_kernels.kernel_grad(x, dy, **args)
      # A custom call's result has no shard_map axis types: it varies as its inputs do.
      varying = tuple(sorted(_varying_axes(x) | _varying_axes(dy)))
      dw = lax.pcast(dw, varying, to='varying') if varying else dw
    else:
      dw = kernel_grad_im2col(x, dy, precision=precision, **args)
    dw = dw.astype(w.dtype)
    # Inside shard_map, a kernel that is the same on every device (not `pcast` to
    # varying) gets the sum of every device's gradient, as XLA's own rule gives it.
    summed_axes = tuple(sorted(_varying_axes(dw) - _varying_axes(w)))
    return lax.psum(dw, summed_axes) if summed_axes else dw

  return dx, lax.platform_dependent(x, dy, cpu=cpu_dw, default=xla_dw)


_conv.defvjp(_conv_fwd, _conv_bwd)


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
