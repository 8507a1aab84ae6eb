"""ResNet-32 (the original's CIFAR network) trained with the HPN loss on real CIFAR-10.

A short real-data check of the backbone, not a reproduction: a class-balanced subset of
the CIFAR-10 JPEG copy in /work/shared/data (see its README), the original recipe's
optimiser and augmentation (SGD momentum 0.9, lr 0.01, coupled weight decay 1e-4, loss
summed over the batch, random crop 32 pad 4 + horizontal flip, CIFAR mean/std), prototypes
from `prototypes.place('auto', 10, dim)` (the exact simplex for dim >= 9), for a few
hundred steps on CPU. Prints the mean per-example loss every --log_every steps and the
test accuracy (argmax cosine) on a held-out class-balanced test subset before and after.

  python experiments/resnet32_cifar10.py --steps=300 --batch_size=64 \
      --train_per_class=1000 --test_per_class=100 \
      --output=experiments/results/resnet32_cifar10.md

Runtime: a few minutes on 2 CPU cores. If the data is missing, pass --data=<path to
CIFAR-10-images-*.tar.gz or to a directory with train/<class>/*.jpg, test/<class>/*.jpg>.
"""

import io
import os
import sys
import tarfile
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from hyperproto import losses  # pylint: disable=g-import-not-at-top,wrong-import-position
from hyperproto import models  # pylint: disable=g-import-not-at-top,wrong-import-position
from hyperproto import prototypes  # pylint: disable=g-import-not-at-top,wrong-import-position

_DATA = flags.DEFINE_string(
    'data', '/work/shared/data/cifar10_jpeg/CIFAR-10-images-d7d05618.tar.gz',
    'CIFAR-10 JPEG tarball, or a directory with train/ and test/ class folders.')
_TRAIN_PER_CLASS = flags.DEFINE_integer('train_per_class', 1000, 'Train images per class.')
_TEST_PER_CLASS = flags.DEFINE_integer('test_per_class', 100, 'Test images per class.')
_STEPS = flags.DEFINE_integer('steps', 300, 'Training steps.')
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Batch size.')
_LR = flags.DEFINE_float('lr', 0.01, 'Learning rate (the original CIFAR recipe: 0.01).')
_DIM = flags.DEFINE_integer('dim', 10, 'Prototype dimension d.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of init, sampling and augmentation.')
_LOG_EVERY = flags.DEFINE_integer('log_every', 25, 'Print the loss every N steps.')
_OUTPUT = flags.DEFINE_string('output', None, 'Also write the log to this Markdown file.')

CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
           'ship', 'truck')
MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)  # The official CIFAR-10 stats.
STD = np.array([0.2470, 0.2435, 0.2616], np.float32)


def load_split(path: str, split: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
  """The first `per_class` images (sorted file names) of each class, uint8 N x 32 x 32 x 3."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'No CIFAR-10 JPEG data at {path}; pass --data=<tarball or '
                            'directory with train/<class>/*.jpg>.')
  wanted = {}
  if os.path.isdir(path):
    for c, name in enumerate(CLASSES):
      files = sorted(os.listdir(os.path.join(path, split, name)))[:per_class]
      for f in files:
        with open(os.path.join(path, split, name, f), 'rb') as fh:
          wanted[(c, f)] = fh.read()
  else:
    with tarfile.open(path) as tar:
      members = {}
      for m in tar.getmembers():
        parts = m.name.split('/')
        if m.isfile() and len(parts) == 3 and parts[0] == split and parts[1] in CLASSES:
          members.setdefault(parts[1], []).append(m)
      for c, name in enumerate(CLASSES):
        for m in sorted(members[name], key=lambda m: m.name)[:per_class]:
          wanted[(c, m.name)] = tar.extractfile(m).read()
  keys = sorted(wanted)
  images = np.stack([np.asarray(Image.open(io.BytesIO(wanted[k])).convert('RGB'))
                     for k in keys])
  return images, np.array([c for c, _ in keys], np.int32)


def augment(rng: np.random.Generator, images: np.ndarray) -> np.ndarray:
  """Random crop 32 with zero padding 4, and horizontal flip (the original's)."""
  n = len(images)
  padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
  dy, dx = rng.integers(0, 9, n), rng.integers(0, 9, n)
  out = np.stack([padded[i, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32] for i in range(n)])
  flip = rng.random(n) < 0.5
  out[flip] = out[flip, :, ::-1]
  return out


def normalise(images: np.ndarray) -> np.ndarray:
  return ((images.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)


def main(argv):
  del argv
  lines = []

  def log(msg):
    print(msg, flush=True)
    lines.append(msg)

  t0 = time.time()
  x_train, y_train = load_split(_DATA.value, 'train', _TRAIN_PER_CLASS.value)
  x_test, y_test = load_split(_DATA.value, 'test', _TEST_PER_CLASS.value)
  log(f'data: {len(x_train)} train / {len(x_test)} test images from {_DATA.value} '
      f'({time.time() - t0:.1f} s)')

  protos = jnp.asarray(prototypes.place('auto', len(CLASSES), _DIM.value))
  model = models.build('resnet32', output_dim=_DIM.value)
  variables = jax.jit(lambda x: model.init(jax.random.PRNGKey(_SEED.value), x,
                                           train=False))(jnp.zeros((1, 32, 32, 3)))
  params, batch_stats = variables['params'], variables['batch_stats']
  # The original's SGD: weight decay added to the gradient of every parameter.
  tx = optax.chain(optax.add_decayed_weights(1e-4),
                   optax.sgd(_LR.value, momentum=0.9))
  opt_state = tx.init(params)

  @jax.jit
  def train_step(params, batch_stats, opt_state, x, y):
    def loss_fn(p):
      z, updates = model.apply({'params': p, 'batch_stats': batch_stats}, x, train=True,
                               mutable=['batch_stats'])
      loss = losses.classification_loss(z, protos, y, reduction='sum')
      return loss, (updates['batch_stats'], losses.predict_classes(z, protos) == y)
    (loss, (batch_stats, correct)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), batch_stats, opt_state, loss,
            jnp.mean(correct))

  @jax.jit
  def predict(params, batch_stats, x):
    z = model.apply({'params': params, 'batch_stats': batch_stats}, x, train=False)
    return losses.predict_classes(z, protos)

  def test_accuracy(params, batch_stats):
    preds = [predict(params, batch_stats, normalise(x_test[i:i + 250]))
             for i in range(0, len(x_test), 250)]
    return float(np.mean(np.concatenate(preds) == y_test))

  acc0 = test_accuracy(params, batch_stats)
  log(f'step 0: test accuracy {acc0:.3f} (chance 0.100)')
  rng = np.random.default_rng(_SEED.value)
  order, pos = rng.permutation(len(x_train)), 0
  window_loss, window_acc, first_loss, t_train = [], [], None, time.time()
  for step in range(1, _STEPS.value + 1):
    if pos + _BATCH.value > len(order):
      order, pos = rng.permutation(len(x_train)), 0
    idx = order[pos:pos + _BATCH.value]
    pos += _BATCH.value
    x = normalise(augment(rng, x_train[idx]))
    params, batch_stats, opt_state, loss, acc = train_step(
        params, batch_stats, opt_state, x, y_train[idx])
    window_loss.append(float(loss) / _BATCH.value)
    window_acc.append(float(acc))
    if step % _LOG_EVERY.value == 0 or step == _STEPS.value:
      mean_loss = np.mean(window_loss)
      first_loss = mean_loss if first_loss is None else first_loss
      elapsed = time.time() - t_train
      log(f'step {step}: loss/example {mean_loss:.4f}, train batch accuracy '
          f'{np.mean(window_acc):.3f} ({step * _BATCH.value / elapsed:.0f} images/s)')
      window_loss, window_acc = [], []
  acc = test_accuracy(params, batch_stats)
  log(f'step {_STEPS.value}: test accuracy {acc:.3f}')
  summary = (f'loss/example {first_loss:.4f} (first {_LOG_EVERY.value} steps) -> '
             f'{mean_loss:.4f} (last window); test accuracy {acc0:.3f} -> {acc:.3f}; '
             f'{time.time() - t0:.0f} s in all on {jax.devices()[0].platform}')
  log(summary)

  if _OUTPUT.value:
    command = 'python experiments/resnet32_cifar10.py ' + ' '.join(sys.argv[1:])
    with open(_OUTPUT.value, 'w') as f:
      f.write('# ResNet-32 + HPN loss on a CIFAR-10 JPEG subset\n\n'
              f'Command (from the repository root):\n\n    {command}\n\n'
              f'Summary: {summary}.\n\nLog:\n\n```\n' + '\n'.join(lines) + '\n```\n')


if __name__ == '__main__':
  app.run(main)
