"""Metric writing (metrics.jsonl + TensorBoard + log) and progress lines."""

import datetime
import json
import os
import time
from typing import Mapping, Optional

from absl import logging


class MetricWriter:
  """Writes scalars to `workdir/metrics.jsonl` (one `{"step": s, name: value}` line per
  call, BV style), TensorBoard event files, and the log. Disabled (log only) on
  processes other than 0."""

  def __init__(self, workdir: str, *, enabled: bool = True):
    self._enabled = enabled
    self._jsonl = None
    self._tb = None
    if enabled:
      self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')
      import tensorboardX  # pylint: disable=g-import-not-at-top
      self._tb = tensorboardX.SummaryWriter(logdir=workdir, flush_secs=30)

  def write(self, step: int, scalars: Mapping[str, float]) -> None:
    if not self._enabled or not scalars:
      return
    scalars = {k: float(v) for k, v in scalars.items()}
    self._jsonl.write(json.dumps({'step': int(step), **scalars}) + '\n')
    self._jsonl.flush()
    for name, value in scalars.items():
      self._tb.add_scalar(name, value, global_step=int(step))

  def close(self) -> None:
    if self._enabled:
      self._jsonl.close()
      self._tb.close()


class StepTimer:
  """Steps/s and examples/s of the training steps between two calls of `rates`.

  The clock starts after the first step (`restart`), so compilation is timed apart, and
  restarts after each evaluation, so that evaluations do not count as training time.
  Call `rates` after the steps' results are fetched (the dispatch is asynchronous).
  """

  def __init__(self, total_steps: int, batch_size: int):
    self._total = total_steps
    self._batch = batch_size
    self._t = None
    self._step = None

  def restart(self, step: int) -> None:
    """Starts timing the steps after `step`."""
    self._t, self._step = time.perf_counter(), step

  def rates(self, step: int) -> dict[str, float]:
    """`steps_per_s` and `examples_per_s` of the steps since the last call; {} when none
    was timed (the first step only)."""
    now = time.perf_counter()
    if self._t is None or step <= self._step:
      return {}
    rate = (step - self._step) / max(now - self._t, 1e-9)
    self._t, self._step = now, step
    return {'steps_per_s': rate, 'examples_per_s': rate * self._batch}

  def progress(self, step: int, steps_per_s: Optional[float]) -> str:
    """'4.2 steps/s, 268 examples/s, 30%, ETA 0:01:50' (without a rate: the %)."""
    done = f'{100.0 * step / self._total:.0f}%'
    if not steps_per_s:
      return done
    eta = datetime.timedelta(seconds=round((self._total - step) / steps_per_s))
    return (f'{steps_per_s:.1f} steps/s, {steps_per_s * self._batch:.0f} examples/s, '
            f'{done}, ETA {eta}')


def write_json(path: str, obj) -> None:
  """Writes JSON atomically (a reader never sees a half-written file)."""
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


# Training scalars that curves.png draws in a second row (optimisation), or leaves to
# TensorBoard (speed, and counts).
OPTIMISATION_PANELS = ('lr', 'grad_norm', 'param_norm', 'update_norm')
NOT_PLOTTED = ('count', 'num_examples', 'steps_per_s', 'examples_per_s', 'first_step_s')


def plot_curves(workdir: str, path: Optional[str] = None) -> Optional[str]:
  """Training curves from `workdir/metrics.jsonl` as a PNG: one panel per metric name
  after the '/', train and evaluation splits together, and the optimisation scalars
  (`OPTIMISATION_PANELS`) in a second row; None when matplotlib (extra `plot`) is not
  installed."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    logging.info("No plots: pip install -e '.[plot]' for curves.png / prototypes.png.")
    return None
  series = {}
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    for line in f:
      record = json.loads(line)
      for name, value in record.items():
        if '/' in name and not name.startswith('protos/'):
          series.setdefault(name, []).append((record['step'], value))
  panels = sorted({name.split('/', 1)[1] for name in series} - set(NOT_PLOTTED))
  rows = [[p for p in panels if p not in OPTIMISATION_PANELS],
          [p for p in panels if p in OPTIMISATION_PANELS]]
  rows = [row for row in rows if row]
  if not rows:
    return None
  cols = max(len(row) for row in rows)
  fig, axes = plt.subplots(len(rows), cols, figsize=(4 * cols, 3.2 * len(rows)),
                           squeeze=False)
  for row, row_axes in zip(rows, axes):
    for ax in row_axes[len(row):]:
      ax.axis('off')
    for ax, panel in zip(row_axes, row):
      for name in sorted(n for n in series if n.split('/', 1)[1] == panel):
        steps, values = zip(*sorted(series[name]))
        ax.plot(steps, values, marker='.' if len(steps) < 30 else None,
                label=name.split('/', 1)[0])
      ax.set_title(panel)
      ax.set_xlabel('step')
      ax.legend()
  fig.tight_layout()
  path = path or os.path.join(workdir, 'curves.png')
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
