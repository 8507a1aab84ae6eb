"""How long a checkpoint of a model's train state takes to save: what SLURM's time-limit
signal must leave room for (hyperproto/slurm: SIGNAL_LEAD).

  python experiments/checkpoint_time.py [--model=vit_b16] [--dir=/shared/scratch] \
      [--repeats=2]

Prints one JSON line per save: the state's size and the seconds from `save` to its
commit (Orbax, as in training). Measured with the defaults on a 2-core AMD EPYC shared
with other work, local disk: ViT-B/16 + SGD momentum, 0.69 GB; two runs, 6.1 s then 3.0 s
and 12.7 s then 4.6 s.
"""

import json
import os
import shutil
import sys
import tempfile
import time

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

# pylint: disable=g-import-not-at-top,wrong-import-position
from configs import digits
from hyperproto import checkpointing
from hyperproto import models
from hyperproto import optim
from hyperproto import train
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS


def measure(model: str, directory: str, repeats: int = 2, image_size: int = 224,
            model_kwargs=None) -> list[dict]:
  """Saves the SGD train state of `model` (100 outputs) `repeats` times."""
  config = digits.get_config()
  network = models.build(model, output_dim=100, dtype='float32', axis_name=train.AXIS,
                         **(model_kwargs or {}))
  tx = optim.optimizer(config, num_steps=1000, steps_per_epoch=100)
  state = train.create_train_state(jax.random.PRNGKey(0), network, tx,
                                   (image_size, image_size, 3))
  nbytes = sum(x.nbytes for x in jax.tree.leaves(state))
  params = sum(x.size for x in jax.tree.leaves(state.params))
  rows = []
  for _ in range(repeats):
    path = tempfile.mkdtemp(prefix='checkpoint_time_', dir=directory)
    try:
      ckpt = checkpointing.Checkpointer(path, every_steps=1)
      start = time.perf_counter()
      ckpt.save(1, state)
      ckpt.wait()
      seconds = time.perf_counter() - start
      ckpt.close()
    finally:
      shutil.rmtree(path, ignore_errors=True)
    rows.append(dict(model=model, params=params, state_bytes=nbytes,
                     save_seconds=round(seconds, 3),
                     mb_per_s=round(nbytes / 1e6 / seconds, 1)))
  return rows


def main(argv):
  del argv
  for row in measure(FLAGS.model, FLAGS.dir, FLAGS.repeats):
    print(json.dumps(row), flush=True)


if __name__ == '__main__':
  flags.DEFINE_string('model', 'vit_b16', 'Backbone (hyperproto.models).')
  flags.DEFINE_string('dir', tempfile.gettempdir(), 'Where to save (a shared filesystem '
                      'to measure it).')
  flags.DEFINE_integer('repeats', 2, 'Saves.')
  app.run(main)
