"""Optimisers and schedules: PyTorch's SGD and Adam updates, with coupled weight decay."""

import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from hyperproto import config_lib
from hyperproto import optim


def config(**overrides):
  c = config_lib.base_config()
  c.update(dict(schedule='constant', warmup_epochs=0.0, lr=0.1, weight_decay=0.1,
                momentum=0.9, **overrides))
  return c


def run(c, params, grad_fn, steps):
  tx = optim.optimizer(c, num_steps=100, steps_per_epoch=10)
  state = tx.init(params)
  for _ in range(steps):
    updates, state = tx.update(grad_fn(params), state, params)
    params = params + updates
  return np.asarray(params)


class OptimizerTest(absltest.TestCase):

  def test_sgd_is_pytorchs(self):
    """torch.optim.SGD(lr, momentum, weight_decay): buf = m buf + (g + wd p); p -= lr buf."""
    p0 = jnp.array([1.0, -2.0])
    grad = lambda p: 2.0 * p  # loss = |p|^2
    p, buf = np.array([1.0, -2.0]), np.zeros(2)
    for _ in range(3):
      g = 2.0 * p + 0.1 * p
      buf = 0.9 * buf + g
      p = p - 0.1 * buf
    np.testing.assert_allclose(run(config(), p0, grad, 3), p, rtol=3e-5)  # float32 against float64

  def test_adam_is_pytorchs(self):
    """torch.optim.Adam(lr, weight_decay) with its default betas and eps, by hand."""
    p0 = jnp.array([1.0, -2.0, 0.5])
    grad = lambda p: 2.0 * p
    p, m, v = np.array([1.0, -2.0, 0.5]), np.zeros(3), np.zeros(3)
    for t in range(1, 4):
      g = 2.0 * p + 0.1 * p
      m = 0.9 * m + 0.1 * g
      v = 0.999 * v + 0.001 * g * g
      p = p - 0.1 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(run(config(optimizer='adam'), p0, grad, 3), p, rtol=3e-5)  # float32 against float64
    # The first step moves every coordinate by lr against the sign of its gradient.
    np.testing.assert_allclose(run(config(optimizer='adam'), p0, grad, 1),
                               np.asarray(p0) - 0.1 * np.sign(p0), rtol=3e-5)  # float32 against float64

  def test_unknown_optimizer(self):
    with self.assertRaisesRegex(ValueError, "Unknown optimizer 'lamb'; use one of"):
      optim.optimizer(config(optimizer='lamb'), 100, 10)


if __name__ == '__main__':
  absltest.main()
