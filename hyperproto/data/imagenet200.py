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


from hyperproto.data import builder as builder_lib
from hyperproto.data import image_folder, reader, sources
from hyperproto.data.base import Dataset

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


class Imagenet200(image_folder.DecodedBuilder):
  """The HPN authors' ImageNet-200: 200 classes of 64x64 images (an ImageFolder tree)."""
  name = builder_lib.PREFIX + 'imagenet200'
  DATASET = 'imagenet200'
  SIZE = SIZE
  MANUAL_DOWNLOAD_INSTRUCTIONS = FILES
  MEAN, STD = IMAGENET_MEAN, IMAGENET_STD

  def _examples(self, manual_dir):
    path = sources.find_input(
        manual_dir, ['imagenet200.tar.gz', 'imagenet200.tgz', 'imagenet200.tar',
                     'imagenet200.zip'], ['imagenet200'], contains='train')
    if path is None:
      raise FileNotFoundError(f'No ImageNet-200 ImageFolder in {manual_dir}.\n{FILES}')
    names, items = image_folder.collect(sources.FileTree(path))
    if 'test' not in items:
      raise FileNotFoundError(f'{path} has train/ but no test/<class>/ images.\n{FILES}')
    self.report.update(source=path, classes=len(names))
    return self._decoded(names, items)


class TinyImagenet200(Imagenet200):
  """Tiny-ImageNet-200 (the raw release): 200 wnids, 500 train images each; test = its
  labelled val split."""
  name = builder_lib.PREFIX + 'tiny_imagenet200'
  DATASET = 'tiny_imagenet200'

  def _examples(self, manual_dir):
    path = sources.find_input(manual_dir, ['tiny-imagenet-200.zip'], ['tiny-imagenet-200'],
                              contains='wnids.txt')
    if path is None:
      raise FileNotFoundError(f'No Tiny-ImageNet-200 in {manual_dir}.\n{FILES}')
    tree = sources.FileTree(path)
    meta = tree.read_matching({'wnids': r'(^|/)wnids\.txt$', 'words': r'(^|/)words\.txt$',
                               'val': r'(^|/)val/val_annotations\.txt$'})
    for key in ('wnids', 'val'):
      if key not in meta:
        raise FileNotFoundError(f'{path} has no {key}.txt: is it tiny-imagenet-200?\n'
                                f'{FILES}')
    wnids = sorted(meta['wnids'][1].decode().split())
    val_label = {}
    for line in meta['val'][1].decode().splitlines():
      if line.strip():
        fname, wnid = line.split('\t')[:2]
        val_label[fname] = wnid
    # Train images: an ImageFolder with an extra `images/` level.
    names, items = image_folder.collect(tree, pattern=_TINY_TRAIN)
    if names != wnids:
      raise ValueError(f'{path}: train/ has {len(names)} class folders, wnids.txt lists '
                       f'{len(wnids)}, and they differ: '
                       f'{sorted(set(names) ^ set(wnids))[:10]}')
    # Val images, with their class from the annotation file, as the test split.
    rows, unlabelled = [], []
    for rel, data in tree.walk(lambda r: re.search(r'(^|/)val/images/[^/]+$', r)
                               is not None):
      fname = rel.rsplit('/', 1)[1]
      if val_label.get(fname) not in wnids:
        unlabelled.append(fname)
      else:
        rows.append((val_label[fname], fname, data))
    if unlabelled:
      raise ValueError(f'{path}: {len(unlabelled)} val images have no (known) class in '
                       f'val_annotations.txt, e.g. {unlabelled[:5]}.')
    items['test'] = sorted(rows, key=lambda r: r[1])
    words = {}
    if 'words' in meta:
      for line in meta['words'][1].decode().splitlines():
        if '\t' in line:
          wnid, text = line.split('\t', 1)
          words[wnid] = text.split(',')[0].strip()
    names = [words.get(w, w) for w in wnids]
    names = [n if names.count(n) == 1 else f'{n} ({w})' for n, w in zip(names, wnids)]
    self.report.update(source=path, wnids=wnids)
    return self._decoded(wnids, items, label_names=names)


def load(data_dir: Optional[str] = None, verify_checksums: bool = True) -> Dataset:
  """The authors' ImageNet-200 (prepared)."""
  b = reader.open_prepared(Imagenet200, data_dir, verify_checksums=verify_checksums)
  return reader.load_resident(b, reader.dataset_info(b, 'imagenet200', (SIZE, SIZE, 3)))


def load_tiny(data_dir: Optional[str] = None, verify_checksums: bool = True) -> Dataset:
  """Tiny-ImageNet-200 (prepared); test = its labelled val split."""
  b = reader.open_prepared(TinyImagenet200, data_dir, verify_checksums=verify_checksums)
  return reader.load_resident(b, reader.dataset_info(b, 'tiny_imagenet200',
                                                     (SIZE, SIZE, 3)))
