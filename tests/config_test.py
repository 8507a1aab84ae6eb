"""Configs: every declared argument builds; parse_arg converts and rejects clearly."""

import importlib
import itertools
import os
import sys

from absl.testing import absltest
from absl.testing import parameterized
from ml_collections import config_flags

import helpers  # pylint: disable=unused-import  (puts the repo root on sys.path)
from configs import digits
from hyperproto import config_lib
from hyperproto import data as data_lib
from hyperproto import methods as methods_lib
from hyperproto import train


class ParseArgTest(parameterized.TestCase):

  def test_types_and_defaults(self):
    arg = config_lib.parse_arg('dim=3,task=regression,runlocal,lr=0.5', dim=10,
                               task='joint', runlocal=False, lr=0.1)
    self.assertEqual((arg.dim, arg.task, arg.runlocal, arg.lr), (3, 'regression', True,
                                                                 0.5))
    self.assertEqual(config_lib.parse_arg(None, dim=10).dim, 10)
    self.assertEqual(config_lib.parse_arg('runlocal=false', runlocal=True).runlocal,
                     False)

  @parameterized.parameters(('dimm=3', 'Unknown config argument'),
                            ('dim=three', 'is not a int'),
                            ('dim', 'needs a value'),
                            ('runlocal=maybe', 'is not a bool'))
  def test_errors(self, arg, message):
    with self.assertRaisesRegex(ValueError, message):
      config_lib.parse_arg(arg, dim=10, runlocal=False)


class DigitsConfigTest(parameterized.TestCase):

  @parameterized.parameters(itertools.product(
      ('joint', 'classification', 'regression'), ('hpn', 'baseline'), (2, 10, 32),
      (False, True)))
  def test_every_argument_builds(self, task, method, dim, runlocal):
    config = digits.get_config(f'task={task},method={method},dim={dim}'
                               + (',runlocal' if runlocal else ''))
    self.assertEqual((config.task, config.method, config.dim), (task, method, dim))
    if runlocal:
      self.assertEqual(config.num_steps, 20)

  def test_defaults_are_the_demo(self):
    config = digits.get_config()
    self.assertEqual((config.task, config.method, config.dim), ('joint', 'hpn', 10))
    self.assertEqual(config.data.kwargs.max_angle, 60.0)
    self.assertIsNone(config.num_steps)

  def test_schema_is_locked(self):
    config = digits.get_config()
    config.lock()
    with self.assertRaisesRegex(AttributeError, 'Did you mean'):
      config.lrr = 0.1
    config.num_steps = 5  # A placeholder field can be set.
    self.assertEqual(config.num_steps, 5)

  def test_loads_through_config_flags(self):
    # `--config.x=` overrides are exercised through the real CLI in main_test.
    from absl import flags  # pylint: disable=g-import-not-at-top
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file('config', None, '', flag_values=fv, lock_config=True)
    fv(['prog', f'--config={digits.__file__}:task=regression,dim=3'])
    self.assertEqual((fv.config.task, fv.config.dim), ('regression', 3))


class UnknownFieldTest(parameterized.TestCase):

  @parameterized.parameters(
      ('batchsize', "config has no field 'batchsize'; did you mean batch_size"),
      ('lerning_rate', 'did you mean lr?'),  # through the alias learning_rate
      ('wd', 'did you mean weight_decay?'),
      ('model.nme', "config.model has no field 'nme'; did you mean name"),
      ('lr.x', 'config.lr is a float, not a section'))
  def test_names_the_field_and_the_nearest(self, path, message):
    self.assertIn(message, config_lib.unknown_field(digits.get_config(), path))

  @parameterized.parameters('batch_size', 'model.kwargs.widths', 'data.kwargs.imbalance')
  def test_existing_fields_pass(self, path):
    self.assertIsNone(config_lib.unknown_field(digits.get_config(), path))

  def test_override_error_loads_the_config_with_its_argument(self):
    argv = ['prog', f'--config={digits.__file__}:task=regression', '--config.lr=0.1',
            '--config.model.widths=(8,)']
    self.assertEqual(config_lib.override_error(argv),
                     "--config.model.widths=(8,): config.model has no field 'widths'; "
                     'did you mean config.model.kwargs.widths? (every field with its '
                     'default: base_config in hyperproto/config_lib.py)')
    self.assertIsNone(config_lib.override_error(argv[:3]))
    self.assertIsNone(config_lib.override_error(['prog', '--config.lr=1']))

  def test_a_renamed_field_names_its_new_name(self):
    argv = ['prog', f'--config={digits.__file__}', '--config.prototypes.method=hpn']
    self.assertEqual(
        config_lib.override_error(argv),
        '--config.prototypes.method=hpn: config.prototypes.method was renamed '
        'config.prototypes.placement (the prototypes\' construction, a placement of '
        'hyperproto.prototypes; config.method is the training method): write '
        'config.prototypes.placement.')


class MethodHparamsTest(parameterized.TestCase):

  @parameterized.parameters(
      ('task=classification,method=softmax', 0.1, (('label_smoothing', 0.1),)),
      ('task=classification,method=baseline', 0.0, (('label_smoothing', 0.0),)),
      ('task=joint,method=hpn', 0.0, ()),
      ('task=classification,method=ebv', 0.0,
       (('label_smoothing', 0.1), ('temperature', 0.07))))
  def test_each_method_gets_its_own(self, arg, label_smoothing, want):
    config = digits.get_config(arg)
    config.label_smoothing = label_smoothing
    self.assertEqual(config_lib.method_hparams(config), want)

  @parameterized.parameters('task=joint,method=multitask', 'task=classification,method=ebv')
  def test_label_smoothing_is_the_softmax_baselines(self, arg):
    config = digits.get_config(arg)
    config.label_smoothing = 0.1
    with self.assertRaisesRegex(ValueError, "smooths the softmax baseline's"):
      config_lib.method_hparams(config)


PAPER_CONFIGS = {  # config: (batch, lr, backbone, data, augmentation in the step)
    'cifar100': (128, 0.01, 'resnet32', 'cifar100', 'crop_flip'),
    'imagenet200': (128, 0.01, 'resnet32_64', 'imagenet200', 'crop_flip'),
    'cub': (64, 0.01, 'resnet34', 'cub', 'none'),  # augmented while decoding
    'omniart': (64, 0.001, 'resnet34', 'omniart', 'none'),
}
SWEEPS = {'cifar100': ('table1', 'table2', 'table3', 'family', 'dl2pa', 'paper_lt'),
          'imagenet200': ('table3',), 'cub': ('table3',), 'omniart': ('table4', 'table5'),
          'mnist': ('compare',), 'digits': ('compare',),
          'cifar10': ('placement', 'low_dim', 'family', 'family_d3', 'fewshot', 'lt',
                      'paper_lt', 'paper_full')}
# Classification configs: every method of the family must build from each.
CLASSIFICATION = {'cifar10': 10, 'cifar100': 100, 'cub': 200, 'imagenet200': 200}


def load(name):
  return importlib.import_module(f'configs.{name}')


class PaperConfigTest(parameterized.TestCase):

  @parameterized.parameters(*PAPER_CONFIGS)
  def test_the_original_recipe(self, name):
    batch, lr, backbone, data, augment = PAPER_CONFIGS[name]
    config = load(name).get_config()
    self.assertEqual((config.batch_size, config.lr, config.model.name, config.data.name,
                      config.data.augment), (batch, lr, backbone, data, augment))
    # HPN.md section 2: SGD 0.9, coupled L2 1e-4 on every parameter, x0.1 at 100 and
    # 200, 250 epochs, test every 10 epochs, loss summed over the batch.
    self.assertEqual((config.momentum, config.weight_decay, config.schedule),
                     (0.9, 1e-4, 'step'))
    self.assertEqual((tuple(config.decay_epochs), config.decay_factor, config.num_epochs),
                     ((100.0, 200.0), 0.1, 250.0))
    self.assertEqual((config.eval_every_epochs, config.loss_reduction), (10.0, 'sum'))
    self.assertEqual(config.prototypes.placement, 'hpn')  # the paper's placement
    self.assertEqual(config.prototypes.seed, 300)

  def test_omniart_layout(self):
    joint = load('omniart').get_config('task=joint')
    self.assertEqual((joint.task, joint.dim, joint.joint_weight), ('joint', 47, 0.5))
    regression = load('omniart').get_config('task=regression,dim=3,lr=0.01')
    self.assertEqual((regression.task, regression.dim, regression.lr),
                     ('regression', 3, 0.01))
    with self.assertRaisesRegex(ValueError, 'task=regression or task=joint'):
      load('omniart').get_config('task=classification')

  @parameterized.parameters(*[(name, sweep) for name, sweeps in SWEEPS.items()
                              for sweep in sweeps])
  def test_every_sweep_cell_builds(self, name, sweep):
    module = load(name)
    cells = module.get_sweep(sweep)
    self.assertNotEmpty(cells)
    self.assertLen(set(cells), len(cells))
    for cell in cells:
      config = module.get_config(cell)
      for item in cell.split(','):
        key, value = item.split('=')
        if key == 'dim' and config.method == 'hpn':
          self.assertEqual(config.dim, int(value))
        if key == 'method':
          self.assertEqual(config.method, value)  # as written: softmax stays softmax
        if key == 'train_per_class':
          self.assertEqual(config.data.kwargs.train_per_class, int(value))
        if key == 'imbalance':
          self.assertEqual(config.data.kwargs.imbalance, float(value))
      small = module.get_config(cell + ',runlocal')
      self.assertLessEqual(small.num_steps, 20)

  def test_every_paper_number_has_a_sweep_cell(self):
    sys.path.insert(0, os.path.join(helpers.ROOT, 'experiments'))
    import paper_numbers  # pylint: disable=g-import-not-at-top
    import tables  # pylint: disable=g-import-not-at-top
    for name, spec in paper_numbers.TABLES.items():
      for _, cells, *_ in spec['rows']:
        for column, (arg, _, _) in cells.items():
          config = tables.column_config(spec, column)
          declared = [c for sweep in SWEEPS[config] for c in load(config).get_sweep(sweep)]
          self.assertIn(arg, declared, f'{name}: {config}:{arg} is in no sweep')

  @parameterized.parameters(*[(name, method) for name in CLASSIFICATION
                              for method in config_lib.FAMILY])
  def test_every_method_builds_from_every_classification_config(self, name, method):
    num_classes = CLASSIFICATION[name]
    dim = 3 if method in config_lib.LOW_DIM_METHODS else num_classes - 1
    config = load(name).get_config(f'method={method},dim={dim}')
    self.assertEqual(config.method, method)  # As written: softmax stays softmax.
    objective = train.make_objective(config, data_lib.DatasetInfo(
        name=name, num_classes=num_classes, class_names=(), image_shape=(32, 32, 3),
        mean=(0.0,), std=(1.0,)))
    self.assertEqual(objective.output_dim, num_classes if method == 'softmax' else dim)
    if method == 'softmax':
      return
    if method != 'hpn':  # The method's own prototypes and recipe.
      self.assertEqual(config.prototypes.placement, methods_lib.METHODS[method].placement)
      for key, value in config_lib.RECIPES.get(method, {}).items():
        self.assertEqual(config[key], value, key)
    # An explicit placement wins over the method's own.
    config = load(name).get_config(f'method={method},dim={dim},prototypes=ours')
    self.assertEqual(config.prototypes.placement, 'auto')

  @parameterized.parameters(*CLASSIFICATION)
  def test_the_method_chooses_dim_where_the_config_leaves_it_open(self, name):
    num_classes = CLASSIFICATION[name]
    info = data_lib.DatasetInfo(name=name, num_classes=num_classes, class_names=(),
                                image_shape=(32, 32, 3), mean=(0.0,), std=(1.0,))
    for method in config_lib.FAMILY:
      config = load(name).get_config(f'method={method}')
      expected = {'maxsep': num_classes - 1}.get(method, num_classes if name != 'cifar10'
                                                  else 10)
      self.assertEqual(config.dim, expected, method)
      train.make_objective(config, info)  # Every default passes the method's check.
    # An explicit dim is kept, and one the method cannot use is its clear error.
    config = load(name).get_config(f'method=maxsep,dim={num_classes}')
    with self.assertRaisesRegex(ValueError, f'set dim={num_classes - 1}'):
      train.make_objective(config, info)

  @parameterized.parameters(('cifar100', 'method=mse', 'regression baseline'),
                            ('cifar100', 'prototypes=best', 'Unknown prototypes'),
                            ('cifar100', 'method=svm', 'Unknown method'))
  def test_bad_cells(self, name, arg, message):
    with self.assertRaisesRegex(ValueError, message):
      load(name).get_config(arg)


# Each reference script's parameters, read from its files (config_lib.PAPER_RECIPES
# names them): (lr, momentum, weight decay, batch, epochs, warm-up epochs, decay epochs
# (x0.1 each), mixup alpha, loss reduction, optimiser).
REFERENCE = {
    # ImbalancedLearning config/cifar10/Res_cifar10_imb001{,_ETF_DR}.yaml + train.py.
    'method=softmax,recipe=etf,imbalance=0.01': (
        0.1, 0.9, 2e-4, 128, 200, 5, (160, 180), 1.0, 'mean', 'sgd'),
    'method=etf,recipe=etf,imbalance=0.01': (
        0.1, 0.9, 2e-4, 128, 200, 5, (160, 180), 1.0, 'mean', 'sgd'),
    # DL2PA_CVPR24 configs/LT/cifar10LT_001_fixed_classifier.yaml (drop1 5, drop2 160,
    # drop3 180, alpha 1.0) + train.py's LT branch (mixup_data, LTloss: a mean).
    'method=dl2pa,recipe=dl2pa_lt,imbalance=0.01': (
        0.1, 0.9, 2e-4, 128, 200, 5, (160, 180), 1.0, 'mean', 'sgd'),
    # psmmettes/hpn hpn_cifar.py's defaults; DL2PA's configs/balance/cifar100_d25_*.yaml.
    'method=hpn,recipe=hpn': (0.01, 0.9, 1e-4, 128, 250, 0, (100, 200), 0.0, 'sum', 'sgd'),
    'method=dl2pa,recipe=paper': (
        0.01, 0.9, 1e-4, 128, 250, 0, (100, 200), 0.0, 'sum', 'sgd'),
    # Hyperbolic-Busemann-Learning README.md's HBL.py command.
    'method=busemann,recipe=paper': (
        5e-4, 0.9, 5e-5, 128, 1110, 0, (1000, 1100), 0.0, 'mean', 'adam'),
}


class PaperRecipeTest(parameterized.TestCase):

  @parameterized.parameters(*REFERENCE)
  def test_each_recipe_passes_the_reference_parameters(self, arg):
    lr, momentum, wd, batch, epochs, warmup, drops, alpha, reduction, optimizer = (
        REFERENCE[arg])
    c = load('cifar10').get_config(arg)
    self.assertEqual((c.lr, c.weight_decay, c.batch_size, c.num_epochs, c.warmup_epochs),
                     (lr, wd, batch, epochs, warmup))
    self.assertEqual((c.schedule, c.schedule_unit, tuple(c.decay_epochs), c.decay_factor),
                     ('step', 'epoch', drops, 0.1))
    self.assertEqual((c.data.mixup_alpha, c.loss_reduction, c.optimizer, c.label_smoothing),
                     (alpha, reduction, optimizer, 0.0))
    if optimizer == 'sgd':
      self.assertEqual(c.momentum, momentum)
    self.assertEqual(c.data.augment, 'crop_flip')  # RandomCrop(32, 4) + flip, all of them

  def test_the_references_dimensions_and_method_settings(self):
    cifar10, cifar100 = load('cifar10'), load('cifar100')
    # ETF's classifier takes the 64-d features (128 for CIFAR-100's wider ResNet-32);
    # DL2PA's LT configs: space_dim 64 / 128; an explicit dim stays.
    self.assertEqual(cifar10.get_config('method=etf,recipe=etf').dim, 64)
    self.assertEqual(cifar10.get_config('method=etf,recipe=etf,dim=9').dim, 9)
    self.assertEqual(cifar10.get_config('method=dl2pa,recipe=paper,imbalance=0.01').dim, 64)
    c100 = cifar100.get_config('method=dl2pa,recipe=dl2pa_lt,imbalance=0.01')
    self.assertEqual((c100.dim, c100.model.kwargs.multiplier), (128, 2))
    self.assertEqual(c100.method_kwargs.dl2pa.loss, 'dr')  # LTloss
    self.assertEqual(cifar10.get_config('method=dl2pa,recipe=paper').method_kwargs.dl2pa
                     .loss, 'cosine')  # BLoss, balanced data
    maxsep = cifar10.get_config('method=maxsep,recipe=paper')
    self.assertEqual((maxsep.lr, maxsep.weight_decay, maxsep.batch_size, maxsep.num_epochs,
                      maxsep.schedule, maxsep.schedule_unit,
                      maxsep.method_kwargs.maxsep.radius), (0.1, 5e-4, 512, 200, 'cosine',
                                                            'epoch', 0.1))
    # Explicit arguments win over the recipe.
    c = cifar10.get_config('method=etf,recipe=etf,epochs=3,batch=64,lr=0.05,steps=7')
    self.assertEqual((c.num_epochs, c.batch_size, c.lr, c.num_steps), (3, 64, 0.05, 7))

  @parameterized.parameters(('method=ebv,recipe=paper', 'ImageNet only'),
                            ('method=softmax,recipe=paper', 'name the paper'),
                            ('method=etf,recipe=cutmix', "Unknown recipe 'cutmix'"))
  def test_recipe_errors_name_the_fix(self, arg, message):
    with self.assertRaisesRegex(ValueError, message):
      load('cifar10').get_config(arg)

  def test_the_shared_recipe_is_unchanged(self):
    for method, lr, reduction in (('hpn', 0.01, 'sum'), ('etf', 0.1, 'mean'),
                                  ('softmax', 0.01, 'sum')):
      c = load('cifar10').get_config(f'method={method}')
      self.assertEqual(
          (c.lr, c.loss_reduction, c.batch_size, c.num_epochs, c.schedule,
           c.schedule_unit, c.warmup_epochs, c.weight_decay, c.data.mixup_alpha,
           c.label_smoothing),
          (lr, reduction, 128, 2.0, 'cosine', 'step', 0.1, 5e-4, 0.0, 0.0), method)
    c = load('cifar100').get_config('prototypes=hpn,dim=10')
    self.assertEqual((c.data.mixup_alpha, c.label_smoothing, c.schedule_unit),
                     (0.0, 0.0, 'step'))


if __name__ == '__main__':
  absltest.main()
