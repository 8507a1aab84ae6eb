"""Input for datasets that live on the device: batching and augmentation inside the step.

Small datasets (digits, MNIST, CIFAR, ImageNet-200 at 64x64) fit in accelerator memory
as uint8, so the trainer puts the whole training split on every device once and each
step gathers its own examples: no host input pipeline, no host-to-device copy per step.

Everything is a pure function of (rng, step), so a resumed run sees exactly the batches
and augmentations it would have seen, and the *global* batch of a step is the same on
any number of devices:
  * epoch e = step // steps_per_epoch is a permutation drawn from fold_in(rng, e), cut
    into full global batches (the remainder of an epoch is dropped: fixed shapes, one
    compilation);
  * device i of n takes positions [i * b, (i + 1) * b) of the global batch;
  * the augmentation of an example is keyed by (step, its position in the global batch).
"""

import jax
import jax.numpy as jnp

AUGMENTATIONS = ('none', 'crop_flip')


def run_rng(seed: int) -> jax.Array:
  """The key a run of `seed` draws its batches and augmentations from: its
  `TrainState.rng`, which `train.create_train_state` splits from PRNGKey(seed) (with
  the non-partitionable threefry, as there) next to the init key."""
  with jax.threefry_partitionable(False):
    return jax.random.split(jax.random.PRNGKey(seed))[1]


def epoch_permutation(rng: jax.Array, epoch, num_examples: int) -> jax.Array:
  """The order of epoch `epoch`; `rng` is the permutation key of `local_batch`."""
  return jax.random.permutation(jax.random.fold_in(rng, epoch), num_examples)


def global_batch_indices(rng: jax.Array, step: jax.Array, *, num_examples: int,
                         global_batch: int) -> jax.Array:
  """Dataset indices of the global batch of `step` (int32, `global_batch` of them)."""
  steps_per_epoch = num_examples // global_batch
  epoch, pos = jnp.divmod(step, steps_per_epoch)
  perm = epoch_permutation(rng, epoch, num_examples)
  return jax.lax.dynamic_slice_in_dim(perm, pos * global_batch, global_batch)


def local_batch(data: dict, rng: jax.Array, step: jax.Array, *, axis_name: str,
                global_batch: int, augment: str = 'none', pad: int = 4) -> dict:
  """This device's part of the global batch of `step`, gathered from the resident split.

  Call inside shard_map / pmap over `axis_name`; `data` is the whole split (replicated).
  `rng` must be the same on every device.
  """
  if augment not in AUGMENTATIONS:
    raise ValueError(f'Unknown augmentation {augment!r}; use one of {AUGMENTATIONS}.')
  num_examples = data['label'].shape[0]
  num_devices = jax.lax.axis_size(axis_name)
  per_device = global_batch // num_devices
  perm_rng, aug_rng = jax.random.split(rng)
  indices = global_batch_indices(perm_rng, step, num_examples=num_examples,
                                 global_batch=global_batch)
  first = jax.lax.axis_index(axis_name) * per_device
  indices = jax.lax.dynamic_slice_in_dim(indices, first, per_device)
  batch = {k: jnp.take(v, indices, axis=0) for k, v in data.items()}
  if augment == 'crop_flip':
    positions = first + jnp.arange(per_device)
    step_rng = jax.random.fold_in(aug_rng, step)
    keys = jax.vmap(lambda p: jax.random.fold_in(step_rng, p))(positions)
    batch['image'] = crop_flip(batch['image'], keys, pad=pad)
  return batch


def crop_flip(images: jax.Array, keys: jax.Array, pad: int = 4) -> jax.Array:
  """Random crop after zero-padding by `pad` pixels, then a random horizontal flip.

  The original's `RandomCrop(size, padding=4)` + `RandomHorizontalFlip()`, one key per
  example; works on uint8 (B x H x W x C) and keeps the dtype.
  """
  height, width = images.shape[1:3]

  def one(image, key):
    offset_key, flip_key = jax.random.split(key)
    dy, dx = jax.random.randint(offset_key, (2,), 0, 2 * pad + 1)
    padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    crop = jax.lax.dynamic_slice(padded, (dy, dx, 0), (height, width, image.shape[2]))
    return jnp.where(jax.random.bernoulli(flip_key), crop[:, ::-1], crop)

  return jax.vmap(one)(images, keys)
