"""Batches and augmentation gathered on the device: exact, deterministic, device-invariant."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest
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

  def gather_with(self, rng, num_devices, step, augment='none'):
    mesh = parallel.make_mesh(num_devices)
    fn = jax.shard_map(
        functools.partial(device_input.local_batch, axis_name=parallel.AXIS,
                          global_batch=8, augment=augment),
        mesh=mesh, in_specs=(P(), P(), P()), out_specs=P(parallel.AXIS))
    return jax.device_get(jax.jit(fn)(self.data, rng, jnp.int32(step)))

  def gather(self, num_devices, step, augment):
    return self.gather_with(self.rng, num_devices, step, augment)

  @parameterized.parameters('none', 'crop_flip')
  @pytest.mark.device
  @helpers.needs_devices(8)
  def test_the_global_batch_does_not_depend_on_the_device_count(self, augment):
    one = self.gather(1, 6, augment)
    for n in (2, 8):
      other = self.gather(n, 6, augment)
      for key in one:
        np.testing.assert_array_equal(one[key], other[key])

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
