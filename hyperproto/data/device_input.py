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
  * the augmentation of an example is keyed by (step, its position in the global batch);
  * mixup (`mixup_alpha` > 0) draws one lambda ~ Beta(alpha, alpha) and one permutation
    of the global batch per step, from (rng, step) (`mixup`): each device gathers the
    partners of its own examples, augmented as they are at their own positions, so the
    mixed global batch is the one a single device would build.
"""

import jax
import jax.numpy as jnp

AUGMENTATIONS = ('none', 'crop_flip')
# fold_in constant of the mixup key (the batch and augmentation keys are split from the
# run key; folding keeps them, so runs without mixup are unchanged).
MIXUP_FOLD = 0x6D6978


def run_rng(seed: int) -> jax.Array:
  """The key a run of `seed` draws its batches and augmentations from: its
  `TrainState.rng`, which `train.create_train_state` splits from PRNGKey(seed) (with
  the non-partitionable threefry, as there) next to the init key."""
  with jax.threefry_partitionable(False):
    return jax.random.split(jax.random.PRNGKey(seed))[1]


def threefry_epoch_permutation(rng: jax.Array, epoch, num_examples: int) -> jax.Array:
  """The order of epoch `epoch` of a resident dataset (JAX threefry, traced inside the
  step); `rng` is the permutation key of `local_batch`. `base.resident_epoch_permutation`
  is the same order computed on the host from the run's seed; streamed datasets use
  another generator (`streaming.streamed_epoch_permutation`), so their orders differ."""
  return jax.random.permutation(jax.random.fold_in(rng, epoch), num_examples)


def global_batch_indices(rng: jax.Array, step: jax.Array, *, num_examples: int,
                         global_batch: int) -> jax.Array:
  """Dataset indices of the global batch of `step` (int32, `global_batch` of them)."""
  steps_per_epoch = num_examples // global_batch
  epoch, pos = jnp.divmod(step, steps_per_epoch)
  perm = threefry_epoch_permutation(rng, epoch, num_examples)
  return jax.lax.dynamic_slice_in_dim(perm, pos * global_batch, global_batch)


def local_batch(data: dict, rng: jax.Array, step: jax.Array, *, axis_name: str,
                global_batch: int, augment: str = 'none', pad: int = 4,
                mixup_alpha: float = 0.0) -> dict:
  """This device's part of the global batch of `step`, gathered from the resident split.

  Call inside shard_map / pmap over `axis_name`; `data` is the whole split (replicated).
  `rng` must be the same on every device. With `mixup_alpha` > 0 the batch also holds
  each example's mixup partner (`mix_image`, `mix_label`; augmented as at its own
  position) and the step's lambda (`mix_lam`, one value per example, all equal); the
  step mixes them (`train.train_step`).
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
  positions = first + jnp.arange(per_device)

  def gather(positions_b):
    """The examples at these positions of the global batch, augmented."""
    batch = {k: jnp.take(v, indices[positions_b], axis=0) for k, v in data.items()}
    if augment == 'crop_flip':
      step_rng = jax.random.fold_in(aug_rng, step)
      keys = jax.vmap(lambda p: jax.random.fold_in(step_rng, p))(positions_b)
      batch['image'] = crop_flip(batch['image'], keys, pad=pad)
    return batch

  batch = gather(positions)
  if mixup_alpha > 0:
    lam, partner = mixup(jax.random.fold_in(rng, MIXUP_FOLD), step,
                         global_batch=global_batch, alpha=mixup_alpha)
    other = gather(partner[positions])
    batch.update(mix_image=other['image'], mix_label=other['label'],
                 mix_lam=jnp.full((per_device,), lam, jnp.float32))
  return batch


def mixup(rng: jax.Array, step: jax.Array, *, global_batch: int,
          alpha: float) -> tuple[jax.Array, jax.Array]:
  """(lambda, partner) of `step`: lambda ~ Beta(alpha, alpha) and a uniform permutation
  of the global batch's positions, position p mixed with `partner[p]` (the references'
  `mixup_data`: `np.random.beta(alpha, alpha)`, `torch.randperm(batch_size)`, once per
  batch); a pure function of (rng, step)."""
  lam_key, perm_key = jax.random.split(jax.random.fold_in(rng, step))
  lam = jax.random.beta(lam_key, alpha, alpha, dtype=jnp.float32)
  return lam, jax.random.permutation(perm_key, global_batch)


def mix_images(images_f: jax.Array, partners_f: jax.Array, lam_B: jax.Array) -> jax.Array:
  """lambda x + (1 - lambda) x' (float images, per example; `mixup_data`'s
  `mixed_x`)."""
  lam = lam_B.astype(images_f.dtype).reshape((-1,) + (1,) * (images_f.ndim - 1))
  return lam * images_f + (1.0 - lam) * partners_f


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
