"""Streaming input for large images (CUB, OmniArt at 224): decode + augment on the host.

These datasets do not fit on the device as uint8 arrays at 224x224 after augmentation,
so each batch is decoded from the stored JPEG bytes (`store.JpegRecords`) by a pool of
threads (PIL releases the GIL while decoding and resizing), a few batches ahead of the
consumer.

Exactness. Batch `step` is a pure function of (seed, step): the epoch's order is a
permutation drawn from (seed, epoch), exactly as the in-memory `Dataset`, and the crop and
flip of the example at global position `p` of the batch come from a generator seeded by
(seed, step, p). So a run resumed at any step gets the very batches it would have had,
with no iterator state to checkpoint, and a multi-host run (process `i` of `n` takes
positions [i*b/n, (i+1)*b/n) of each global batch of b) sees the same global batch as a
single host.

Transforms (torchvision's, which the original used):
- train: RandomResizedCrop(224, scale=(0.08, 1), ratio=(3/4, 4/3)) + horizontal flip;
- eval (default): resize the shorter side to 256, centre crop 224;
- eval with `faithful_random_eval=True`: what the original evaluated with, train-style
  random crops (CUB: crop only; OmniArt: crop and flip), drawn from (seed, example index)
  so that repeated evaluations agree.
Crop and resize are one PIL `resize(box=...)` (bilinear, antialiased like torchvision's
PIL path).
"""

import collections
import concurrent.futures
import io
import math
import os
from typing import Any, Iterator, Optional, Sequence

import numpy as np
from PIL import Image

from hyperproto.data import store
from hyperproto.data import base
from hyperproto.data.base import DatasetInfo, epoch_permutation

Box = tuple[float, float, float, float]  # left, top, right, bottom (pixels)


def random_resized_crop_box(width: int, height: int, rng: np.random.Generator,
                            scale: tuple[float, float] = (0.08, 1.0),
                            ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Box:
  """torchvision's RandomResizedCrop.get_params: a random area fraction and aspect
  ratio, 10 tries, then a centre crop with the ratio clamped."""
  area = width * height
  log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
  for _ in range(10):
    target = area * rng.uniform(*scale)
    aspect = math.exp(rng.uniform(*log_ratio))
    w = int(round(math.sqrt(target * aspect)))
    h = int(round(math.sqrt(target / aspect)))
    if 0 < w <= width and 0 < h <= height:
      top = int(rng.integers(0, height - h + 1))
      left = int(rng.integers(0, width - w + 1))
      return (left, top, left + w, top + h)
  in_ratio = width / height
  if in_ratio < ratio[0]:
    w, h = width, int(round(width / ratio[0]))
  elif in_ratio > ratio[1]:
    h, w = height, int(round(height * ratio[1]))
  else:
    w, h = width, height
  top, left = (height - h) // 2, (width - w) // 2
  return (left, top, left + w, top + h)


def centre_crop_box(width: int, height: int, size: int = 224, resize: int = 256) -> Box:
  """Resize(resize) (shorter side) + CenterCrop(size), as a box in the original image."""
  side = size * min(width, height) / resize
  left, top = (width - side) / 2, (height - side) / 2
  return (left, top, left + side, top + side)


def transform(data: bytes, size: int, rng: Optional[np.random.Generator],
              flip: bool = True, resize: int = 256) -> np.ndarray:
  """Decodes an image and crops it: random (RandomResizedCrop, and a flip with
  probability 1/2 if `flip`) when `rng` is given, else the centre crop."""
  with Image.open(io.BytesIO(data)) as img:
    img = img.convert('RGB')
    if rng is None:
      box, do_flip = centre_crop_box(*img.size, size, resize), False
    else:
      box = random_resized_crop_box(*img.size, rng)
      do_flip = flip and rng.uniform() < 0.5
    out = np.asarray(img.resize((size, size), Image.BILINEAR, box=box))
  return out[:, ::-1] if do_flip else out


class StreamingDataset:
  """A prepared large-image dataset, decoded and augmented batch by batch.

  Same interface as the in-memory `Dataset` where it can be (`info`, `num_examples`,
  `steps_per_epoch`, `train_batch`, `eval_batches`), plus `train_batches`, a prefetching
  iterator from any step, for this process's share of each global batch.
  """

  def __init__(self, info: DatasetInfo, records: dict[str, store.JpegRecords],
               indices: Optional[dict[str, np.ndarray]] = None, image_size: int = 224,
               resize_size: int = 256, faithful_random_eval: bool = False,
               eval_flip: bool = False, num_workers: Optional[int] = None,
               prefetch: int = 2):
    """Args:
      info: what the trainer needs to know; image_shape is (image_size, image_size, 3).
      records: the stored images (and label / target fields) of each split.
      indices: for each split, which records it uses, in order (default: all).
      image_size, resize_size: output side; eval resizes the shorter side to
        resize_size before the centre crop.
      faithful_random_eval: evaluate on random crops, as the original code did.
      eval_flip: with faithful_random_eval, also flip (the original's OmniArt did, its
        CUB did not).
      num_workers: decoding threads (default: the number of CPUs).
      prefetch: batches decoded ahead of the consumer.
    """
    self.info = info
    self.records = records
    self.indices = {s: (np.arange(len(r)) if indices is None or s not in indices
                        else np.asarray(indices[s])) for s, r in records.items()}
    self.image_size, self.resize_size = image_size, resize_size
    self.faithful_random_eval, self.eval_flip = faithful_random_eval, eval_flip
    self.num_workers = num_workers or os.cpu_count() or 1
    self.prefetch = prefetch

  def _split(self, split: str) -> store.JpegRecords:
    if split not in self.records:
      raise ValueError(f'Dataset {self.info.name!r} has no split {split!r}; it has '
                       f'{sorted(self.records)}.')
    return self.records[split]

  def num_examples(self, split: str) -> int:
    self._split(split)
    return len(self.indices[split])

  def steps_per_epoch(self, split: str, batch_size: int) -> int:
    return base.steps_per_epoch(self.info.name, split, self.num_examples(split), batch_size)

  # --- Example specs: (split, dataset position or -1 for padding, rng seed, flip) ---

  def _fields(self, split: str, positions: Sequence[int]) -> dict[str, np.ndarray]:
    records = self._split(split)
    idx = self.indices[split][np.maximum(np.asarray(positions, np.int64), 0)]
    real = np.asarray(positions) >= 0
    out = {}
    for name, values in records.fields.items():
      if values.dtype.kind in 'iuf':  # skip string ids etc.
        out[name] = np.where(real, values[idx], 0).astype(values.dtype)
    return out

  def _image(self, split: str, position: int, seed: Optional[Sequence[int]],
             flip: bool) -> np.ndarray:
    if position < 0:
      return np.zeros((self.image_size, self.image_size, 3), np.uint8)
    data = self.records[split][int(self.indices[split][position])]
    rng = None if seed is None else np.random.default_rng(seed)
    return transform(data, self.image_size, rng, flip, self.resize_size)

  def _train_specs(self, split: str, step: int, batch_size: int, seed: int,
                   process_index: int, process_count: int) -> list[tuple]:
    if batch_size % process_count:
      raise ValueError(f'The global batch size {batch_size} is not a multiple of the '
                       f'{process_count} processes.')
    per_epoch = self.steps_per_epoch(split, batch_size)
    epoch, pos = divmod(int(step), per_epoch)
    perm = epoch_permutation(seed, epoch, self.num_examples(split))
    local = batch_size // process_count
    first = process_index * local
    chosen = perm[pos * batch_size + first:pos * batch_size + first + local]
    return [(split, int(i), (seed, 0, int(step), first + j), True)
            for j, i in enumerate(chosen)]

  def _eval_specs(self, split: str, batch: int, batch_size: int, seed: int,
                  process_index: int, process_count: int) -> list[tuple]:
    if batch_size % process_count:
      raise ValueError(f'The global eval batch size {batch_size} is not a multiple of '
                       f'the {process_count} processes.')
    n, local = self.num_examples(split), batch_size // process_count
    start = batch * batch_size + process_index * local
    return [(split, i if i < n else -1,
             (seed, 1, i) if self.faithful_random_eval else None, self.eval_flip)
            for i in range(start, start + local)]

  def _assemble(self, specs: list[tuple], images: list[np.ndarray]) -> dict:
    split = specs[0][0]
    batch = self._fields(split, [s[1] for s in specs])
    batch['image'] = np.stack(images)
    return batch

  def _run(self, spec_iter: Iterator[list[tuple]]) -> Iterator[dict]:
    """Decodes the examples of each batch in the thread pool, `prefetch` batches
    ahead, and yields the batches in order."""
    pool = concurrent.futures.ThreadPoolExecutor(self.num_workers)
    queue = collections.deque()
    try:
      for specs in spec_iter:
        queue.append((specs, [pool.submit(self._image, *s) for s in specs]))
        if len(queue) > self.prefetch:
          specs, futures = queue.popleft()
          yield self._assemble(specs, [f.result() for f in futures])
      while queue:
        specs, futures = queue.popleft()
        yield self._assemble(specs, [f.result() for f in futures])
    finally:
      pool.shutdown(wait=False, cancel_futures=True)

  # --- Public batching ---

  def train_batches(self, split: str, start_step: int, batch_size: int, seed: int,
                    process_index: int = 0, process_count: int = 1,
                    num_steps: Optional[int] = None) -> Iterator[dict]:
    """This process's share (batch_size // process_count examples) of the global
    batches of steps start_step, start_step + 1, ... (forever, or num_steps of them):
    `image` uint8 (b, size, size, 3) augmented, `label`, and `target` if any."""
    def specs():
      step = start_step
      while num_steps is None or step < start_step + num_steps:
        yield self._train_specs(split, step, batch_size, seed, process_index,
                                process_count)
        step += 1
    return self._run(specs())

  def train_batch(self, split: str, step: int, batch_size: int, seed: int) -> dict:
    """The whole global batch of one step (as `Dataset.train_batch`; no prefetch)."""
    return next(self.train_batches(split, step, batch_size, seed, num_steps=1))

  def eval_batches(self, split: str, batch_size: int, process_index: int = 0,
                   process_count: int = 1, seed: int = 0) -> Iterator[dict]:
    """The split in order, in ceil(n / batch_size) global batches, the last padded with
    zeros; `mask` is 1 for real examples. Every process gets the same number of
    batches, and each example is in exactly one process's share of one batch."""
    num_batches = -(-self.num_examples(split) // batch_size)
    specs = [self._eval_specs(split, b, batch_size, seed, process_index, process_count)
             for b in range(num_batches)]
    for batch_specs, batch in zip(specs, self._run(iter(specs))):
      batch['mask'] = np.asarray([s[1] >= 0 for s in batch_specs], np.float32)
      yield batch

  def example_ids(self, split: str) -> Optional[np.ndarray]:
    """The stored `id` of each example of the split, in order, where there is one."""
    ids = self._split(split).fields.get('id')
    return None if ids is None else ids[self.indices[split]]


def load(name: str, data_dir: Optional[str], how_to_prepare: str,
         keep: Optional[dict[str, np.ndarray]] = None, verify_checksums: bool = False,
         **kwargs: Any) -> StreamingDataset:
  """Opens a prepared JPEG-record dataset. `keep[split]` (bool per record) selects
  records; sizes are always checked, SHA-256 only with verify_checksums (it reads every
  byte)."""
  root, meta = store.read_meta(name, data_dir, how_to_prepare, kind='jpeg_records')
  records = {s: store.JpegRecords(root, e, verify_checksums)
             for s, e in meta['splits'].items()}
  info = store.info_from_json(meta['info'])
  size = kwargs.get('image_size', 224)
  info = DatasetInfo(**{**store.info_to_json(info), 'image_shape': (size, size, 3)})
  indices = None if keep is None else {s: np.flatnonzero(k) for s, k in keep.items()}
  return StreamingDataset(info, records, indices, **kwargs)
