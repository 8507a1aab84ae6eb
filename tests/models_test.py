"""Backbones and head: parameter counts against the original PyTorch networks, shapes of
every variant, forward/backward, bfloat16, initialisation, and the ViT checkpoint loader.

Cost: the large networks (ImageNet ResNets, DenseNet-121, ViT-S/B) are only traced with
`jax.eval_shape` (no compilation); real forward/backward passes run on ResNet-32 at batch
2 and on reduced-size instances of the other code paths.
"""

import os
import tempfile

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest
from absl.testing import parameterized

import helpers
from hyperproto import models
from hyperproto.models import densenet
from hyperproto.models import resnet
from hyperproto.models import vit

# Parameters of the original PyTorch networks: (backbone without the final Linear, total
# with a Linear head to d = 10). Computed by experiments/count_torch_params.py, which
# builds the original modules (transcribed from github.com/psmmettes/hpn models/*) in
# torch 2.13 and sums `p.numel()` over `model.parameters()` (BN running statistics are
# buffers there and batch_stats here, so neither side counts them). Cross-checks:
# resnet18/34/50 equal torchvision's 11,689,512 / 21,797,672 / 25,557,032 minus their
# 1000-class fc; densenet121 total is kuangliu's CIFAR-10 DenseNet121 (6,956,298);
# vit_s16 / vit_b16 equal timm's 22,050,664 / 86,567,656 minus their 1000-class head.
TORCH_PARAM_COUNTS = {
    'resnet20': (292_304, 292_954),
    'resnet32': (486_736, 487_386),
    'resnet44': (681_168, 681_818),
    'resnet56': (875_600, 876_250),
    'resnet110': (1_750_544, 1_751_194),
    'resnet32_64': (486_736, 487_386),
    'resnet18': (11_176_512, 11_181_642),
    'resnet34': (21_284_672, 21_289_802),
    'resnet50': (23_508_032, 23_528_522),
    'densenet121': (6_946_048, 6_956_298),
    'densenet121_64': (6_946_048, 6_956_298),
    'vit_ti4': (5_360_832, 5_362_762),
    'vit_s4': (21_338_496, 21_342_346),
    'vit_ti16': (5_524_416, 5_526_346),
    'vit_s16': (21_665_664, 21_669_514),
    'vit_b16': (85_798_656, 85_806_346),
}
FEATURES = {'resnet': 64, 'resnet18': 512, 'resnet34': 512, 'resnet50': 2048,
            'densenet121': 1024, 'densenet121_64': 1024, 'vit_ti4': 192, 'vit_s4': 384,
            'vit_ti16': 192, 'vit_s16': 384, 'vit_b16': 768}

# Reduced instances of each code path.
TINY = helpers.TINY_BACKBONES


# Compile without most XLA optimisations: the tests check shapes and values, not speed,
# and XLA:CPU's optimising passes (and the unrolled threefry of init) take most of the
# time otherwise (e.g. 30 s -> 4 s for a reduced ResNet-50's init).
FAST_COMPILE = {'xla_backend_optimization_level': 0,
                'xla_llvm_disable_expensive_passes': True}


def _run(fn, *args):
  """jit(fn)(*args), compiled with FAST_COMPILE."""
  return jax.jit(fn).lower(*args).compile(FAST_COMPILE)(*args)


def _count(tree) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def _init(model, size, batch=2, seed=0):
  x = jax.random.normal(jax.random.PRNGKey(seed), (batch, size, size, 3))
  return x, _run(lambda x: model.init(jax.random.PRNGKey(1), x, train=False), x)


def _loss_and_grads(model, variables, x):
  """Sum of squares of the outputs in train mode, its gradients and new batch stats."""
  def loss(params):
    z, updates = model.apply({**variables, 'params': params}, x, train=True,
                             mutable=['batch_stats'])
    return jnp.sum(jnp.square(z)), (z, updates)
  return _run(jax.value_and_grad(loss, has_aux=True), variables['params'])


def _train_apply(model, variables, x):
  return _run(lambda v, x: model.apply(v, x, train=True, mutable=['batch_stats']),
              variables, x)


class ShapesAndCountsTest(parameterized.TestCase):

  @parameterized.named_parameters((name, name) for name in TORCH_PARAM_COUNTS)
  def test_param_count_and_output_shape(self, name):
    size = models.INPUT_SIZES[name]
    model = models.build(name, output_dim=10)
    z, variables = jax.eval_shape(lambda: model.init_with_output(
        jax.random.PRNGKey(0), jnp.zeros((2, size, size, 3)), train=False))
    backbone, total = TORCH_PARAM_COUNTS[name]
    self.assertEqual(_count(variables['params']['backbone']), backbone)
    self.assertEqual(_count(variables['params']), total)
    self.assertEqual(z.shape, (2, 10))
    self.assertEqual(z.dtype, jnp.float32)
    features = FEATURES.get(name, FEATURES['resnet'])
    self.assertEqual(variables['params']['head']['kernel'].shape, (features, 10))
    self.assertTrue(all(v.dtype == jnp.float32 for v in jax.tree.leaves(variables)))

  def test_registry_covers_input_sizes(self):
    self.assertEqual(set(models.BACKBONES), set(models.INPUT_SIZES))
    self.assertEqual(set(models.BACKBONES) - {'cnn'}, set(TORCH_PARAM_COUNTS))

  def test_original_shortcuts(self):
    """CIFAR: 3x3 stride-2 conv + BN shortcut; ImageNet: 1x1; identity elsewhere."""
    shapes = lambda name, size: jax.eval_shape(
        lambda: models.build(name, output_dim=3).init(
            jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3)), train=False)
    )['params']['backbone']
    cifar = shapes('resnet32', 32)
    self.assertEqual(cifar['layer2_0']['downsample_conv']['kernel'].shape, (3, 3, 16, 32))
    self.assertEqual(cifar['layer3_0']['downsample_conv']['kernel'].shape, (3, 3, 32, 64))
    self.assertIn('downsample_bn', cifar['layer2_0'])
    self.assertNotIn('downsample_conv', cifar['layer1_0'])
    self.assertNotIn('downsample_conv', cifar['layer2_1'])
    self.assertEqual(len([k for k in cifar if k.startswith('layer')]), 15)  # 3 x n=5.
    imnet = shapes('resnet50', 224)
    self.assertEqual(imnet['conv1']['kernel'].shape, (7, 7, 3, 64))
    self.assertEqual(imnet['layer1_0']['downsample_conv']['kernel'].shape,
                     (1, 1, 64, 256))
    self.assertEqual(imnet['layer2_0']['conv2']['kernel'].shape, (3, 3, 128, 128))

  def test_pool_size_mismatch_is_an_error(self):
    model = models.build('resnet32', output_dim=3)
    with self.assertRaisesRegex(ValueError, r'16x16 .*pools 8x8.*32x32 inputs.*'
                                            r'pool_size=None'):
      jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                        jnp.zeros((1, 64, 64, 3)), train=False))
    # The ImageNet-200 variant takes 64x64; pool_size=None takes any size.
    for name, kwargs in (('resnet32_64', {}), ('resnet32', dict(pool_size=None))):
      z = jax.eval_shape(lambda: models.build(name, output_dim=3, **kwargs).init_with_output(
          jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)), train=False))[0]
      self.assertEqual(z.shape, (1, 3))

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, 'depth must be 6n . 2.*got 33'):
      jax.eval_shape(lambda: models.build('resnet32', output_dim=3, depth=33).init(
          jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)), train=False))
    with self.assertRaisesRegex(ValueError, 'not a multiple of the patch size 16'):
      jax.eval_shape(lambda: models.build('vit_s16', output_dim=3).init(
          jax.random.PRNGKey(0), jnp.zeros((1, 32, 36, 3)), train=False))
    with self.assertRaisesRegex(ValueError, "Unknown head_init 'xavier'"):
      jax.eval_shape(lambda: models.build('cnn', output_dim=3, head_init='xavier').init(
          jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)), train=False))


class ResNet32Test(absltest.TestCase):
  """The paper's main network, for real: init statistics, train step, bfloat16."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = models.build('resnet32', output_dim=10)
    cls.x, cls.variables = _init(cls.model, 32)

  def test_initialisation_matches_original(self):
    params = self.variables['params']
    # normal_(0, sqrt(2 / (3 * 3 * out_channels))), untruncated: check std and tails.
    kernel = np.asarray(params['backbone']['layer3_1']['conv1']['kernel'])
    std = np.sqrt(2.0 / (3 * 3 * 64))
    self.assertAlmostEqual(kernel.std() / std, 1.0, delta=0.03)
    self.assertGreater(np.abs(kernel).max(), 3.5 * std)  # A truncated normal stops at 2.
    bn = params['backbone']['layer2_0']['downsample_bn']
    np.testing.assert_array_equal(bn['scale'], 1.0)
    np.testing.assert_array_equal(bn['bias'], 0.0)
    # PyTorch's nn.Linear default: kernel and bias U(+-1/sqrt(64)).
    for leaf in ('kernel', 'bias'):
      w = np.asarray(params['head'][leaf])
      self.assertLessEqual(np.abs(w).max(), 1 / 8)
      self.assertGreater(np.abs(w).max(), 1 / 16)

  @pytest.mark.device
  def test_forward_backward_and_bfloat16(self):
    (loss, (z, updates)), grads = _loss_and_grads(self.model, self.variables, self.x)
    self.assertEqual(z.shape, (2, 10))
    self.assertTrue(np.isfinite(loss))
    self.assertEqual(jax.tree.structure(grads),
                     jax.tree.structure(self.variables['params']))
    for path, g in flax.traverse_util.flatten_dict(grads, sep='/').items():
      self.assertTrue(np.all(np.isfinite(g)), path)
      self.assertGreater(np.abs(g).max(), 0.0, path)
    old = self.variables['batch_stats']['backbone']['bn1']['mean']
    new = updates['batch_stats']['backbone']['bn1']['mean']
    self.assertFalse(np.allclose(old, new))  # Running statistics move in train mode.

    # bfloat16 compute from the same float32 params: close outputs, float32 statistics.
    bf16 = models.build('resnet32', output_dim=10, dtype='bfloat16')
    z16, updates16 = _train_apply(bf16, self.variables, self.x)
    self.assertEqual(z16.dtype, jnp.float32)  # The head (and the cosine) in float32.
    self.assertTrue(np.all(np.isfinite(z16)))
    self.assertLess(np.linalg.norm(z16 - z) / np.linalg.norm(z), 0.05)
    for a, b in zip(jax.tree.leaves(updates16), jax.tree.leaves(updates)):
      self.assertEqual(a.dtype, jnp.float32)
      np.testing.assert_allclose(a, b, rtol=0.05, atol=0.02)


class TinyVariantsTest(parameterized.TestCase):
  """Forward/backward and bfloat16 on reduced instances of every other code path."""

  @parameterized.named_parameters((k, *v) for k, v in TINY.items())
  @pytest.mark.device
  def test_forward_backward_bfloat16(self, name, size, kwargs):
    model = models.build(name, output_dim=5, **kwargs)
    x, variables = _init(model, size)
    (loss, (z, _)), grads = _loss_and_grads(model, variables, x)
    self.assertEqual(z.shape, (2, 5))
    self.assertTrue(np.isfinite(loss))
    for path, g in flax.traverse_util.flatten_dict(grads, sep='/').items():
      self.assertTrue(np.all(np.isfinite(g)), path)
      self.assertGreater(np.abs(g).max(), 0.0, path)
    # bfloat16 in eval mode: in train mode the reduced ImageNet ResNets normalise over
    # B x 1 x 1 = 2 values in their last stage, where rounding decides the output.
    bf16 = models.build(name, output_dim=5, dtype='bfloat16', **kwargs)
    z16 = _run(lambda v, x: bf16.apply(v, x, train=False), variables, x)
    z32 = _run(lambda v, x: model.apply(v, x, train=False), variables, x)
    self.assertEqual(z16.dtype, jnp.float32)
    self.assertTrue(np.all(np.isfinite(z16)))
    self.assertLess(np.linalg.norm(z16 - z32) / np.linalg.norm(z32), 0.05)

  def test_densenet_init_is_pytorch_default(self):
    model = densenet.DenseNet(blocks=(1, 1, 1, 1), growth_rate=4)
    params = jax.eval_shape(lambda: model.init(
        jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)), train=False))['params']
    self.assertEqual(params['dense1_0']['conv1']['kernel'].shape, (1, 1, 8, 16))
    kernel = densenet.TORCH_CONV_INIT(jax.random.PRNGKey(0), (3, 3, 64, 128))
    bound = 1 / np.sqrt(3 * 3 * 64)
    self.assertLessEqual(np.abs(kernel).max(), bound)
    self.assertGreater(np.abs(kernel).max(), 0.99 * bound)

  def test_resnet_rejects_unknown_block(self):
    with self.assertRaisesRegex(ValueError, "Unknown ResNet block 'wide'"):
      jax.eval_shape(lambda: resnet.ResNet(block='wide').init(
          jax.random.PRNGKey(0), jnp.zeros((1, 224, 224, 3)), train=False))


class PrecisionOptionsTest(parameterized.TestCase):
  """The ResNets' options for measuring mixed precision (experiments/bench_precision.py):
  the first convolution's input padded to 4 / 8 channels, BatchNorm's own dtype."""

  # Both stems (CifarResNet's 3x3, ResNet's 7x7 stride 2), one padding each.
  @parameterized.named_parameters(('cifar_resnet', *TINY['cifar_resnet'], 4),
                                  ('resnet_basic', *TINY['resnet_basic'], 8))
  @pytest.mark.device
  def test_padded_stem_is_the_same_network(self, name, size, kwargs, channels):
    # Full float32 products, so that on a GPU neither side runs on TF32 (the padded and
    # the 3-channel convolution may take different kernels).
    with jax.default_matmul_precision('float32'):
      self.check_padded_stem(name, size, kwargs, channels)

  def check_padded_stem(self, name, size, kwargs, channels):
    model = models.build(name, output_dim=5, **kwargs)
    # Batch 8: the reduced ImageNet ResNets' last BatchNorm normalises over B x 1 x 1
    # values, where at batch 2 a difference in the last bit could be amplified.
    x, variables = _init(model, size, batch=8)
    (loss, (z, updates)), grads = _loss_and_grads(model, variables, x)
    padded = models.build(name, output_dim=5, stem_channels=channels, **kwargs)
    shapes = jax.eval_shape(lambda: padded.init(jax.random.PRNGKey(1), x, train=False))
    self.assertEqual(jax.tree.map(lambda a: (a.shape, a.dtype), shapes),
                     jax.tree.map(lambda a: (a.shape, a.dtype), variables))
    (loss_p, (z_p, updates_p)), grads_p = _loss_and_grads(padded, variables, x)
    # The zeros add exact zeros: only the order of the sums may differ.
    np.testing.assert_allclose(loss_p, loss, rtol=1e-4)
    np.testing.assert_allclose(z_p, z, rtol=1e-4, atol=1e-4)
    for a, b in zip(jax.tree.leaves((grads_p, updates_p)),
                    jax.tree.leaves((grads, updates))):
      np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)

  @parameterized.named_parameters(
      (k, *TINY[k]) for k in ('cifar_resnet', 'resnet_basic'))
  @pytest.mark.device
  def test_batchnorm_dtype(self, name, size, kwargs):
    model = models.build(name, output_dim=5, **kwargs)
    x, variables = _init(model, size)
    z32 = _run(lambda v, x: model.apply(v, x, train=False), variables, x)
    # None: as before, BatchNorm outputs the network's dtype; a dtype name: that one.
    for norm_dtype, expected in ((None, jnp.bfloat16), ('float32', jnp.float32),
                                 ('bfloat16', jnp.bfloat16)):
      bf16 = models.build(name, output_dim=5, dtype='bfloat16', norm_dtype=norm_dtype,
                          **kwargs)
      z16, state = _run(lambda v, x, m=bf16: m.apply(
          v, x, train=False, capture_intermediates=True, mutable=['intermediates']),
                        variables, x)
      bn1 = state['intermediates']['backbone']['bn1']['__call__'][0]
      self.assertEqual(bn1.dtype, expected, norm_dtype)
      self.assertEqual(z16.dtype, jnp.float32)
      self.assertTrue(np.all(np.isfinite(z16)), norm_dtype)
      self.assertLess(np.linalg.norm(z16 - z32) / np.linalg.norm(z32), 0.05, norm_dtype)

  def test_bad_options_say_what_to_use(self):
    x = jnp.zeros((1, 32, 32, 3))
    init = lambda **kw: jax.eval_shape(lambda: models.build(
        'resnet20', output_dim=3, **kw).init(jax.random.PRNGKey(0), x, train=False))
    with self.assertRaisesRegex(ValueError, "Unknown norm_dtype 'half'; use one of"):
      init(norm_dtype='half')
    with self.assertRaisesRegex(ValueError, 'Cannot pad 3 input channels to 2'):
      init(stem_channels=2)
    with self.assertRaisesRegex(ValueError, 'stem_channels must be None or a channel'):
      init(stem_channels=0)


class ViTCheckpointTest(absltest.TestCase):
  """`load_vit_npz` on tiny synthetic checkpoints in the vision_transformer format."""

  KW = dict(patch_size=4, width=16, depth=2, mlp_dim=32, num_heads=2)

  def _params(self, size=16, seed=0, **kw):
    """Params of a tiny ViT + head, random values (the loader only needs the layout)."""
    model = models.build('vit_ti4', output_dim=3, **{**self.KW, **kw})
    shapes = jax.eval_shape(lambda: model.init(
        jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3)), train=False))['params']
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: rng.normal(size=s.shape).astype(s.dtype), shapes)

  def _save(self, flat):
    tmp = tempfile.TemporaryDirectory()  # pylint: disable=consider-using-with
    self.addCleanup(tmp.cleanup)
    path = os.path.join(tmp.name, 'vit.npz')
    np.savez(path, **flat)
    return path

  def _checkpoint(self, params):
    flat = {k: np.asarray(v) for k, v in
            flax.traverse_util.flatten_dict(params['backbone'], sep='/').items()}
    flat['head/kernel'] = np.zeros((16, 1000), np.float32)  # The ckpt's own classifier.
    flat['head/bias'] = np.zeros((1000,), np.float32)
    return flat

  def test_names_match_vision_transformer(self):
    flat = flax.traverse_util.flatten_dict(self._params()['backbone'], sep='/')
    for key in ('embedding/kernel', 'cls', 'Transformer/posembed_input/pos_embedding',
                'Transformer/encoderblock_1/LayerNorm_0/scale',
                'Transformer/encoderblock_1/MultiHeadDotProductAttention_0/query/kernel',
                'Transformer/encoderblock_1/MultiHeadDotProductAttention_0/out/kernel',
                'Transformer/encoderblock_1/LayerNorm_1/bias',
                'Transformer/encoderblock_1/MlpBlock_0/Dense_1/kernel',
                'Transformer/encoder_norm/scale'):
      self.assertIn(key, flat)
    self.assertEqual(
        flat['Transformer/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel'].shape,
        (16, 2, 8))

  def test_round_trip_keeps_our_head(self):
    source, target = self._params(seed=0), self._params(seed=1)
    loaded = models.load_vit_npz(self._save(self._checkpoint(source)), target)
    chex_equal = lambda a, b: jax.tree.map(np.testing.assert_array_equal, a, b)
    chex_equal(loaded['backbone'], source['backbone'])
    chex_equal(loaded['head'], target['head'])
    # Also given the backbone's params alone.
    chex_equal(models.load_vit_npz(self._save(self._checkpoint(source)),
                                   target['backbone']), source['backbone'])

  def test_pre_linen_and_big_vision_names(self):
    source = self._params(seed=0)
    flat = self._checkpoint(source)
    renamed = {}
    for k, v in flat.items():  # The original ViT release's global numbering.
      k = (k.replace('MultiHeadDotProductAttention_0', 'MultiHeadDotProductAttention_1')
           .replace('LayerNorm_1', 'LayerNorm_2').replace('MlpBlock_0', 'MlpBlock_3'))
      renamed['params/' + k] = v
    renamed['params/pos_embedding'] = renamed.pop(
        'params/Transformer/posembed_input/pos_embedding')
    loaded = models.load_vit_npz(self._save(renamed), self._params(seed=1))
    jax.tree.map(np.testing.assert_array_equal, loaded['backbone'], source['backbone'])

  def test_position_embedding_grid_is_resized(self):
    source = self._params(size=16)  # 4x4 grid.
    target = self._params(size=32, seed=1)  # 8x8 grid.
    loaded = models.load_vit_npz(self._save(self._checkpoint(source)), target)
    pe = loaded['backbone']['Transformer']['posembed_input']['pos_embedding']
    old = source['backbone']['Transformer']['posembed_input']['pos_embedding']
    self.assertEqual(pe.shape, (1, 65, 16))
    np.testing.assert_array_equal(pe[:, 0], old[:, 0])  # Class token kept.
    grid_old = np.asarray(old[0, 1:]).reshape(4, 4, 16)
    grid_new = np.asarray(pe[0, 1:]).reshape(8, 8, 16)
    np.testing.assert_allclose(grid_new[0, 0], grid_old[0, 0], atol=1e-6)  # Corners.
    np.testing.assert_allclose(grid_new[-1, -1], grid_old[-1, -1], atol=1e-6)
    with self.assertRaisesRegex(ValueError, r'pos_embedding: checkpoint \(1, 17, 16\), '
                                            r'model \(1, 65, 16\)'):
      models.load_vit_npz(self._save(self._checkpoint(source)), target,
                          resize_posemb_grid=False)

  def test_shape_mismatch_names_key_and_shapes(self):
    wide = self._params(width=32, num_heads=2)
    with self.assertRaisesRegex(
        ValueError, r'Shape mismatch for [\w/]+: checkpoint \((\d+, )*32,?\), '
                    r'model \((\d+, )*16,?\)'):
      models.load_vit_npz(self._save(self._checkpoint(wide)), self._params())
    deep = self._params(depth=1)
    with self.assertRaisesRegex(ValueError, 'lacks .* parameters.*encoderblock_1'):
      models.load_vit_npz(self._save(self._checkpoint(deep)), self._params())


class DemoCNNTest(absltest.TestCase):

  def test_shapes_and_head(self):
    model = models.build('cnn', output_dim=7, widths=(4, 8))
    x = jnp.ones((3, 16, 16, 1))
    variables = _run(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)
    self.assertEqual(variables['params']['head']['kernel'].shape, (8, 7))
    self.assertEqual(variables['params']['head']['bias'].shape, (7,))
    z, _ = _train_apply(model, variables, x)
    self.assertEqual(z.shape, (3, 7))
    self.assertEqual(z.dtype, jnp.float32)
    # No normalisation in the forward pass (like the original): norms vary.
    self.assertFalse(np.allclose(np.linalg.norm(z, axis=1), 1.0))

  @pytest.mark.device
  def test_params_float32_under_bfloat16_compute(self):
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 16, 16, 1))
    f32 = models.build('cnn', output_dim=5, widths=(4, 8))
    bf16 = models.build('cnn', output_dim=5, widths=(4, 8), dtype='bfloat16')
    variables = _run(lambda x: f32.init(jax.random.PRNGKey(0), x, train=False), x)
    self.assertTrue(all(v.dtype == jnp.float32 for v in jax.tree.leaves(jax.eval_shape(
        lambda: bf16.init(jax.random.PRNGKey(0), x, train=False)))))
    z32 = _run(lambda v, x: f32.apply(v, x, train=False), variables, x)
    z16 = _run(lambda v, x: bf16.apply(v, x, train=False), variables, x)
    self.assertTrue(np.all(np.isfinite(z16)))
    np.testing.assert_allclose(z16, z32, rtol=0.1, atol=0.05)

  def test_unknown_names(self):
    with self.assertRaisesRegex(ValueError, "Unknown backbone 'resnet9'"):
      models.build('resnet9', output_dim=3)
    with self.assertRaisesRegex(ValueError, "Unknown dtype 'float8'"):
      models.build('cnn', output_dim=3, dtype='float8')


if __name__ == '__main__':
  absltest.main()
