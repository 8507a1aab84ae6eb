"""ImageFolder trees (`train/<class>/<image>`, `test/<class>/<image>`), read for builders.

The layout torchvision's ImageFolder reads, and the one of the CIFAR-10 JPEG copy, the
HPN authors' prepared ImageNet-200 and a user's own data (`folder.py`). As there, labels
index the sorted class folders of the train split, so label numbers agree with the
original code. Examples are ordered by (class, file name), whatever order the archive
lists them in, so preparing the same files twice gives the same dataset.
"""

import re
from typing import Callable, Iterator, Optional

import tensorflow_datasets as tfds

from hyperproto.data import builder as builder_lib
from hyperproto.data import sources

FOLDER_RE = re.compile(r'(?:^|/)(train|test)/([^/]+)/([^/]+)$')
Item = tuple[str, str, bytes]  # class folder, file name, encoded image


def collect(tree: sources.FileTree, pattern: re.Pattern = FOLDER_RE,
            split_of: Callable[[str], str] = lambda s: s,
            suffixes: tuple[str, ...] = sources.IMAGE_SUFFIXES
            ) -> tuple[list[str], dict[str, list[Item]]]:
  """(sorted class names of train/, {split: items sorted by (class, file name)}).

  Args:
    tree: the folder or archive.
    pattern: regex with groups (split folder, class, file name) matched at the end of
      each path.
    split_of: maps the split folder name to the split name.
    suffixes: the image files' extensions (lower case).
  """
  items: dict[str, list[Item]] = {}
  for rel, data in tree.walk(lambda r: bool(pattern.search(r))
                             and r.lower().endswith(suffixes)):
    folder, cls, fname = pattern.search(rel).groups()
    items.setdefault(split_of(folder), []).append((cls, fname, data))
  if 'train' not in items:
    raise FileNotFoundError(f'No images matching train/<class>/<image> '
                            f'({", ".join(suffixes)}) in {tree.path}.')
  class_names = sorted({cls for cls, _, _ in items['train']})
  for split, rows in sorted(items.items()):
    unknown = sorted({cls for cls, _, _ in rows} - set(class_names))
    if unknown:
      raise ValueError(f'{tree.path}: {split}/ has classes with no train/ folder: '
                       f'{unknown[:10]}{" ..." if len(unknown) > 10 else ""}. '
                       'Every test class must also be a training class.')
    rows.sort(key=lambda r: (r[0], r[1]))
  return class_names, items


def decoded(rows: list[Item], split: str, class_names: list[str], mode: str,
            image_size: Optional[int], report: dict) -> Iterator[tuple[str, dict]]:
  """(key, {'image': uint8 array, 'label'}) for the readable images of one split.

  image_size: resize images of another size to image_size x image_size (counted in
  the report as `resized`); None: all images must have the size of the first one.
  Unreadable files are left out and listed in the report (`unreadable`).
  """
  index = {c: i for i, c in enumerate(class_names)}
  first = None
  for cls, fname, data in rows:
    try:
      image = sources.decode_image(data, mode)
    except Exception as e:  # pylint: disable=broad-except
      builder_lib.problem(report, 'unreadable', f'{split}/{cls}/{fname}: {e}')
      continue
    size = image_size or first or image.shape[0]
    first = size
    if image.shape[:2] != (size, size):
      if image_size is None:
        raise ValueError(
            f'{split}/{cls}/{fname} is {image.shape[1]}x{image.shape[0]}, other images '
            f'are {size}x{size}: pass an image size to resize all images to.')
      image = sources.resize_array(image, size)
      report['resized'] = report.get('resized', 0) + 1
    yield f'{cls}/{fname}', {'image': image, 'label': index[cls]}


class DecodedBuilder(builder_lib.Builder, skip_registration=True):
  """Base of the image-folder datasets stored decoded: SIZE x SIZE RGB raw tensors
  (images of another size resized, and counted) and a label from the class folders."""
  name = 'hyperproto_decoded_folder'  # (abstract)
  SIZE = 0
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First TFDS version (images decoded to raw uint8 tensors).'}

  def _features(self):
    return tfds.features.FeaturesDict({
        'image': builder_lib.image_tensor((self.SIZE, self.SIZE, 3)),
        'label': tfds.features.ClassLabel()})

  def _decoded(self, class_names: list[str], items: dict[str, list[Item]],
               label_names: Optional[list[str]] = None) -> dict:
    """Names the classes (`label_names`, default `class_names`, the folders) and
    returns the decoded examples of each split."""
    self.info.features['label'].names = list(label_names or class_names)
    self.report.setdefault('resized', 0)
    return {split: decoded(rows, split, class_names, 'RGB', self.SIZE, self.report)
            for split, rows in items.items()}
