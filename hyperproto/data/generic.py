"""Any prepared TFDS image-classification dataset, by name: `tfds:NAME[/CONFIG][:VERSION]`.

    --config.data.name=tfds:oxford_flowers102
    --config.data.name=tfds:cifar10:3.0.2 --config.data.kwargs.label_key=label

The dataset must be prepared in the data directory (`--config.data.data_dir`,
else $TFDS_DATA_DIR, else ~/tensorflow_datasets) in `array_record` format: TFDS's
builders prepare with TensorFlow (`tfds build NAME --file_format=array_record`), on any
machine; reading here needs none. Splits keep TFDS's names (set
`config.data.train_split` / `eval_split`, e.g. `validation`).

Small images (a fixed size of at most 64 pixels, or `resident=True`) are read whole
into memory, resized to `image_size` if asked, and held on the device like CIFAR, with
mean and std measured on the train split; larger ones are streamed
(`streaming.StreamingDataset`: RandomResizedCrop + flip for training, resize and centre
crop for evaluation), normalised with the ImageNet constants unless `mean` / `std` are
given. The same rules serve a user's own image folders (`folder.py`).
"""

import re
from typing import Any, Optional, Sequence, Union

import numpy as np
import tensorflow_datasets as tfds

from hyperproto.data import reader
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
