"""Batches and augmentation gathered on the device: exact, deterministic, device-invariant."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest
from scipy import stats
from absl.testing import parameterized
from jax.sharding import PartitionSpec as P

import helpers
from hyperproto import parallel
from hyperproto.data import base
from hyperproto.data import device_input


def candidates(image, pad):
  """Every crop (and its mirror) that RandomCrop(padding=pad) + flip can produce."""
  h, w = image.shape[:2]
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  for dy in range(2 * pad + 1):
    for dx in range(2 * pad + 1):
      crop = padded[dy:dy + h, dx:dx + w]
      yield (dy, dx, False), crop
      yield (dy, dx, True), crop[:, ::-1]


_GATHER = {}  # (devices, augment, mixup_alpha) -> the jitted local_batch


class DeviceInputTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    n = 37  # 4 full batches of 8, remainder 5 dropped
    rng = np.random.default_rng(0)
    self.data = {'image': rng.integers(0, 256, (n, 6, 5, 3), dtype=np.uint8),
                 'label': np.arange(n, dtype=np.int32)}
    self.rng = jax.random.PRNGKey(7)

  @pytest.mark.device
  def test_each_epoch_is_a_permutation_cut_into_batches(self):
    fn = jax.jit(functools.partial(device_input.global_batch_indices, num_examples=37,
                                   global_batch=8))
    epochs = [np.concatenate([fn(self.rng, epoch * 4 + i) for i in range(4)])
              for epoch in range(2)]
    for idx in epochs:
      self.assertLen(set(idx.tolist()), 32)  # no example twice in an epoch
      self.assertTrue(np.all((idx >= 0) & (idx < 37)))
    self.assertFalse(np.array_equal(epochs[0], epochs[1]))  # reshuffled per epoch
    np.testing.assert_array_equal(fn(self.rng, 5), fn(self.rng, 5))  # deterministic

  def gather_with(self, rng, num_devices, step, augment='none', mixup_alpha=0.0):
    key = (num_devices, augment, mixup_alpha)
    if key not in _GATHER:  # One compilation per variant, shared by the tests.
      mesh = parallel.make_mesh(num_devices)
      _GATHER[key] = jax.jit(jax.shard_map(
          functools.partial(device_input.local_batch, axis_name=parallel.AXIS,
                            global_batch=8, augment=augment, mixup_alpha=mixup_alpha),
          mesh=mesh, in_specs=(P(), P(), P()), out_specs=P(parallel.AXIS)))
    return jax.device_get(_GATHER[key](self.data, rng, jnp.int32(step)))

  def gather(self, num_devices, step, augment, mixup_alpha=0.0):
    return self.gather_with(self.rng, num_devices, step, augment, mixup_alpha)

  @parameterized.parameters(('none', 0.0), ('crop_flip', 0.0), ('crop_flip', 1.0))
  @pytest.mark.device
  @helpers.needs_devices(8)
  def test_the_global_batch_does_not_depend_on_the_device_count(self, augment, alpha):
    one = self.gather(1, 6, augment, alpha)
    for n in (2, 8) if not alpha else (8,):
      other = self.gather(n, 6, augment, alpha)
      self.assertEqual(set(one), set(other))
      for key in one:
        np.testing.assert_array_equal(one[key], other[key])

  @pytest.mark.device
  def test_mixup_pairs_each_example_with_a_permuted_one_of_the_same_batch(self):
    # The reference's mixup_data: x[index], y[index] with index = randperm(batch), one
    # lambda for the batch; the partner is augmented as at its own position.
    plain = self.gather(1, 5, 'crop_flip')
    mixed = self.gather(1, 5, 'crop_flip', mixup_alpha=1.0)
    for key in ('image', 'label'):  # mixup adds to the batch, changes nothing in it
      np.testing.assert_array_equal(plain[key], mixed[key])
    lam, partner = jax.jit(functools.partial(device_input.mixup, global_batch=8,
                                             alpha=1.0))(
        jax.random.fold_in(self.rng, device_input.MIXUP_FOLD), jnp.int32(5))
    np.testing.assert_array_equal(np.sort(partner), np.arange(8))
    np.testing.assert_array_equal(mixed['mix_image'], plain['image'][partner])
    np.testing.assert_array_equal(mixed['mix_label'], plain['label'][partner])
    np.testing.assert_array_equal(mixed['mix_lam'], np.full(8, lam, np.float32))
    x = plain['image'].astype(np.float32)
    np.testing.assert_allclose(
        device_input.mix_images(x, x[partner], mixed['mix_lam']),
        lam * x + (1 - lam) * x[partner], rtol=1e-6)

  @pytest.mark.device
  def test_mixup_lambda_is_beta_and_the_permutation_uniform(self):
    # For alpha 1 (the recipes') and 0.2, 4,000 steps each: lambda's empirical CDF within
    # the Kolmogorov-Smirnov bound (p = 0.001) of Beta(alpha, alpha)'s; where position
    # 0's partner lands, uniform over the 8 positions (chi-squared, 7 degrees of
    # freedom, p = 0.001: 24.3).
    alphas, n = (1.0, 0.2), 4000

    def draw(alpha, step):
      return device_input.mixup(self.rng, step, global_batch=8, alpha=alpha)

    lams, partners = jax.jit(jax.vmap(jax.vmap(draw, (None, 0)), (0, None)))(
        jnp.asarray(alphas), jnp.arange(n))
    for alpha, lam, partner in zip(alphas, np.asarray(lams, np.float64),
                                   np.asarray(partners)):
      lam = np.sort(lam)
      self.assertTrue(np.all((lam >= 0) & (lam <= 1)))
      cdf = stats.beta.cdf(lam, alpha, alpha)
      ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
      self.assertLess(ks, 1.95 / np.sqrt(n), f'alpha {alpha}')
      counts = np.bincount(partner[:, 0], minlength=8)
      self.assertLess(np.sum((counts - n / 8) ** 2 / (n / 8)), 24.3, f'alpha {alpha}')
      self.assertTrue(all(np.array_equal(np.sort(p), np.arange(8)) for p in partner[:50]))

  def test_labels_follow_their_images(self):
    batch = self.gather(8, 3, 'none')
    np.testing.assert_array_equal(batch['image'], self.data['image'][batch['label']])

  @pytest.mark.device
  @helpers.needs_devices(2)
  def test_crop_flip_gives_a_padded_crop_or_its_mirror(self):
    batch = self.gather(2, 1, 'crop_flip')
    seen = set()
    for image, label in zip(batch['image'], batch['label']):
      self.assertEqual(image.dtype, np.uint8)
      matches = [how for how, crop in candidates(self.data['image'][label], 4)
                 if np.array_equal(crop, image)]
      self.assertNotEmpty(matches)
      seen.update(matches)
    self.assertGreater(len(seen), 2)  # different offsets / flips across the batch

  @pytest.mark.device
  def test_crop_flip_covers_all_offsets_and_both_orientations(self):
    image = np.arange(4 * 4, dtype=np.uint8).reshape(1, 4, 4, 1) + 1
    keys = jax.random.split(jax.random.PRNGKey(0), 600)
    out = jax.jit(functools.partial(device_input.crop_flip, pad=1))(
        np.repeat(image, 600, axis=0), keys)
    found = []
    for crop in np.asarray(out):
      (how,) = [h for h, c in candidates(image[0], 1) if np.array_equal(c, crop)]
      found.append(how)
    self.assertLen(set(found), 18)  # 3 x 3 offsets x {flip, no flip}

  @pytest.mark.device
  def test_the_host_batches_are_the_ones_the_trainer_gathers(self):
    # Dataset.train_batch (host) and the streaming pipeline order epochs as the trainer's
    # on-device input does, so "what did step s see" has one answer.
    info = base.DatasetInfo(name='toy', num_classes=37, class_names=(),
                            image_shape=(6, 5, 3), mean=(0.5,) * 3, std=(0.2,) * 3)
    dataset = base.Dataset(info=info, splits={'train': self.data})
    for step in (0, 3, 4, 9):  # 4 steps per epoch: three epochs
      host = dataset.train_batch('train', step, 8, seed=5)
      # 8 devices here (conftest.py); on one accelerator, one (host CPU vs accelerator).
      n = 8 if jax.device_count() >= 8 else 1
      device = self.gather_with(device_input.run_rng(5), n, step)
      np.testing.assert_array_equal(np.sort(host['label']), np.sort(device['label']))

  def test_unknown_augmentation(self):
    with self.assertRaisesRegex(ValueError, "Unknown augmentation 'mixup'"):
      device_input.local_batch(self.data, self.rng, 0, axis_name='batch', global_batch=8,
                               augment='mixup')


if __name__ == '__main__':
  absltest.main()
