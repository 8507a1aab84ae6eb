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


class Progress:
  """Step rate and ETA between calls of `report` (the first interval starts after the
  first step, so compilation is timed apart)."""

  def __init__(self, total_steps: int, batch_size: int):
    self._total = total_steps
    self._batch = batch_size
    self._t = None
    self._step = None

  def start(self, step: int) -> None:
    self._t, self._step = time.perf_counter(), step

  def report(self, step: int) -> Optional[str]:
    now = time.perf_counter()
    if self._t is None or step <= self._step:
      return None
    rate = (step - self._step) / max(now - self._t, 1e-9)
    self._t, self._step = now, step
    eta = datetime.timedelta(seconds=round((self._total - step) / rate))
    return (f'{rate:.1f} steps/s, {rate * self._batch:.0f} examples/s, '
            f'{100.0 * step / self._total:.0f}%, ETA {eta}')


def write_json(path: str, obj) -> None:
  """Writes JSON atomically (a reader never sees a half-written file)."""
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def plot_curves(workdir: str, path: Optional[str] = None) -> Optional[str]:
  """Training curves from `workdir/metrics.jsonl` as a PNG (one panel per metric name
  after the '/', train and evaluation splits together); None when matplotlib (extra
  `plot`) is not installed."""
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
  panels = sorted({name.split('/', 1)[1] for name in series} - {'count', 'num_examples'})
  if not panels:
    return None
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
  for ax, panel in zip(axes[0], panels):
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
