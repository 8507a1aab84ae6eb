"""End to end on tiny rotated digits: outputs, resume, devices, bad input."""

import json
import os
import re
import shutil
import signal
import struct
import tempfile
from unittest import mock

import jax
import ml_collections
import numpy as np
import pytest
from absl.testing import absltest
from absl.testing import parameterized

import data_streaming_test
import helpers
from hyperproto import data
from hyperproto import export
from hyperproto import models
from hyperproto import objectives
from hyperproto import parallel
from hyperproto import prototypes
from hyperproto import train
from hyperproto.data import device_input
from hyperproto.data import subsets
from hyperproto.data import prepare


def read_jsonl(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def sigterm_in_train_call(n):
  """A `parallel.map_step` whose train step sends this process SIGTERM on call `n`."""
  map_step = parallel.map_step

  def patched(step, mesh, **kwargs):
    fn = map_step(step, mesh, **kwargs)
    if not kwargs.get('donate_argnums'):
      return fn  # The eval step.
    calls = []

    def wrapped(*args):
      calls.append(1)
      if len(calls) == n:
        os.kill(os.getpid(), signal.SIGTERM)
      return fn(*args)

    return wrapped

  return patched


def tensorboard_scalars(workdir):
  """{(step, tag): value} of the TensorBoard event files in `workdir` (TFRecord framing:
  length, its CRC, the Event proto, its CRC)."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  scalars = {}
  for name in os.listdir(workdir):
    if not name.startswith('events.out.tfevents'):
      continue
    with open(os.path.join(workdir, name), 'rb') as f:
      data_ = f.read()
    pos = 0
    while pos < len(data_):
      (length,) = struct.unpack('<Q', data_[pos:pos + 8])
      event = event_pb2.Event.FromString(data_[pos + 12:pos + 12 + length])
      pos += 12 + length + 4
      for value in event.summary.value:
        scalars[(event.step, value.tag)] = value.simple_value
  return scalars


def log_softmax(x):
  return x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))


class MixupLossTest(parameterized.TestCase):
  """The mixed loss against the references' `mixup_criterion` and ETF's / DL2PA's LT
  `train` (the loss of the mixed images against both label sets, the per-batch E of the
  unmixed labels for both)."""

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(3)
    self.z = rng.standard_normal((6, 5)).astype(np.float32)
    self.labels = np.array([0, 1, 1, 2, 3, 3])
    self.partner = np.array([3, 0, 5, 1, 2, 4])  # torch.randperm(6)
    self.lam = 0.3
    self.batch = dict(label=self.labels, mix_label=self.labels[self.partner],
                      mix_lam=np.full(6, self.lam, np.float32))

  def test_softmax_is_lambda_ce_a_plus_one_minus_lambda_ce_b(self):
    objective = objectives.Objective(task='classification', method='baseline', dim=0,
                                     num_classes=5, reduction='mean')
    ce = lambda y: -np.mean(log_softmax(self.z)[np.arange(6), y])
    want = self.lam * ce(self.labels) + (1 - self.lam) * ce(self.labels[self.partner])
    got = train.batch_loss_sum(objective, self.z, self.batch, {}) / 6
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # Without partners: the plain loss.
    np.testing.assert_allclose(train.batch_loss_sum(objective, self.z,
                                                    dict(label=self.labels), {}) / 6,
                               ce(self.labels), rtol=1e-6)

  @parameterized.parameters('etf', 'dl2pa')
  def test_dot_regression_weights_both_label_sets_with_the_batch_e(self, method):
    classes = prototypes.place('etf', 5, 5, seed=0).astype(np.float32)
    protos = {'classes': classes}
    hparams = (('given_ew', True), ('loss', 'dr'))
    if method == 'dl2pa':
      protos['assignment'] = np.array([2, 0, 1, 4, 3], np.int32)
      hparams = (('loss', 'dr'),)
      classes = classes[protos['assignment']]
    objective = objectives.Objective(task='classification', method=method, dim=5,
                                     num_classes=5, reduction='mean', hparams=hparams)
    counts = np.bincount(self.labels, minlength=5)  # produce_Ew(target), target = y_a
    gamma = 6 / np.count_nonzero(counts)
    ew = np.where(counts > 0, np.sqrt(gamma / np.maximum(counts, 1)), 1.0)
    cur_m = classes * ew[:, None]  # cur_M's columns, as rows
    h = self.z / np.linalg.norm(self.z, axis=1, keepdims=True)
    h_len = np.linalg.norm(h, axis=1)

    def dot_loss(y):  # methods.py dot_loss / LT_utils.LTloss, 'reg_dot_loss'
      w = cur_m[y]
      dot = np.sum(h * w, axis=1)
      return np.mean(0.5 * (dot - np.linalg.norm(w, axis=1) * h_len) ** 2 / h_len)

    want = (self.lam * dot_loss(self.labels)
            + (1 - self.lam) * dot_loss(self.labels[self.partner]))
    got = train.batch_loss_sum(objective, self.z, self.batch, protos) / 6
    np.testing.assert_allclose(got, want, rtol=1e-5)


class TrainTest(parameterized.TestCase):
  """Most tests compare against one reference run: 6 steps, 8 devices, shard_map."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.ref_dir = tempfile.mkdtemp(prefix='hyperproto_ref_')
    cls.ref = train.train_and_evaluate(helpers.tiny_config(), cls.ref_dir)
    cls.ref_params = helpers.final_params(cls.ref_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.ref_dir, ignore_errors=True)
    super().tearDownClass()

  def workdir(self):
    return helpers.tmpdir(self, 'hyperproto_test_')

  def assert_same_as_reference(self, workdir, results, exact=True):
    check = (np.testing.assert_array_equal if exact else
             lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5))
    jax.tree.map(check, self.ref_params, helpers.final_params(workdir))
    for key in ('test/accuracy', 'test/mae'):
      if exact:
        self.assertEqual(self.ref[key], results[key])
      else:
        self.assertAlmostEqual(self.ref[key], results[key], places=2)

  @pytest.mark.device
  def test_reference_outputs(self):
    workdir, results = self.ref_dir, self.ref
    # Every file docs/training.md lists, and no other (prototypes.png: 3-d prototypes
    # only; this run's are 9-d; TensorBoard's event files and checkpoints/ by pattern).
    documented = helpers.workdir_files()
    files = {f for f in os.listdir(workdir)
             if os.path.isfile(os.path.join(workdir, f)) and not f.startswith('events.')}
    self.assertEqual(files, documented - {'prototypes.png'})
    self.assertTrue(any(f.startswith('events.out.tfevents') for f in os.listdir(workdir)))
    self.assertTrue(os.path.isdir(os.path.join(workdir, 'checkpoints')))
    self.assertFalse(os.path.exists(os.path.join(workdir, 'profile')))  # not asked for
    self.assertEqual(results['step'], 6)
    self.assertEqual(results['test/num_examples'], 359)  # every test example, once
    self.assertBetween(results['test/accuracy'], 0.0, 1.0)
    self.assertBetween(results['test/mae'], 0.0, 120.0)
    lines = read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
    self.assertEqual([l['step'] for l in lines if 'train/loss' in l], [2, 4, 6])
    self.assertTrue(all(np.isfinite(l['train/loss']) for l in lines if 'train/loss' in l))
    self.assertAlmostEqual(lines[0]['protos/max_cos'], -1 / 9, places=5)
    with open(os.path.join(workdir, 'results.json')) as f:
      self.assertEqual(json.load(f)['test/mae'], results['test/mae'])
    # The run's data key is the one Dataset.train_batch reproduces on the host.
    np.testing.assert_array_equal(export.load_checkpoint(workdir)[1]['rng'],
                                  device_input.run_rng(0))

  @pytest.mark.device
  def test_step_scalars_checkpoint_steps_and_a_profile(self):
    # Plain SGD (no momentum, no weight decay) makes the update -lr x the gradient, so
    # update_norm = lr x grad_norm; the cosine schedule over 3 steps gives lr (1 + cos(pi
    # t / 3)) / 2 at step t + 1; param_norm is the norm of the step's saved parameters.
    workdir = self.workdir()
    config = helpers.tiny_config(num_devices=1, num_steps=3, log_every_steps=1,
                                 checkpoint_every_steps=2, max_checkpoints_to_keep=5,
                                 momentum=0.0, weight_decay=0.0, lr=0.01,
                                 profile_steps='2,3')
    train.train_and_evaluate(config, workdir)
    lines = read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
    rows = {l['step']: l for l in lines if 'train/loss' in l}
    self.assertEqual(sorted(rows), [1, 2, 3])
    lr, grad, update, param = (
        np.array([rows[s][f'train/{name}'] for s in (1, 2, 3)])
        for name in ('lr', 'grad_norm', 'update_norm', 'param_norm'))
    np.testing.assert_allclose(lr, [0.01, 0.0075, 0.0025], rtol=1e-5)
    self.assertTrue(np.all(grad > 0))
    np.testing.assert_allclose(update, lr * grad, rtol=1e-5)
    self.assertTrue(np.all(np.abs(np.diff(param)) <= update[1:] * (1 + 1e-5)))
    np.testing.assert_allclose(param[2], np.sqrt(sum(
        np.sum(np.square(p, dtype=np.float64))
        for p in jax.tree.leaves(helpers.final_params(workdir)))), rtol=1e-5)
    # Checkpoints at the due step (2) and the last (3), not at 1.
    self.assertEqual(sorted(os.listdir(os.path.join(workdir, 'checkpoints'))), ['2', '3'])
    # Rates from the second step on (the first, compiled, step is timed apart).
    first = [l['train/first_step_s'] for l in lines if 'train/first_step_s' in l]
    self.assertLen(first, 1)
    self.assertGreater(first[0], 0)
    self.assertNotIn('train/steps_per_s', rows[1])
    for s in (2, 3):
      self.assertGreater(rows[s]['train/steps_per_s'], 0)
      np.testing.assert_allclose(rows[s]['train/examples_per_s'],
                                 16 * rows[s]['train/steps_per_s'], rtol=1e-9)
    # TensorBoard holds the same scalars (as float32).
    scalars = tensorboard_scalars(workdir)
    for name in ('lr', 'grad_norm', 'param_norm', 'update_norm', 'steps_per_s',
                 'examples_per_s'):
      np.testing.assert_allclose(scalars[(3, f'train/{name}')], rows[3][f'train/{name}'],
                                 rtol=1e-6, err_msg=name)
    # profile_steps='2,3': one trace, of this host.
    traces = [os.path.join(root, f) for root, _, files in
              os.walk(os.path.join(workdir, 'profile')) for f in files
              if f.endswith('.xplane.pb')]
    self.assertLen(traces, 1)
    self.assertGreater(os.path.getsize(traces[0]), 0)

  @parameterized.parameters(('classification,dim=3', 'hpn', 'float32'),
                            ('regression', 'hpn', 'float32'),
                            ('joint', 'baseline', 'float32'),
                            ('joint', 'hpn', 'bfloat16'))
  @pytest.mark.device
  def test_other_tasks_end_to_end(self, task, method, dtype):
    workdir = self.workdir()
    results = train.train_and_evaluate(
        helpers.tiny_config(f'task={task},method={method}', num_steps=2,
                            **{'model.dtype': dtype}), workdir)
    # The paper's figure: class prototypes on S^2 when they are 3-d.
    self.assertEqual(os.path.exists(os.path.join(workdir, 'prototypes.png')),
                     task == 'classification,dim=3')
    # Mixed precision computes in bf16; params (and BatchNorm statistics) stay float32.
    self.assertTrue(all(p.dtype == np.float32
                        for p in jax.tree.leaves(helpers.final_params(workdir))))
    self.assertEqual(results['test/num_examples'], 359)
    if task != 'regression':
      self.assertBetween(results['test/accuracy'], 0.0, 1.0)
    if not task.startswith('classification'):
      self.assertBetween(results['test/mae'], 0.0, 120.0)

  @pytest.mark.device
  def test_training_learns(self):
    config = helpers.tiny_config('task=classification', num_steps=100, lr=0.002,
                                 batch_size=32, log_every_steps=25,
                                 checkpoint_every_steps=100, num_devices=1)
    config.model.kwargs.widths = (16, 32)
    workdir = self.workdir()
    results = train.train_and_evaluate(config, workdir)
    losses = [l['train/loss'] for l in read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
              if 'train/loss' in l]
    self.assertLen(losses, 4)
    self.assertLess(losses[-1], 0.5 * losses[0])
    self.assertGreater(results['test/accuracy'], 0.5)  # chance: 0.1

  @pytest.mark.device
  def test_sigterm_then_resume_is_bitwise_the_uninterrupted_run(self):
    workdir = self.workdir()
    with mock.patch.object(parallel, 'map_step', sigterm_in_train_call(3)):
      with self.assertRaises(train.TrainingInterrupted) as cm:
        train.train_and_evaluate(helpers.tiny_config(checkpoint_every_steps=100), workdir)
    self.assertEqual(cm.exception.step, 3)  # saved on the signal, not periodically
    self.assertFalse(os.path.exists(os.path.join(workdir, 'results.json')))
    self.assert_same_as_reference(workdir, train.train_and_evaluate(
        helpers.tiny_config(checkpoint_every_steps=100), workdir))
    # A finished workdir just re-evaluates.
    again = train.train_and_evaluate(helpers.tiny_config(), workdir)
    self.assertEqual(again['test/mae'], self.ref['test/mae'])

  @pytest.mark.device
  def test_a_mixup_run_resumes_bitwise_too(self):
    # Mixup (lambda, the permutation, the partners' crops) is drawn from (rng, step):
    # interrupted after step 3 and resumed, the run is the uninterrupted one, bit for
    # bit; and it is not the run without mixup.
    def config():
      return helpers.tiny_config('task=classification', checkpoint_every_steps=100,
                                 num_steps=4, num_devices=1,
                                 **{'data.mixup_alpha': 1.0, 'data.augment': 'crop_flip'})
    straight, resumed = self.workdir(), self.workdir()
    with mock.patch.object(device_input, 'mix_images',
                           wraps=device_input.mix_images) as mix:
      want = train.train_and_evaluate(config(), straight)
    mix.assert_called()  # the step mixes (traced once)
    with mock.patch.object(parallel, 'map_step', sigterm_in_train_call(3)):
      with self.assertRaises(train.TrainingInterrupted):
        train.train_and_evaluate(config(), resumed)
    got = train.train_and_evaluate(config(), resumed)
    jax.tree.map(np.testing.assert_array_equal, helpers.final_params(straight),
                 helpers.final_params(resumed))
    self.assertEqual(want['test/accuracy'], got['test/accuracy'])

  @pytest.mark.device
  def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(self):
    workdir = self.workdir()
    shutil.copytree(self.ref_dir, workdir, dirs_exist_ok=True)
    os.remove(os.path.join(workdir, 'results.json'))
    newest = os.path.join(workdir, 'checkpoints', '6')
    for root, _, files in os.walk(newest):  # Truncate every file of step 6.
      for name in files:
        open(os.path.join(root, name), 'w').close()
    with self.assertLogs(level='WARNING') as logs:
      results = train.train_and_evaluate(helpers.tiny_config(), workdir)
    self.assertTrue(any('step 6 is unreadable' in line for line in logs.output))
    # Steps 5 and 6 were re-run from the checkpoint of step 4: bitwise the same run.
    self.assert_same_as_reference(workdir, results)

  @parameterized.named_parameters(('one_device', dict(num_devices=1)),
                                  ('pmap', dict(parallel='pmap')))
  @pytest.mark.device
  @helpers.needs_devices(8)
  def test_same_run_on_one_device_and_under_pmap(self, overrides):
    # The loss is a sum over the global batch: the psum of per-device gradients must give
    # the same update on 1 and 8 devices (a missing or doubled reduction would not), and
    # pmap must run the same per-device step as shard_map.
    workdir = self.workdir()
    results = train.train_and_evaluate(helpers.tiny_config(**overrides), workdir)
    self.assertEqual(jax.device_count(), 8)
    self.assert_same_as_reference(workdir, results, exact=False)

  @pytest.mark.device
  @helpers.needs_devices(4)
  def test_streaming_dataset_trains_and_resumes_exactly(self):
    # A tiny CUB archive (5 train, 2 test images of 3 classes) in the real layout: images
    # decoded and augmented on the host (RandomResizedCrop 224), each device fed its share.
    data_dir = self.workdir()
    os.makedirs(os.path.join(data_dir, 'manual'))
    data_streaming_test.write_cub(os.path.join(data_dir, 'manual', 'CUB_200_2011.tgz'))
    prepare.prepare('cub', os.path.join(data_dir, 'manual'), data_dir)

    def config(**overrides):
      c = helpers.tiny_config('task=classification,dim=4', batch_size=4, num_devices=4,
                              num_steps=4, **overrides)
      c.data.name = 'cub'
      c.data.kwargs = ml_collections.ConfigDict({'data_dir': data_dir})
      return c

    straight, resumed = self.workdir(), self.workdir()
    results = train.train_and_evaluate(config(), straight)
    self.assertEqual(results['test/num_examples'], 2)  # the unreadable image is left out
    with self.assertRaises(train.TrainingInterrupted):
      with mock.patch.object(parallel, 'map_step', sigterm_in_train_call(3)):
        train.train_and_evaluate(config(checkpoint_every_steps=100), resumed)
    again = train.train_and_evaluate(config(checkpoint_every_steps=100), resumed)
    jax.tree.map(np.testing.assert_array_equal, helpers.final_params(straight),
                 helpers.final_params(resumed))
    self.assertEqual(results['test/accuracy'], again['test/accuracy'])
    with self.assertRaisesRegex(ValueError, 'augments while decoding'):
      train.train_and_evaluate(config(**{'data.augment': 'crop_flip'}), self.workdir())

  @parameterized.parameters(
      ('hpn', dict(imbalance=0.1, unknown_classes='7,8,9'), ('max_cos',), 'shard_map'),
      ('baseline', dict(train_per_class=20, unknown_classes='0,5,9'),
       ('max_logit', 'msp'), 'pmap'))
  @pytest.mark.device
  def test_long_tail_few_shot_and_open_set_metrics(self, method, kwargs, scores, mapper):
    workdir = self.workdir()
    config = helpers.tiny_config(f'task=classification,method={method}', num_steps=2,
                                 eval_every_steps=1, parallel=mapper)
    config.data.kwargs.update(kwargs)
    results = train.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, 'results.json')) as f:
      self.assertEqual(json.load(f), results)
    unknown = (7, 8, 9) if method == 'hpn' else (0, 5, 9)
    self.assertEqual(results['unknown_classes'], list(unknown))
    known = [c for c in range(10) if c not in unknown]
    self.assertEqual(results['class_names'], [str(c) for c in known])
    # The training split: the profile (or N per class) over the 7 known classes.
    full = data.load('digits', image_size=16)
    n_max = np.bincount(full.splits['train']['label'])[known].min()
    expected = (subsets.long_tail_counts(n_max, 7, 0.1) if method == 'hpn' else [20] * 7)
    self.assertEqual(results['train_class_counts'], list(expected))
    # Accuracy over the known test examples; the unknown ones only enter the AUROC.
    test_labels = full.splits['test']['label']
    self.assertEqual(results['test/num_unknown'], np.isin(test_labels, unknown).sum())
    self.assertEqual(results['test/num_examples'] + results['test/num_unknown'], 359)
    class_acc = np.array(results['test/class_accuracy'])
    self.assertLen(class_acc, 7)
    known_counts = np.bincount(test_labels)[known]
    self.assertAlmostEqual(results['test/accuracy'],
                           np.sum(class_acc * known_counts) / known_counts.sum(), places=6)
    groups = subsets.group_accuracies(class_acc, np.array(expected))
    for name, value in groups.items():
      self.assertAlmostEqual(results[f'test/{name}'], value, places=12)
    self.assertEqual(set(groups), {'many_shot_accuracy', 'medium_shot_accuracy',
                                   'few_shot_accuracy'} if method == 'hpn'
                     else {'medium_shot_accuracy'})
    # The open-set metrics: recomputed here from the final checkpoint on the whole test
    # split at once (the run evaluated in padded batches of 16 over all devices, whose
    # scores were gathered in order).
    dataset = subsets.apply(full, 'train', **kwargs)
    objective = train.make_objective(config, dataset.info)
    model = models.build(config.model.name, output_dim=objective.output_dim,
                         axis_name=parallel.AXIS, **config.model.kwargs)
    state = export.load_checkpoint(workdir)[1]
    test = dataset.splits['test']
    z = model.apply({'params': state['params'], 'batch_stats': state['batch_stats']},
                    train.normalize_images(test['image'], dataset.info.mean,
                                           dataset.info.std), train=False)
    protos = ({'classes': np.load(os.path.join(workdir, 'prototypes.npy'))}
              if method == 'hpn' else {})
    host = objective.open_set_scores(z, protos)
    self.assertEqual(set(host), set(scores))
    for name in scores:
      self.assertAlmostEqual(results[f'test/{name}_auroc'],
                             subsets.auroc(np.asarray(host[name]), test['known']),
                             delta=2e-3)  # a few near-ties may flip
      self.assertBetween(results[f'test/{name}_fpr95'], 0.0, 1.0)
    # Every evaluation logs the scalars (not the per-class list).
    lines = [l for l in read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
             if f'test/{scores[0]}_auroc' in l]
    self.assertEqual([l['step'] for l in lines], [1, 2])
    self.assertFalse(any('test/class_accuracy' in l for l in lines))

  def test_open_set_needs_classes_and_a_separate_eval_split(self):
    config = helpers.tiny_config('task=classification', num_steps=1,
                                 **{'data.eval_split': 'train'})
    config.data.kwargs.unknown_classes = '8,9'
    with self.assertRaisesRegex(ValueError, 'needs an evaluation split other than'):
      train.train_and_evaluate(config, self.workdir())
    config = helpers.tiny_config('task=regression', num_steps=1)
    config.data.kwargs.unknown_classes = '8,9'
    with self.assertRaisesRegex(ValueError, "task='regression' predicts none"):
      train.train_and_evaluate(config, self.workdir())

  def test_backbone_initialised_from_a_vit_npz(self):
    vit = dict(width=32, depth=1, mlp_dim=64, num_heads=2)
    backbone = models.BACKBONES['vit_ti4'](**vit)
    source = backbone.init(jax.random.PRNGKey(123), np.zeros((1, 16, 16, 1)),
                           train=False)['params']
    flat = {'/'.join(k.key for k in path): np.asarray(v)
            for path, v in jax.tree_util.tree_leaves_with_path(source)}
    path = os.path.join(self.workdir(), 'vit.npz')
    np.savez(path, **flat)
    workdir = self.workdir()
    config = helpers.tiny_config(lr=0.0, num_steps=1, **{'model.name': 'vit_ti4',
                                                         'model.init_npz': path})
    config.model.kwargs = ml_collections.ConfigDict(vit)
    train.train_and_evaluate(config, workdir)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(source),
                 helpers.final_params(workdir)['backbone'])

  @pytest.mark.device
  @helpers.needs_devices(8)
  def test_mean_reduction_is_device_invariant_too(self):
    one, eight = self.workdir(), self.workdir()
    kw = dict(loss_reduction='mean', lr=0.5, num_steps=3)
    train.train_and_evaluate(helpers.tiny_config(num_devices=1, **kw), one)
    train.train_and_evaluate(helpers.tiny_config(num_devices=8, **kw), eight)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5),
                 helpers.final_params(one), helpers.final_params(eight))

  @pytest.mark.device
  def test_nan_loss_stops_with_the_step_and_keeps_a_good_checkpoint(self):
    workdir = self.workdir()
    config = helpers.tiny_config('task=classification,method=baseline', lr=1e30,
                                 num_steps=20, log_every_steps=1, checkpoint_every_steps=1)
    with self.assertRaisesRegex(FloatingPointError,
                                r'became nan at step (\d+)\. The last good checkpoint') as cm:
      train.train_and_evaluate(config, workdir)
    step = int(re.search(r'at step (\d+)', str(cm.exception)).group(1))
    good, state = export.load_checkpoint(workdir)  # raises if there is none
    self.assertLess(good, step)
    self.assertTrue(all(np.all(np.isfinite(p)) for p in jax.tree.leaves(state['params'])))

  def test_export_npz(self):
    path = export.export(self.ref_dir, os.path.join(self.workdir(), 'run.npz'))
    with np.load(path) as f:
      self.assertEqual(int(f['step']), 6)
      np.testing.assert_array_equal(
          f['params/head/kernel'], self.ref_params['head']['kernel'])
      np.testing.assert_array_equal(
          f['prototypes'], np.load(os.path.join(self.ref_dir, 'prototypes.npy')))
      self.assertIn('batch_stats/backbone/bn0_0/mean', f.files)
      self.assertEqual(json.loads(str(f['config']))['batch_size'], 16)
      flat = {k[len('params/'):]: f[k] for k in f.files if k.startswith('params/')}
    self.assertLen(flat, len(jax.tree.leaves(self.ref_params)))

  def test_mixup_needs_class_labels_and_a_positive_alpha(self):
    with self.assertRaisesRegex(ValueError, "mixes class labels; task='joint'"):
      train.train_and_evaluate(helpers.tiny_config(**{'data.mixup_alpha': 1.0}),
                               self.workdir())
    with self.assertRaisesRegex(ValueError, r'needs alpha > 0 \(0: no mixup\)'):
      train.train_and_evaluate(helpers.tiny_config(
          'task=classification', **{'data.mixup_alpha': -1.0}), self.workdir())
    with self.assertRaisesRegex(ValueError, "smooths the softmax baseline's"):
      train.train_and_evaluate(helpers.tiny_config(
          'task=classification', label_smoothing=0.1), self.workdir())

  def test_bad_profile_steps(self):
    for spec in ('10', '0,5', '20,10', 'a,b'):
      with self.assertRaisesRegex(ValueError, "profile_steps=.*'FIRST,LAST'"):
        train.train_and_evaluate(helpers.tiny_config(profile_steps=spec), self.workdir())

  def test_unknown_task(self):
    with self.assertRaisesRegex(ValueError, "Unknown task 'segmentation'"):
      train.train_and_evaluate(helpers.tiny_config(task='segmentation'), self.workdir())

  def test_wrong_number_of_prototypes_in_workdir(self):
    workdir = self.workdir()
    prototypes.save(os.path.join(workdir, 'prototypes.npy'),
                    prototypes.place('simplex', 8, 9))
    with self.assertRaisesRegex(ValueError, r'Got 8 prototypes .* for 10 classes'):
      train.train_and_evaluate(helpers.tiny_config(), workdir)

  def test_prototype_dim_mismatch_in_workdir(self):
    workdir = self.workdir()
    prototypes.save(os.path.join(workdir, 'prototypes.npy'),
                    prototypes.place('simplex', 10, 12))
    with self.assertRaisesRegex(ValueError, 'Prototype dimension 12 does not match'):
      train.train_and_evaluate(helpers.tiny_config(), workdir)

  def test_unwritable_workdir(self):
    blocker = os.path.join(self.workdir(), 'a_file')
    with open(blocker, 'w') as f:
      f.write('x')
    with self.assertRaisesRegex(PermissionError, 'Cannot write to the workdir'):
      train.train_and_evaluate(helpers.tiny_config(), os.path.join(blocker, 'run'))

  def test_batch_not_divisible_by_devices(self):
    with self.assertRaisesRegex(ValueError, 'batch_size=12 is not divisible by the 8'):
      train.train_and_evaluate(helpers.tiny_config(batch_size=12), self.workdir())


if __name__ == '__main__':
  absltest.main()
