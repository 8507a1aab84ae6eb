"""models/conv.py, models/cpu_kernels.py (the native CPU convolutions) and cpu_tuning.

The CPU convolutions must be a pure speed change: every shape the backbones use (3x3
stride 1 and 2, 1x1 stride 2, the 7x7 stride-2 stem, 'SAME'/'VALID'/asymmetric padding,
batches that chunk unevenly), in float32 and bfloat16, inside shard_map over 8 devices,
and through a whole ResNet must give XLA's outputs and gradients to rounding, both with
the native AVX2 kernels and with the chunked im2col kernel gradient (and XLA's forward
pass) that replace them where they cannot be built.
"""

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from hyperproto import cpu_tuning
from hyperproto import models
from hyperproto import parallel
from hyperproto.models import conv
from hyperproto.models import cpu_kernels

NHWC = ('NHWC', 'HWIO', 'NHWC')


def _loss(x, w, conv_fn, strides, padding):
  y = conv_fn(x, w, strides, padding, dimension_numbers=NHWC)
  return jnp.sum(jnp.sin(y.astype(jnp.float32)))  # A non-trivial output gradient.


def _grads(conv_fn, x, w, strides, padding):
  return jax.jit(jax.grad(functools.partial(_loss, conv_fn=conv_fn, strides=strides,
                                            padding=padding), (0, 1)))(x, w)


class KernelGradTest(parameterized.TestCase):
  """With the native kernel (skipped where it cannot be built: no x86 AVX2 or compiler)."""

  MODE = 'native'

  def setUp(self):
    super().setUp()
    if self.MODE == 'native' and not cpu_kernels.available():
      self.skipTest('native kernel unavailable here (needs x86 AVX2/FMA and a C++ compiler)')
    patcher = mock.patch.object(conv, 'MODE', self.MODE)
    patcher.start()
    self.addCleanup(patcher.stop)

  @parameterized.named_parameters(
      ('3x3_s1', 8, 9, 3, 5, 3, 1, ((1, 1), (1, 1))),
      ('3x3_s2_shortcut', 6, 10, 4, 7, 3, 2, ((1, 1), (1, 1))),
      ('7x7_s2_stem', 4, 11, 3, 6, 7, 2, ((3, 3), (3, 3))),
      ('1x1_s2', 4, 8, 5, 6, 1, 2, ((0, 0), (0, 0))),
      ('same', 5, 8, 5, 6, 3, 1, 'SAME'),
      ('valid_s2', 4, 9, 5, 6, 3, 2, 'VALID'),
      ('asymmetric_2x2', 7, 8, 2, 3, 2, 1, ((0, 1), (1, 0))),
      ('1x1_s1_one_product', 3, 5, 6, 4, 1, 1, ((0, 0), (0, 0))),
  )
  def test_gradients_equal_xla(self, batch, size, cin, cout, k, stride, padding):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, size, size, cin)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(k, k, cin, cout)), jnp.float32)
    strides = (stride, stride)
    y, y_ref = (f(x, w, strides, padding, dimension_numbers=NHWC)
                for f in (conv.conv_general_dilated, lax.conv_general_dilated))
    (dx, dw), (dx_ref, dw_ref) = (_grads(conv.conv_general_dilated, x, w, strides, padding),
                                  _grads(lax.conv_general_dilated, x, w, strides, padding))
    if self.MODE == 'native':
      for a, b in ((y, y_ref), (dx, dx_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())
    else:  # XLA's own forward pass and input gradient.
      np.testing.assert_array_equal(y, y_ref)
      np.testing.assert_array_equal(dx, dx_ref)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-5, atol=1e-5 * np.abs(dw_ref).max())

  def test_explicit_chunks_agree(self):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(12, 6, 6, 3)), jnp.float32)
    dy = jnp.asarray(rng.normal(size=(12, 6, 6, 4)), jnp.float32)
    kwargs = dict(kernel_size=(3, 3), strides=(1, 1), pads=((1, 1), (1, 1)))
    whole = conv.kernel_grad_im2col(x, dy, chunk=12, **kwargs)
    for chunk in (1, 3, 4):
      np.testing.assert_allclose(conv.kernel_grad_im2col(x, dy, chunk=chunk, **kwargs),
                                 whole, rtol=1e-5, atol=1e-5)
    with self.assertRaisesRegex(ValueError, 'chunk=5 must divide the batch size 12'):
      conv.kernel_grad_im2col(x, dy, chunk=5, **kwargs)

  def test_chunk_size(self):
    self.assertEqual(conv.chunk_size(128, 1024 * 144 * 4), 4)  # ResNet-32, first stage.
    self.assertEqual(conv.chunk_size(128, 10**9), 1)  # Too big for one image: 1.
    self.assertEqual(conv.chunk_size(7, 1), 7)  # Everything fits: one chunk.
    self.assertEqual(conv.chunk_size(12, conv.CHUNK_BYTES // 5), 4)  # Largest divisor.

  def test_bfloat16_gradient_dtype_and_value(self):
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(4, 8, 8, 16)), jnp.bfloat16)
    w = jnp.asarray(rng.normal(size=(3, 3, 16, 8)) * 0.1, jnp.bfloat16)
    (dx, dw), (_, dw_ref) = (_grads(conv.conv_general_dilated, x, w, (1, 1), 'SAME'),
                             _grads(lax.conv_general_dilated, x, w, (1, 1), 'SAME'))
    self.assertEqual((dx.dtype, dw.dtype), (jnp.bfloat16, jnp.bfloat16))
    # Ours accumulates in float32; both round to bfloat16 (8 bits of mantissa).
    np.testing.assert_allclose(np.float32(dw), np.float32(dw_ref), rtol=2e-2,
                               atol=2e-2 * float(jnp.abs(dw_ref).max()))

  def test_unsupported_arguments_fall_through_to_lax(self):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(2, 8, 8, 4)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 2, 4)), jnp.float32)
    for kwargs in (dict(feature_group_count=2), dict(rhs_dilation=(2, 2))):
      ww = w if 'feature_group_count' in kwargs else jnp.concatenate([w, w], 2)
      ours = jax.grad(lambda w, kw=kwargs: conv.conv_general_dilated(
          x, w, (1, 1), 'SAME', dimension_numbers=NHWC, **kw).sum())(ww)
      ref = jax.grad(lambda w, kw=kwargs: lax.conv_general_dilated(
          x, w, (1, 1), 'SAME', dimension_numbers=NHWC, **kw).sum())(ww)
      np.testing.assert_array_equal(ours, ref)
    jaxpr = str(jax.make_jaxpr(lambda w: conv.conv_general_dilated(
        x, w, (1, 1), 'SAME', dimension_numbers=NHWC, feature_group_count=2))(w))
    self.assertNotIn('custom_vjp', jaxpr)

  @parameterized.parameters(True, False)
  def test_inside_shard_map_over_8_devices(self, kernel_varying):
    """The trainer makes the kernel varying (pcast) and sums gradients itself; a kernel
    left invariant gets the sum over devices from the rule, as with XLA's."""
    mesh = parallel.make_mesh(8)
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(16, 6, 6, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)

    def per_device(x, w, conv_fn):
      if kernel_varying:
        w = lax.pcast(w, parallel.AXIS, to='varying')
      dw = jax.grad(lambda w: _loss(x, w, conv_fn, (1, 1), 'SAME'))(w)
      return lax.psum(dw, parallel.AXIS) if kernel_varying else dw

    def sharded(conv_fn):
      return jax.jit(jax.shard_map(
          functools.partial(per_device, conv_fn=conv_fn), mesh=mesh,
          in_specs=(jax.P(parallel.AXIS), jax.P()), out_specs=jax.P()))(x, w)

    np.testing.assert_allclose(sharded(conv.conv_general_dilated),
                               sharded(lax.conv_general_dilated), rtol=1e-5, atol=1e-5)

  def test_demo_cnn_uses_it(self):
    model = models.build('cnn', output_dim=4)
    x = jnp.zeros((2, 8, 8, 1))
    variables = jax.eval_shape(functools.partial(model.init, train=False),
                               jax.random.PRNGKey(0), x)  # Tracing only: shapes suffice.
    grad = jax.grad(lambda v: jnp.sum(model.apply(v, x, train=True,
                                                  mutable=['batch_stats'])[0]))
    jaxpr = str(jax.make_jaxpr(grad)(variables))
    if self.MODE == 'native':  # 6 convs: 6 forward passes, 5 input gradients (the first
      # conv's, from 1 channel, is XLA's) and 6 kernel gradients.
      self.assertEqual(jaxpr.count('platform_index'), 17)
      self.assertEqual(jaxpr.count('hyperproto_conv_forward'), 11)
      self.assertEqual(jaxpr.count('hyperproto_conv_kernel_grad'), 6)
    else:  # Only the kernel gradients.
      self.assertEqual(jaxpr.count('platform_index'), 6)
      self.assertNotIn('hyperproto_conv', jaxpr)

  def test_resnet_uses_it_and_gradients_match(self):
    model = models.build('resnet20', output_dim=4, pool_size=None)
    x = jnp.asarray(np.random.default_rng(5).normal(size=(4, 16, 16, 3)), jnp.float32)
    variables = model.init(jax.random.PRNGKey(0), x, train=False)

    def loss(params):
      z, _ = model.apply({**variables, 'params': params}, x, train=True,
                         mutable=['batch_stats'])
      return jnp.sum(z ** 2)

    jaxpr = str(jax.make_jaxpr(jax.grad(loss))(variables['params']))
    # 19 3x3 convs + 2 shortcuts: 21 kernel gradients; natively also 21 forward passes
    # and 16 input gradients (not the stride-2 ones nor the stem's, from 3 channels).
    native = self.MODE == 'native'
    self.assertEqual(jaxpr.count('platform_index'), 21 + 37 * native)
    self.assertEqual(jaxpr.count('hyperproto_conv_forward'), 37 * native)
    self.assertEqual(jaxpr.count('hyperproto_conv_kernel_grad'), 21 * native)
    ours = jax.jit(jax.grad(loss))(variables['params'])
    with mock.patch.object(conv, 'ENABLED', False):
      ref = jax.jit(jax.grad(loss))(variables['params'])
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4 * float(np.abs(b).max()))


class KernelGradIm2colTest(KernelGradTest):
  """The same tests with the pure-JAX chunked im2col (the fallback)."""

  MODE = 'im2col'


class NativeKernelTest(absltest.TestCase):

  def test_available_on_x86_with_avx2_and_a_compiler(self):
    expected = cpu_kernels.cpu_supported() and cpu_kernels.compiler() is not None
    self.assertEqual(cpu_kernels.available(), expected)
    if os.path.exists('/proc/cpuinfo'):
      with open('/proc/cpuinfo', encoding='utf-8') as f:
        flags = set(f.read().split())
      self.assertEqual(cpu_kernels.cpu_supported(), {'avx2', 'fma'} <= flags)

  def test_cached_build_is_reused(self):
    if cpu_kernels.compiler() is None:
      self.skipTest('no C++ compiler')
    cache = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, cache)
    with mock.patch.dict(os.environ, {'HYPERPROTO_KERNEL_CACHE': cache}):
      path = cpu_kernels.build(cpu_kernels.compiler())
      mtime = os.stat(path).st_mtime_ns
      self.assertEqual(cpu_kernels.build(cpu_kernels.compiler()), path)
      self.assertEqual(os.stat(path).st_mtime_ns, mtime)  # Not rebuilt.
      self.assertEqual(os.listdir(cache), [path.name])  # No temporary left behind.

  def test_failed_build_names_the_compiler_and_falls_back(self):
    cache = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, cache)
    with mock.patch.dict(os.environ, {'HYPERPROTO_KERNEL_CACHE': cache}):
      with self.assertRaisesRegex(RuntimeError, 'false failed on .*csrc'):
        cpu_kernels.build('/bin/false')
      self.assertEqual(os.listdir(cache), [])
      with mock.patch.object(cpu_kernels, 'compiler', return_value='/bin/false'), \
           mock.patch.object(cpu_kernels, 'cpu_supported', return_value=True):
        cpu_kernels._load.cache_clear()
        try:
          with self.assertLogs(level='WARNING') as logs:
            self.assertFalse(cpu_kernels._load())
        finally:
          cpu_kernels._load.cache_clear()
      self.assertIn('pure-JAX im2col kernel gradient', logs.output[0])

  def test_same_bits_on_one_core(self):
    """The kernel gradient's batch split is fixed and each forward output is summed by
    one thread, so neither result depends on the thread count."""
    if not cpu_kernels.available() or not hasattr(os, 'sched_setaffinity'):
      self.skipTest('native kernel unavailable here')
    script = (
        'import os, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}) '
        'if sys.argv[1] == "1" else None\n'
        'import jax, numpy as np\n'
        'from hyperproto.models import cpu_kernels\n'
        'r = np.random.default_rng(0)\n'
        'x, dy = (r.normal(size=(24, 9, 9, 16)).astype(np.float32) for _ in range(2))\n'
        'g = cpu_kernels.kernel_grad(x, dy, kernel_size=(3, 3), strides=(1, 1),'
        ' pads=((1, 1), (1, 1)))\n'
        'w = r.normal(size=(3, 3, 16, 16)).astype(np.float32)\n'
        'y = cpu_kernels.forward(x, w, strides=(1, 1), pads=((1, 1), (1, 1)))\n'
        'print(np.asarray(g).tobytes().hex() + np.asarray(y).tobytes().hex())\n')
    env = dict(os.environ, XLA_FLAGS='')  # One device; the cache is the tests' (conftest).
    outputs = [subprocess.run([sys.executable, '-c', script, cores], env=env, check=True,
                              capture_output=True, text=True).stdout.split()[-1]
               for cores in ('1', 'all')]
    self.assertEqual(outputs[0], outputs[1])

  def test_unknown_mode_is_a_clear_error(self):
    result = subprocess.run(
        [sys.executable, '-c', 'import hyperproto.models.conv'], capture_output=True,
        text=True, env=dict(os.environ, HYPERPROTO_CPU_CONV='fast'), check=False)
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("HYPERPROTO_CPU_CONV='fast': expected one of", result.stderr)
    result = subprocess.run(
        [sys.executable, '-c', 'import hyperproto.models.conv'], capture_output=True,
        text=True, env=dict(os.environ, HYPERPROTO_CPU_KERNEL_GRAD='0'), check=False)
    self.assertNotEqual(result.returncode, 0)
    self.assertIn('HYPERPROTO_CPU_KERNEL_GRAD was replaced by HYPERPROTO_CPU_CONV',
                  result.stderr)

  def test_odd_channels_and_strides_equal_xla(self):
    """Channel counts off the kernel's blocks (remainder paths), 7x7/2 and 1x1."""
    if not cpu_kernels.available():
      self.skipTest('native kernel unavailable here')
    rng = np.random.default_rng(6)
    for batch, size, cin, cout, k, stride, pads in (
        (3, 9, 5, 7, 3, 2, ((0, 1), (0, 1))), (2, 11, 13, 44, 7, 2, ((3, 3), (3, 3))),
        (3, 8, 4, 9, 1, 1, ((0, 0), (0, 0))), (1, 5, 1, 1, 3, 1, ((2, 2), (2, 2)))):
      x = jnp.asarray(rng.normal(size=(batch, size, size, cin)), jnp.float32)
      w = jnp.zeros((k, k, cin, cout), jnp.float32)
      fwd = lambda x, w, s=stride, p=pads: lax.conv_general_dilated(
          x, w, (s, s), p, dimension_numbers=NHWC)
      dy = jnp.asarray(rng.normal(size=jax.eval_shape(fwd, x, w).shape), jnp.float32)
      ref = jax.vjp(lambda w: fwd(x, w), w)[1](dy)[0]
      got = jax.jit(functools.partial(cpu_kernels.kernel_grad, kernel_size=(k, k),
                                      strides=(stride, stride), pads=pads))(x, dy)
      np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * float(jnp.abs(ref).max()))

  def test_forward_equals_xla(self):
    """Channel blocks of 8/16/32 and their mixes, every tile remainder, strides, pads on
    one side only, more padding than the kernel, rows left over by a stride (VALID)."""
    if not cpu_kernels.available():
      self.skipTest('native kernel unavailable here')
    rng = np.random.default_rng(7)
    for batch, (h, w), cin, cout, (kh, kw), strides, pads in (
        (3, (9, 13), 5, 8, (3, 3), (1, 1), ((1, 1), (1, 1))),
        (2, (11, 7), 3, 48, (7, 7), (2, 2), ((3, 3), (3, 3))),
        (2, (8, 17), 16, 96, (1, 1), (2, 1), ((0, 0), (0, 0))),
        (1, (10, 10), 7, 24, (3, 2), (1, 2), ((0, 2), (3, 0))),
        (2, (9, 9), 4, 16, (3, 3), (2, 2), ((0, 0), (0, 0))),
        (1, (5, 6), 2, 8, (2, 3), (1, 1), ((4, 4), (1, 3)))):
      x = jnp.asarray(rng.normal(size=(batch, h, w, cin)), jnp.float32)
      kernel = jnp.asarray(rng.normal(size=(kh, kw, cin, cout)), jnp.float32)
      ref = lax.conv_general_dilated(x, kernel, strides, pads, dimension_numbers=NHWC)
      got = jax.jit(functools.partial(cpu_kernels.forward, strides=strides, pads=pads))(
          x, kernel)
      self.assertEqual(got.shape, ref.shape)
      np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * float(jnp.abs(ref).max()))
    with self.assertRaisesRegex(ValueError, 'Cout % 8 == 0'):
      cpu_kernels.forward(x, kernel[..., :5], strides=(1, 1), pads=((1, 1), (1, 1)))


class CpuTuningTest(absltest.TestCase):

  def test_configure_after_jax_started_applies_nothing(self):
    jnp.zeros(1).block_until_ready()  # JAX has started (conftest configured it before).
    with mock.patch.object(cpu_tuning, '_done', False):
      self.assertEqual(cpu_tuning.configure(), [])

  def test_flag_added_once_and_never_over_a_users_choice(self):
    with mock.patch.dict(os.environ, {'XLA_FLAGS': '--xla_foo=1'}):
      with mock.patch('importlib.metadata.version', return_value='0.10.2'):
        self.assertTrue(cpu_tuning._set_xla_flag())
        self.assertEqual(os.environ['XLA_FLAGS'], f'--xla_foo=1 {cpu_tuning.YNN_FLAG}')
        self.assertFalse(cpu_tuning._set_xla_flag())  # Already there: unchanged.
    user = '--xla_cpu_experimental_ynn_fusion_type=dot'
    with mock.patch.dict(os.environ, {'XLA_FLAGS': user}):
      self.assertFalse(cpu_tuning._set_xla_flag())
      self.assertEqual(os.environ['XLA_FLAGS'], user)
    with mock.patch.dict(os.environ, {'XLA_FLAGS': ''}):
      with mock.patch('importlib.metadata.version', return_value='0.11.0'):
        self.assertFalse(cpu_tuning._set_xla_flag())  # Untested jaxlib: no flag.
      self.assertEqual(os.environ['XLA_FLAGS'], '')

  def test_opt_out_and_platform_detection(self):
    with mock.patch.dict(os.environ, {'HYPERPROTO_CPU_TUNING': '0'}), \
         mock.patch.object(cpu_tuning, '_done', False):
      self.assertEqual(cpu_tuning.configure(), [])
    with mock.patch.dict(os.environ, {'JAX_PLATFORMS': 'cuda'}):
      self.assertFalse(cpu_tuning._cpu_only())
    with mock.patch.dict(os.environ, {'JAX_PLATFORMS': 'cpu'}):
      self.assertTrue(cpu_tuning._cpu_only())


if __name__ == '__main__':
  absltest.main()
