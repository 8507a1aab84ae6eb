"""experiments/bench_precision.py: the loss-scaled step is the trainer's step with the
loss scaled and unscaled, and skips a step whose gradients overflow."""

import os
import sys

import jax
import numpy as np
import pytest
from absl.testing import absltest

import helpers

sys.path.insert(0, os.path.join(helpers.ROOT, 'experiments'))
import bench_precision  # pylint: disable=g-import-not-at-top,wrong-import-position
import benchmark  # pylint: disable=g-import-not-at-top,wrong-import-position

from hyperproto import parallel  # pylint: disable=wrong-import-position

# A reduced ResNet-32 (depth 8) at batch 8: the step's code path in seconds.
TINY = dict(model_kwargs=bench_precision.TINY_MODELS['resnet32'],
            **bench_precision.TINY_SIZES)


def _steps(step: benchmark.Step, carry, n: int):
  for _ in range(n):
    carry, sums = step.fn(carry, *step.args[1:])
  return jax.device_get(carry), jax.device_get(sums)


class LossScaledStepTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # Compile in seconds: the tests check values, not speed.
    cls.optimized = jax.config.read('jax_disable_most_optimizations')
    jax.config.update('jax_disable_most_optimizations', True)
    start = benchmark.make_step('resnet32', 'float32', dim=64, **TINY)
    cls.state = jax.device_get(start.args[0])
    cls.mesh = parallel.make_mesh(1)

  @classmethod
  def tearDownClass(cls):
    jax.config.update('jax_disable_most_optimizations', cls.optimized)
    super().tearDownClass()

  def make(self, dtype, **kwargs):
    return benchmark.make_step('resnet32', dtype, dim=64, **TINY,
                               state=parallel.replicate(self.state, self.mesh),
                               step_fn=bench_precision.loss_scaled_train_step, **kwargs)

  @pytest.mark.device
  def test_float32_is_the_trainers_step(self):
    # Scaling by 2^16 and back is exact in float32: the same update as the trainer's.
    plain = benchmark.make_step('resnet32', 'float32', dim=64, **TINY,
                                state=parallel.replicate(self.state, self.mesh))
    want, want_sums = _steps(plain, plain.args[0], 2)
    scaled = self.make('float32')
    (got, scale), sums = _steps(
        scaled, (scaled.args[0], bench_precision.initial_scale(self.mesh)), 2)
    self.assertEqual(int(got.step), 2)
    self.assertEqual(float(scale.scale), 65536.0)
    self.assertEqual(int(scale.fin_steps), 2)
    np.testing.assert_allclose(sums['loss'], want_sums['loss'], rtol=1e-5)
    for a, b in zip(jax.tree.leaves((got.params, got.opt_state, got.batch_stats)),
                    jax.tree.leaves((want.params, want.opt_state, want.batch_stats))):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    moved = max(np.abs(a - b).max() for a, b in zip(jax.tree.leaves(got.params),
                                                    jax.tree.leaves(self.state.params)))
    self.assertGreater(moved, 0.0)

  @pytest.mark.device
  def test_an_overflowing_step_is_skipped_and_the_scale_halved(self):
    step = self.make('float16')
    # 2^100 overflows float16 in the backward pass (and float32 too: inf, then nan).
    (got, scale), _ = _steps(step, (step.args[0], bench_precision.initial_scale(
        self.mesh, 2.0**100)), 1)
    self.assertEqual(int(got.step), 1)
    self.assertEqual(float(scale.scale), 2.0**99)
    self.assertEqual(int(scale.fin_steps), 0)
    for a, b in zip(jax.tree.leaves((got.params, got.opt_state)),
                    jax.tree.leaves((self.state.params, self.state.opt_state))):
      np.testing.assert_array_equal(a, b)
    # From Flax's default scale: each step either overflows (the scale halves, the
    # parameters stay) or updates them (the scale stays); within 8 steps one updates.
    # (HPN's loss is a sum over the batch, so 2^16 may overflow float16 at first.)
    carry = (parallel.replicate(self.state, self.mesh),
             bench_precision.initial_scale(self.mesh))
    before, scale_before, updates = self.state.params, 65536.0, 0
    for _ in range(8):
      carry, sums = step.fn(carry, *step.args[1:])
      state, scale = jax.device_get(carry)
      self.assertTrue(np.isfinite(sums['loss']))
      moved = any(np.any(a != b) for a, b in zip(jax.tree.leaves(state.params),
                                                  jax.tree.leaves(before)))
      self.assertEqual(float(scale.scale), scale_before * (1.0 if moved else 0.5))
      updates += moved
      before, scale_before = state.params, float(scale.scale)
    self.assertGreater(updates, 0)


class VariantsTest(absltest.TestCase):

  def test_groups_flags_and_ratios(self):
    self.assertEqual(bench_precision.group_xla_flags('default', '--a=1'), '--a=1')
    self.assertEqual(bench_precision.group_xla_flags('nhwc', '--a=1'),
                     '--a=1 --xla_gpu_force_conv_nhwc=true')
    # A user's own value of the option is kept.
    self.assertEqual(bench_precision.group_xla_flags(
        'autotune0', '--xla_gpu_autotune_level=2'), '--xla_gpu_autotune_level=2')
    for name, variant in bench_precision.VARIANTS.items():
      self.assertIn(variant.group, bench_precision.GROUPS, name)
    results = bench_precision.with_ratios({
        'resnet32/float32': {'images_per_s': 200.0},
        'resnet32/bfloat16': {'images_per_s': 150.0},
        'resnet34/bfloat16': {'images_per_s': 90.0},  # no float32 of its case: no ratio
        'resnet32/bfloat16_nhwc': {'error': 'x'}})
    self.assertEqual(results['resnet32/float32']['ratio_to_float32'], 1.0)
    self.assertEqual(results['resnet32/bfloat16']['ratio_to_float32'], 0.75)
    self.assertNotIn('ratio_to_float32', results['resnet34/bfloat16'])
    self.assertNotIn('ratio_to_float32', results['resnet32/bfloat16_nhwc'])


if __name__ == '__main__':
  absltest.main()
