"""Every backbone family trains the same on 1 and on 8 devices, under shard_map and pmap.

Two SGD steps of `train.train_step` on a reduced instance of each family (CIFAR ResNet,
ImageNet ResNet with basic and with bottleneck blocks, DenseNet, ViT, the demo CNN) with
a global batch of 16: on one device, then split over 8 host-platform devices. The loss
is a sum over the global batch and BatchNorm statistics are synchronised over the mapped
axis, so parameters and running statistics must agree, to train_test.py's tolerance
(measured: within 1/30 of it). The end-to-end equality tests there run only the demo CNN.

What breaks it (experiments/mutation_check.py): a mean instead of a sum of gradients,
or a BatchNorm left out of the synchronisation (`axis_name=None` in a backbone). Under
pmap the parameters then differ (every BatchNorm unsynchronised: by 2,000x the tolerance
or more); shard_map refuses to trace such a step, its statistics differing across
devices. 30-50 s on 2 cores, depending on their load.
"""

import functools

import jax
import numpy as np
import optax
import pytest
from absl.testing import absltest
from absl.testing import parameterized

import helpers
from hyperproto import models
from hyperproto import objectives
from hyperproto import parallel
from hyperproto import prototypes
from hyperproto import train



def _two_stages(family):
  """helpers.TINY_BACKBONES[family] with two stages (dense blocks) instead of four.

  With four, the ImageNet ResNets' last stage is 1x1 at 32x32 inputs: BatchNorm then
  normalises 16 nearly equal values and turns rounding differences between 1 and 8
  devices into parameter differences 100x the tolerance (measured at lr 1e-3).
  Two stages still run the stem, both block kinds and the stride-2 shortcuts.
  """
  name, size, kwargs = helpers.TINY_BACKBONES[family]
  key = 'blocks' if family == 'densenet' else 'stage_sizes'
  return name, size, dict(kwargs, **{key: (1, 1)}, pool_size=None)


BACKBONES = {**helpers.TINY_BACKBONES, 'cnn': ('cnn', 16, dict(widths=(8, 16))),
             **{f: _two_stages(f) for f in ('resnet_basic', 'resnet_bottleneck',
                                            'densenet')}}
GLOBAL_BATCH = 16
NUM_STEPS = 2
NUM_CLASSES = 5
DIM = 4
LR = 0.01


def make_batch(rng, size):
  """GLOBAL_BATCH noise images of different contrasts, and labels. The BatchNorm
  statistics of one device's 2 images then differ clearly from those of all 16 (for
  i.i.d. noise they nearly agree, and unsynchronised statistics go unnoticed); a common
  mean grey keeps the gradients of the convolutions before BatchNorm well conditioned
  (with a random colour per image, rounding alone moved the CIFAR ResNet's stem 27x the
  tolerance apart)."""
  contrast = rng.uniform(0.1, 1.0, (GLOBAL_BATCH, 1, 1, 1))
  noise = rng.uniform(-127, 127, (GLOBAL_BATCH, size, size, 3))
  return {'image': (128 + contrast * noise).astype(np.uint8),
          'label': rng.integers(0, NUM_CLASSES, (GLOBAL_BATCH,), np.int32)}


def setup(name, size, kwargs):
  """The model, optimiser, objective, prototypes and initial state (on one device)."""
  objective = objectives.Objective(task='classification', method='hpn', dim=DIM,
                                   num_classes=NUM_CLASSES)
  protos = objective.prototypes(prototypes.place('simplex', NUM_CLASSES, DIM))
  model = models.build(name, output_dim=DIM, axis_name=parallel.AXIS, **kwargs)
  # Plain SGD with momentum: unlike Adam's, its update scales with the gradient, so a
  # mean instead of a sum over devices shows.
  tx = optax.sgd(LR, momentum=0.9)
  state = train.create_train_state(jax.random.PRNGKey(0), model, tx, (size, size, 3))
  return model, tx, objective, protos, jax.device_get(state)


def run_steps(setup_out, size, num_devices, kind):
  """Params and BatchNorm statistics after NUM_STEPS steps (as NumPy)."""
  model, tx, objective, protos, state = setup_out
  mesh = parallel.make_mesh(num_devices)
  step = parallel.map_step(
      functools.partial(train.train_step, model=model, tx=tx, objective=objective,
                        mean=(0.5,) * 3, std=(0.25,) * 3), mesh, kind=kind)
  state, protos = parallel.replicate((state, protos), mesh)
  rng = np.random.default_rng(0)
  for _ in range(NUM_STEPS):
    state, _ = step(state, parallel.batch_to_devices(make_batch(rng, size), mesh, kind),
                    protos)
  return jax.device_get({'params': state.params, 'batch_stats': state.batch_stats})


class BackbonesOnDevicesTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    # Compile with few XLA optimisations (1.6x faster here); both sides alike.
    flag = 'jax_disable_most_optimizations'
    self.addCleanup(jax.config.update, flag, jax.config.read(flag))
    jax.config.update(flag, True)

  @parameterized.named_parameters((family, *spec) for family, spec in BACKBONES.items())
  @pytest.mark.device
  @helpers.needs_devices(8)
  def test_one_device_and_eight_agree(self, name, size, kwargs):
    setup_out = setup(name, size, kwargs)
    # The reference runs under pmap: shard_map would already refuse to trace a step
    # with unsynchronised BatchNorm on one device, before either comparison.
    one = run_steps(setup_out, size, 1, 'pmap')
    # ViT has no BatchNorm: there the statistics are empty and only params compare.
    self.assertEqual(bool(jax.tree.leaves(one['batch_stats'])), name != 'vit_s4')
    for kind in parallel.MAPPERS:
      with self.subTest(kind):
        eight = run_steps(setup_out, size, 8, kind)
        jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=2e-4, atol=2e-5),
                     one, eight)


if __name__ == '__main__':
  absltest.main()
