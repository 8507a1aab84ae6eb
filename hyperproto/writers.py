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
