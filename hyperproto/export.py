"""Exports a run's parameters, BatchNorm statistics and prototypes to one `.npz`.

  python -m hyperproto.export --workdir=/tmp/run [--output=/tmp/run/export.npz]

For users of other frameworks: plain NumPy arrays under '/'-joined names
(`params/backbone/conv0_0/kernel`, `batch_stats/...`, `prototypes`), plus `step` and the
run's `config` (JSON). Conv kernels are HWIO and Dense kernels in x out (Flax's layout;
PyTorch wants OIHW and out x in). Needs only the workdir, not the model code.
"""

import json
import os
from typing import Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import app
from absl import flags

FLAGS = flags.FLAGS


def _flatten(tree, prefix: str) -> dict[str, np.ndarray]:
  out = {}
  for key, value in tree.items():
    name = f'{prefix}/{key}'
    if isinstance(value, dict):
      out.update(_flatten(value, name))
    else:
      out[name] = np.asarray(value)
  return out


def load_checkpoint(workdir: str) -> tuple[int, dict]:
  """(step, state) of the newest checkpoint in `workdir`, restored onto this process's
  first device whatever device topology saved it; no model code needed."""
  directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
  manager = ocp.CheckpointManager(directory)
  step = manager.latest_step()
  if step is None:
    raise FileNotFoundError(f'No checkpoint in {directory}: train first (or check the '
                            f'--workdir).')
  manager.close()
  # Restore onto this machine's first device, whatever topology saved it.
  path = os.path.join(directory, str(step), 'default')
  checkpointer = ocp.StandardCheckpointer()
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                          checkpointer.metadata(path).item_metadata)
  state = checkpointer.restore(path, abstract)
  checkpointer.close()
  return step, state


def export(workdir: str, output: Optional[str] = None) -> str:
  """Writes the newest checkpoint of `workdir` as `.npz`; returns its path."""
  step, state = load_checkpoint(workdir)
  arrays = _flatten({'params': state['params'], 'batch_stats': state['batch_stats']}, '')
  arrays = {k.lstrip('/'): v for k, v in arrays.items()}
  protos_path = os.path.join(workdir, 'prototypes.npy')
  if os.path.exists(protos_path):
    arrays['prototypes'] = np.load(protos_path)
  arrays['step'] = np.asarray(step)
  config_path = os.path.join(workdir, 'config.json')
  if os.path.exists(config_path):
    with open(config_path) as f:
      arrays['config'] = np.asarray(f.read())
  output = output or os.path.join(workdir, 'export.npz')
  np.savez(output, **arrays)
  return output


def define_flags():
  """The command line's flags (defined only when run as a program, so that importing
  this module defines none)."""
  flags.DEFINE_string('workdir', None, 'The run to export.')
  flags.DEFINE_string('output', None, 'Output .npz (default: WORKDIR/export.npz).')


def main(argv):
  del argv
  path = export(FLAGS.workdir, FLAGS.output)
  with np.load(path) as f:
    size = sum(f[k].size for k in f.files if k.startswith('params/'))
  print(f'Wrote {path}: {size:,} parameters at step {int(np.load(path)["step"])}.')


if __name__ == '__main__':
  define_flags()
  flags.mark_flag_as_required('workdir')
  app.run(main)
