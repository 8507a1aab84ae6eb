"""In-memory datasets: splits of numpy arrays with exact, resumable batch order."""

import dataclasses
import functools
from typing import Iterator, Optional

import numpy as np


@functools.lru_cache(maxsize=4)
def resident_epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  """The order of an epoch of a resident (in-memory) dataset, drawn from (seed, epoch)
  only: the very order the trainer's on-device input uses for a run of `seed`
  (`device_input.threefry_epoch_permutation`, JAX threefry), computed here on the CPU;
  cached, as every step of the epoch needs it. Streamed datasets draw their orders with
  NumPy instead (`streaming.streamed_epoch_permutation`): not the same orders."""
  # JAX is imported here, not at the top: grain's worker processes import this module
  # (through streaming.py) and must neither pay for JAX nor touch an accelerator.
  import jax  # pylint: disable=g-import-not-at-top
  from hyperproto.data import device_input  # pylint: disable=g-import-not-at-top
  with jax.default_device(jax.local_devices(backend='cpu')[0]):
    perm_rng, _ = jax.random.split(device_input.run_rng(seed))
    perm = np.asarray(device_input.threefry_epoch_permutation(perm_rng, epoch, n))
  perm.flags.writeable = False
  return perm


def steps_per_epoch(name: str, split: str, num_examples: int, batch_size: int) -> int:
  """Full batches per epoch (the remainder is dropped); an error if there are none."""
  if batch_size > num_examples:
    raise ValueError(f'Batch size {batch_size} exceeds the {num_examples} examples of '
                     f'{name}:{split}.')
  return num_examples // batch_size


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the trainer needs to know about a dataset.

  `target_range` bounds the regression target (in `target_unit`); `mean` and `std`
  normalise uint8 images (scaled to [0, 1]) per channel. `coarse_class_names` names
  the values of an optional `coarse_label` field (CIFAR-100's 20 superclasses).
  """
  name: str
  num_classes: int
  class_names: tuple[str, ...]
  image_shape: tuple[int, int, int]
  mean: tuple[float, ...]
  std: tuple[float, ...]
  target_name: Optional[str] = None
  target_unit: str = ''
  target_range: Optional[tuple[float, float]] = None
  coarse_class_names: tuple[str, ...] = ()


@dataclasses.dataclass
class Dataset:
  """Splits of arrays with a leading example axis: `image` (uint8 NHWC), `label`, and
  `target` (float32 regression target) where the dataset has one."""
  info: DatasetInfo
  splits: dict[str, dict[str, np.ndarray]]

  def num_examples(self, split: str) -> int:
    return len(self._split(split)['label'])

  def _split(self, split: str) -> dict[str, np.ndarray]:
    if split not in self.splits:
      raise ValueError(f'Dataset {self.info.name!r} has no split {split!r}; it has '
                       f'{sorted(self.splits)}.')
    return self.splits[split]

  def steps_per_epoch(self, split: str, batch_size: int) -> int:
    return steps_per_epoch(self.info.name, split, self.num_examples(split), batch_size)

  def train_batch(self, split: str, step: int, batch_size: int, seed: int) -> dict:
    """The global batch of training step `step`.

    Each epoch is a permutation drawn from (seed, epoch), cut into full batches (the
    remainder is dropped): a pure function of the step, so a resumed run sees exactly
    the batches it would have seen.
    """
    arrays = self._split(split)
    per_epoch = self.steps_per_epoch(split, batch_size)
    epoch, pos = divmod(int(step), per_epoch)
    perm = resident_epoch_permutation(seed, epoch, self.num_examples(split))
    idx = np.sort(perm[pos * batch_size:(pos + 1) * batch_size])
    return {k: v[idx] for k, v in arrays.items()}

  def close(self) -> None:
    """Nothing to stop (held in memory); `StreamingDataset.close` stops its workers."""

  def eval_batches(self, split: str, batch_size: int, process_index: int = 0,
                   process_count: int = 1) -> Iterator[dict]:
    """The split in order, in ceil(n / batch_size) global batches, the last padded with
    zeros; `mask` is 1 for real examples. This process's share of each: positions
    [i * b / n, (i + 1) * b / n) for process i of n (as `StreamingDataset`), so every
    process gets the same number of batches and each example is counted exactly once."""
    if batch_size % process_count:
      raise ValueError(f'The global eval batch size {batch_size} is not a multiple of '
                       f'the {process_count} processes.')
    arrays = self._split(split)
    n, local = self.num_examples(split), batch_size // process_count
    for start in range(process_index * local, n + process_index * local, batch_size):
      batch = {k: v[start:start + local] for k, v in arrays.items()}
      real = len(batch['label'])
      batch = {k: np.concatenate([v, np.zeros((local - real,) + v.shape[1:], v.dtype)])
               for k, v in batch.items()}
      batch['mask'] = (np.arange(local) < real).astype(np.float32)
      yield batch
