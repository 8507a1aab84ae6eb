"""Evaluation protocols on any classification dataset: long-tailed or few-shot training
splits, and held-out classes as the unknowns of open-set recognition.

Set in `config.data.kwargs` next to the loader's own options (declared in
`config_lib.base_config`, so `--config.data.kwargs.imbalance=0.01` works);
`train.train_and_evaluate` takes them out (`split_options`) before calling the loader and
applies them to the loaded dataset (`apply`), so they work the same whatever loader made
the dataset:

  imbalance=RHO        the training split subsampled with the exponential profile of Cui
                       et al. (2019), as CIFAR-10-LT / CIFAR-100-LT:
                       n_c = int(n_max * RHO ** (c / (C - 1))) examples of class c, with
                       n_max the size of the smallest class (5,000 on CIFAR-10, 500 on
                       CIFAR-100, so the LDAM-DRW counts exactly) or `train_per_class`.
  train_per_class=N    N training examples of every class.
  unknown_classes=S    held-out classes, by index in the dataset's label space: a string
                       '6,7,8,9' (in a config; a sequence of ints through the API). They
                       leave the training split and
                       the label space (the known classes are renumbered 0..C_known-1 in
                       their order, `class_names` too); every other split keeps their
                       examples with label -1 and `known` = 0 (known ones: `known` = 1),
                       for AUROC and FPR@95TPR of the known-vs-unknown scores.
  subset_seed=0        which examples are kept (not the training seed, so every run of a
                       sweep sees the same subset, as the CIFAR-LT repositories' fixed
                       subset); LDAM-DRW's draw: np.random.seed(subset_seed), then for each
                       class in order, shuffle its indices and keep the first n_c.

Evaluation splits stay as they are (balanced where the dataset is), held-out classes
aside.
"""

import dataclasses
from typing import Any, Optional, Sequence, Union

import numpy as np

from hyperproto.data.base import Dataset

OPTIONS = ('imbalance', 'train_per_class', 'unknown_classes', 'subset_seed')
# The usual long-tail groups (OLTR, Liu et al. 2019; decoupling, Kang et al. 2020):
# many-shot > 100 training examples, few-shot < 20, medium-shot the rest.
MANY_SHOT, FEW_SHOT = 100, 20


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
  """`data.kwargs` -> (the loader's kwargs, this module's options that are on: not None
  or '')."""
  loader = {k: v for k, v in kwargs.items() if k not in OPTIONS}
  options = {k: v for k, v in kwargs.items()
             if k in OPTIONS and v is not None and v != ''}
  return loader, options


def long_tail_counts(n_max: int, num_classes: int, imbalance: float) -> np.ndarray:
  """n_c = int(n_max * imbalance ** (c / (C - 1))), c = 0..C-1 (LDAM-DRW's
  `get_img_num_per_cls`, 'exp'): class 0 keeps n_max, class C-1 n_max * imbalance."""
  if not 0.0 < imbalance <= 1.0:
    raise ValueError(f'data.kwargs.imbalance must lie in (0, 1] (the ratio of the '
                     f'rarest to the most frequent class, e.g. 0.01), got {imbalance}.')
  c = np.arange(num_classes)
  return np.array([int(n_max * imbalance ** (i / (num_classes - 1.0))) for i in c],
                  np.int64)


def parse_unknown_classes(spec: Union[str, Sequence[int]], num_classes: int
                          ) -> tuple[int, ...]:
  """'6,7,8,9' or a sequence of class indices -> sorted indices, validated."""
  if isinstance(spec, str):
    try:
      spec = tuple(int(s) for s in spec.replace(' ', '').split(',') if s)
    except ValueError as e:
      raise ValueError(f'data.kwargs.unknown_classes={spec!r}: give class indices '
                       f'separated by commas, such as "6,7,8,9".') from e
  elif isinstance(spec, (int, np.integer)):
    raise ValueError(f'data.kwargs.unknown_classes={spec!r}: give class indices (e.g. '
                     f'"{num_classes - 1}" for the last class alone), not a count.')
  indices = tuple(sorted({int(i) for i in spec}))
  if not indices:
    raise ValueError('data.kwargs.unknown_classes is empty.')
  bad = [i for i in indices if not 0 <= i < num_classes]
  if bad:
    raise ValueError(f'data.kwargs.unknown_classes has {bad}, outside the class indices '
                     f'0..{num_classes - 1}.')
  if num_classes - len(indices) < 2:
    raise ValueError(f'data.kwargs.unknown_classes={indices} leaves fewer than 2 of the '
                     f'{num_classes} classes known.')
  return indices


def _take(split: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
  return {k: v[idx] for k, v in split.items()}


def apply(dataset: Dataset, train_split: str, *, imbalance: Optional[float] = None,
          train_per_class: Optional[int] = None,
          unknown_classes: Union[None, str, Sequence[int]] = None,
          subset_seed: int = 0) -> Dataset:
  """The dataset with the options of the module docstring applied (a new Dataset; the
  loader's, which may be cached, is left untouched). No option: `dataset` itself."""
  if unknown_classes == '':
    unknown_classes = None
  if imbalance is None and train_per_class is None and unknown_classes is None:
    return dataset
  name = dataset.info.name
  if not isinstance(dataset, Dataset):
    raise ValueError(
        f'data.kwargs imbalance / train_per_class / unknown_classes need a dataset held '
        f'in memory; {name} is streamed (decoded batch by batch). Subset it when '
        f'preparing it instead (e.g. a folder:NAME dataset of the images you keep).')
  if train_split not in dataset.splits:
    raise ValueError(f'Dataset {name!r} has no training split {train_split!r}; it has '
                     f'{sorted(dataset.splits)}.')
  if any('label' not in s for s in dataset.splits.values()):
    raise ValueError(f'data.kwargs imbalance / train_per_class / unknown_classes need '
                     f'class labels, and dataset {name!r} has none.')
  info, splits = dataset.info, dict(dataset.splits)
  num_classes = info.num_classes

  if unknown_classes is not None:
    unknown = parse_unknown_classes(unknown_classes, num_classes)
    known = np.array([c for c in range(num_classes) if c not in unknown])
    remap = np.full(num_classes, -1, np.int32)
    remap[known] = np.arange(len(known), dtype=np.int32)
    for split, arrays in splits.items():
      is_known = np.isin(arrays['label'], known)
      if split == train_split:
        arrays = _take(arrays, np.flatnonzero(is_known))
        splits[split] = dict(arrays, label=remap[arrays['label']])
      else:
        splits[split] = dict(arrays, label=remap[arrays['label']],
                             known=is_known.astype(np.int32))
    names = info.class_names
    info = dataclasses.replace(
        info, num_classes=len(known),
        class_names=tuple(names[c] for c in known) if len(names) == num_classes else names)
    num_classes = len(known)

  if imbalance is not None or train_per_class is not None:
    labels = splits[train_split]['label']
    have = np.bincount(labels, minlength=num_classes)
    if train_per_class is not None:
      if int(train_per_class) != train_per_class or train_per_class < 1:
        raise ValueError(f'data.kwargs.train_per_class must be an integer >= 1, got '
                         f'{train_per_class}.')
      short = np.flatnonzero(have < train_per_class)
      if len(short):
        c = int(short[0])
        raise ValueError(
            f'data.kwargs.train_per_class={train_per_class}, but class {c} '
            f'({info.class_names[c] if c < len(info.class_names) else c}) of {name} has '
            f'only {have[c]} examples in {train_split!r}'
            + (f' ({len(short)} classes are short)' if len(short) > 1 else '')
            + f'; use at most {int(have.min())}.')
      n_max = int(train_per_class)
    else:
      n_max = int(have.min())
      if not n_max:
        c = int(np.argmin(have))
        raise ValueError(f'data.kwargs.imbalance: class {c} of {name} has no example in '
                         f'{train_split!r}, so there is no profile to draw.')
    counts = (long_tail_counts(n_max, num_classes, imbalance) if imbalance is not None
              else np.full(num_classes, n_max, np.int64))
    if counts.min() < 1:
      raise ValueError(f'data.kwargs.imbalance={imbalance} leaves class '
                       f'{int(np.argmin(counts))} with no training example (n_max = '
                       f'{n_max}); use a larger imbalance ratio.')
    rng = np.random.RandomState(subset_seed)  # LDAM-DRW: np.random.seed(rand_number)
    keep = []
    for c in range(num_classes):
      idx = np.flatnonzero(labels == c)
      rng.shuffle(idx)
      keep.append(idx[:counts[c]])
    # Kept in the split's order, so the trainer's epoch permutations stay per example.
    splits[train_split] = _take(splits[train_split], np.sort(np.concatenate(keep)))
  return Dataset(info=info, splits=splits)


def train_class_counts(dataset: Dataset, train_split: str) -> np.ndarray:
  """Training examples per class, C."""
  return np.bincount(dataset.splits[train_split]['label'],
                     minlength=dataset.info.num_classes)


def group_accuracies(class_accuracy_C: np.ndarray, train_counts_C: np.ndarray
                     ) -> dict[str, float]:
  """Mean per-class accuracy over the many- (> 100 training examples), medium- (20..100)
  and few-shot (< 20) classes; NaN accuracies (classes without evaluation examples) are
  left out, and so is a group without classes."""
  class_accuracy_C = np.asarray(class_accuracy_C, np.float64)
  many, few = train_counts_C > MANY_SHOT, train_counts_C < FEW_SHOT
  groups = {'many_shot_accuracy': many, 'medium_shot_accuracy': ~(many | few),
            'few_shot_accuracy': few}
  scored = ~np.isnan(class_accuracy_C)
  return {k: float(np.mean(class_accuracy_C[sel & scored]))
          for k, sel in groups.items() if (sel & scored).any()}


# --- Open-set scores ----------------------------------------------------------------


def roc_curve(score_N: np.ndarray, positive_N: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
  """(fpr, tpr) at every distinct threshold, highest first, from (0, 0): tied scores
  are one threshold (as sklearn.metrics.roc_curve without dropping points)."""
  score_N = np.asarray(score_N, np.float64)
  positive_N = np.asarray(positive_N).astype(bool)
  num_pos, num_neg = int(positive_N.sum()), int((~positive_N).sum())
  if not num_pos or not num_neg:
    raise ValueError(f'AUROC needs known and unknown examples; got {num_pos} known and '
                     f'{num_neg} unknown.')
  order = np.argsort(-score_N, kind='mergesort')
  score_N, positive_N = score_N[order], positive_N[order]
  last = np.r_[np.flatnonzero(np.diff(score_N)), len(score_N) - 1]  # end of each tie run
  tps = np.cumsum(positive_N)[last]
  fps = (last + 1) - tps
  return np.r_[0.0, fps / num_neg], np.r_[0.0, tps / num_pos]


def auroc(score_N: np.ndarray, positive_N: np.ndarray) -> float:
  """Area under the ROC curve (trapezoids: a tie between a positive and a negative
  counts 1/2), equal to sklearn.metrics.roc_auc_score."""
  fpr, tpr = roc_curve(score_N, positive_N)
  return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def fpr_at_tpr(score_N: np.ndarray, positive_N: np.ndarray, tpr_level: float = 0.95
               ) -> float:
  """FPR at the highest threshold whose TPR reaches `tpr_level` (FPR@95TPR): the
  fraction of unknowns accepted when 95% of the knowns are."""
  fpr, tpr = roc_curve(score_N, positive_N)
  return float(fpr[np.searchsorted(tpr, tpr_level - 1e-12, side='left')])


def open_set_metrics(scores: dict[str, np.ndarray], known_N: np.ndarray
                     ) -> dict[str, float]:
  """`<score>_auroc` and `<score>_fpr95` for each named score (higher = more known)."""
  out = {}
  for name, s in scores.items():
    out[f'{name}_auroc'] = auroc(s, known_N)
    out[f'{name}_fpr95'] = fpr_at_tpr(s, known_N)
  return out
