"""Streaming input for large images (CUB, OmniArt at 224): decode + augment on the host.

These datasets do not fit on the device as uint8 arrays at 224x224 after augmentation,
so each batch is read from the prepared TFDS dataset (`tfds.data_source`, the images'
encoded bytes) and decoded and augmented by grain, in worker processes
(`num_workers`; 0 decodes in this process, on grain's threads), a few batches ahead of
the consumer.

Exactness. Batch `step` is a pure function of (seed, step): the epoch's order is a
permutation drawn from (seed, epoch) (numpy's generator, so the workers need no JAX),
and the crop and flip of the example at global position `p` of the batch come from a
generator seeded by (seed, step, p). So a run resumed at any step gets the very batches
it would have had, with no iterator state to checkpoint, any number of workers gives the
same batches, and a multi-host run (process `i` of `n` takes positions
[i*b/n, (i+1)*b/n) of each global batch of b) sees the same global batch as one host.

Transforms (torchvision's, which the original used):
- train: RandomResizedCrop(224, scale=(0.08, 1), ratio=(3/4, 4/3)) + horizontal flip;
- eval (default): resize the shorter side to 256, centre crop 224;
- eval with `faithful_random_eval=True`: what the original evaluated with, train-style
  random crops (CUB: crop only; OmniArt: crop and flip), drawn from (seed, example index)
  so that repeated evaluations agree.
Crop and resize are one PIL `resize(box=...)` (bilinear, antialiased like torchvision's
PIL path). With `reduced_decoding` (the default) a JPEG whose crop is at least twice the
output side is decoded at 1/2, 1/4 or 1/8 scale inside the decoder (PIL's `draft`: DCT
scaling), the largest that keeps the crop >= the output side, and the crop box is mapped
to the reduced image; a smaller crop (every crop of a 500x375 image at 224) decodes at
full size, bit for bit as before. `transform_full_decode` is the transform as it was
before (kept for the comparison in experiments/bench_input.py and the tests).

Worker processes live as long as the dataset: a training iterator is one grain pipeline
for all its steps, and each evaluation split has one pipeline over an endless repetition
of its batches, kept between passes, so an evaluation pass starts no process. `close()`
(or leaving a `with` block) stops them all.
"""

import functools
import io
import math
import os
from typing import Any, Iterator, Optional

import numpy as np
import tensorflow_datasets as tfds
from absl import flags
from PIL import Image

from hyperproto.data import base
from hyperproto.data.base import DatasetInfo

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


def _crop_and_flip(width: int, height: int, size: int, rng: Optional[np.random.Generator],
                   flip: bool, resize: int) -> tuple[Box, bool]:
  """The crop box (in the image's pixels) and the flip: random (RandomResizedCrop, a flip
  with probability 1/2 if `flip`) when `rng` is given, else the centre crop."""
  if rng is None:
    return centre_crop_box(width, height, size, resize), False
  box = random_resized_crop_box(width, height, rng)
  return box, flip and rng.uniform() < 0.5


def jpeg_reduction(box: Box, size: int) -> int:
  """The JPEG DCT scale to decode at (1, 2, 4 or 8: 1/scale of each side): the largest
  that keeps the crop `box` at >= `size` pixels on both sides."""
  side = min(box[2] - box[0], box[3] - box[1])
  return next((scale for scale in (8, 4, 2) if side >= scale * size), 1)


def _draft(img: Image.Image, box: Box, size: int) -> Box:
  """Asks the decoder of `img` (not loaded yet) for the reduced scale that `box` allows,
  and returns the box in the pixels of the image it will decode (unchanged if the image
  is not a JPEG or the crop allows no reduction)."""
  scale = jpeg_reduction(box, size)
  if scale == 1:
    return box
  width, height = img.size
  # PIL picks the largest of 1/2, 1/4, 1/8 that keeps the image >= the size asked for,
  # and reports the full image's extent in the reduced pixels.
  drafted = img.draft('RGB', (width // scale, height // scale))
  if drafted is None:  # Not a JPEG: decoded at full size.
    return box
  factor = drafted[1][2] / width
  return tuple(v * factor for v in box)


def transform(data: bytes, size: int, rng: Optional[np.random.Generator],
              flip: bool = True, resize: int = 256,
              reduced_decoding: bool = True) -> np.ndarray:
  """Decodes an image and crops it to (size, size, 3) uint8: random (RandomResizedCrop,
  and a flip with probability 1/2 if `flip`) when `rng` is given, else the centre crop.

  `reduced_decoding`: decode JPEGs at reduced scale where the crop allows (see
  `jpeg_reduction`); without it, or where the crop allows none, the output is that of
  `transform_full_decode`, bit for bit (tested), only faster.
  """
  with Image.open(io.BytesIO(data)) as img:
    box, do_flip = _crop_and_flip(*img.size, size, rng, flip, resize)
    if reduced_decoding:
      box = _draft(img, box, size)
    rgb = img if img.mode == 'RGB' else img.convert('RGB')
    out = rgb.resize((size, size), Image.BILINEAR, box=box)
  if do_flip:
    out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
  return np.asarray(out)


def transform_full_decode(data: bytes, size: int, rng: Optional[np.random.Generator],
                          flip: bool = True, resize: int = 256) -> np.ndarray:
  """`transform` as it was before reduced decoding: every image decoded at full size
  and converted (copied) to RGB, the flip in NumPy. Same crops, same draws from `rng`;
  kept as the baseline of experiments/bench_input.py."""
  with Image.open(io.BytesIO(data)) as img:
    img = img.convert('RGB')
    box, do_flip = _crop_and_flip(*img.size, size, rng, flip, resize)
    out = np.asarray(img.resize((size, size), Image.BILINEAR, box=box))
  return out[:, ::-1] if do_flip else out


def streamed_epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  """The order of an epoch of a streamed split, drawn from (seed, epoch) only, with
  NumPy's generator (grain's workers need no JAX). Not the order of a resident dataset
  of the same seed (`base.resident_epoch_permutation`, JAX threefry)."""
  return np.random.default_rng([seed, 2, epoch]).permutation(n)


class _Loader:
  """Reads and transforms the examples of one batch; runs in grain's workers.

  Picklable (a path and numbers): each worker opens the prepared dataset itself, once.
  Its input is a batch spec, (dataset indices, crop seeds or None, flip flags), with
  index -1 for padding.
  """

  def __init__(self, path: str, split: str, image_key: str, keys: dict[str, str],
               image_size: int, resize_size: int, reduced_decoding: bool):
    self.path, self.split, self.image_key, self.keys = path, split, image_key, keys
    self.image_size, self.resize_size = image_size, resize_size
    self.reduced_decoding = reduced_decoding
    self._source = None

  def source(self):
    if self._source is None:
      b = tfds.builder_from_directory(self.path)
      self._source = b.as_data_source(
          self.split, decoders={self.image_key: tfds.decode.SkipDecoding()})
    return self._source

  def __call__(self, spec: tuple) -> dict[str, np.ndarray]:
    indices, seeds, flips = spec
    real = [int(i) for i in indices if i >= 0]
    records = iter(self.source().__getitems__(real) if real else [])
    size = self.image_size
    images = np.zeros((len(indices), size, size, 3), np.uint8)
    fields = {ours: np.zeros(len(indices), np.float32 if ours == 'target' else np.int32)
              for ours in self.keys.values()}
    for j, i in enumerate(indices):
      if i < 0:
        continue
      record = next(records)
      rng = None if seeds[j] is None else np.random.default_rng(seeds[j])
      images[j] = transform(record[self.image_key], size, rng, flips[j], self.resize_size,
                            self.reduced_decoding)
      for stored, ours in self.keys.items():
        fields[ours][j] = record[stored]
    return dict(fields, image=images)


def _let_grain_read_its_flags() -> None:
  """Lets grain start worker processes before absl has parsed a command line.

  grain 0.2.18 reads its absl flag --grain_enable_multiprocess_worker_profiling when it
  starts workers, which raises UnparsedFlagAccessError in a program that never parses
  flags (a library call, a test, a notebook; google/grain#1355, fixed upstream after
  0.2.18). As grain itself does for its debug flags inside its workers, this marks
  grain's own flags as given, at the values they have; every other flag, and whether
  flags count as parsed, stay as they are. Under absl.app (hyperproto.main) the flags
  are parsed and this does nothing.
  """
  if flags.FLAGS.is_parsed():
    return
  for name in list(flags.FLAGS):
    if name.startswith('grain_'):
      flags.FLAGS[name].present = True


class _Pipeline:
  """A started grain iterator over a stream of batches, and how far it has been read.

  An evaluation pipeline streams its split's batches over and over (an endless stream),
  so a pass takes the next `num_batches` of them and its workers never stop between
  passes; `busy` while a pass reads it.
  """

  def __init__(self, iterator, num_batches: int = 0):
    self.iterator, self.num_batches = iterator, num_batches
    self.position, self.busy = 0, False

  def close(self) -> None:
    self.iterator.close()


class StreamingDataset:
  """A prepared large-image dataset, decoded and augmented batch by batch with grain.

  Same interface as the in-memory `Dataset` where it can be (`info`, `num_examples`,
  `steps_per_epoch`, `train_batch`, `eval_batches`), plus `train_batches`, a prefetching
  iterator from any step, for this process's share of each global batch, and `close()`,
  which stops the worker processes (also on leaving a `with` block).
  """

  def __init__(self, info: DatasetInfo, path: str, split_sizes: dict[str, int],
               indices: Optional[dict[str, np.ndarray]] = None, image_key: str = 'image',
               keys: Optional[dict[str, str]] = None, image_size: int = 224,
               resize_size: int = 256, faithful_random_eval: bool = False,
               eval_flip: bool = False, num_workers: Optional[int] = None,
               prefetch: int = 2, ids: Optional[Any] = None,
               reduced_decoding: bool = True):
    """Args:
      info: what the trainer needs to know; image_shape is (image_size, image_size, 3).
      path: the prepared TFDS version directory.
      split_sizes: the number of records of each split.
      indices: for each split, which records it uses, in order (default: all).
      image_key: the encoded image feature.
      keys: the numeric features to batch, {stored name: our name} (default: label).
      image_size, resize_size: output side; eval resizes the shorter side to
        resize_size before the centre crop.
      faithful_random_eval: evaluate on random crops, as the original code did.
      eval_flip: with faithful_random_eval, also flip (the original's OmniArt did, its
        CUB did not).
      num_workers: grain worker processes decoding batches (default: the number of
        CPUs, but 0 on a machine with at most 2); 0 decodes in this process. Training
        and each evaluation split have workers of their own.
      prefetch: batches decoded ahead of the consumer, per worker.
      ids: a function (split -> the stored id of each record), for `example_ids`.
      reduced_decoding: decode a JPEG at 1/2, 1/4 or 1/8 scale where its crop stays at
        >= image_size pixels (`transform`); False decodes every image at full size, as
        runs before this option did (their pixels exactly).
    """
    self.info, self.path = info, path
    self.indices = {s: (np.arange(n) if indices is None or s not in indices
                        else np.asarray(indices[s])) for s, n in split_sizes.items()}
    self.image_key, self.keys = image_key, dict(keys or {'label': 'label'})
    self.image_size, self.resize_size = image_size, resize_size
    self.faithful_random_eval, self.eval_flip = faithful_random_eval, eval_flip
    cpus = os.cpu_count() or 1
    self.num_workers = (cpus if cpus > 2 else 0) if num_workers is None else num_workers
    self.prefetch = prefetch
    self.reduced_decoding = reduced_decoding
    self._ids = ids
    self._eval_pipelines: dict[tuple, _Pipeline] = {}
    self._open: set[_Pipeline] = set()  # Every pipeline not closed yet.

  def _split(self, split: str) -> np.ndarray:
    if split not in self.indices:
      raise ValueError(f'Dataset {self.info.name!r} has no split {split!r}; it has '
                       f'{sorted(self.indices)}.')
    return self.indices[split]

  def num_examples(self, split: str) -> int:
    return len(self._split(split))

  def steps_per_epoch(self, split: str, batch_size: int) -> int:
    return base.steps_per_epoch(self.info.name, split, self.num_examples(split), batch_size)

  # --- Batch specs: (record indices, crop seeds, flips); -1 / None for padding ---

  def _eval_spec(self, split: str, batch: int, batch_size: int, seed: int,
                 process_index: int, process_count: int) -> tuple:
    n, local = self.num_examples(split), batch_size // process_count
    start = batch * batch_size + process_index * local
    positions = range(start, start + local)
    return ([int(self.indices[split][i]) if i < n else -1 for i in positions],
            [(seed, 1, i) if self.faithful_random_eval else None for i in positions],
            [self.eval_flip] * local)

  def _check(self, batch_size: int, process_count: int, what: str) -> None:
    if batch_size % process_count:
      raise ValueError(f'The global {what} {batch_size} is not a multiple of the '
                       f'{process_count} processes.')

  # --- Pipelines: grain iterators, their workers started once ---

  def _start(self, split: str, specs, num_batches: int = 0) -> _Pipeline:
    """A pipeline over the batches of `specs` (a grain MapDataset of batch specs), in
    order, decoded in `num_workers` processes (or in this process on grain's threads)."""
    import grain  # pylint: disable=g-import-not-at-top
    loader = _Loader(self.path, split, self.image_key, self.keys, self.image_size,
                     self.resize_size, self.reduced_decoding)
    threads = max(1, min(4, os.cpu_count() or 1))
    ds = specs.map(loader).to_iter_dataset(grain.ReadOptions(
        num_threads=threads, prefetch_buffer_size=threads + self.prefetch))
    if self.num_workers:
      _let_grain_read_its_flags()
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(
          num_workers=self.num_workers, per_worker_buffer_size=self.prefetch))
    pipeline = _Pipeline(iter(ds), num_batches)
    self._open.add(pipeline)
    return pipeline

  def _close(self, pipeline: _Pipeline) -> None:
    self._open.discard(pipeline)
    pipeline.close()

  def close(self) -> None:
    """Stops every worker process of this dataset: the evaluation pipelines it keeps
    between passes and the training iterators still open (which then fail if read).
    The dataset stays usable: a later call starts new workers. Idempotent."""
    for pipeline in list(self._open):
      self._close(pipeline)
    self._eval_pipelines.clear()

  def __enter__(self) -> 'StreamingDataset':
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  # --- Public batching ---

  def train_batches(self, split: str, start_step: int, batch_size: int, seed: int,
                    process_index: int = 0, process_count: int = 1,
                    num_steps: Optional[int] = None) -> Iterator[dict]:
    """This process's share (batch_size // process_count examples) of the global
    batches of steps start_step, start_step + 1, ... (num_steps of them, or without
    end): `image` uint8 (b, size, size, 3) augmented, `label`, and `target` if any.
    One pipeline for all the steps (its workers start once, on the first batch); they
    stop when the iterator is exhausted, closed or dropped, or on `close()`."""
    import grain  # pylint: disable=g-import-not-at-top
    self._check(batch_size, process_count, 'batch size')
    self.steps_per_epoch(split, batch_size)  # A clear error if there is no full batch.
    stop = start_step + (num_steps if num_steps is not None else 1 << 40)
    specs = grain.MapDataset.range(start_step, stop).map(_TrainSpec(
        self._split(split), batch_size, seed, process_index, process_count))
    pipeline = self._start(split, specs)
    try:
      yield from pipeline.iterator
    finally:
      self._close(pipeline)

  def train_batch(self, split: str, step: int, batch_size: int, seed: int) -> dict:
    """The whole global batch of one step (as `Dataset.train_batch`)."""
    return next(self.train_batches(split, step, batch_size, seed, num_steps=1))

  def _eval_pipeline(self, split: str, specs: list, key: tuple) -> _Pipeline:
    """The split's evaluation pipeline, started on the first pass and kept for the next
    ones. A kept one left mid-pass (a pass not read to its end) is replaced; while one
    is being read (two passes at once), the other pass gets a one-off pipeline."""
    import grain  # pylint: disable=g-import-not-at-top
    kept = self._eval_pipelines.get(key)
    if kept is not None and not kept.busy:
      if kept.position % kept.num_batches == 0:
        return kept
      self._close(kept)
      kept = None
    pipeline = self._start(split, grain.MapDataset.source(specs).repeat(), len(specs))
    if kept is None:
      self._eval_pipelines[key] = pipeline
    return pipeline

  def eval_batches(self, split: str, batch_size: int, process_index: int = 0,
                   process_count: int = 1, seed: int = 0) -> Iterator[dict]:
    """The split in order, in ceil(n / batch_size) global batches, the last padded with
    zeros; `mask` is 1 for real examples. Every process gets the same number of
    batches, and each example is in exactly one process's share of one batch.

    The split's worker processes start on the first pass and serve every later one
    (of the same batch size, process and seed), until `close()`."""
    self._check(batch_size, process_count, 'eval batch size')
    specs = [self._eval_spec(split, b, batch_size, seed, process_index, process_count)
             for b in range(-(-self.num_examples(split) // batch_size))]
    if not specs:
      return
    key = (split, batch_size, process_index, process_count,
           seed if self.faithful_random_eval else 0)
    pipeline = self._eval_pipeline(split, specs, key)
    pipeline.busy = True
    try:
      for spec in specs:
        batch = next(pipeline.iterator)
        pipeline.position += 1
        batch['mask'] = (np.asarray(spec[0]) >= 0).astype(np.float32)
        yield batch
    finally:
      pipeline.busy = False
      if self._eval_pipelines.get(key) is not pipeline:
        self._close(pipeline)  # A one-off (the kept one was busy): not kept.

  def example_ids(self, split: str) -> Optional[np.ndarray]:
    """The stored `id` of each example of the split, in order, where there is one."""
    return None if self._ids is None else np.asarray(self._ids(split))[self._split(split)]


class _TrainSpec:
  """step -> the batch spec of this process's share of the global batch of `step`
  (picklable: it runs in grain's workers)."""

  def __init__(self, indices: np.ndarray, batch_size: int, seed: int, process_index: int,
               process_count: int):
    self.indices, self.batch_size, self.seed = indices, batch_size, seed
    self.local = batch_size // process_count
    self.first = process_index * self.local

  @functools.lru_cache(maxsize=2)
  def permutation(self, epoch: int) -> np.ndarray:
    return streamed_epoch_permutation(self.seed, epoch, len(self.indices))

  def __call__(self, step: int) -> tuple:
    epoch, pos = divmod(int(step), len(self.indices) // self.batch_size)
    start = pos * self.batch_size + self.first
    chosen = self.permutation(epoch)[start:start + self.local]
    return (self.indices[chosen],
            [(self.seed, 0, int(step), self.first + j) for j in range(self.local)],
            [True] * self.local)
