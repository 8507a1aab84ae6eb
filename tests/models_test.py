"""The demo backbone and head."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from hyperproto import models


class ModelTest(absltest.TestCase):

  def test_shapes_and_head(self):
    model = models.build('cnn', output_dim=7, widths=(4, 8))
    x = jnp.ones((3, 16, 16, 1))
    variables = model.init(jax.random.PRNGKey(0), x, train=False)
    self.assertEqual(variables['params']['head']['kernel'].shape, (8, 7))
    self.assertEqual(variables['params']['head']['bias'].shape, (7,))
    z, _ = model.apply(variables, x, train=True, mutable=['batch_stats'])
    self.assertEqual(z.shape, (3, 7))
    self.assertEqual(z.dtype, jnp.float32)
    # No normalisation in the forward pass (like the original): norms vary.
    self.assertFalse(np.allclose(np.linalg.norm(z, axis=1), 1.0))

  def test_params_float32_under_bfloat16_compute(self):
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 16, 16, 1))
    f32 = models.build('cnn', output_dim=5, widths=(4, 8))
    bf16 = models.build('cnn', output_dim=5, widths=(4, 8), dtype='bfloat16')
    variables = f32.init(jax.random.PRNGKey(0), x, train=False)
    self.assertTrue(all(v.dtype == jnp.float32
                        for v in jax.tree.leaves(bf16.init(jax.random.PRNGKey(0), x,
                                                           train=False))))
    z32 = f32.apply(variables, x, train=False)
    z16 = bf16.apply(variables, x, train=False)
    self.assertTrue(np.all(np.isfinite(z16)))
    np.testing.assert_allclose(z16, z32, rtol=0.1, atol=0.05)

  def test_unknown_names(self):
    with self.assertRaisesRegex(ValueError, "Unknown backbone 'resnet9'"):
      models.build('resnet9', output_dim=3)
    with self.assertRaisesRegex(ValueError, "Unknown dtype 'float8'"):
      models.build('cnn', output_dim=3, dtype='float8')


if __name__ == '__main__':
  absltest.main()
