"""sbatch scripts (hyperproto.slurm), rendered and run end to end on a real SLURM cluster.

`RenderTest` checks the scripts and the command line without SLURM. `ClusterTest` runs
them on the single-node cluster of `.ci/slurm_cluster.sh` on this machine (munged,
slurmctld and slurmd as root): it starts the cluster if it is not running, and then stops
it at the end (a cluster that was running is left running). That needs root, and apt-get
when SLURM is not installed; without them the cluster tests skip, saying why, except with
CI=true, where they fail, so that CI never skips them unnoticed.

The cluster tests submit all their jobs at once, so that they run side by side; the
longest, the time-limit job, takes about 3 minutes of wall time (SLURM checks time limits
every 30 s, and each of its 3 attempts waits for one check). The jobs are tiny digits runs
on 1 CPU device.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import jax
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import helpers
from hyperproto import slurm
from hyperproto.models import cpu_kernels

CLUSTER = os.path.join(helpers.ROOT, '.ci', 'slurm_cluster.sh')
DIGITS = os.path.join(helpers.ROOT, 'configs', 'digits.py')
TIMEOUT_S = 400
FINAL_STATES = ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL',
                'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE', 'PREEMPTED')
# SLURM checks time limits every 30 s (slurmctld's PERIODIC_TIMEOUT) and sends the
# warning at the first check within `signal_lead` + 30 s of the limit. With --time=3 and
# a 160 s lead, every check qualifies; set-up lines that take 32 s then always receive
# it, whatever the check's phase, and each attempt of the run takes exactly one step.
SETUP_DELAY_S = 32


def run_args(workdir, steps, log_every=50):
  """A tiny digits run (16x16, CNN 8/16, batch 16): `steps` steps, no periodic eval and
  no periodic checkpoint (only those on a signal, and the last). The learning rate is
  constant, so that runs of any length compile to the same programs (compiled once)."""
  return [f'--config={DIGITS}:runlocal', f'--workdir={workdir}',
          '--config.data.kwargs.image_size=16', '--config.model.kwargs.widths=(8,16)',
          '--config.batch_size=16', '--config.schedule=constant',
          '--config.warmup_epochs=0.0', f'--config.num_steps={steps}',
          f'--config.log_every_steps={log_every}', '--config.eval_every_steps=0',
          '--config.checkpoint_every_steps=1000000']


def short_run(workdir):
  """The preempted and the cancelled run: long enough (seconds) to be stopped in the
  middle."""
  return run_args(workdir, 600, log_every=10)


def three_steps(workdir):
  """The direct path's run, and the time-limit test's (one step per attempt)."""
  return run_args(workdir, 3, log_every=1)


def job_env(root, devices=1):
  """The jobs' (and the local runs') environment: `devices` CPU devices, and one
  compilation cache, so that each program is compiled once."""
  return dict(os.environ, JAX_PLATFORMS='cpu',
              XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}',
              JAX_COMPILATION_CACHE_DIR=os.path.join(root, 'jax_cache'))


def setup_lines(extra=''):
  """--setup: activate this interpreter's environment (as docs/training.md says)."""
  if sys.prefix != sys.base_prefix:
    line = f'source {sys.prefix}/bin/activate'
  else:
    line = f'export PATH={os.path.dirname(sys.executable)}:$PATH'
  return f'{line}; {extra}' if extra else line


def results_without_time(workdir):
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  results.pop('train_seconds')
  return results


def train_lines(workdir):
  try:
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
      return f.read().count('train/loss')
  except FileNotFoundError:
    return 0


def job_info(job):
  """`scontrol show job` of a job (one dict per task of an array), [] when unknown."""
  out = subprocess.run(['scontrol', 'show', 'job', '-o', str(job)], capture_output=True,
                       text=True).stdout
  return [dict(field.split('=', 1) for field in line.split() if '=' in field)
          for line in out.splitlines() if line.startswith('JobId=')]


def render(*flags_, cwd=None):
  """`python -m hyperproto.slurm FLAGS`: (exit status, script, stderr)."""
  done = subprocess.run([sys.executable, '-m', 'hyperproto.slurm', *flags_],
                        capture_output=True, text=True, cwd=cwd or helpers.ROOT,
                        env=dict(os.environ, PYTHONPATH=helpers.ROOT), timeout=120)
  return done.returncode, done.stdout, done.stderr


class RenderTest(parameterized.TestCase):

  @parameterized.parameters('process_per_gpu', 'process_per_node')
  def test_templates_render_to_valid_bash(self, template):
    script = slurm.render(template, config='configs/digits.py:task=joint',
                          workdir='/scratch/runs/a',
                          overrides=['--config.lr=0.1', '--config.x=a b'],
                          nodes=2, gpus_per_node=4, time='02:00:00',
                          setup='source /opt/venv/bin/activate',
                          sbatch_extra=['--partition=gpu', '--array=0-2'])
    self.assertNotIn('{{', script)
    per_node = template == 'process_per_node'
    for line in ('#SBATCH --nodes=2', '#SBATCH --gpus-per-node=4',
                 f'#SBATCH --cpus-per-task={32 if per_node else 8}',
                 f'#SBATCH --ntasks-per-node={1 if per_node else 4}',
                 '#SBATCH --time=02:00:00', '#SBATCH --partition=gpu',
                 '#SBATCH --array=0-2', '#SBATCH --signal=B:USR1@120',
                 '#SBATCH --requeue', '#SBATCH --open-mode=append',
                 "'--config.x=a b'", '--workdir=/scratch/runs/a',
                 '#SBATCH --output=/scratch/runs/a/slurm/%x-%A_%a.out',
                 'source /opt/venv/bin/activate'):
      self.assertIn(line, script)
    self.assertEqual('--local_device_ids=0,1,2,3' in script, per_node)
    path = os.path.join(helpers.tmpdir(self), 'job.sbatch')
    with open(path, 'w') as f:
      f.write(script)
    check = subprocess.run(['bash', '-n', path], capture_output=True, text=True)
    self.assertEqual(check.returncode, 0, check.stderr)

  def test_cpu_nodes_request_no_gpu(self):
    script = slurm.render(config='c.py', workdir='/w', gpus_per_node=0)
    self.assertNotIn('gpus', script)
    self.assertNotIn('--cpus-per-task', script)  # SLURM's default
    self.assertIn('#SBATCH --ntasks-per-node=1', script)
    self.assertIn('#SBATCH --output=/w/slurm/%x-%j.out', script)  # not an array
    script = slurm.render(config='c.py', workdir='/w', gpus_per_node=0, tasks_per_node=2,
                          cpus_per_task=3, signal_lead=45, time='5')
    for line in ('#SBATCH --ntasks-per-node=2', '#SBATCH --cpus-per-task=3',
                 '#SBATCH --signal=B:USR1@45', '#SBATCH --time=5'):
      self.assertIn(line, script)

  @parameterized.parameters(('1', 60), ('0:30', 30), ('2:00:00', 7200), ('1-2', 93600),
                            ('1-0:01', 86460), ('1-0:00:05', 86405), ('UNLIMITED', None))
  def test_time_limits_in_seconds(self, time_, seconds):
    self.assertEqual(slurm.time_limit_seconds(time_), seconds)

  def test_bad_input_is_refused(self):
    for kwargs, message in (
        (dict(time='1', signal_lead=60), 'shorter than the time limit'),
        (dict(time='1h'), 'not a SLURM time limit'),
        (dict(gpus_per_node=-1), 'gpus_per_node >= 0'),
        (dict(template='process_per_node', tasks_per_node=2), 'exactly 1'),
        (dict(workdir='/scratch/my runs'), 'cannot hold whitespace'),
        (dict(template='mpi'), "Unknown sbatch template 'mpi'")):
      with self.subTest(message):
        with self.assertRaisesRegex(ValueError, message):
          slurm.render(**dict(dict(config='c.py', workdir='/w'), **kwargs))

  def test_command_line_creates_the_log_folder_and_warns_of_a_missing_venv(self):
    tmp = helpers.tmpdir(self)
    rc, script, err = render('--config=configs/digits.py', '--workdir=run',
                             '--gpus_per_node=0', f'--setup=source {tmp}/no/bin/activate',
                             cwd=tmp)
    self.assertEqual(rc, 0, err)
    self.assertTrue(os.path.isdir(os.path.join(tmp, 'run', 'slurm')))  # SLURM needs it
    self.assertIn(f'#SBATCH --output={tmp}/run/slurm/%x-%j.out', script)
    self.assertIn(f'--config={tmp}/configs/digits.py', script)  # absolute
    self.assertIn(f'--setup sources {tmp}/no/bin/activate, which does not exist', err)

  def test_command_line_refuses_a_workdir_it_cannot_write(self):
    tmp = helpers.tmpdir(self)
    with open(os.path.join(tmp, 'file'), 'w'):
      pass
    rc, script, err = render('--config=configs/digits.py', f'--workdir={tmp}/file/run')
    self.assertNotEqual(rc, 0)
    self.assertEqual(script, '')
    self.assertIn(f'Cannot write the log folder {tmp}/file/run/slurm (NotADirectoryError',
                  err)


class ClusterTest(absltest.TestCase):
  """End to end on SLURM: the direct path, a time limit, preemption, a cancel, a sweep,
  two processes, bad input. Every job is submitted in `setUpClass` (the jobs run side by
  side); what a test does to a running job (a requeue, a cancel, the time-limit signal)
  is done by a watcher thread as soon as the job is ready for it."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.started = cls.start_cluster()
    cpu_kernels.available()  # Built once, here, rather than by several jobs at once.
    cls.jobs, cls.local = [], {}
    cls.root = tempfile.mkdtemp(prefix='hyperproto_slurm_')
    cls.env = job_env(cls.root)
    # The uninterrupted local runs that SLURM's runs must equal.
    cls.start_local('three', three_steps)
    cls.start_local('short', short_run)
    cls.start_local('one', lambda w: run_args(w, 40, log_every=1), devices=4)
    # The jobs that wait longest first, each attempt getting the time-limit warning
    # (SETUP_DELAY_S): a sweep's job array (2 runs of 2 steps), the time limit's 3-step
    # run, and a run that fails (its workdir is under a file) after the warning.
    cls.sweep = cls.launch_sweep('--submit')
    delay = f'--setup={setup_lines(f"sleep {SETUP_DELAY_S}")}'
    cls.time_limit = cls.submit_rendered(
        'time_limit', three_steps(f'{cls.root}/time_limit'), '--time=3',
        '--signal_lead=160', delay)
    with open(f'{cls.root}/file', 'w'):
      pass
    cls.failing = cls.submit_rendered(
        'failing', run_args(f'{cls.root}/file/run', 3), '--time=3', '--signal_lead=160',
        f'--slurm_log_dir={cls.root}/failing_logs', delay)
    cls.direct = cls.submit_rendered('direct', three_steps(f'{cls.root}/direct'))
    cls.no_venv = cls.submit_rendered('no_venv', run_args(f'{cls.root}/no_venv', 3),
                                      f'--setup=source {cls.root}/no_venv/bin/activate')
    # Preemption and a cancel, as soon as the run trains.
    cls.preempt = cls.submit_rendered('preempt', short_run(f'{cls.root}/preempt'))
    cls.when_training(cls.preempt, 'scontrol', 'requeue')
    cls.cancel = cls.submit_rendered('cancel', short_run(f'{cls.root}/cancel'))
    cls.when_training(cls.cancel, 'scancel')
    # Two processes, sent what SLURM sends at the time limit (USR1 to the batch script)
    # as soon as the job starts: its run stops after the same step in both processes.
    cls.two = cls.submit_rendered('two', run_args(f'{cls.root}/two', 40, log_every=1),
                                  '--tasks_per_node=2', devices=2)
    cls.when(lambda: 'attempt 1' in cls.read(cls.two[2]),
             ['scancel', '--batch', '--signal=USR1', str(cls.two[0])])

  @classmethod
  def tearDownClass(cls):
    for job in cls.jobs:
      subprocess.run(['scancel', str(job)], capture_output=True)
    for _, process in cls.local.values():
      process.kill()
      process.wait()
    shutil.rmtree(cls.root, ignore_errors=True)
    others = subprocess.run(['squeue', '-h', '-o', '%A'], capture_output=True,
                            text=True).stdout.split()
    if cls.started and not set(map(int, others)) - set(cls.jobs):  # No one else's jobs.
      subprocess.run([CLUSTER, 'stop'], capture_output=True, timeout=120)
    super().tearDownClass()

  @staticmethod
  def start_cluster() -> bool:
    """Starts the cluster unless it runs; whether this started it. Skips (fails in CI)
    where SLURM cannot be had."""
    def unavailable(why):
      if os.environ.get('CI') == 'true':
        raise RuntimeError(f'SLURM is needed in CI (CI=true): {why}')
      raise absltest.SkipTest(f'No SLURM cluster: {why}')

    if subprocess.run([CLUSTER, 'status'], capture_output=True).returncode == 0:
      return False
    if os.geteuid() != 0:
      unavailable('starting one on this machine (.ci/slurm_cluster.sh) needs root.')
    if not shutil.which('sbatch') and not shutil.which('apt-get'):
      unavailable('SLURM is not installed and there is no apt-get to install it.')
    done = subprocess.run([CLUSTER, 'start'], capture_output=True, text=True, timeout=600)
    if done.returncode:
      unavailable(f'.ci/slurm_cluster.sh start failed: {done.stderr[-2000:]}')
    return True

  @classmethod
  def start_local(cls, name, args_of, devices=1):
    workdir = f'{cls.root}/local_{name}'
    process = subprocess.Popen(
        [sys.executable, '-m', 'hyperproto.main', *args_of(workdir)],
        env=job_env(cls.root, devices), cwd=helpers.ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    cls.local[name] = workdir, process

  @classmethod
  def submit(cls, script, env=None):
    done = subprocess.run(['sbatch', '--parsable', script], capture_output=True,
                          text=True, env=env or cls.env, cwd=cls.root)
    if done.returncode:
      raise AssertionError(f'sbatch {script}: {done.stderr}')
    job = int(done.stdout.strip().split(';')[0])
    cls.jobs.append(job)
    return job

  @classmethod
  def submit_rendered(cls, name, args, *flags_, devices=1):
    """Renders a job with `python -m hyperproto.slurm` (the documented path; the log
    folder is not made by hand) and submits it; (job id, workdir, log path)."""
    config, workdir = (a.split('=', 1)[1] for a in args[:2])
    flags_ = ['--gpus_per_node=0', '--cpus_per_task=1', '--time=10',
              f'--setup={setup_lines()}', f'--job_name={name}', *flags_]
    rc, script, err = render(f'--config={config}', f'--workdir={workdir}',
                             *(f'--override={a}' for a in args[2:]), *flags_)
    if rc:
      raise AssertionError(err)
    path = f'{cls.root}/{name}.sbatch'
    with open(path, 'w') as f:
      f.write(script)
    job = cls.submit(path, env=job_env(cls.root, devices))
    log_dir = re.search(r'#SBATCH --output=(.*)/', script).group(1)
    return job, workdir, f'{log_dir}/{name}-{job}.out'

  @classmethod
  def launch_sweep(cls, *flags_):
    """`experiments/launch.py --slurm` on the digits `compare` sweep: 2 runs of 2 steps,
    whose tasks each get the time-limit warning once (as in the time-limit test); its
    output."""
    done = subprocess.run(
        [sys.executable, os.path.join(helpers.ROOT, 'experiments', 'launch.py'),
         f'--config={DIGITS}', '--sweep=compare', '--seeds=0',
         f'--workdir={cls.root}/sweep', '--slurm', '--gpus_per_node=0',
         '--cpus_per_task=1', '--time=3', '--signal_lead=160',
         f'--setup={setup_lines(f"sleep {SETUP_DELAY_S}")}',
         *(f'--override={a}' for a in run_args('', 2)[2:]), *flags_],
        capture_output=True, text=True, env=cls.env, cwd=helpers.ROOT, timeout=120)
    if done.returncode:
      raise AssertionError(done.stderr[-3000:])
    if job := re.search(r'Submitted job array (\d+)', done.stdout):
      cls.jobs.append(int(job.group(1)))
    return done.stdout

  @classmethod
  def when(cls, condition, command):
    """Runs `command` in the background as soon as `condition()` holds."""
    def watch():
      deadline = time.monotonic() + TIMEOUT_S
      while time.monotonic() < deadline:
        try:
          if condition():
            subprocess.run(command, capture_output=True)
            return
        except FileNotFoundError:
          pass
        time.sleep(0.2)
    threading.Thread(target=watch, daemon=True).start()

  @classmethod
  def when_training(cls, submitted, *command):
    job, workdir, _ = submitted
    cls.when(lambda: train_lines(workdir), [*command, str(job)])

  def wait_job(self, job, log=None, timeout=TIMEOUT_S):
    """Waits until every task of `job` has ended; their `scontrol show job` fields."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      tasks = job_info(job)
      if tasks and all(t['JobState'] in FINAL_STATES for t in tasks):
        return tasks
      time.sleep(1)
    self.fail(f'Job {job} still {[t["JobState"] for t in job_info(job)]} after '
              f'{timeout} s. Log:\n{self.read(log)[-3000:] if log else ""}')

  def local_run(self, name):
    """The workdir of an uninterrupted local run, once it has finished."""
    workdir, process = self.local[name]
    _, err = process.communicate(timeout=TIMEOUT_S)
    self.assertEqual(process.returncode, 0, err[-3000:])
    return workdir

  def assert_same_run(self, workdir, local):
    """Bitwise the uninterrupted local run: results and final parameters."""
    self.assertEqual(results_without_time(workdir), results_without_time(local))
    jax.tree.map(np.testing.assert_array_equal, helpers.final_params(workdir),
                 helpers.final_params(local))

  @staticmethod
  def read(path):
    with open(path) as f:
      return f.read()

  def assert_state(self, submitted, state, restarts):
    """The job's end state and restart count; its log."""
    job, _, log = submitted
    (task,) = self.wait_job(job, log)
    self.assertEqual((task['JobState'], int(task['Restarts'])), (state, restarts),
                     self.read(log)[-3000:])
    return self.read(log)

  def test_cancelled_job_keeps_its_checkpoint_and_says_how_to_resume(self):
    text = self.assert_state(self.cancel, 'CANCELLED', 0)
    self.assertIn('SIGTERM: the job is being cancelled, preempted or requeued', text)
    step = re.search(r'checkpoint saved at step (\d+)', text).group(1)
    self.assertEqual(os.listdir(f'{self.cancel[1]}/checkpoints'), [step])
    self.assertIn('the run stopped on a signal (status 130)', text)
    self.assertIn('a cancelled one resumes from its checkpoint when submitted again', text)

  def test_direct_path_completes_like_a_local_run(self):
    job, workdir, _ = self.direct
    text = self.assert_state(self.direct, 'COMPLETED', 0)
    self.assertIn(f'job {job}: attempt 1 (SLURM_RESTART_COUNT=0)', text)
    self.assertIn('Final results after 3 steps', text)
    self.assertIn('the run finished.', text)
    self.assert_same_run(workdir, self.local_run('three'))

  def test_failed_run_is_not_requeued(self):
    job, _, log = self.failing
    (task,) = self.wait_job(job, log)
    self.assertEqual((task['JobState'], task['Restarts'], task['ExitCode']),
                     ('FAILED', '0', '1:0'))
    text = self.read(log)
    self.assertIn('the time limit is 160 s or less away (USR1)', text)  # and yet:
    self.assertIn(f'Cannot write to the workdir {self.root}/file/run (Not a directory)',
                  text)
    self.assertIn('the run failed (status 1; the error is above); the job is not '
                  'requeued.', text)

  def test_missing_setup_venv_is_named(self):
    job, _, log = self.no_venv
    (task,) = self.wait_job(job, log)
    self.assertEqual((task['JobState'], task['ExitCode']), ('FAILED', '2:0'))
    text = self.read(log)
    self.assertIn(f'{self.root}/no_venv/bin/activate: No such file or directory', text)
    self.assertIn('the set-up lines (--setup) failed', text)
    self.assertNotIn('hyperproto.main', text)  # nothing was run

  def test_preemption_requeues_and_the_log_keeps_every_attempt(self):
    job, workdir, _ = self.preempt
    text = self.assert_state(self.preempt, 'COMPLETED', 1)
    step = int(re.search(r'checkpoint saved at step (\d+)', text).group(1))
    self.assertLess(step, 600)
    for line in (f'job {job}: attempt 1 (SLURM_RESTART_COUNT=0)', 'SIGTERM: the job is',
                 f'JOB {job} ON', 'DUE TO JOB REQUEUE',
                 f'job {job}: attempt 2 (SLURM_RESTART_COUNT=1)',
                 f'Resuming from step {step} of 600', 'Final results after 600 steps'):
      self.assertIn(line, text)
    self.assertLess(text.index('attempt 1'), text.index('attempt 2'))  # appended
    self.assert_same_run(workdir, self.local_run('short'))

  def test_srun_two_processes_train_like_one_and_stop_together(self):
    _, workdir, _ = self.two
    text = self.assert_state(self.two, 'COMPLETED', 1)
    self.assertIn('Multi-process run (slurm): jax.distributed.initialize(auto-detected)',
                  text)
    stops = re.findall(r'main\.py:\d+\] Training interrupted; checkpoint saved at step '
                       r'(\d+)', text)
    self.assertLen(stops, 2)  # Both processes, after the same step:
    self.assertEqual(stops[0], stops[1])
    self.assertIn(f'Resuming from step {stops[0]} of 40', text)
    self.assertEqual(text.count('Final results after 40 steps'), 1)  # process 0
    one = self.local_run('one')
    results = [results_without_time(w) for w in (workdir, one)]
    self.assertAlmostEqual(results[0]['test/mae'], results[1]['test/mae'], places=3)
    self.assertEqual(results[0]['test/num_examples'], 359)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5),
                 helpers.final_params(workdir), helpers.final_params(one))

  def test_sweep_runs_as_a_job_array_and_skips_finished_cells(self):
    job = int(re.search(r'Submitted job array (\d+) \(2 runs\)', self.sweep).group(1))
    tasks = self.wait_job(job)
    # Each task requeued itself once, and only itself (a task's own job id can name
    # the whole array).
    self.assertEqual([(t['JobState'], t['Restarts']) for t in tasks],
                     [('COMPLETED', '1')] * 2)
    sweep = f'{self.root}/sweep'
    for task in (0, 1):
      text = self.read(f'{sweep}/digits/slurm/digits-compare-{job}_{task}.out')
      self.assertIn(f'job {job}_{task}: attempt 2 (SLURM_RESTART_COUNT=1)', text)
      self.assertIn('Final results after 2 steps', text)
    sys.path.insert(0, os.path.join(helpers.ROOT, 'experiments'))
    import tables  # pylint: disable=g-import-not-at-top
    text = tables.render(sweep, [])
    for cell in ('method=hpn', 'method=baseline'):
      self.assertRegex(text, rf'\| digits \| {cell} \| \d+\.\d ± 0\.0 \(1\) \|')
    self.assertNotIn('Unfinished', text)
    out = self.launch_sweep('--submit')
    self.assertIn('2 of 2 runs finished (results.json): skipped.', out)
    self.assertNotIn('Submitted', out)
    os.remove(f'{sweep}/digits/method-baseline/seed0/results.json')
    out = self.launch_sweep('--dry_run')
    self.assertIn('1 of 2 runs finished', out)
    self.assertIn(f'task 0: {sweep}/digits/method-baseline/seed0', out)
    self.assertIn('#SBATCH --array=0-0', out)

  def test_time_limit_requeues_itself_twice_and_completes_bitwise(self):
    job, workdir, _ = self.time_limit
    text = self.assert_state(self.time_limit, 'COMPLETED', 2)
    for attempt in range(3):
      self.assertIn(f'job {job}: attempt {attempt + 1} (SLURM_RESTART_COUNT={attempt})',
                    text)
    self.assertEqual(text.count('the time limit is 160 s or less away (USR1)'), 3)
    self.assertEqual(text.count('requeueing the job'), 2)
    for step in (1, 2):
      self.assertIn(f'checkpoint saved at step {step}.', text)
      self.assertIn(f'Resuming from step {step} of 3', text)
    self.assertIn('Final results after 3 steps', text)
    self.assert_same_run(workdir, self.local_run('three'))


if __name__ == '__main__':
  absltest.main()
