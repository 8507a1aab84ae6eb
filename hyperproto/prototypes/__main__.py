r"""Places prototypes and writes them: C x D float32 `.npy` plus `.json` metadata.

  python -m hyperproto.prototypes --num_classes=100 --dim=10 --method=auto --seed=300 \
      --output=/tmp/protos.npy

The `.json` beside the output holds the method (and what `auto` resolved to), the
parameters, the seed, the time taken, and the certificate (`certify`): the separation
metrics, every lower bound that applies (simplex, Rankin, Levenshtein; Welch on the max
|cos|), the best-known value where one is tabulated, and the gaps to each; plus the
array's sha256. The same metrics are printed. `--kwargs` passes method options as JSON
(e.g. '{"steps": 20000}'); `--embeddings` / `--class_names` feed the `embedding` and
`semantic` methods. Without `--output`, the placement goes to the cache that training
runs use (`get_or_place`).
"""

import json

from absl import app
from absl import flags
from absl import logging

from hyperproto import prototypes

_NUM_CLASSES = flags.DEFINE_integer('num_classes', None, 'Number of prototypes C.',
                                    required=True)
_DIM = flags.DEFINE_integer('dim', None, 'Dimension d.', required=True)
_METHOD = flags.DEFINE_enum('method', 'auto', sorted(prototypes.PLACEMENTS),
                            'Placement method.')
_SEED = flags.DEFINE_integer('seed', 300, 'Random seed (300: the original).')
_OUTPUT = flags.DEFINE_string('output', None, 'Output .npy path (default: the cache).')
_KWARGS = flags.DEFINE_string('kwargs', '{}', 'Method options as a JSON object.')
_EMBEDDINGS = flags.DEFINE_string('embeddings', None,
                                  'C x E class-name embeddings (.npy), label order.')
_CLASS_NAMES = flags.DEFINE_string(
    'class_names', None, 'A dataset name (cifar10, cifar100, cifar100_coarse) or a '
    'text file with one class name per line; embedded offline by MiniLM (extra embed).')
_PLOT = flags.DEFINE_string('plot', None, 'Also write a 3-D PNG of the prototypes.')


def _kwargs() -> dict:
  try:
    kwargs = json.loads(_KWARGS.value)
  except json.JSONDecodeError as e:
    raise app.UsageError(f'--kwargs is not valid JSON ({e}): {_KWARGS.value!r}') from e
  if not isinstance(kwargs, dict):
    raise app.UsageError(f'--kwargs must be a JSON object, got {_KWARGS.value!r}.')
  if _EMBEDDINGS.value:
    kwargs['embeddings'] = _EMBEDDINGS.value
  if _CLASS_NAMES.value:
    name = _CLASS_NAMES.value
    if name.endswith('.txt'):
      with open(name) as f:
        kwargs['class_names'] = [line.strip() for line in f if line.strip()]
    else:
      kwargs['class_names'] = name
  return kwargs


def main(argv):
  del argv
  kwargs = _kwargs()
  args = (_METHOD.value, _NUM_CLASSES.value, _DIM.value, _SEED.value)
  try:
    _place(args, kwargs)
  except prototypes.memory.NotEnoughMemory as e:
    raise SystemExit(f'error: {e}') from None  # One message, no traceback; status 1.


def _place(args: tuple, kwargs: dict) -> None:
  """Places (or reads from the cache), writes, prints the certificate, plots."""
  if _OUTPUT.value:
    if not _OUTPUT.value.endswith('.npy'):
      raise app.UsageError(f'--output must end in .npy, got {_OUTPUT.value!r}.')
    protos, meta = prototypes.place_with_metadata(*args, **kwargs)
    prototypes.save(_OUTPUT.value, protos, meta)
    path = _OUTPUT.value
  else:
    protos = prototypes.get_or_place(*args, **kwargs)
    path = prototypes.cache_path(*args, **kwargs)
    meta = prototypes.store.load_metadata(path)  # As `get_or_place` certified it.
    if 'metrics' not in meta:
      meta = {'metrics': prototypes.certify(protos)}
  metrics = meta['metrics']
  logging.info('Wrote %s', path)
  print(json.dumps(dict(path=path, **{k: metrics[k] for k in sorted(metrics)}),
                   indent=2))
  if _PLOT.value:
    from hyperproto.prototypes import plot  # pylint: disable=g-import-not-at-top
    plot.plot_sphere(protos, _PLOT.value, title=f'{_METHOD.value}: C={len(protos)}')


if __name__ == '__main__':
  app.run(main)
