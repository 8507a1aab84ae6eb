"""ImageNet-200 at 64x64: the HPN authors' ImageFolder, or the raw Tiny-ImageNet-200.

The paper's ImageNet-200 is the authors' own prepared ImageFolder (`train/<class>/`,
`test/<class>/`, 64x64 images, 200 classes with 2 to 200 training images each); the
original code reads it with torchvision's ImageFolder, so labels index the sorted class
folders, as here. Where that copy is not at hand, the raw Tiny-ImageNet-200 release
(`tiny-imagenet-200.zip`: `wnids.txt`, `words.txt`, `train/<wnid>/images/*.JPEG`,
`val/images/*.JPEG` + `val/val_annotations.txt`) prepares into the same format, with its
labelled `val/` as the test split (its `test/` has no labels) and labels indexing the
sorted wnids. The two are different data sets (Tiny-ImageNet has 500 training images per
class), so they are prepared under different names: `imagenet200` and `tiny_imagenet200`.
Normalisation: the ImageNet constants, as the original.
"""

import re
from typing import Optional

import numpy as np

from hyperproto.data import image_folder, sources, store
from hyperproto.data.base import Dataset, DatasetInfo

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIZE = 64

FILES = """
ImageNet-200 needs one of these in a folder DIR:
  - the HPN authors' prepared ImageFolder: DIR/imagenet200/{train,test}/<class>/*.jpg (or
    DIR/{train,test}/<class>/*.jpg, or an imagenet200.tar.gz / .tgz / .zip of that tree),
    prepared as --dataset=imagenet200;
  - the raw Tiny-ImageNet-200 release: DIR/tiny-imagenet-200.zip or DIR/tiny-imagenet-200/
    (wnids.txt, words.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG,
    val/val_annotations.txt), prepared as --dataset=tiny_imagenet200.
"""

_TINY_TRAIN = re.compile(r'(?:^|/)(train)/([^/]+)/images/([^/]+)$')


def prepare(manual_dir: str, data_dir: Optional[str] = None) -> dict:
  """Writes `imagenet200` from the authors' ImageFolder tree (or an archive of it)."""
  path = sources.find_input(
      manual_dir, ['imagenet200.tar.gz', 'imagenet200.tgz', 'imagenet200.tar',
                   'imagenet200.zip'], ['imagenet200'], contains='train')
  if path is None:
    raise FileNotFoundError(f'No ImageNet-200 ImageFolder in {manual_dir}.\n{FILES}')
  names, splits, report = image_folder.read(sources.FileTree(path), 'RGB', SIZE)
  if 'test' not in splits:
    raise FileNotFoundError(f'{path} has train/ but no test/<class>/ images.\n{FILES}')
  report['source'] = path
  _write('imagenet200', tuple(names), splits, report, data_dir)
  return report


def prepare_tiny(manual_dir: str, data_dir: Optional[str] = None) -> dict:
  """Writes `tiny_imagenet200` from the raw Tiny-ImageNet-200 release."""
  path = sources.find_input(manual_dir, ['tiny-imagenet-200.zip'], ['tiny-imagenet-200'],
                            contains='wnids.txt')
  if path is None:
    raise FileNotFoundError(f'No Tiny-ImageNet-200 in {manual_dir}.\n{FILES}')
  tree = sources.FileTree(path)
  meta = tree.read_matching({'wnids': r'(^|/)wnids\.txt$', 'words': r'(^|/)words\.txt$',
                             'val': r'(^|/)val/val_annotations\.txt$'})
  for key in ('wnids', 'val'):
    if key not in meta:
      raise FileNotFoundError(f'{path} has no {key}.txt: is it tiny-imagenet-200?\n{FILES}')
  wnids = sorted(meta['wnids'][1].decode().split())
  val_label = {}
  for line in meta['val'][1].decode().splitlines():
    if line.strip():
      fname, wnid = line.split('\t')[:2]
      val_label[fname] = wnid
  # Train images as an ImageFolder with an extra `images/` level; val images from the
  # annotation file (the pattern's class group is the file name, mapped below).
  names, splits, report = image_folder.read(tree, 'RGB', SIZE, pattern=_TINY_TRAIN)
  if names != wnids:
    raise ValueError(f'{path}: train/ has {len(names)} class folders, wnids.txt lists '
                     f'{len(wnids)}, and they differ: {sorted(set(names) ^ set(wnids))[:10]}')
  index = {w: i for i, w in enumerate(wnids)}
  images, labels, unlabelled = [], [], []
  for rel, data in tree.walk(lambda r: re.search(r'(^|/)val/images/[^/]+$', r) is not None):
    fname = rel.rsplit('/', 1)[1]
    if val_label.get(fname) not in index:
      unlabelled.append(fname)
      continue
    image = sources.decode_image(data, 'RGB')
    if image.shape[:2] != (SIZE, SIZE):
      image = sources.resize_array(image, SIZE)
      report['resized'] += 1
    images.append((fname, image, index[val_label[fname]]))
  if unlabelled:
    raise ValueError(f'{path}: {len(unlabelled)} val images have no (known) class in '
                     f'val_annotations.txt, e.g. {unlabelled[:5]}.')
  images.sort(key=lambda x: x[0])
  splits['test'] = {'image': np.stack([x[1] for x in images]),
                    'label': np.asarray([x[2] for x in images], np.int32)}
  report['test_examples'] = len(images)
  words = {}
  if 'words' in meta:
    for line in meta['words'][1].decode().splitlines():
      if '\t' in line:
        wnid, text = line.split('\t', 1)
        words[wnid] = text.split(',')[0].strip()
  report.update(source=path, wnids=wnids)
  class_names = tuple(words.get(w, w) for w in wnids)
  _write('tiny_imagenet200', class_names, splits, report, data_dir)
  return report


def _write(name: str, class_names: tuple, splits: dict, report: dict,
           data_dir: Optional[str]) -> None:
  info = DatasetInfo(name=name, num_classes=len(class_names), class_names=class_names,
                     image_shape=(SIZE, SIZE, 3), mean=IMAGENET_MEAN, std=IMAGENET_STD)
  store.write_arrays(info, splits, report, data_dir)


def load(data_dir: Optional[str] = None, verify_checksums: bool = True) -> Dataset:
  """The authors' ImageNet-200 (prepared)."""
  return store.load_arrays('imagenet200', data_dir, FILES, verify_checksums)


def load_tiny(data_dir: Optional[str] = None, verify_checksums: bool = True) -> Dataset:
  """Tiny-ImageNet-200 (prepared); test = its labelled val split."""
  return store.load_arrays('tiny_imagenet200', data_dir, FILES, verify_checksums)
