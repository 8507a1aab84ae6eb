"""ImageFolder trees (`train/<class>/<image>`, `test/<class>/<image>`) as in-memory arrays.

The layout torchvision's ImageFolder reads, and the one of the CIFAR-10 JPEG copy and the
HPN authors' prepared ImageNet-200. As there, labels index the sorted class folders of
the train split, so label numbers agree with the original code. Examples are ordered by
(class, file name), whatever order the archive lists them in, so preparing the same
files twice gives the same arrays.
"""

import re
from typing import Callable, Optional

import numpy as np

from hyperproto.data import sources

_FOLDER_RE = re.compile(r'(?:^|/)(train|test)/([^/]+)/([^/]+)$')


def read(tree: sources.FileTree, mode: str, image_size: Optional[int] = None,
         pattern: re.Pattern = _FOLDER_RE,
         split_of: Callable[[str], str] = lambda s: s) -> tuple[
             list[str], dict[str, dict[str, np.ndarray]], dict]:
  """Decodes an image tree into uint8 arrays.

  Args:
    tree: the folder or archive.
    mode: 'RGB' or 'L'.
    image_size: resize images of another size to image_size x image_size (counted in
      the report); None: all images must have the size of the first one.
    pattern: regex with groups (split folder, class, file name) matched at the end of
      each path.
    split_of: maps the split folder name to the split name.

  Returns:
    (class names, {split: {'image', 'label'}}, report with counts).
  """
  items: dict[str, list[tuple[str, str, bytes]]] = {}
  for rel, data in tree.walk(lambda r: bool(pattern.search(r))
                             and r.lower().endswith(sources.IMAGE_SUFFIXES)):
    folder, cls, fname = pattern.search(rel).groups()
    items.setdefault(split_of(folder), []).append((cls, fname, data))
  if 'train' not in items:
    raise FileNotFoundError(
        f'No images matching train/<class>/<image> (.jpg, .jpeg, .png) in {tree.path}.')
  class_names = sorted({cls for cls, _, _ in items['train']})
  index = {c: i for i, c in enumerate(class_names)}
  report = {'classes': len(class_names), 'resized': 0, 'unreadable': []}
  splits = {}
  for split, rows in sorted(items.items()):
    unknown = sorted({cls for cls, _, _ in rows} - set(index))
    if unknown:
      raise ValueError(f'{tree.path}: {split}/ has classes with no train/ folder: '
                       f'{unknown[:10]}{" ..." if len(unknown) > 10 else ""}. '
                       'Every test class must also be a training class.')
    rows.sort(key=lambda r: (r[0], r[1]))
    images, labels = [], []
    for cls, fname, data in rows:
      try:
        image = sources.decode_image(data, mode)
      except Exception as e:  # pylint: disable=broad-except
        report['unreadable'].append(f'{split}/{cls}/{fname}: {e}')
        continue
      size = image_size or (images[0].shape[0] if images else image.shape[0])
      if image.shape[:2] != (size, size):
        if image_size is None:
          raise ValueError(
              f'{split}/{cls}/{fname} is {image.shape[1]}x{image.shape[0]}, other images '
              f'are {size}x{size}: pass an image size to resize all images to.')
        image = sources.resize_array(image, size)
        report['resized'] += 1
      images.append(image)
      labels.append(index[cls])
    splits[split] = {'image': np.stack(images), 'label': np.asarray(labels, np.int32)}
    report[f'{split}_examples'] = len(labels)
  return class_names, splits, report
