"""CUB-200-2011 (TFDS: caltech_birds2011) from the official archive, streamed at 224.

The official split is `train_test_split.txt` (5,994 train / 5,794 test images), labels
are `image_class_labels.txt` minus one, class names come from `classes.txt`
(`001.Black_footed_Albatross`, ...), as in the files the original HPN code's ImageFolder
was built from. A TFDS builder of ours (`hyperproto_caltech_birds2011`); the original
JPEG bytes are stored untouched (a prepared copy is about as large as the archive);
decoding, RandomResizedCrop(224) and flips happen in `streaming.StreamingDataset`.
Normalisation: the ImageNet constants, as the original.

The original evaluated on random crops (RandomResizedCrop(224), no flip); pass
`faithful_random_eval=True` to `load` for that, instead of the default centre crop.
"""

from typing import Any, Optional

import numpy as np
import tensorflow_datasets as tfds

from hyperproto.data import builder as builder_lib
from hyperproto.data import reader, sources, streaming

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OFFICIAL = {'train': 5994, 'test': 5794}

FILES = """
CUB-200-2011 needs the official archive CUB_200_2011.tgz (from
https://www.vision.caltech.edu/datasets/cub_200_2011/; TFDS's copy, CUB_200_2011.tar.gz,
is the same), packed or unpacked, in a folder DIR:
  DIR/CUB_200_2011.tgz (or .tar.gz), or DIR/CUB_200_2011/ holding images.txt,
  image_class_labels.txt, train_test_split.txt, classes.txt and images/<class>/*.jpg.
"""

_META = ('images', 'image_class_labels', 'train_test_split', 'classes')


def _table(name: str, data: bytes) -> dict[int, str]:
  """`<id> <value>` lines -> {id: value}."""
  out = {}
  for n, line in enumerate(data.decode().splitlines(), 1):
    if line.strip():
      key, _, value = line.strip().partition(' ')
      if not key.isdigit() or not value:
        raise ValueError(f'{name} line {n} is not "<id> <value>": {line!r}')
      out[int(key)] = value.strip()
  return out


class CaltechBirds2011(builder_lib.Builder):
  """CUB-200-2011 (Wah et al. 2011): 11,788 images of 200 bird species, official split."""
  name = builder_lib.PREFIX + 'caltech_birds2011'
  DATASET = 'cub'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First TFDS version (the original JPEG bytes).'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = FILES
  HOMEPAGE = 'https://www.vision.caltech.edu/datasets/cub_200_2011/'
  MEAN, STD = IMAGENET_MEAN, IMAGENET_STD

  def _features(self):
    return tfds.features.FeaturesDict({
        'image': tfds.features.Image(shape=(None, None, 3)),
        'label': tfds.features.ClassLabel(),
        'id': tfds.features.Scalar(dtype=np.int64, doc='the image id of images.txt')})

  def _examples(self, manual_dir):
    path = sources.find_input(manual_dir, ['CUB_200_2011.tgz', 'CUB_200_2011.tar.gz'],
                              ['CUB_200_2011'], contains='images.txt')
    if path is None:
      raise FileNotFoundError(f'No CUB-200-2011 in {manual_dir}.\n{FILES}')
    tree = sources.FileTree(path)
    # One pass: the metadata tables and every image (an archive cannot seek; a folder
    # is read file by file).
    files: dict[str, bytes] = {}
    meta: dict[str, tuple[str, bytes]] = {}
    for rel, data in tree.walk(lambda r: '/images/' in f'/{r}' or r.endswith('.txt')):
      key = next((k for k in _META if rel.rsplit('/', 1)[-1] == f'{k}.txt'
                  and rel.count('/') <= 1), None)
      if key and key not in meta:
        meta[key] = (rel, data)
      elif '/images/' in f'/{rel}':
        files[rel] = data
    missing = [f'{m}.txt' for m in _META if m not in meta]
    if missing:
      raise FileNotFoundError(f'{path} lacks {missing}.\n{FILES}')
    prefix = meta['images'][0][:-len('images.txt')]
    tables = {k: _table(rel, data) for k, (rel, data) in meta.items()}
    classes = tables['classes']
    class_ids = sorted(classes)
    if class_ids != list(range(1, len(class_ids) + 1)):
      raise ValueError(f'classes.txt ids are not 1..{len(class_ids)}.')
    self.info.features['label'].names = [classes[i] for i in class_ids]
    report = self.report
    report.update(source=path, missing_images=[], unreadable_images=[], unlabelled_ids=[])
    rows = {'train': [], 'test': []}
    for image_id, rel in sorted(tables['images'].items()):
      label = tables['image_class_labels'].get(image_id)
      is_train = tables['train_test_split'].get(image_id)
      if label is None or is_train not in ('0', '1') or int(label) not in classes:
        report['unlabelled_ids'].append(image_id)
        continue
      data = files.pop(f'{prefix}images/{rel}', None)
      if data is None:
        report['missing_images'].append(rel)
        continue
      try:
        sources.check_image(data)
      except Exception as e:  # pylint: disable=broad-except
        report['unreadable_images'].append(f'{rel}: {e}')
        continue
      rows['train' if is_train == '1' else 'test'].append(
          (image_id, {'image': data, 'label': int(label) - 1, 'id': image_id}))
    report['complete_official_release'] = (
        len(tables['images']) == 11788
        and all(len(rows[s]) == n for s, n in OFFICIAL.items()))
    return rows


def load(data_dir: Optional[str] = None, faithful_random_eval: bool = False,
         verify_checksums: bool = False, **kwargs: Any) -> streaming.StreamingDataset:
  """The prepared CUB as a `StreamingDataset` (train / test at 224).

  kwargs go to StreamingDataset (image_size, resize_size, num_workers, prefetch);
  verify_checksums reads every byte of the records (about a GB) before training.
  """
  b = reader.open_prepared(CaltechBirds2011, data_dir, verify_checksums=verify_checksums)
  return reader.load_streaming(b, 'cub', faithful_random_eval=faithful_random_eval,
                               eval_flip=False, **kwargs)
