"""Class names of the standard datasets, in label order (for class-name embeddings).

CIFAR-10/100 label order is alphabetical, as in the datasets' `batches.meta` /
`meta` files. CUB-200 and OmniArt names come from the user's files at run time
(`DatasetInfo.class_names`).
"""

CIFAR10 = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
           'ship', 'truck')

CIFAR100 = (
    'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle',
    'bicycle', 'bottle', 'bowl', 'boy', 'bridge', 'bus', 'butterfly', 'camel', 'can',
    'castle', 'caterpillar', 'cattle', 'chair', 'chimpanzee', 'clock', 'cloud',
    'cockroach', 'couch', 'crab', 'crocodile', 'cup', 'dinosaur', 'dolphin', 'elephant',
    'flatfish', 'forest', 'fox', 'girl', 'hamster', 'house', 'kangaroo', 'keyboard',
    'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard', 'lobster', 'man', 'maple_tree',
    'motorcycle', 'mountain', 'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid',
    'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree', 'plain', 'plate', 'poppy',
    'porcupine', 'possum', 'rabbit', 'raccoon', 'ray', 'road', 'rocket', 'rose', 'sea',
    'seal', 'shark', 'shrew', 'skunk', 'skyscraper', 'snail', 'snake', 'spider',
    'squirrel', 'streetcar', 'sunflower', 'sweet_pepper', 'table', 'tank', 'telephone',
    'television', 'tiger', 'tractor', 'train', 'trout', 'tulip', 'turtle', 'wardrobe',
    'whale', 'willow_tree', 'wolf', 'woman', 'worm')

CIFAR100_COARSE = (
    'aquatic_mammals', 'fish', 'flowers', 'food_containers', 'fruit_and_vegetables',
    'household_electrical_devices', 'household_furniture', 'insects',
    'large_carnivores', 'large_man-made_outdoor_things', 'large_natural_outdoor_scenes',
    'large_omnivores_and_herbivores', 'medium_mammals', 'non-insect_invertebrates',
    'people', 'reptiles', 'small_mammals', 'trees', 'vehicles_1', 'vehicles_2')

NAMES = {'cifar10': CIFAR10, 'cifar100': CIFAR100, 'cifar100_coarse': CIFAR100_COARSE}


def get(name: str) -> tuple[str, ...]:
  """The class names of a dataset by name (see NAMES)."""
  if name not in NAMES:
    raise ValueError(f'No stored class names for {name!r}; use one of {sorted(NAMES)}, '
                     f'or pass the names themselves (e.g. DatasetInfo.class_names).')
  return NAMES[name]


def readable(name: str) -> str:
  """'aquarium_fish' -> 'aquarium fish' (what a text encoder should read)."""
  return name.replace('_', ' ')
