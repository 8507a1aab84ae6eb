"""Do the tests bite? Puts deliberate bugs into a copy of the code, one at a time.

  python experiments/mutation_check.py [--only=loss_without_square,...] [--jobs=2]
  python experiments/mutation_check.py --list

Each entry of MUTATIONS is a bug a plausible edit could introduce: a file, an exact
snippet of it (which must occur exactly once, so the list cannot silently rot when the
code changes; tests/experiments_test.py checks that in CI), its replacement, and the
tests that must catch it. For each mutation the repository (code, tests, configs,
setup.cfg) is copied to a temporary directory, the snippet replaced there, and pytest
runs the named tests on the copy (`-x`, PYTHONPATH at the copy). A mutation is *caught*
when a test fails; it *survived* when they all pass. `error` (pytest could not collect or
run the tests, e.g. a -k expression that selects nothing) and `timeout` need a look too.
Prints a table; exits non-zero unless every mutation was caught.

`--baseline` runs each selection of tests once on an unmutated copy instead (they must
pass, or "caught" means nothing).

Not part of CI (1 to 2.5 minutes with --jobs=2 on 2 shared CPU cores, measured). Run it
before resolving an issue that touches the losses, the train step, data order or
augmentation, placement metrics or checkpoints, and add a mutation for every new method
(see CONTRIBUTING.md).
"""

import concurrent.futures
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Not copied: version control, environments, caches, run outputs.
IGNORE = shutil.ignore_patterns('.git', '.venv', '__pycache__', '*.egg-info',
                                '.pytest_cache', 'workdirs', 'build', 'dist')
TIMEOUT_S = 1200


@dataclasses.dataclass(frozen=True)
class Mutation:
  """One deliberate bug.

  Attributes:
    name: short identifier (for --only).
    path: the file to change, relative to the repository root.
    old: a snippet that occurs exactly once in that file.
    new: its replacement.
    tests: pytest arguments selecting the tests that must catch it (files or node ids).
    k: an optional pytest -k expression narrowing them.
  """
  name: str
  path: str
  old: str
  new: str
  tests: tuple[str, ...]
  k: str = ''


MUTATIONS = (
    Mutation('loss_without_square', 'hyperproto/losses.py',
             'return (1.0 - cos_B) ** 2',
             'return 1.0 - cos_B',
             ('tests/losses_test.py',)),
    Mutation('regression_target_shifted', 'hyperproto/losses.py',
             '(jnp.asarray(y, jnp.float32) - low) / (high - low) - 1.0',
             '(jnp.asarray(y, jnp.float32) - low) / (high - low) - 0.9',
             ('tests/losses_test.py',)),
    # ViT has no BatchNorm: this is the mutation its 1-vs-8-device test must catch.
    Mutation('gradients_pmean_not_psum', 'hyperproto/train.py',
             'grads = jax.lax.psum(grads, AXIS)',
             'grads = jax.lax.pmean(grads, AXIS)',
             ('tests/parallel_test.py',), k='vit'),
    # Without the cast, shard_map already sums the gradient of the replicated params
    # over devices, and the explicit psum sums it again.
    Mutation('gradients_summed_twice', 'hyperproto/train.py',
             "params = jax.lax.pcast(state.params, AXIS, to='varying')",
             'params = state.params',
             ('tests/parallel_test.py',), k='cnn'),
    Mutation('eval_count_ignores_mask', 'hyperproto/objectives.py',
             "sums = {'count': jnp.sum(mask)}",
             "sums = {'count': jnp.asarray(z.shape[0], jnp.float32)}",
             ('tests/objectives_test.py',)),
    # The joint task's weights swapped: w L_r + (1 - w) L_c.
    Mutation('joint_weights_swapped', 'hyperproto/objectives.py',
             "'joint': ((1.0 - self.weight, self._regression_loss),\n"
             "                      (self.weight, self._class_loss))",
             "'joint': ((self.weight, self._regression_loss),\n"
             "                      (1.0 - self.weight, self._class_loss))",
             ('tests/objectives_test.py',), k='weighted_parts'),
    Mutation('flip_removed', 'hyperproto/data/device_input.py',
             'return jnp.where(jax.random.bernoulli(flip_key), crop[:, ::-1], crop)',
             'return crop',
             ('tests/device_input_test.py',)),
    # Mixup: the partner's labels dropped from the loss, and the per-epoch warm-up of
    # the ETF / DL2PA scripts (lr (e + 1) / 5) off by one epoch.
    Mutation('mixup_loss_ignores_partner_labels', 'hyperproto/train.py',
             "z, dict(batch, label=batch['mix_label']), protos, reduction='sum')",
             "z, batch, protos, reduction='sum')",
             ('tests/train_test.py',), k='MixupLossTest'),
    Mutation('epoch_warmup_off_by_one', 'hyperproto/optim.py',
             'jnp.where(epoch < warmup, (epoch + 1.0) / warmup, factor)',
             'jnp.where(epoch < warmup, epoch / warmup, factor)',
             ('tests/optim_test.py',)),
    # Streamed data (grain): the crop seed of an example is keyed by its position in the
    # *global* batch; keyed by the position in this host's share, hosts repeat crops.
    Mutation('streaming_crop_seed_per_host', 'hyperproto/data/streaming.py',
             '[(self.seed, 0, int(step), self.first + j) for j in range(self.local)]',
             '[(self.seed, 0, int(step), j) for j in range(self.local)]',
             ('tests/data_streaming_test.py',)),
    # A streamed epoch's order must change with the epoch (a fresh permutation each).
    Mutation('streaming_order_ignores_epoch', 'hyperproto/data/streaming.py',
             'return np.random.default_rng([seed, 2, epoch]).permutation(n)',
             'return np.random.default_rng([seed, 2]).permutation(n)',
             ('tests/data_streaming_test.py',)),
    # Reduced JPEG decoding: a reduction the crop does not allow (the crop then upsampled
    # from fewer pixels), and the crop box left in full-size pixels.
    Mutation('jpeg_reduction_too_far', 'hyperproto/data/streaming.py',
             'if side >= scale * size), 1)',
             'if side >= scale * size / 2), 1)',
             ('tests/data_streaming_test.py',), k='ReducedDecoding'),
    Mutation('draft_box_not_mapped', 'hyperproto/data/streaming.py',
             'return tuple(v * factor for v in box)',
             'return box',
             ('tests/data_streaming_test.py',), k='ReducedDecoding'),
    # Evaluation workers: a pipeline not kept restarts its workers at every pass.
    Mutation('eval_workers_restarted_each_pass', 'hyperproto/data/streaming.py',
             '    if kept is None:\n      self._eval_pipelines[key] = pipeline',
             '    if False:\n      self._eval_pipelines[key] = pipeline',
             ('tests/data_streaming_test.py',), k='mid_pass or live_for_the_run'),
    # Pairs at the max cosine are counted over i < j; i <= j adds every self-pair.
    Mutation('placement_pairs_off_by_one', 'hyperproto/prototypes/metrics.py',
             'upper = np.arange(num_classes)[None] > idx[:, None]',
             'upper = np.arange(num_classes)[None] >= idx[:, None]',
             ('tests/prototypes_test.py',)),
    # Orthogonal blocks of a direct sum: their pairs (cos exactly 0) count at a max of 0.
    Mutation('certify_drops_cross_block_pairs', 'hyperproto/prototypes/certificates.py',
             'pairs = cross_pairs if cross_pairs and best - PAIR_TOL <= 0.0 else 0',
             'pairs = 0',
             ('tests/codes_test.py',)),
    # The greedy subset removes the most-conflicted point, not the least.
    Mutation('subset_greedy_removes_least_conflicted', 'hyperproto/prototypes/codes.py',
             'worst = int(np.argmax(score))',
             'worst = int(np.argmin(np.where(alive, score, np.inf)))',
             ('tests/codes_test.py',)),
    Mutation('resume_from_oldest_checkpoint', 'hyperproto/checkpointing.py',
             'for step in sorted(self._manager.all_steps(), reverse=True):',
             'for step in sorted(self._manager.all_steps()):',
             ('tests/checkpointing_test.py',)),
    # A time-limit warning (SIGUSR1) while the run starts is forgotten: the run trains on.
    Mutation('early_signal_forgotten', 'hyperproto/interrupts.py',
             '  _recorded.append(signum)', '  pass',
             ('tests/main_test.py',), k='signal_during'),
    # BatchNorm statistics no longer synchronised over devices, one per backbone family
    # with BatchNorm (ViT has none).
    Mutation('unsynced_bn_cifar_resnet', 'hyperproto/models/resnet.py',
             'shortcut_kernel=3, dtype=self.dtype, axis_name=self.axis_name,',
             'shortcut_kernel=3, dtype=self.dtype, axis_name=None,',
             ('tests/parallel_test.py',), k='cifar_resnet'),
    Mutation('unsynced_bn_resnet_basic', 'hyperproto/models/resnet.py',
             'norm = functools.partial(_norm, train, self.dtype, self.axis_name,\n'
             '                             norm_dtype=self.norm_dtype)\n'
             '    residual = x',
             'norm = functools.partial(_norm, train, self.dtype, None,\n'
             '                             norm_dtype=self.norm_dtype)\n'
             '    residual = x',
             ('tests/parallel_test.py',), k='resnet_basic'),
    Mutation('unsynced_bn_resnet_bottleneck', 'hyperproto/models/resnet.py',
             'norm = functools.partial(_norm, train, self.dtype, self.axis_name,\n'
             '                             norm_dtype=self.norm_dtype)\n'
             '    out_features',
             'norm = functools.partial(_norm, train, self.dtype, None,\n'
             '                             norm_dtype=self.norm_dtype)\n'
             '    out_features',
             ('tests/parallel_test.py',), k='resnet_bottleneck'),
    Mutation('unsynced_bn_densenet', 'hyperproto/models/densenet.py',
             'dtype=dtype, axis_name=axis_name, name=name)',
             'dtype=dtype, axis_name=None, name=name)',
             ('tests/parallel_test.py',), k='densenet'),
    Mutation('unsynced_bn_cnn', 'hyperproto/models/cnn.py',
             'dtype=self.dtype, axis_name=self.axis_name,',
             'dtype=self.dtype, axis_name=None,',
             ('tests/parallel_test.py',), k='cnn'),
    # Busemann: the paper's tanh(|u| / 2) instead of the reference code's tanh(|u|).
    Mutation('busemann_expmap_half_angle', 'hyperproto/methods/busemann.py',
             'jnp.tanh(jnp.clip(norm_Bx1, -TANH_CLAMP, TANH_CLAMP))',
             'jnp.tanh(0.5 * jnp.clip(norm_Bx1, -TANH_CLAMP, TANH_CLAMP))',
             ('tests/busemann_test.py',), k='not learns'),
    # TFRecord reading that trusts the data checksums, and a conversion that trusts a
    # shard's record count.
    Mutation('tfrecord_data_checksum_ignored', 'hyperproto/data/tfrecord.py',
             'bad = np.flatnonzero(length_bad | data_bad)',
             'bad = np.flatnonzero(length_bad)',
             ('tests/data_tfrecord_test.py',), k='corrupt or bad_shards'),
    Mutation('tfrecord_shard_count_ignored', 'hyperproto/data/generic.py',
             'if count != expected:', 'if False:',
             ('tests/data_tfrecord_test.py',), k='bad_shards'),
    # DL2PA: the feature memory from this device's examples only (not psum-ed).
    Mutation('dl2pa_memory_not_summed_over_devices', 'hyperproto/methods/dl2pa.py',
             'jax.lax.psum((onehot_BxC.T @ x_BxD, onehot_BxC.sum(0)), axis_name)',
             '(onehot_BxC.T @ x_BxD, onehot_BxC.sum(0))',
             ('tests/dl2pa_test.py',), k='Memory'),
    # DL2PA: the matching minimises the total cosine instead of maximising it.
    Mutation('dl2pa_matching_minimises', 'hyperproto/methods/dl2pa.py',
             'optimize.linear_sum_assignment(-score_CxC)',
             'optimize.linear_sum_assignment(score_CxC)',
             ('tests/dl2pa_test.py',), k='Assignment'),
    # ETF: the dot-regression target without the class lengths |w_y| (E_c).
    Mutation('etf_target_ignores_class_length', 'hyperproto/methods/etf.py',
             'return 0.5 * (dot_B - m_len_B * h_len_B) ** 2 / h_len_B',
             'return 0.5 * (dot_B - h_len_B) ** 2 / h_len_B',
             ('tests/methods_test.py',), k='KnownAnswer'),
    # Max-separation: logits from the unscaled matrix (radius ignored).
    Mutation('maxsep_radius_ignored', 'hyperproto/methods/maxsep.py',
             'return z_BxD @ (radius * jnp.asarray(protos[\'classes\'], jnp.float32)).T',
             'return z_BxD @ (jnp.asarray(protos[\'classes\'], jnp.float32)).T',
             ('tests/methods_test.py',), k='KnownAnswer'),
    # EBV: cosines not divided by the temperature.
    Mutation('ebv_no_temperature', 'hyperproto/methods/ebv.py',
             'logits_BxC = ebv_scores(z_BxD, protos) / temperature',
             'logits_BxC = ebv_scores(z_BxD, protos)',
             ('tests/methods_test.py',), k='KnownAnswer'),
    # CIFAR-LT: the profile's exponent c / C instead of c / (C - 1).
    Mutation('imbalance_profile_exponent', 'hyperproto/data/subsets.py',
             'int(n_max * imbalance ** (i / (num_classes - 1.0)))',
             'int(n_max * imbalance ** (i / float(num_classes)))',
             ('tests/subsets_test.py',)),
    # The trainer's telemetry and input (issue 32): the logged rate one step late (the
    # schedule at the step's new count), and every process reading the first share of
    # each resident evaluation batch.
    Mutation('lr_logged_one_step_late', 'hyperproto/train.py',
             "scalars['lr'] = jnp.asarray(learning_rate(state.step), jnp.float32)",
             "scalars['lr'] = jnp.asarray(learning_rate(state.step + 1), jnp.float32)",
             ('tests/train_test.py',), k='step_scalars'),
    Mutation('eval_share_ignores_process', 'hyperproto/data/base.py',
             'for start in range(process_index * local, n + process_index * local, '
             'batch_size):',
             'for start in range(0, n, batch_size):',
             ('tests/data_test.py',)),
)


def check(mutations=MUTATIONS, root: str = ROOT) -> list[str]:
  """Problems with the list against the code under `root` (empty when well-formed)."""
  problems = []
  names = [m.name for m in mutations]
  problems += [f'{n}: duplicate name' for n in sorted({n for n in names
                                                        if names.count(n) > 1})]
  for m in mutations:
    path = os.path.join(root, m.path)
    if not os.path.isfile(path):
      problems.append(f'{m.name}: no file {m.path}')
      continue
    with open(path) as f:
      count = f.read().count(m.old)
    if count != 1:
      problems.append(f'{m.name}: the snippet occurs {count} times in {m.path} '
                      f'(must be once): {m.old!r}')
    if m.old == m.new:
      problems.append(f'{m.name}: the replacement equals the snippet')
    for test in m.tests:
      if not os.path.isfile(os.path.join(root, test.split('::')[0])):
        problems.append(f'{m.name}: no test file {test}')
  return problems


def _first_failure(output: str) -> str:
  """The first failing test's id in pytest's short summary ('' if none)."""
  match = re.search(r'^(?:SUB)?(?:FAILED|ERROR)(?:\[[^\]]*\])? (\S+)', output, re.M)
  return match.group(1).split('::')[-1] if match else ''


def run_one(m: Mutation, kernel_cache: str, mutate: bool = True) -> dict:
  """Applies `m` to a fresh copy of the repository and runs its tests there."""
  start = time.perf_counter()
  prefix = 'hyperproto_mutant_' + re.sub(r'\W+', '_', m.name)[:40] + '_'
  with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
    copy = os.path.join(tmp, 'repo')
    shutil.copytree(ROOT, copy, ignore=IGNORE)
    if mutate:
      path = os.path.join(copy, m.path)
      with open(path) as f:
        text = f.read()
      if text.count(m.old) != 1:
        raise ValueError(f'{m.name}: the snippet must occur exactly once in {m.path}.')
      with open(path, 'w') as f:
        f.write(text.replace(m.old, m.new))
    # The copy first on the path (before the editable install of the original); the
    # native conv kernel is built once and shared (its cache key is its source's hash).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [copy, os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep),
               HYPERPROTO_KERNEL_CACHE=kernel_cache)
    where = subprocess.run(
        [sys.executable, '-c', 'import hyperproto; print(hyperproto.__file__)'],
        cwd=copy, env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not where.startswith(copy):
      raise RuntimeError(f'The tests would import hyperproto from {where}, not from the '
                         f'mutated copy {copy}.')
    command = [sys.executable, '-m', 'pytest', '-x', '-q', '-n', '0', '-p',
               'no:cacheprovider', *m.tests, *(['-k', m.k] if m.k else [])]
    try:
      proc = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT_S)
      output = proc.stdout + proc.stderr
      # pytest: 0 all passed, 1 some failed, 2+ interrupted, usage error, none collected.
      result = {0: 'survived' if mutate else 'passed', 1: 'caught'}.get(proc.returncode,
                                                                         'error')
    except subprocess.TimeoutExpired as e:
      output, result = str(e.stdout or ''), 'timeout'
  return dict(name=m.name, path=m.path, result=result, output=output,
              caught_by=_first_failure(output), seconds=time.perf_counter() - start)


def table(rows: list[dict]) -> str:
  lines = ['| mutation | file | result | first failing test | seconds |',
           '|---|---|---|---|---:|']
  lines += [f'| {r["name"]} | {r["path"]} | {r["result"]} | {r["caught_by"]} | '
            f'{r["seconds"]:.0f} |' for r in rows]
  return '\n'.join(lines)


def define_flags():
  """The command line's flags (defined only when run as a program)."""
  flags.DEFINE_list('only', [], 'Run only these mutations (names; see --list).')
  flags.DEFINE_bool('list', False, 'List the mutations and exit.')
  flags.DEFINE_integer('jobs', 1, 'Mutations tested in parallel (each runs pytest '
                       'with one worker).')
  flags.DEFINE_bool('baseline', False, 'Run the selected tests on the unmutated copy '
                    'instead: they must all pass.')


def main(argv):
  del argv
  problems = check()
  if problems:
    sys.exit('The mutation list does not match the code:\n  ' + '\n  '.join(problems))
  selected = [m for m in MUTATIONS if not FLAGS.only or m.name in FLAGS.only]
  unknown = set(FLAGS.only) - {m.name for m in MUTATIONS}
  if unknown:
    sys.exit(f'Unknown mutations {sorted(unknown)}; see --list.')
  if FLAGS.list:
    for m in selected:
      print(f'{m.name:32s} {m.path:36s} {" ".join(m.tests)}'
            f'{f" -k {m.k}" if m.k else ""}')
    return
  expected = 'passed' if FLAGS.baseline else 'caught'
  if FLAGS.baseline:  # Each distinct selection of tests once, unmutated.
    selections = dict.fromkeys((m.tests, m.k) for m in selected)
    selected = [Mutation(' '.join(tests) + (f' -k {k}' if k else ''), '-', '', '',
                         tests, k) for tests, k in selections]
  what = 'selections of tests, unmutated' if FLAGS.baseline else 'mutations'
  print(f'{len(selected)} {what}, {FLAGS.jobs} at a time.', flush=True)
  start = time.perf_counter()
  with tempfile.TemporaryDirectory(prefix='hyperproto_mutant_kernels_') as kernels:
    with concurrent.futures.ThreadPoolExecutor(FLAGS.jobs) as pool:
      futures = [pool.submit(run_one, m, kernels, not FLAGS.baseline) for m in selected]
      rows = []
      for future in futures:
        rows.append(future.result())
        r = rows[-1]
        print(f'  {r["name"]}: {r["result"]} ({r["seconds"]:.0f} s)', flush=True)
        if r['result'] != expected:
          print('    ' + '\n    '.join(r['output'].strip().splitlines()[-15:]),
                flush=True)
  print()
  print(table(rows))
  bad = [r['name'] for r in rows if r['result'] != expected]
  print(f'\n{len(rows) - len(bad)}/{len(rows)} {expected} in '
        f'{time.perf_counter() - start:.0f} s.' + (f' Not {expected}: {", ".join(bad)}.'
                                                    if bad else ''))
  if bad:
    sys.exit(1)


if __name__ == '__main__':
  define_flags()
  app.run(main)
