"""Any prepared TFDS image-classification dataset, by name: `tfds:NAME[/CONFIG][:VERSION]`.

    --config.data.name=tfds:oxford_flowers102
    --config.data.name=tfds:cifar10:3.0.2 --config.data.kwargs.label_key=label

The dataset must be prepared in the data directory (`--config.data.data_dir`,
else $TFDS_DATA_DIR, else ~/tensorflow_datasets) in `array_record` format, TFDS's
random-access one. One prepared in `tfrecord` (TFDS's default) is converted once,
without TensorFlow, by `convert` (`python -m hyperproto.data.prepare
--dataset=tfds:NAME`). Splits keep TFDS's names (set `config.data.train_split` /
`eval_split`, e.g. `validation`).

Small images (a fixed size of at most 64 pixels, or `resident=True`) are read whole
into memory, resized to `image_size` if asked, and held on the device like CIFAR, with
mean and std measured on the train split; larger ones are streamed
(`streaming.StreamingDataset`: RandomResizedCrop + flip for training, resize and centre
crop for evaluation), normalised with the ImageNet constants unless `mean` / `std` are
given. The same rules serve a user's own image folders (`folder.py`).
"""

import os
import re
import shutil
import tempfile
import time
from typing import Any, Optional, Sequence, Union

from absl import logging
from array_record.python import array_record_module
import numpy as np
import tensorflow_datasets as tfds

from hyperproto.data import builder as builder_lib
from hyperproto.data import reader
from hyperproto.data import tfrecord
from hyperproto.data.base import Dataset
from hyperproto.data.streaming import StreamingDataset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIDENT_MAX_SIZE = 64  # images up to this side are held on the device by default
_SPEC_RE = re.compile(r'^([a-z0-9_]+(?:/[a-zA-Z0-9_.\-]+)?)(?::(\d+\.\d+\.\d+))?$')


def parse(spec: str) -> tuple[str, Optional[str]]:
  """'NAME[/CONFIG][:VERSION]' -> (name with config, version or None)."""
  m = _SPEC_RE.match(spec)
  if not m:
    raise ValueError(f'{spec!r} is not a TFDS dataset name: use tfds:NAME, '
                     'tfds:NAME/CONFIG or tfds:NAME:1.2.0.')
  return m.group(1), m.group(2)


def _image_feature(b: tfds.core.DatasetBuilder, key: str):
  if key not in b.info.features:
    raise ValueError(f'{b.info.full_name} has no feature {key!r}; it has '
                     f'{sorted(b.info.features)}. Set data.kwargs.image_key.')
  return b.info.features[key]


def _stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
  """Per-channel mean and std of uint8 images, scaled to [0, 1]."""
  flat = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
  return tuple(flat.mean(0).tolist()), tuple(flat.std(0).tolist())


def _resident_split(b, split: str, image_key: str, label_key: str, keys: Sequence[str],
                    size: int, mode: str) -> dict[str, np.ndarray]:
  """A split in memory: images decoded with PIL and fitted to size x size."""
  skip = {image_key: tfds.decode.SkipDecoding()}
  feature = b.info.features[image_key]
  if isinstance(feature, tfds.features.Image):
    lists = reader.read_split(b, split, [image_key, label_key, *keys], skip)
    images = [reader.fit_image(x, size, mode) for x in lists.pop(image_key)]
  else:  # a uint8 Tensor
    lists = reader.read_split(b, split, [image_key, label_key, *keys])
    images = [np.asarray(x) for x in lists.pop(image_key)]
    if images and images[0].shape[:2] != (size, size):
      raise ValueError(f'{b.info.full_name}: {image_key!r} is a {images[0].shape} tensor; '
                       f'image_size={size} would need resizing, which only encoded images '
                       'support here. Leave image_size unset.')
  out = {'image': np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)}
  if out['image'].ndim == 3:
    out['image'] = out['image'][..., None]
  out['label'] = np.asarray(lists.pop(label_key), np.int32)
  for k, v in lists.items():
    out[k] = np.asarray(v, reader.field_dtype(k) or np.int32)
  return out


def load_builder(b: tfds.core.DatasetBuilder, name: str, image_key: str = 'image',
                 label_key: str = 'label', image_size: Optional[int] = None,
                 resident: Optional[bool] = None, train_split: str = 'train',
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, keys: Sequence[str] = (),
                 **streaming_kwargs: Any) -> Union[Dataset, StreamingDataset]:
  """A prepared dataset held in memory or streamed (see the module docstring).

  Args:
    b: the opened dataset (`reader.open_builder`).
    name: what DatasetInfo calls it.
    image_key, label_key: the image and class-label features.
    image_size: the side of the square images the model gets (default: the stored
      size where all images have one, else 224).
    resident: hold in memory (default: when image_size <= 64).
    train_split: where mean / std are measured (resident data).
    mean, std: per-channel normalisation (default: measured, or ImageNet's).
    keys: other numeric features to keep (e.g. `target`).
    **streaming_kwargs: StreamingDataset's options (num_workers, resize_size, ...).
  """
  feature = _image_feature(b, image_key)
  shape = tuple(feature.shape)
  meta = reader.metadata(b)
  stored_size = meta.get('image_size') or (
      shape[0] if shape[0] is not None and shape[0] == shape[1] else None)
  size = image_size or stored_size or 224
  channels = shape[-1] if shape[-1] is not None else 3
  if resident is None:
    resident = size <= RESIDENT_MAX_SIZE
  overrides = {}
  if mean is not None or std is not None:
    if mean is None or std is None:
      raise ValueError('Give both data.kwargs.mean and data.kwargs.std, or neither.')
    overrides = dict(mean=tuple(mean), std=tuple(std))
  if not resident:
    if channels != 3:
      raise ValueError(f'{b.info.full_name}: streaming needs RGB images; {image_key!r} '
                       f'has {channels} channel(s). Use resident=True.')
    if not overrides and not meta.get('mean'):
      overrides = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return reader.load_streaming(b, name, image_size=size, image_key=image_key,
                                 label_key=label_key, keys=(label_key, *keys),
                                 info_overrides=overrides, **streaming_kwargs)
  if any(streaming_kwargs.values()):  # (Defaults such as False / 0 / None are fine.)
    raise ValueError(f'{sorted(streaming_kwargs)} apply to streamed datasets only; '
                     f'{name} is held in memory (resident=True or image_size <= '
                     f'{RESIDENT_MAX_SIZE}).')
  mode = 'L' if channels == 1 else 'RGB'
  splits = {s: _resident_split(b, s, image_key, label_key, keys, size, mode)
            for s in b.info.splits}
  if not overrides and not meta.get('mean'):
    if train_split not in splits:
      raise ValueError(f'{name} has no split {train_split!r} to measure mean and std on; '
                       f'it has {sorted(splits)}. Pass data.kwargs.train_split, or mean '
                       'and std.')
    m, s = _stats(splits[train_split]['image'])
    overrides = dict(mean=m, std=s)
  image_shape = splits[next(iter(splits))]['image'].shape[1:]
  info = reader.dataset_info(b, name, image_shape, label_key=label_key, **overrides)
  return Dataset(info=info, splits=splits)


def load(spec: str, data_dir: Optional[str] = None, verify_checksums: bool = False,
         **kwargs: Any) -> Union[Dataset, StreamingDataset]:
  """`tfds:NAME[/CONFIG][:VERSION]` (without the `tfds:`) from the data directory."""
  name, version = parse(spec)
  b = reader.open_builder(reader.find(name, data_dir, version),
                          verify_checksums=verify_checksums)
  return load_builder(b, f'tfds:{name}', **kwargs)


# Converting a dataset prepared as tfrecord, as TFDS's `tfds convert_format` would,
# without its TensorFlow reader (tf.data.TFRecordDataset).

TFRECORD, ARRAY_RECORD = 'tfrecord', 'array_record'


def convert(spec: str, data_dir: Optional[str] = None,
            out_data_dir: Optional[str] = None, overwrite: bool = False) -> dict[str, Any]:
  """Converts `NAME[/CONFIG][:VERSION]`, prepared as tfrecord, into array_record.

  Every shard of every split is read (each record's checksums checked) and written as
  an array_record shard (`group_size:1`, as TFDS writes them) with the same records
  in the same order; each shard's count must match `shardLengths` in
  dataset_info.json. Metadata is updated as TFDS's `convert_format` does: converted
  beside the tfrecord shards (the default), `array_record` joins
  `alternativeFileFormats`; into another data directory (`out_data_dir`), the
  version directory gets the other metadata files and `fileFormat: array_record`,
  with the source recorded in `dataSourceAccesses`.

  Atomic as our prepares: shards are written into a temporary directory in the data
  directory; dataset_info.json is replaced (or the version directory renamed into
  place) only once all of them are complete. A corrupt, truncated, missing or
  miscounted shard is an error naming it, and leaves nothing behind.

  Returns:
    A report: examples per split, shards, megabytes, seconds, records per second, and
    `converted`, the version directory that now holds the array_record shards.
  """
  name, version = parse(spec)
  source = reader.find(name, data_dir, version)
  proto = tfds.core.dataset_info.read_from_json(os.path.join(source, 'dataset_info.json'))
  root = builder_lib.default_data_dir(out_data_dir or data_dir)
  final = os.path.join(root, *name.split('/'), proto.version)
  in_place = os.path.realpath(final) == os.path.realpath(source)
  _check_convertible(proto, source, spec, final, in_place, overwrite)
  created = not os.path.isdir(root)
  os.makedirs(root, exist_ok=True)
  tmp_root = tempfile.mkdtemp(prefix='.hyperproto-convert-', dir=root)
  try:
    tmp = os.path.join(tmp_root, 'version')
    os.makedirs(tmp)
    report = _convert_splits(proto, source, tmp)
    if in_place:
      _commit_beside(proto, source, tmp)
    else:
      source_root = builder_lib.default_data_dir(data_dir)
      _commit_elsewhere(proto, source, source_root, tmp, final)
  finally:
    shutil.rmtree(tmp_root, ignore_errors=True)
    if created and not os.listdir(root):  # (failed: no empty data directory either)
      os.rmdir(root)
  return dict(report, converted=final)


def _check_convertible(proto, source: str, spec: str, final: str, in_place: bool,
                       overwrite: bool) -> None:
  """Errors for datasets that are not tfrecord, or converted already."""
  if proto.file_format == ARRAY_RECORD:
    raise ValueError(f'{source} is prepared as array_record already: nothing to convert. '
                     f'Train on it with --config.data.name=tfds:{spec}.')
  if proto.file_format not in ('', TFRECORD):
    raise ValueError(f'{source} is prepared as {proto.file_format}; only tfrecord is '
                     'converted here.')
  if in_place and ARRAY_RECORD in proto.alternative_file_formats and not overwrite:
    raise FileExistsError(f'{source} has array_record shards already (dataset_info.json '
                          'lists it in alternativeFileFormats); pass --overwrite '
                          '(overwrite=True) to convert it again.')
  if not in_place and os.path.exists(final) and not overwrite:
    raise FileExistsError(f'{final} exists; pass --overwrite (overwrite=True) to '
                          'replace it.')


def _convert_splits(proto, source: str, out: str) -> dict[str, Any]:
  """Every tfrecord shard of `source` as an array_record shard in `out`."""
  splits = tfds.core.dataset_info.get_split_dict_from_proto(proto, source, TFRECORD)
  report, start, total, size = {}, time.perf_counter(), 0, 0
  for split in splits.values():
    target = split.filename_template.replace(data_dir=out, filetype_suffix=ARRAY_RECORD)
    for i, (path, expected) in enumerate(zip(split.filepaths, split.shard_lengths)):
      if not os.path.exists(path):
        raise FileNotFoundError(f'{path} ({split.name} split, shard {i + 1} of '
                                f'{split.num_shards}) is missing: copy the whole '
                                'version directory.')
      writer = array_record_module.ArrayRecordWriter(
          os.fspath(target.sharded_filepath(shard_index=i, num_shards=split.num_shards)),
          'group_size:1')
      count = 0
      try:
        for record in tfrecord.read(os.fspath(path)):
          writer.write(record)
          count += 1
      finally:
        writer.close()
      if count != expected:
        raise ValueError(f'{path} holds {count} records; dataset_info.json says '
                         f'{expected} (shardLengths of the {split.name} split): the '
                         'shard and the metadata do not belong together. Copy the '
                         'whole version directory again.')
      total, size = total + count, size + os.path.getsize(path)
      logging.info('%s: %d records (%d so far, %.0f/s)', os.path.basename(path), count,
                   total, total / (time.perf_counter() - start))
    report[f'{split.name}_examples'] = split.num_examples
  seconds = time.perf_counter() - start
  return dict(report, shards=sum(s.num_shards for s in splits.values()),
              megabytes=round(size / 1e6, 1), seconds=round(seconds, 2),
              records_per_second=round(total / max(seconds, 1e-9)))


def _commit_beside(proto, source: str, tmp: str) -> None:
  """Moves the new shards beside the tfrecord ones, then replaces dataset_info.json
  (with array_record among the alternative formats): until that last rename, the
  dataset reads as it was."""
  added = []  # (shards replaced with --overwrite are complete too: they stay)
  try:
    for f in sorted(os.listdir(tmp)):
      if not os.path.exists(os.path.join(source, f)):
        added.append(f)
      os.replace(os.path.join(tmp, f), os.path.join(source, f))
    if ARRAY_RECORD not in proto.alternative_file_formats:
      proto.alternative_file_formats.append(ARRAY_RECORD)
    tfds.core.dataset_info.write_dataset_info_proto(proto, tmp)
    os.replace(os.path.join(tmp, 'dataset_info.json'),
               os.path.join(source, 'dataset_info.json'))
  except BaseException:
    for f in added:
      os.remove(os.path.join(source, f))
    raise


def _commit_elsewhere(proto, source: str, source_root: str, tmp: str,
                      final: str) -> None:
  """Completes the version directory in `tmp` (the other metadata files, then
  dataset_info.json in array_record, naming its source) and renames it to `final`."""
  splits = tfds.core.dataset_info.get_split_dict_from_proto(proto, source, TFRECORD)
  shards = {os.path.basename(p) for s in splits.values() for p in s.filepaths}
  for f in sorted(os.listdir(source)):  # features.json, <label>.labels.txt, ...
    if (f not in shards and f != 'dataset_info.json' and not os.path.exists(
        os.path.join(tmp, f)) and os.path.isfile(os.path.join(source, f))):
      shutil.copy2(os.path.join(source, f), os.path.join(tmp, f))
  tfds.core.dataset_info.add_tfds_data_source_access(
      proto, tfds.core.naming.DatasetReference(
          dataset_name=proto.name, config=proto.config_name or None,
          version=proto.version, data_dir=source_root))
  proto.file_format = ARRAY_RECORD
  if ARRAY_RECORD in proto.alternative_file_formats:  # (converted beside it before)
    proto.alternative_file_formats.remove(ARRAY_RECORD)
  tfds.core.dataset_info.write_dataset_info_proto(proto, tmp)
  os.makedirs(os.path.dirname(final), exist_ok=True)
  if os.path.exists(final):  # (with overwrite: checked before converting)
    os.rename(final, os.path.join(os.path.dirname(tmp), 'replaced'))  # (removed with it)
  os.rename(tmp, final)
