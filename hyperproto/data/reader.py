"""Reading prepared TFDS datasets without TensorFlow: ours, or any in `array_record`
(one in `tfrecord` is converted first: `generic.convert`).

A prepared dataset is a TFDS version directory, `<data_dir>/<name>[/<config>]/<version>/`
(`dataset_info.json`, `features.json`, the `.array_record` shards). It is opened with
`tfds.builder_from_directory` (no builder code needed, so a dataset a user prepared
elsewhere works too) and read with `as_data_source`, TFDS's random-access reader, whose
images PIL decodes. TensorFlow is never imported: `tfds.load` / `as_dataset` are not used.

Small datasets (`resident`: fixed image size) are read whole into numpy arrays, which the
trainer puts on the devices; large images are streamed (`streaming.py`).
"""

import functools
import os
import re
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import tensorflow_datasets as tfds

from hyperproto.data import builder as builder_lib
from hyperproto.data import sources
from hyperproto.data.base import Dataset, DatasetInfo

NotPreparedError = builder_lib.NotPreparedError
_VERSION_RE = re.compile(r'^\d+\.\d+\.\d+$')
_CHUNK = 8192  # examples per read when a split is read whole


def _versions(path: str) -> list[str]:
  if not os.path.isdir(path):
    return []
  found = [v for v in os.listdir(path) if _VERSION_RE.match(v)
           and os.path.exists(os.path.join(path, v, 'dataset_info.json'))]
  return sorted(found, key=lambda v: tuple(int(x) for x in v.split('.')))


def find(name: str, data_dir: Optional[str], version: Optional[str] = None,
         how_to_prepare: str = '') -> str:
  """The version directory of `name` (`NAME` or `NAME/CONFIG`) in the data directory.

  `version`: the one required (ours: the builder's VERSION), else the newest there.
  Errors say what is there, and how to prepare what is missing.
  """
  root = builder_lib.default_data_dir(data_dir)
  path = os.path.join(root, *name.split('/'))
  found = _versions(path)
  if version is not None and version in found:
    return os.path.join(path, version)
  if version is None and found:
    return os.path.join(path, found[-1])
  where = (f'--data_dir / data_dir, else ${builder_lib.ENV_VAR}, else '
           '~/tensorflow_datasets')
  if found and how_to_prepare:
    raise NotPreparedError(
        f'{path} holds version(s) {", ".join(found)} of {name!r}, but this version of '
        f'hyperproto reads version {version}. Prepare it again:\n'
        f'{how_to_prepare.strip()}')
  if found:
    raise NotPreparedError(f'{path} holds version(s) {", ".join(found)} of {name!r}, not '
                           f'the version {version} asked for.')
  if how_to_prepare:
    raise NotPreparedError(f'Dataset {name!r} is not prepared in {root} ({where}); '
                           f'looked for {path}/<version>/.\n{how_to_prepare.strip()}')
  there = sorted(d for d in os.listdir(root) if not d.startswith('.')) if os.path.isdir(
      root) else []
  raise NotPreparedError(
      f'No prepared TFDS dataset {name!r} in {root} ({where}): looked for '
      f'{path}/<version>/dataset_info.json. That folder holds: {there or "nothing"}. '
      'Prepare the dataset with TFDS (e.g. `tfds build NAME --file_format=array_record` '
      'on a machine with TensorFlow) and copy it there, or pass its data_dir.')


def open_builder(path: str, how_to_prepare: str = '',
                 verify_checksums: bool = False) -> tfds.core.DatasetBuilder:
  """A read-only TFDS builder for a prepared version directory, checked: array_record
  files, present with the sizes (and, with verify_checksums, the SHA-256) recorded."""
  b = tfds.builder_from_directory(path)
  array_record = tfds.core.FileFormat.ARRAY_RECORD
  if array_record not in b.info.available_file_formats():
    raise ValueError(_not_array_record(b, path))
  fix = f'Prepare it again.\n{how_to_prepare.strip()}'.strip()
  for split, info in b.info.splits.items():
    shards = info.filename_template.replace(filetype_suffix=array_record.file_suffix)
    for f in shards.sharded_filepaths(info.num_shards):
      if not os.path.exists(f):
        raise NotPreparedError(f'{f} ({split} split) is missing. {fix}')
  recorded = (b.info.metadata or {}).get('hyperproto', {}).get('files', {})
  for f, entry in recorded.items():
    file = os.path.join(path, f)
    if os.path.getsize(file) != entry['bytes']:
      raise ValueError(f'{file} has {os.path.getsize(file)} bytes, {entry["bytes"]} when '
                       f'it was prepared: the file is truncated or was changed. {fix}')
    if verify_checksums and builder_lib.sha256(file) != entry['sha256']:
      raise ValueError(f'{file} does not match the SHA-256 recorded when it was '
                       f'prepared: the file is corrupt or was changed. {fix}')
  return b


def _not_array_record(b: tfds.core.DatasetBuilder, path: str) -> str:
  """What to do with a dataset prepared in another format than array_record."""
  formats = ', '.join(sorted(f.value for f in b.info.available_file_formats()))
  if b.info.file_format != tfds.core.FileFormat.TFRECORD:
    return (f'{path} is prepared as {formats} only; hyperproto reads TFDS datasets in '
            'array_record format (random access, no TensorFlow). Prepare it again with '
            '`tfds build NAME --file_format=array_record`.')
  parent, version = os.path.split(os.path.normpath(path))  # <root>/NAME[/CONFIG]
  spec, root = b.info.name, os.path.dirname(parent)
  if b.info.config_name:
    spec, root = f'{spec}/{b.info.config_name}', os.path.dirname(root)
  return (f'{path} is prepared as tfrecord only; hyperproto reads TFDS datasets in '
          'array_record format (random access). Convert it once, without TensorFlow '
          '(beside the tfrecord shards; --out_data_dir=DIR writes elsewhere):\n'
          f'  python -m hyperproto.data.prepare --dataset=tfds:{spec}:{version} '
          f'--data_dir={root}')


def metadata(b: tfds.core.DatasetBuilder) -> dict[str, Any]:
  """Our builders' metadata (mean, std, target, report, ...); {} for other datasets."""
  return dict((b.info.metadata or {}).get('hyperproto', {}))


def label_names(b: tfds.core.DatasetBuilder, key: str) -> tuple[str, ...]:
  """The class names of a label feature (a ClassLabel, or ours with the names in the
  metadata, as OmniArt's, whose label may be -1)."""
  if key == 'label' and metadata(b).get('class_names'):
    return tuple(metadata(b)['class_names'])
  if key not in b.info.features:
    raise ValueError(f'{b.info.full_name} has no feature {key!r}; it has '
                     f'{sorted(b.info.features)}. Set data.kwargs.label_key.')
  feature = b.info.features[key]
  if not isinstance(feature, tfds.features.ClassLabel):
    raise ValueError(f'{b.info.full_name}: feature {key!r} is a {type(feature).__name__},'
                     ' not a ClassLabel; set data.kwargs.label_key to the class label.')
  return tuple(feature.names)


def dataset_info(b: tfds.core.DatasetBuilder, name: str, image_shape: Sequence[int],
                 label_key: str = 'label', **overrides: Any) -> DatasetInfo:
  """DatasetInfo from a prepared dataset: classes from the label feature, the rest
  from our metadata (or `overrides`)."""
  meta = metadata(b)
  names = label_names(b, label_key)
  coarse = (label_names(b, 'coarse_label') if 'coarse_label' in b.info.features
            else ())
  fields = dict(
      name=name, num_classes=len(names), class_names=names,
      image_shape=tuple(int(s) for s in image_shape),
      mean=tuple(meta.get('mean') or ()), std=tuple(meta.get('std') or ()),
      target_name=meta.get('target_name'), target_unit=meta.get('target_unit') or '',
      target_range=(tuple(meta['target_range']) if meta.get('target_range') else None),
      coarse_class_names=coarse)
  fields.update(overrides)
  return DatasetInfo(**fields)


def _every_record(source) -> Iterator[Any]:
  """Every record of a data source, in stored order, read `_CHUNK` at a time."""
  for start in range(0, len(source), _CHUNK):
    yield from source.__getitems__(range(start, min(start + _CHUNK, len(source))))


def read_split(b: tfds.core.DatasetBuilder, split: str, keys: Sequence[str],
               decoders: Optional[dict] = None) -> dict[str, list]:
  """Every example of a split, as lists per key (in stored order)."""
  out = {k: [] for k in keys}
  for example in _every_record(b.as_data_source(split, decoders=decoders)):
    for k in keys:
      out[k].append(example[k])
  return out


def field_dtype(key: str) -> Any:
  """The dtype a field is held in: labels int32, the regression target float32 (None:
  as stored)."""
  return {'label': np.int32, 'coarse_label': np.int32, 'target': np.float32}.get(key)


def _raw_layout(b: tfds.core.DatasetBuilder, keys: Sequence[str]) -> Optional[dict]:
  """{key: (kind, shape, dtype)} where every feature has a layout `_read_raw` parses
  directly: fixed-shape tensors stored as raw bytes (ours), integer and float scalars
  (labels, targets); None otherwise."""
  layout = {}
  for k in keys:
    f = b.info.features[k]
    if (type(f) is tfds.features.Tensor  # pylint: disable=unidiomatic-typecheck
        and getattr(f, '_encoding', None) == tfds.features.Encoding.BYTES
        and None not in f.shape):
      layout[k] = ('bytes', tuple(f.shape), np.dtype(f.np_dtype))
    elif f.shape == () and np.issubdtype(f.np_dtype, np.integer):
      layout[k] = ('int64', (), np.dtype(np.int64))
    elif f.shape == () and np.issubdtype(f.np_dtype, np.floating):
      layout[k] = ('float', (), np.dtype(np.float32))
    else:
      return None
  return layout


def _read_raw(b: tfds.core.DatasetBuilder, split: str, layout: dict) -> dict:
  """A split's serialized examples parsed straight into arrays: the same values as
  TFDS's generic decoding, about twice as fast (a 50,000-image split: ~1 s of parsing
  instead of ~3 s on one core)."""
  # pylint: disable-next=g-import-not-at-top
  from tensorflow_datasets.proto import tf_example_pb2
  source = b.as_data_source(split, deserialize_method=(
      tfds.decode.DeserializeMethod.RAW_BYTES))
  parse = tf_example_pb2.Example.FromString
  out = {k: (bytearray() if kind == 'bytes' else []) for k, (kind, _, _) in layout.items()}
  for record in _every_record(source):
    feature = parse(record).features.feature
    for k, (kind, _, _) in layout.items():
      if kind == 'bytes':
        out[k] += feature[k].bytes_list.value[0]
      elif kind == 'int64':
        out[k].append(feature[k].int64_list.value[0])
      else:
        out[k].append(feature[k].float_list.value[0])
  return {k: (np.frombuffer(bytes(out[k]), dtype).reshape((-1, *shape)) if kind == 'bytes'
              else np.asarray(out[k], dtype))
          for k, (kind, shape, dtype) in layout.items()}


def read_arrays(b: tfds.core.DatasetBuilder, split: str, keys: Sequence[str],
                fast: bool = True) -> dict[str, np.ndarray]:
  """A split whose features have fixed shapes, as stacked numpy arrays: `image` uint8,
  `label` / `coarse_label` int32, `target` float32. With `fast`, features stored as raw
  bytes or scalars are parsed directly (`_read_raw`), others decoded by TFDS."""
  layout = _raw_layout(b, keys) if fast else None
  if layout is not None:
    values = _read_raw(b, split, layout)
  else:
    values = {k: (np.stack(v) if v else np.zeros((0,)))
              for k, v in read_split(b, split, keys).items()}
  out = {k: np.asarray(v, field_dtype(k)) for k, v in values.items()}
  if 'image' in out and out['image'].ndim == 3:  # grey images without a channel axis
    out['image'] = out['image'][..., None]
  return out


def load_resident(b: tfds.core.DatasetBuilder, info: DatasetInfo,
                  fields: Sequence[str] = ('image', 'label')) -> Dataset:
  """All splits of a fixed-size dataset of ours in memory (for the device)."""
  have = [f for f in fields if f in b.info.features]
  return Dataset(info=info, splits={s: read_arrays(b, s, have) for s in b.info.splits})


def fit_image(data: bytes, size: int, mode: str = 'RGB') -> np.ndarray:
  """Encoded image -> uint8 size x size: shorter side resized to `size` (bilinear,
  antialiased), then the centre crop; images already size x size are kept as they are."""
  image = sources.decode_image(data, mode)
  h, w = image.shape[:2]
  if (h, w) == (size, size):
    return image
  from PIL import Image  # pylint: disable=g-import-not-at-top
  scale = size / min(h, w)
  side_w, side_h = size / scale, size / scale
  left, top = (w - side_w) / 2, (h - side_h) / 2
  img = Image.fromarray(image[..., 0] if mode == 'L' else image, mode)
  out = np.asarray(img.resize((size, size), Image.BILINEAR,
                              box=(left, top, left + side_w, top + side_h)))
  return out[..., None] if out.ndim == 2 else out


def how_to_prepare(builder_cls: type, data_dir: Optional[str] = None,
                   extra: str = '') -> str:
  """What files a dataset of ours needs, and the command that prepares them."""
  return (f'{builder_cls.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()}\nThen run:\n'
          f'  python -m hyperproto.data.prepare --dataset={builder_cls.DATASET} '
          f'--manual_dir=DIR{extra} --data_dir={builder_lib.default_data_dir(data_dir)}\n'
          f'(or set ${builder_lib.ENV_VAR} instead of passing --data_dir / data_dir).')


def open_prepared(builder_cls: type, data_dir: Optional[str] = None,
                  config: Optional[str] = None, verify_checksums: bool = False,
                  extra: str = '') -> tfds.core.DatasetBuilder:
  """One of our datasets, prepared at exactly the builder's version."""
  how = how_to_prepare(builder_cls, data_dir, extra)
  name = builder_cls.name + (f'/{config}' if config else '')
  path = find(name, data_dir, str(builder_cls.VERSION), how)
  return open_builder(path, how, verify_checksums)


def _ids(b: tfds.core.DatasetBuilder, image_key: str, split: str) -> list:
  """The `id` feature of every example of a split (text ids as str)."""
  ids = read_split(b, split, ['id'], {image_key: tfds.decode.SkipDecoding()})['id']
  return [i.decode() if isinstance(i, bytes) else i for i in ids]


def load_streaming(b: tfds.core.DatasetBuilder, name: str, image_size: int = 224,
                   image_key: str = 'image', label_key: str = 'label',
                   keys: Optional[Sequence[str]] = None,
                   indices: Optional[dict[str, np.ndarray]] = None,
                   info_overrides: Optional[dict] = None, **kwargs: Any):
  """A large-image dataset as a `streaming.StreamingDataset` (decoded by grain).

  keys: the numeric features to batch besides the image (stored names; `label_key`
  is batched as `label`; default: the label only); kwargs: StreamingDataset's options.
  """
  from hyperproto.data import streaming  # pylint: disable=g-import-not-at-top
  info = dataset_info(b, name, (image_size, image_size, 3), label_key=label_key,
                      **(info_overrides or {}))
  sizes = {s: int(v.num_examples) for s, v in b.info.splits.items()}
  batched = {k: ('label' if k == label_key else k) for k in (keys or (label_key,))}
  ids = functools.partial(_ids, b, image_key) if 'id' in b.info.features else None
  return streaming.StreamingDataset(info, os.fspath(b.data_dir), sizes, indices,
                                    image_key=image_key, keys=batched,
                                    image_size=image_size, ids=ids, **kwargs)
