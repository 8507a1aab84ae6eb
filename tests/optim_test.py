"""Optimisers and schedules: PyTorch's SGD and Adam updates, with coupled weight decay."""

import math

import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import helpers  # pylint: disable=unused-import  (puts the repository on sys.path)
from configs import cifar10
from hyperproto import config_lib
from hyperproto import optim


def config(**overrides):
  c = config_lib.base_config()
  c.update(dict(dict(schedule='constant', warmup_epochs=0.0, lr=0.1, weight_decay=0.1,
                     momentum=0.9), **overrides))
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


# The reference scripts' learning rate of (0-based) epoch `e`, transcribed from their
# code; each sets it at the start of the epoch and holds it for the epoch.


def etf_lt_lr(e, lr=0.1):
  """NeuralCollapseApplications/ImbalancedLearning train.py `adjust_learning_rate`
  (cos: False); DL2PA_CVPR24 train.py's long-tailed branch is the same with drop1 5,
  drop2 160, drop3 180."""
  epoch = e + 1
  if epoch <= 5:
    return lr * epoch / 5
  if epoch > 180:
    return lr * 0.01
  if epoch > 160:
    return lr * 0.1
  return lr


def drops_lr(e, lr, drop1, drop2):
  """HPN's and Busemann's loop (and DL2PA's balanced branch): `for i in
  range(epochs): if i in [drop1, drop2]: learning_rate *= 0.1`."""
  for i in range(e + 1):
    if i in (drop1, drop2):
      lr *= 0.1
  return lr


def maxsep_lr(e, lr=0.1, epochs=200):
  """torch.optim.lr_scheduler.CosineAnnealingLR(T_max=epochs, eta_min=0), stepped
  once per epoch (max-separation's LT_CIFAR/train_cifar.py), in closed form."""
  return 0.5 * lr * (1 + math.cos(math.pi * e / epochs))


class PaperScheduleTest(parameterized.TestCase):
  """Each recipe's rate at chosen steps equals its reference script's formula."""

  @parameterized.named_parameters(
      ('etf', 'method=etf,recipe=etf,imbalance=0.01', etf_lt_lr),
      ('softmax_etf', 'method=softmax,recipe=etf,imbalance=0.01', etf_lt_lr),
      ('dl2pa_lt', 'method=dl2pa,recipe=dl2pa_lt,imbalance=0.01', etf_lt_lr),
      ('hpn', 'method=hpn,recipe=hpn', lambda e: drops_lr(e, 0.01, 100, 200)),
      ('dl2pa', 'method=dl2pa,recipe=paper', lambda e: drops_lr(e, 0.01, 100, 200)),
      ('busemann', 'method=busemann,recipe=paper',
       lambda e: drops_lr(e, 5e-4, 1000, 1100)),
      ('maxsep', 'method=maxsep,recipe=paper', maxsep_lr))
  def test_learning_rate_at_chosen_steps(self, arg, reference):
    config = cifar10.get_config(arg)
    steps_per_epoch = 96  # CIFAR-10-LT at 0.01: 12,406 // 128
    num_steps = int(config.num_epochs) * steps_per_epoch
    schedule = optim.learning_rate(config, num_steps, steps_per_epoch)
    epochs = sorted({0, 1, 4, 5, 6, 99, 100, 101, 159, 160, 161, 179, 180, 199,
                     int(config.num_epochs) - 1} | {int(b) + d for b in config.decay_epochs
                                                    for d in (-1, 0)})
    for epoch in (e for e in epochs if e < config.num_epochs):
      for step in (epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch - 1):
        np.testing.assert_allclose(  # float32 against float64
            float(schedule(step)), reference(epoch), rtol=1e-5,
            err_msg=f'{arg}: step {step} (epoch {epoch})')

  def test_the_epoch_unit_needs_whole_warmup_epochs(self):
    with self.assertRaisesRegex(ValueError, 'warm-up is whole epochs'):
      optim.learning_rate(config(schedule_unit='epoch', warmup_epochs=0.5), 100, 10)
    with self.assertRaisesRegex(ValueError, "Unknown schedule_unit 'batch'"):
      optim.learning_rate(config(schedule_unit='batch'), 100, 10)

  def test_the_shared_recipe_keeps_its_per_step_schedule(self):
    c = cifar10.get_config('')
    self.assertEqual((c.schedule, c.schedule_unit, c.warmup_epochs), ('cosine', 'step', 0.1))
    schedule = optim.learning_rate(c, 100, 10)
    self.assertEqual(float(schedule(0)), 0.0)  # the linear warm-up starts at 0
    self.assertAlmostEqual(float(schedule(1)), 0.01, places=7)  # and ends after 1 step


if __name__ == '__main__':
  absltest.main()
