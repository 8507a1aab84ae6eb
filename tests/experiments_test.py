"""Sweep expansion (launch.py), the tables next to the paper's numbers (tables.py), the
parts of the PyTorch parity check (parity_torch.py) that run without PyTorch, and the
mutation list of mutation_check.py against the code."""

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from absl.testing import absltest
from PIL import Image

import helpers
from hyperproto.data import prepare

sys.path.insert(0, os.path.join(helpers.ROOT, 'experiments'))
import checkpoint_time  # pylint: disable=g-import-not-at-top,wrong-import-position
import family_table  # pylint: disable=g-import-not-at-top,wrong-import-position
import gpu_check  # pylint: disable=g-import-not-at-top,wrong-import-position
import launch  # pylint: disable=g-import-not-at-top,wrong-import-position
import mutation_check  # pylint: disable=g-import-not-at-top,wrong-import-position
import parity_torch  # pylint: disable=g-import-not-at-top,wrong-import-position
import run_list  # pylint: disable=g-import-not-at-top,wrong-import-position
import tables  # pylint: disable=g-import-not-at-top,wrong-import-position


def paper_numbers_title(name):
  return tables.paper_numbers.TABLES[name]['title']


class ExperimentsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = tempfile.mkdtemp(prefix='hyperproto_sweep_')
    self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
    self.config = os.path.join(helpers.ROOT, 'configs', 'cifar100.py')

  def test_expand_is_deterministic_per_cell_and_seed(self):
    runs = launch.expand(self.config, 'table1', ['0', '1'], self.root,
                         ['--config.num_epochs=1'])
    self.assertLen(runs, 13 * 2)
    self.assertLen({r[0] for r in runs}, 26)  # one workdir per (cell, seed)
    run_dir, info, args = runs[3]
    self.assertEqual(run_dir, os.path.join(self.root, 'cifar100',
                                           'prototypes-embedding_dim-10', 'seed1'))
    self.assertEqual((info['arg'], info['seed']), ('prototypes=embedding,dim=10', 1))
    self.assertEqual(args, [f'--config={self.config}:prototypes=embedding,dim=10',
                            f'--workdir={run_dir}', '--config.seed=1',
                            '--config.num_epochs=1'])
    self.assertEqual(runs, launch.expand(self.config, 'table1', ['0', '1'], self.root,
                                         ['--config.num_epochs=1']))

  def test_unknown_sweep(self):
    with self.assertRaisesRegex(ValueError, "Unknown sweep 'table9'"):
      launch.expand(self.config, 'table9', ['0'], self.root)

  def test_slurm_array_script(self):
    def launch_slurm():
      out = subprocess.run(
          [sys.executable, os.path.join(helpers.ROOT, 'experiments', 'launch.py'),
           f'--config={self.config}', '--sweep=table3', '--seeds=0,1,2',
           f'--workdir={self.root}', '--slurm', '--sbatch=--partition=gpu'],
          capture_output=True, text=True, cwd=helpers.ROOT, timeout=120,
          env=dict(os.environ, PYTHONPATH=helpers.ROOT))
      self.assertEqual(out.returncode, 0, out.stderr[-2000:])
      return out.stdout

    out = launch_slurm()
    self.assertIn('0 of 9 runs finished', out)
    (script_path,) = glob.glob(os.path.join(self.root, 'cifar100', 'table3-*.sbatch'))
    with open(script_path) as f:
      script = f.read()
    self.assertIn('#SBATCH --array=0-8', script)
    self.assertIn('#SBATCH --partition=gpu', script)
    self.assertIn(f'#SBATCH --output={self.root}/cifar100/slurm/%x-%A_%a.out', script)
    self.assertTrue(os.path.isdir(os.path.join(self.root, 'cifar100', 'slurm')))
    with open(script_path[:-len('.sbatch')] + '.args') as f:
      lines = f.read().splitlines()
    self.assertLen(lines, 9)
    self.assertIn(':method=softmax --workdir=', lines[0])
    self.assertTrue(os.path.exists(os.path.join(
        self.root, 'cifar100', 'method-softmax', 'seed2', 'launch.json')))
    check = subprocess.run(['bash', '-n', script_path], capture_output=True, text=True)
    self.assertEqual(check.returncode, 0, check.stderr)
    # A finished run is left out of the next array, whose files do not overwrite these
    # (tasks of the first array may still be queued, or requeued, and read their line).
    with open(os.path.join(lines[0].split('--workdir=')[1].split()[0], 'results.json'),
              'w') as f:
      f.write('{}')
    self.assertIn('1 of 9 runs finished', launch_slurm())
    scripts = glob.glob(os.path.join(self.root, 'cifar100', 'table3-*.sbatch'))
    self.assertLen(scripts, 2)
    with open(next(p for p in scripts if p != script_path)) as f:
      self.assertIn('#SBATCH --array=0-7', f.read())

  def test_tables_put_our_mean_and_std_next_to_the_paper(self):
    def fake_run(arg, seed, **results):
      run_dir = os.path.join(self.root, 'cifar100', launch.slug(arg), f'seed{seed}')
      launch.write_launch_json(run_dir, dict(config='cifar100', arg=arg, seed=seed))
      with open(os.path.join(run_dir, 'results.json'), 'w') as f:
        json.dump(results, f)

    fake_run('prototypes=hpn,dim=10', 0, **{'test/accuracy': 0.50})
    fake_run('prototypes=hpn,dim=10', 1, **{'test/accuracy': 0.52})
    fake_run('dim=100,prototypes=ours', 0, **{'test/accuracy': 0.66})  # any key order
    os.makedirs(os.path.join(self.root, 'unfinished'))  # no launch.json: ignored
    launch.write_launch_json(os.path.join(self.root, 'cifar100', 'queued', 'seed0'),
                             dict(config='cifar100', arg='dim=7', seed=0))
    fake_run('prototypes=ours,dim=7', 0, **{'test/accuracy': 0.3})  # in no table
    text = tables.render(self.root, ['table1'])
    row = next(l for l in text.splitlines() if l.startswith('| HPN (original'))
    self.assertIn('| 51.0 ± 1.4 (2) | 51.1 ± 0.7 |', row)
    row = next(l for l in text.splitlines() if l.startswith('| HPN (our'))
    self.assertIn('66.0 ± 0.0 (1)', row)
    self.assertIn('| cifar100 | dim=7,prototypes=ours | 30.0 ± 0.0 (1) | – |', text)
    self.assertIn(f'### Unfinished runs (1: no results.json yet)\n\n'
                  f'- {self.root}/cifar100/queued/seed0\n', text)

  def test_checkpoint_time_measures_a_save(self):
    (row,) = checkpoint_time.measure('cnn', self.root, repeats=1, image_size=16,
                                     model_kwargs=dict(widths=(8, 16)))
    self.assertEqual(row['model'], 'cnn')
    # params + momentum (float32) + the step, BatchNorm statistics and the RNG key
    self.assertGreater(row['state_bytes'], 2 * 4 * row['params'])
    self.assertGreater(row['save_seconds'], 0)
    self.assertEqual(os.listdir(self.root), [])  # the checkpoint was removed

  def test_tables_print_the_published_number_and_its_source_beside_ours(self):
    def fake_run(config, arg, accuracy):
      run_dir = os.path.join(self.root, config, launch.slug(arg), 'seed0')
      launch.write_launch_json(run_dir, dict(config=config, arg=arg, seed=0))
      with open(os.path.join(run_dir, 'results.json'), 'w') as f:
        json.dump({'test/accuracy': accuracy}, f)

    fake_run('cifar10', 'method=etf,recipe=etf,backbone=resnet32,imbalance=0.01', 0.75)
    fake_run('cifar100', 'method=dl2pa,dim=10', 0.5)
    text = tables.render(self.root, ['lt', 'dims'])
    row = next(l for l in text.splitlines() if l.startswith('| ETF + DR'))
    # CIFAR-10-LT 0.005 (none of ours) | 0.01: ours 75.0, published 76.5 (no std).
    self.assertIn('| – | 71.9 | 75.0 ± 0.0 (1) | 76.5 |', row)
    self.assertIn('- ETF + DR (d = 64 / 128): Saadabadi et al., CVPR 2024 (DL2PA)', text)
    row = next(l for l in text.splitlines() if l.startswith('| DL2PA |'))
    self.assertIn('| 50.0 ± 0.0 (1) | 57.21 |', row)
    self.assertIn('- HPN (original placement): Mettes et al., NeurIPS 2019, Table 1.',
                  text)
    self.assertNotIn('### Other runs', text)  # both runs are cells of these tables
    self.assertEqual(tables.published_value(
        'cifar10', 'imbalance=0.02,backbone=resnet32,method=dl2pa,recipe=dl2pa_lt'),
        [(paper_numbers_title('lt'), '81.4', tables.paper_numbers.TABLES['lt']['rows'][2][2])])
    # family_table: the published CIFAR-10-LT 0.01 number beside the method's row.
    fake_run('lt', 'method=etf,dim=10,imbalance=0.01', 0.3)
    fake_run('lt', 'method=ebv,dim=10,imbalance=0.01', 0.2)
    report = family_table.report(os.path.join(self.root, 'lt', '..'))
    etf = next(l for l in report.splitlines() if l.startswith('| etf'))
    ebv = next(l for l in report.splitlines() if l.startswith('| ebv'))
    self.assertTrue(etf.endswith('| 76.5 [1] |'), etf)
    self.assertTrue(ebv.endswith('| – |'), ebv)
    self.assertIn('[1] Saadabadi et al., CVPR 2024 (DL2PA)', report)

  def test_run_list_finishes_a_cell_records_it_and_continues_with_the_next(self):
    # A tiny CIFAR-10 JPEG tree (100 training images per class, so that imbalance 0.01
    # keeps one of the rarest class), prepared here; each call trains one tiny cell
    # (a 4/8-wide CNN, 3 steps of batch 16). About 40 s on 2 idle cores.
    jpeg, data_dir = os.path.join(self.root, 'jpeg'), os.path.join(self.root, 'data')
    rng = np.random.default_rng(0)
    for split, n in (('train', 100), ('test', 2)):
      for c in range(10):
        folder = os.path.join(jpeg, split, f'class{c}')
        os.makedirs(folder)
        for k in range(n):
          Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
              os.path.join(folder, f'{k:04d}.jpg'))
    prepare.prepare('cifar10_jpeg', jpeg, data_dir)
    state = os.path.join(self.root, 'state')
    env = dict(os.environ, JAX_PLATFORMS='cpu',
               XLA_FLAGS='--xla_force_host_platform_device_count=1')
    cells = run_list.cells()

    def call():
      proc = subprocess.run(
          [sys.executable, os.path.join(helpers.ROOT, 'experiments', 'run_list.py'),
           '--allow_cpu', '--tiny', '--max_cells=1', '--budget_s=600', f'--state={state}',
           f'--data_dir={data_dir}'], capture_output=True, text=True, timeout=600, env=env)
      self.assertEqual(proc.returncode, 0, proc.stdout[-3000:] + proc.stderr[-3000:])
      return proc.stdout

    call()
    first = run_list.read_json(run_list.record_path(state, cells[0]))
    self.assertEqual(first['cell'], 'method=softmax,recipe=etf,backbone=resnet32,'
                                    'imbalance=0.01')  # the list's order
    self.assertBetween(first['value'], 0.0, 100.0)
    self.assertEqual(first['published'][0]['value'], '72.8')
    self.assertIn('--config=configs/cifar10.py:method=softmax,recipe=etf,backbone=cnn',
                  first['command'])  # --tiny: the CNN
    self.assertIn('cpu', first['machine'])
    self.assertTrue(first['tiny'])
    self.assertGreater(first['wall_s'], 0.0)
    self.assertRegex(first['commit'], r'^([0-9a-f]{12}(-dirty)?|unknown)$')
    self.assertIn('JPEG copy', first['data'])
    run_dir = run_list.cell_dir(state, cells[0])
    self.assertFalse(os.path.exists(os.path.join(run_dir, 'checkpoints')))
    self.assertTrue(os.path.exists(os.path.join(run_dir, 'results.json')))
    self.assertIsNone(run_list.read_json(run_list.record_path(state, cells[1])))

    out = call()  # the next call: the next cell, the finished one untouched
    self.assertIn(f'[run_list] {cells[1]}: starting', out)
    self.assertNotIn(f'[run_list] {cells[0]}', out)
    self.assertEqual(run_list.read_json(run_list.record_path(state, cells[0])), first)
    second = run_list.read_json(run_list.record_path(state, cells[1]))
    self.assertEqual(second['cell'], cells[1])
    self.assertIsNone(run_list.read_json(run_list.record_path(state, cells[2])))
    with open(os.path.join(state, 'run_list.md')) as f:
      summary = f.read()
    self.assertIn(f'| 2 | `{cells[1]}` | done (tiny: not a measurement) |', summary)
    self.assertIn(f'| 3 | `{cells[2]}` | to do | | | 76.9 |', summary)
    # tables.py reads the list's workdirs: our value beside the published one.
    text = tables.render(os.path.join(state, 'work'), ['lt'])
    self.assertIn(f'{first["value"]:.1f} ± 0.0 (1) | 72.8 |', text)

  def test_run_list_stops_a_cell_at_the_budget(self):
    # Past its time the cell gets SIGTERM (the trainer checkpoints and stops), and the
    # call reports it stopped (None), not failed.
    log = os.path.join(self.root, 'log')
    code = ('import signal, sys, time\n'
            'signal.signal(signal.SIGTERM, lambda *a: (print("saved"), sys.exit(3)))\n'
            'time.sleep(60)\n')
    self.assertIsNone(run_list.run([sys.executable, '-c', code], 1.0, dict(os.environ),
                                   log))
    self.assertEqual(run_list.run([sys.executable, '-c', 'pass'], 30.0,
                                  dict(os.environ), log), 0)
    with open(log) as f:
      self.assertIn('saved', f.read())
    self.assertIsNone(run_list.checkpoint_step(self.root))
    os.makedirs(os.path.join(self.root, 'checkpoints', '40'))
    os.makedirs(os.path.join(self.root, 'checkpoints', '120'))
    self.assertEqual(run_list.checkpoint_step(self.root), 120)

  def test_bench_input_runs_tiny(self):
    out = subprocess.run(
        [sys.executable, os.path.join(helpers.ROOT, 'experiments', 'bench_input.py'),
         '--parts=whole_split,stream', '--split_examples=40', '--stream_images=6',
         '--stream_batch=4', '--workers=0', '--seconds=0.1', '--stream_sizes=800x600',
         '--rounds=1'],
        capture_output=True, text=True, check=True, timeout=300,
        env=dict(os.environ, JAX_PLATFORMS='cpu')).stdout
    results = json.loads(out[out.index('{'):])
    for key in ('whole_split/raw_read_seconds', 'whole_split/png_read_seconds',
                'stream/train_224_workers0', 'stream/eval_224_workers0',
                'transform/800x600/train_full_decode', 'transform/800x600/train_reduced'):
      self.assertGreater(results[key], 0, key)
    # At 224, 800x600 images allow reduced decoding of the larger crops only; the others
    # get the full decode's pixels exactly.
    self.assertBetween(results['transform/800x600/reduced_fraction'], 0.01, 0.99)
    self.assertLess(results['transform/800x600/mean_abs_diff'], 2.0)

  def test_bench_tfrecord_runs_tiny(self):
    out = subprocess.run(
        [sys.executable, os.path.join(helpers.ROOT, 'experiments', 'bench_tfrecord.py'),
         '--small_images=20', '--large_images=3',
         f'--work_dir={os.path.join(self.root, "bench_tfrecord")}'],
        capture_output=True, text=True, check=True, timeout=300).stdout
    results = json.loads(out[out.index('{'):])
    self.assertEqual((results['small/records'], results['large/records']), (20, 3))
    for key in ('small/convert_records_per_second', 'large/read_records_per_second',
                'crc32c/numpy_megabytes_per_second'):
      self.assertGreater(results[key], 0, key)

  def gpu_check(self, *flags_, check=True, timeout=300):
    out = os.path.join(self.root, 'gpu_check')
    proc = subprocess.run(
        [sys.executable, os.path.join(helpers.ROOT, 'experiments', 'gpu_check.py'),
         f'--out={out}', *flags_], capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, JAX_PLATFORMS='cpu'))
    if check:
      self.assertEqual(proc.returncode, 0, proc.stdout[-3000:] + proc.stderr[-3000:])
    with open(os.path.join(out, 'gpu_check.json')) as f:
      report = json.load(f)
    with open(os.path.join(out, 'gpu_check.md')) as f:
      return proc.returncode, report, f.read()

  def test_gpu_check_runs_every_part_tiny_on_cpu(self):
    # About 2 minutes on 2 idle cores (5 on busy ones): the parts' processes, each
    # compiling a reduced network. The budget is for a busy machine: the parts' shares
    # of it are their time limits.
    _, report, summary = self.gpu_check('--allow_cpu', '--budget_s=900', timeout=900)
    parts = report['parts']
    self.assertEqual(list(parts), ['devices', 'deterministic', 'tests', 'precision',
                                   'train', 'input'])
    for name, part in parts.items():
      self.assertEqual(part['status'], 'ok', f'{name}: {part}')
      self.assertIn(f'| {name} | ok |', summary)
    self.assertEqual(parts['devices']['platform'], 'cpu')
    self.assertEqual(parts['devices']['backends'], ['cpu'])
    self.assertTrue(parts['devices']['check_devices']['ok'])
    self.assertEqual((parts['tests']['passed'], parts['tests']['failed']), (1, 0))
    self.assertEqual(parts['tests']['jax_platforms'], 'cpu')  # what devices found
    # deterministic: the step and a test, both under the flag.
    deterministic = parts['deterministic']
    self.assertIn('--xla_gpu_deterministic_ops=true', deterministic['xla_flags'])
    self.assertGreater(deterministic['variants']['resnet32/float32']['images_per_s'], 0)
    self.assertEqual((deterministic['tests']['passed'], deterministic['tests']['failed']),
                     (1, 0))
    self.assertIn('x the precision part', summary)
    # precision: every variant measured, the flag group in a process with its flag.
    precision = parts['precision']
    self.assertEqual(list(precision['variants']),
                     [f'resnet32/{n}' for n in gpu_check.TINY_VARIANTS])
    for key, result in precision['variants'].items():
      self.assertGreater(result['images_per_s'], 0, key)
      self.assertGreater(result['compile_s'], 0, key)
      self.assertGreater(result['ratio_to_float32'], 0, key)
      self.assertIn(f'| {key.split("/")[1]} | ', summary)
    self.assertEqual(list(precision['groups']), ['default', 'nhwc'])
    self.assertIn('--xla_gpu_force_conv_nhwc=true',
                  precision['groups']['nhwc']['xla_flags'])
    self.assertNotIn('conv_nhwc', precision['groups']['default']['xla_flags'])
    self.assertEqual(precision['variants']['resnet32/float16_loss_scale']['dtype'],
                     'float16')
    train = parts['train']
    self.assertEqual(train['log_points'], [2, 4, 6, 8])
    for key in ('steady_images_per_s', 'first_step_s', 'final_eval_s',
                'projected_recipe_train_h', 'projected_recipe_with_evals_h'):
      self.assertGreater(train[key], 0, key)
    self.assertGreater(parts['input']['train_images_per_s'], 0)
    self.assertLess(report['wall_s'], report['budget_s'])

  def test_gpu_check_reports_failures_skips_and_a_missing_accelerator(self):
    # A part that fails (here, pytest on a missing file) leaves the others running; a
    # part the budget cannot fit is skipped; without --allow_cpu a CPU is an error.
    _, report, _ = self.gpu_check('--allow_cpu', '--only=tests',
                                  '--tests=tests/no_such_test.py')
    self.assertEqual(report['parts']['tests']['status'], 'error')
    self.assertIn('pytest exit code 4', report['parts']['tests']['error'])
    _, report, _ = self.gpu_check('--allow_cpu', '--budget_s=5')
    self.assertEqual({p['status'] for p in report['parts'].values()},
                     {'skipped: time budget'})
    rc, report, _ = self.gpu_check('--only=devices,train', check=False)
    self.assertEqual(rc, 1)
    self.assertIn('JAX sees no accelerator', report['error'])
    self.assertEqual(report['parts']['train']['status'], 'skipped: no accelerator')


  def test_a_part_past_its_time_gets_ctrl_c_before_sigkill(self):
    # pytest, interrupted so, still prints its failures and writes its XML.
    part = ('import signal, sys, time\n'
            'def stop(*_):\n  print("interrupted", flush=True)\n  sys.exit(2)\n'
            'signal.signal(signal.SIGINT, stop)\nprint("started", flush=True)\n'
            'time.sleep(100)\n')
    runner = ('import sys, gpu_check\n'
              'runner = gpu_check.Runner(sys.argv[1], float("inf"), None)\n'
              'print(repr(runner.run([sys.executable, "-c", sys.argv[2]], 5.0)))\n')
    out = subprocess.run([sys.executable, '-c', runner, self.root, part],
                         capture_output=True, text=True, check=True, timeout=60,
                         cwd=os.path.join(helpers.ROOT, 'experiments')).stdout
    self.assertEqual(out.strip(), repr((None, 'started\ninterrupted\n')))


class ParityTorchTest(absltest.TestCase):
  """parity_torch.py itself needs PyTorch (never a dependency); these parts do not."""

  def test_parameter_names_map_to_the_original_state_dict(self):
    name = parity_torch._torch_name  # pylint: disable=protected-access
    self.assertEqual(name(('backbone', 'layer2_0', 'downsample_conv', 'kernel'), 'fc'),
                     'layer2.0.downsample.0.weight')
    self.assertEqual(name(('backbone', 'layer3_4', 'downsample_bn', 'var'), 'fc'),
                     'layer3.4.downsample.1.running_var')
    self.assertEqual(name(('backbone', 'bn1', 'scale'), 'fc'), 'bn1.weight')
    self.assertEqual(name(('head', 'kernel'), 'fc'), 'fc.weight')
    self.assertEqual(name(('backbone', 'dense4_15', 'conv2', 'kernel'), 'linear'),
                     'dense4.15.conv2.weight')
    self.assertEqual(name(('backbone', 'trans1', 'bn', 'mean'), 'linear'),
                     'trans1.bn.running_mean')
    self.assertEqual(name(('head', 'bias'), 'linear'), 'linear.bias')

  def test_without_torch_it_says_how_to_get_it(self):
    if importlib.util.find_spec('torch') is not None:
      self.skipTest('PyTorch is installed here.')
    out = subprocess.run(
        [sys.executable, os.path.join(helpers.ROOT, 'experiments', 'parity_torch.py')],
        capture_output=True, text=True, cwd=helpers.ROOT, timeout=120,
        env=dict(os.environ, PYTHONPATH=helpers.ROOT))
    self.assertEqual(out.returncode, 2, out.stderr[-2000:])
    self.assertIn('needs PyTorch', out.stderr)
    self.assertIn('pip install torch==2.13.0', out.stderr)


class MutationListTest(absltest.TestCase):
  """experiments/mutation_check.py is not run in CI, but its list must fit the code."""

  def test_every_snippet_occurs_exactly_once(self):
    self.assertEqual(mutation_check.check(), [])

  def test_check_reports_a_stale_snippet(self):
    stale = mutation_check.Mutation('stale', 'hyperproto/losses.py', 'no such code',
                                    'x', ('tests/no_test.py',))
    self.assertEqual(mutation_check.check([stale]), [
        "stale: the snippet occurs 0 times in hyperproto/losses.py (must be once): "
        "'no such code'", 'stale: no test file tests/no_test.py'])


if __name__ == '__main__':
  absltest.main()
