r"""Prepares a dataset, offline, from files the user already has.

  python -m hyperproto.data.prepare --dataset=cifar100 --manual_dir=~/Downloads \
      [--data_dir=~/hyperproto_data]

Nothing is downloaded: --manual_dir holds the original files (archives packed or
unpacked; see `--dataset=NAME --helpfiles` or the README for what each dataset needs),
and the prepared copy goes to <data_dir>/<NAME>/ (format: `store.py`). The prepare
report (counts of examples, and of any bad rows or files that were left out) is printed
and kept in <data_dir>/<NAME>/info.json.
"""

import json
import os
from typing import Callable, Optional

from absl import app
from absl import flags

from hyperproto.data import cifar, cub, imagenet200, mnist, omniart, store

# name -> (prepare(manual_dir, data_dir) -> report, what to obtain)
PREPARERS: dict[str, tuple[Callable[..., dict], str]] = {
    'mnist': (mnist.prepare, mnist.FILES),  # also serves mnist_rotated
    'cifar10_jpeg': (cifar.prepare_cifar10_jpeg, cifar.CIFAR10_JPEG_FILES),
    'cifar100': (cifar.prepare_cifar100, cifar.CIFAR100_FILES),
    'imagenet200': (imagenet200.prepare, imagenet200.FILES),
    'tiny_imagenet200': (imagenet200.prepare_tiny, imagenet200.FILES),
    'cub': (cub.prepare, cub.FILES),
    'omniart': (omniart.prepare, omniart.FILES),
}
ALIASES = {'mnist_rotated': 'mnist', 'caltech_birds2011': 'cub'}


def prepare(dataset: str, manual_dir: str, data_dir: Optional[str] = None,
            **kwargs) -> dict:
  """Prepares `dataset`; returns the report (also stored in info.json)."""
  name = ALIASES.get(dataset, dataset)
  if name not in PREPARERS:
    raise ValueError(f'Unknown dataset {dataset!r}; use one of '
                     f'{sorted(PREPARERS) + sorted(ALIASES)}.')
  fn, _ = PREPARERS[name]
  return fn(manual_dir, data_dir, **kwargs)


def _define_flags() -> None:
  """The command-line flags (defined only when run as a program, so that importing
  `prepare` as a library defines none)."""
  flags.DEFINE_enum('dataset', None, sorted(PREPARERS) + sorted(ALIASES),
                    'Dataset to prepare.')
  flags.DEFINE_string('manual_dir', None, 'Folder holding the original files.')
  flags.DEFINE_string('data_dir', None, 'Where to write the prepared dataset '
                      f'(default: ${store.ENV_VAR}, else ~/hyperproto_data).')
  flags.DEFINE_enum('source_format', 'auto', ['auto', 'python', 'binary'],
                    'cifar100 only: which archive to read.')
  flags.DEFINE_bool('helpfiles', False, 'Print which files --dataset needs, and stop.')


def main(argv):
  del argv
  f = flags.FLAGS
  if not f.dataset:
    raise app.UsageError('--dataset is required.')
  name = ALIASES.get(f.dataset, f.dataset)
  if f.helpfiles or not f.manual_dir:
    print(PREPARERS[name][1].strip())
    if not f.helpfiles:
      raise app.UsageError('--manual_dir is required (the folder holding those files).')
    return
  kwargs = {'source_format': f.source_format} if name == 'cifar100' else {}
  report = prepare(name, os.path.expanduser(f.manual_dir), f.data_dir, **kwargs)
  print(json.dumps(report, indent=1, default=str))
  data_dir = store.default_data_dir(f.data_dir)
  print(f'Prepared {name!r} in {store.dataset_dir(name, data_dir)}; load it with '
        f'hyperproto.data.load({f.dataset!r}, data_dir={data_dir!r}).')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
