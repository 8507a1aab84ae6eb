r"""Prepares a dataset, offline, from files the user already has, into a TFDS data dir.

  python -m hyperproto.data.prepare --dataset=cifar100 --manual_dir=~/Downloads \
      [--data_dir=~/tensorflow_datasets] [--overwrite]
  python -m hyperproto.data.prepare --dataset=folder --manual_dir=DIR --name=my_birds
  python -m hyperproto.data.prepare --dataset=tfds:NAME[/CONFIG][:VERSION] \
      [--data_dir=DIR] [--out_data_dir=DIR] [--overwrite]

Nothing is downloaded: --manual_dir holds the original files (archives packed or
unpacked; `--dataset=NAME --helpfiles` prints what each dataset needs). Every dataset is
a TFDS builder of ours (`builder.py`), prepared in `array_record` format into
<data_dir>/hyperproto_<NAME>/<version>/ (--data_dir, else $TFDS_DATA_DIR, else
~/tensorflow_datasets) without TensorFlow. The prepare report (counts of examples, and
of the bad rows or files that were left out) is printed and kept in the dataset's
metadata.json.

(TFDS's own `tfds build` command imports TensorFlow at start-up, even for builders that
need none, so it cannot prepare these on a machine without TF; this command can.)

`--dataset=tfds:NAME` converts a TFDS dataset prepared in `tfrecord` (TFDS's default
format) into `array_record`, beside its shards or into --out_data_dir, every checksum
and count checked (`generic.convert`); `tfds convert_format` does the same with
TensorFlow.
"""

import json
import os
import sys
from typing import Optional

from absl import app
from absl import flags

from hyperproto.data import builder as builder_lib
from hyperproto.data import cifar, cub, folder, generic, imagenet200, mnist, omniart

BUILDERS: dict[str, type] = {b.DATASET: b for b in (
    mnist.Mnist, cifar.Cifar10Jpeg, cifar.Cifar100, imagenet200.Imagenet200,
    imagenet200.TinyImagenet200, cub.CaltechBirds2011, omniart.Omniart, folder.Folder)}
ALIASES = {'mnist_rotated': 'mnist', 'caltech_birds2011': 'cub'}
TFDS = 'tfds:'  # --dataset=tfds:NAME converts a TFDS dataset from tfrecord


def _key(dataset: str) -> str:
  """Our builder's key for --dataset, checked."""
  key = ALIASES.get(dataset, dataset)
  if key not in BUILDERS:
    raise ValueError(f'Unknown dataset {dataset!r}; use one of '
                     f'{sorted(BUILDERS) + sorted(ALIASES)}, or tfds:NAME (a TFDS '
                     'dataset prepared as tfrecord, to convert).')
  return key


def prepare(dataset: str, manual_dir: Optional[str] = None,
            data_dir: Optional[str] = None, name: Optional[str] = None,
            overwrite: bool = False, out_data_dir: Optional[str] = None,
            **kwargs) -> dict:
  """Prepares `dataset` (for `folder`, under `name`) from `manual_dir`, or converts
  `tfds:NAME` from tfrecord (into `out_data_dir`, default: beside it); returns the
  report (ours: also kept in the dataset's metadata.json)."""
  if dataset.startswith(TFDS):
    if manual_dir or name or kwargs:
      raise ValueError(f'{dataset} is converted from its prepared copy in --data_dir; '
                       '--manual_dir, --name and builder options do not apply.')
    return generic.convert(dataset[len(TFDS):], data_dir, out_data_dir, overwrite)
  if out_data_dir:
    raise ValueError('--out_data_dir is for --dataset=tfds:NAME; use --data_dir.')
  key = _key(dataset)
  if not manual_dir:
    raise ValueError(f'{dataset} is prepared from the original files: pass '
                     '--manual_dir.')
  if key == 'folder':
    kwargs.update(folder.prepare_kwargs(manual_dir, name))
  elif name:
    raise ValueError(f'--name is for --dataset=folder; {dataset} has its own name.')
  manual_dir = os.path.abspath(os.path.expanduser(manual_dir))
  path, report = builder_lib.prepare(BUILDERS[key], manual_dir, data_dir,
                                     overwrite=overwrite, **kwargs)
  return dict(report, prepared=path)


def _define_flags() -> None:
  """The command-line flags (defined only when run as a program, so that importing
  `prepare` as a library defines none)."""
  flags.DEFINE_string('dataset', None, f'Dataset to prepare: one of '
                      f'{sorted(BUILDERS) + sorted(ALIASES)}, or tfds:NAME[/CONFIG]'
                      '[:VERSION] to convert a TFDS dataset from tfrecord.')
  flags.DEFINE_string('manual_dir', None, 'Folder holding the original files.')
  flags.DEFINE_string('data_dir', None, 'The TFDS data directory to prepare into, or '
                      'that holds the tfds: dataset to convert (default: '
                      f'${builder_lib.ENV_VAR}, else ~/tensorflow_datasets).')
  flags.DEFINE_string('out_data_dir', None, 'tfds: only: the data directory to write '
                      'the array_record copy into (default: beside the tfrecord '
                      'shards).')
  flags.DEFINE_string('name', None, '--dataset=folder only: the name to train it by '
                      '(--config.data.name=folder:NAME).')
  flags.DEFINE_bool('overwrite', False, 'Replace a prepared copy of the same version.')
  flags.DEFINE_enum('source_format', 'auto', ['auto', 'python', 'binary'],
                    'cifar100 only: which archive to read.')
  flags.DEFINE_bool('helpfiles', False, 'Print which files --dataset needs, and stop.')


def main(argv):
  del argv
  f = flags.FLAGS
  if not f.dataset:
    raise app.UsageError('--dataset is required.')
  try:
    if f.dataset.startswith(TFDS):
      report = prepare(f.dataset, f.manual_dir, f.data_dir, name=f.name,
                       overwrite=f.overwrite, out_data_dir=f.out_data_dir)
      _print_how_to_train(report, f.dataset, f.out_data_dir or f.data_dir)
      return
    key = _key(f.dataset)
    if f.helpfiles or not f.manual_dir:
      print(BUILDERS[key].MANUAL_DOWNLOAD_INSTRUCTIONS.strip())
      if not f.helpfiles:
        raise app.UsageError('--manual_dir is required (the folder holding those files).')
      return
    kwargs = {'source_format': f.source_format} if key == 'cifar100' else {}
    report = prepare(key, f.manual_dir, f.data_dir, name=f.name, overwrite=f.overwrite,
                     out_data_dir=f.out_data_dir, **kwargs)
  except (OSError, ValueError) as e:  # Bad input: the message says what to do.
    print(f'Error: {e}', file=sys.stderr)
    sys.exit(1)
  _print_how_to_train(report, f'folder:{f.name}' if key == 'folder' else f.dataset,
                      f.data_dir)


def _print_how_to_train(report: dict, train_name: str, data_dir: Optional[str]) -> None:
  print(json.dumps(report, indent=1, default=str))
  data_dir = builder_lib.default_data_dir(data_dir)
  where = report.get('prepared') or report['converted']
  print(f'Prepared {train_name!r} in {where}.\nTrain on it with '
        f'--config.data.name={train_name}'
        + ('' if data_dir == builder_lib.default_data_dir() else
           f' --config.data.data_dir={data_dir}') + ', or load it with '
        f'hyperproto.data.load({train_name!r}, data_dir={data_dir!r}).')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
