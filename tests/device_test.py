"""Device code on whatever JAX's default backend is, with any number of devices.

The tests of the `device` marker (`pytest -m device`, run on an accelerator by
experiments/gpu_check.py) mostly live beside the code they test; those comparing 1 with 8
devices skip on fewer. This one compares the two mappers on every visible device, so a
single GPU runs it too.
"""

import shutil
import tempfile

import jax
import numpy as np
import pytest
from absl.testing import absltest

import helpers
from hyperproto import train


class MappersTest(absltest.TestCase):

  @pytest.mark.device
  def test_pmap_and_shard_map_give_the_same_run(self):
    runs = {}
    for kind in ('shard_map', 'pmap'):
      workdir = tempfile.mkdtemp(prefix='hyperproto_test_')
      self.addCleanup(shutil.rmtree, workdir, ignore_errors=True)
      results = train.train_and_evaluate(
          helpers.tiny_config(parallel=kind, num_steps=3, checkpoint_every_steps=100),
          workdir)
      runs[kind] = results, helpers.final_params(workdir)
    (ref, ref_params), (other, params) = runs['shard_map'], runs['pmap']
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5),
                 ref_params, params)
    self.assertAlmostEqual(ref['test/accuracy'], other['test/accuracy'], places=2)
    self.assertAlmostEqual(ref['test/mae'], other['test/mae'], places=2)


if __name__ == '__main__':
  absltest.main()
