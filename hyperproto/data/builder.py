"""What our TFDS builders share, and preparing a dataset into a TFDS data directory.

Every dataset hyperproto supports is a `tfds.core.GeneratorBasedBuilder` of ours
(`Builder` below), prepared offline from files the user already has (`manual_dir`) into
TFDS's `array_record` format, with no TensorFlow anywhere:

  * archives are read with `tarfile` / `zipfile` (`sources.py`), never TFDS's extractor;
  * images are yielded as encoded bytes (large images: the original JPEG, untouched) or,
    for the small datasets held on the device, as raw uint8 `Tensor` features stored as
    bytes (`Encoding.BYTES`): a 50,000-image split reads back in about 2 s, where PNG
    features need a PIL decode per image (experiments/bench_input.py measures both);
  * examples keep the order of the original files (`disable_shuffling`), so example i of
    a split is the i-th of the source.

`prepare()` builds into a temporary data directory beside the real one and moves the
finished version directory into place with one rename, so a half-written dataset is
never picked up and a failed prepare leaves the previous copy as it was. The prepare
report (counts of examples, and of the rows and files left out, with examples), the
SHA-256 of every record file and of the source archive go into the dataset's
`metadata.json`; `reader.py` checks the record files against them.

Data directory: TFDS's convention, `--data_dir`, else `$TFDS_DATA_DIR`, else
`~/tensorflow_datasets`, the same at prepare and at train time.
"""

import hashlib
import logging as std_logging
import os
import shutil
import tempfile
from typing import Any, Iterator, Optional

import numpy as np
import tensorflow_datasets as tfds

ENV_VAR = 'TFDS_DATA_DIR'
PREFIX = 'hyperproto_'  # our builders' registered names: hyperproto_cifar100, ...
REPORT_EXAMPLES = 10  # listed per kind of problem in a prepare report

# TFDS logs a recommendation to install OpenCV at every image decode; PIL is what we use.
std_logging.getLogger('absl').addFilter(
    lambda record: 'OpenCV is not installed' not in record.getMessage())


class NotPreparedError(FileNotFoundError):
  """A dataset was asked for that has not been prepared in the data directory."""


def default_data_dir(data_dir: Optional[str] = None) -> str:
  """`data_dir`, else $TFDS_DATA_DIR, else ~/tensorflow_datasets (TFDS's own rule)."""
  return os.path.expanduser(data_dir or os.environ.get(ENV_VAR) or '~/tensorflow_datasets')


def sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 22), b''):
      h.update(chunk)
  return h.hexdigest()


def digest_of(parts: list[str]) -> str:
  """One SHA-256 for several strings (e.g. the checksums of a split's files)."""
  return hashlib.sha256('\n'.join(parts).encode()).hexdigest()


def cache_dir(sub: str) -> str:
  """A folder for derived data ($HYPERPROTO_CACHE/<sub>, else ~/.cache/hyperproto/<sub>),
  created if needed."""
  path = os.path.join(os.path.expanduser(
      os.environ.get('HYPERPROTO_CACHE') or '~/.cache/hyperproto'), sub)
  os.makedirs(path, exist_ok=True)
  return path


def problem(report: dict, kind: str, detail: str) -> None:
  """Counts a left-out row or file in `report[kind]`, listing the first few."""
  entry = report.setdefault(kind, {'count': 0, 'examples': []})
  entry['count'] += 1
  if len(entry['examples']) < REPORT_EXAMPLES:
    entry['examples'].append(detail)


def rows(arrays: dict[str, np.ndarray]) -> Iterator[tuple[int, dict[str, Any]]]:
  """(index, example) for each row of same-length arrays."""
  for i in range(len(next(iter(arrays.values())))):
    yield i, {k: v[i] for k, v in arrays.items()}


def image_tensor(shape: tuple[int, int, int]) -> tfds.features.Tensor:
  """A fixed-size uint8 image stored as raw bytes (fast to read, no decode)."""
  return tfds.features.Tensor(shape=shape, dtype=np.uint8,
                              encoding=tfds.features.Encoding.BYTES)


class Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of our builders: metadata for `DatasetInfo`, the report, checksums.

  A subclass sets VERSION, RELEASE_NOTES, MANUAL_DOWNLOAD_INSTRUCTIONS, the class
  attributes below, and implements `_features()` and `_examples(manual_dir)`, which
  returns {split: iterable of (key, example)} and may name the classes (set
  `self.info.features['label'].names`) and fill `self.report` as it reads. Registered names
  carry the prefix `hyperproto_` (`name = PREFIX + DATASET`), so they never shadow
  TFDS's stock builders of the same datasets, which read other files and need TF.
  """
  name = 'hyperproto_builder'  # (abstract; TFDS would otherwise derive a name)
  DATASET = ''  # our name for it: --dataset=... and config.data.name
  MEAN: tuple[float, ...] = ()
  STD: tuple[float, ...] = ()
  TARGET_NAME: Optional[str] = None
  TARGET_UNIT: str = ''
  TARGET_RANGE: Optional[tuple[float, float]] = None
  HOMEPAGE = ''
  CITATION = ''

  def __init__(self, **kwargs: Any):
    self.report: dict[str, Any] = {}
    super().__init__(**kwargs)

  def _features(self) -> tfds.features.FeaturesDict:
    raise NotImplementedError

  def _examples(self, manual_dir: str) -> dict[str, Any]:
    raise NotImplementedError

  def _metadata(self) -> dict[str, Any]:
    """What DatasetInfo needs beyond the features (see `reader.dataset_info`)."""
    target_range = None if self.TARGET_RANGE is None else list(self.TARGET_RANGE)
    return dict(mean=list(self.MEAN), std=list(self.STD), target_name=self.TARGET_NAME,
                target_unit=self.TARGET_UNIT, target_range=target_range)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=(self.__doc__ or '').strip(), features=self._features(),
        homepage=self.HOMEPAGE, citation=self.CITATION, disable_shuffling=True,
        metadata=tfds.core.MetadataDict(hyperproto=self._metadata()))

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    return {split: self._counted(split, examples)
            for split, examples in self._examples(os.fspath(dl_manager.manual_dir)).items()}

  def _counted(self, split: str, examples) -> Iterator[tuple[Any, dict]]:
    n = 0
    for key, example in examples:
      n += 1
      yield key, example
    self.report[f'{split}_examples'] = n

  def _generate_examples(self, **kwargs):  # Not used: _split_generators yields directly.
    raise NotImplementedError

  def _download_and_prepare(self, dl_manager, download_config):
    super()._download_and_prepare(dl_manager, download_config)
    # The record files are complete now (in TFDS's temporary directory): record their
    # checksums and the report; DatasetInfo is written to metadata.json after this.
    meta = self.info.metadata['hyperproto']
    meta.update(self._metadata_after_prepare())
    meta['report'] = self.report
    meta['files'] = {
        f: {'bytes': os.path.getsize(os.path.join(self.data_dir, f)),
            'sha256': sha256(os.path.join(self.data_dir, f))}
        for f in sorted(os.listdir(self.data_dir)) if '.array_record-' in f}
    source = self.report.get('source')
    if source and os.path.isfile(source):
      meta['source_sha256'] = sha256(source)

  def _metadata_after_prepare(self) -> dict[str, Any]:
    """Metadata known only once the examples were read (e.g. pixel statistics)."""
    return {}


def prepare(builder_cls: type, manual_dir: str, data_dir: Optional[str] = None,
            overwrite: bool = False, **builder_kwargs: Any) -> tuple[str, dict]:
  """Prepares `builder_cls` from `manual_dir`; returns (its directory, the report).

  Builds into a temporary directory inside the data directory, then renames the
  finished version directory into place (replacing an older copy only with
  `overwrite`), so a failed or interrupted prepare never leaves a partial dataset where
  a reader looks.
  """
  if not os.path.isdir(manual_dir):
    raise FileNotFoundError(f'--manual_dir {manual_dir} is not a folder.\n'
                            f'{builder_cls.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()}')
  root = default_data_dir(data_dir)
  os.makedirs(root, exist_ok=True)
  final = os.path.join(root, *_relative_dir(builder_cls, builder_kwargs))
  if os.path.exists(final) and not overwrite:
    raise FileExistsError(f'{final} is already prepared; pass --overwrite (overwrite=True) '
                          'to prepare it again.')
  tmp_root = tempfile.mkdtemp(prefix='.hyperproto-prepare-', dir=root)
  try:
    builder = builder_cls(data_dir=tmp_root, file_format='array_record', **builder_kwargs)
    builder.download_and_prepare(
        download_dir=os.path.join(tmp_root, 'downloads'),
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    os.makedirs(os.path.dirname(final), exist_ok=True)
    old = None
    if os.path.exists(final):
      old = tempfile.mkdtemp(prefix='.hyperproto-old-', dir=root)
      os.rename(final, os.path.join(old, 'version'))
    os.rename(os.fspath(builder.data_dir), final)
    if old:
      shutil.rmtree(old, ignore_errors=True)
    return final, builder.report
  finally:
    shutil.rmtree(tmp_root, ignore_errors=True)


def _relative_dir(builder_cls: type, builder_kwargs: dict) -> list[str]:
  """<name>[/<config>]/<version>, where TFDS puts the prepared files."""
  config = builder_kwargs.get('config')
  parts = [builder_cls.name]
  if config is not None:
    parts.append(config if isinstance(config, str) else config.name)
  return parts + [str(builder_cls.VERSION)]
