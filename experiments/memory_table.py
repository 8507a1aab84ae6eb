r"""The memory estimate (`prototypes.memory`) against the measured peak, cell by cell.

  PYTHONPATH=. python experiments/memory_table.py            # ~3 minutes on 2 cores
  PYTHONPATH=. python experiments/memory_table.py --large    # + the d = 1024 Kerdock code

Each cell runs `place_with_metadata` (placement + certificate, as the CLI does) in a
fresh process. Measured: the peak resident set (VmHWM) minus the resident set just
before the call, with the peak reset there (/proc/self/clear_refs), so imports and the
JAX runtime are not counted, as the estimate does not count them. The optimiser cells
run few steps: their memory does not depend on the number of steps.
"""

import json
import subprocess
import sys

from absl import app
from absl import flags
import numpy as np

_LARGE = flags.DEFINE_bool('large', False, 'Add the 1,050,624 x 1024 Kerdock cell '
                           '(about a minute; 4.3 GB).')
_CELL = flags.DEFINE_string('cell', None, 'Internal: one cell as JSON [method, C, d, '
                            'kwargs]; prints JSON.')

CELLS = [
    ('separation', 1000, 64, {'steps': 200}),
    ('separation', 3000, 32, {'steps': 50}),
    ('ebv', 1500, 32, {'steps': 100, 'riesz_steps': 50}),
    ('hpn', 3000, 64, {'steps': 100}),
    ('uniformity', 2000, 64, {'epochs': 2}),
    ('auto', 1000, 64, {}),
    ('separation_large', 20000, 128, {'rounds': 2}),
    ('separation_large', 60000, 128, {'rounds': 1}),
    ('construction', 100_000, 512, {'family': 'kerdock'}),
    ('auto', 100_000, 512, {}),
    ('kerdock', 66_048, 256, {}),
    ('maxsep', 2000, 1999, {}),
]
LARGE = [('auto', 1_050_624, 1024, {})]


def _status(key: str) -> int:
  """A /proc/self/status field in bytes (VmRSS, VmHWM)."""
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith(key + ':'):
        return int(line.split()[1]) * 1024
  raise KeyError(key)


def _run_cell(method: str, c: int, d: int, kwargs: dict) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  from hyperproto import prototypes  # pylint: disable=g-import-not-at-top
  from hyperproto.prototypes import separation  # pylint: disable=g-import-not-at-top
  jax.devices()
  estimate = prototypes.memory.estimate(
      'separation' if method == 'separation_large' else method, c, d, certify=True,
      **({} if method == 'separation_large' else kwargs))
  with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')  # Reset the peak (VmHWM) to the resident set now.
  before = _status('VmRSS')
  if method == 'separation_large':  # Through `place`'s path, with fewer rounds.
    protos = separation.separation_large(c, d, 300, **kwargs)
    prototypes.certify(protos.astype(np.float32))
  else:
    prototypes.place_with_metadata(method, c, d, 300, **kwargs)
  return dict(estimate=estimate.total, resolved=estimate.resolved,
              measured=_status('VmHWM') - before)


def main(argv):
  del argv
  if _CELL.value:
    print(json.dumps(_run_cell(*json.loads(_CELL.value))))
    return
  print('| method | C | d | estimate | measured peak | estimate / measured |')
  print('|---|---|---|---|---|---|')
  for method, c, d, kwargs in CELLS + (LARGE if _LARGE.value else []):
    done = subprocess.run(
        [sys.executable, __file__, '--cell=' + json.dumps([method, c, d, kwargs])],
        capture_output=True, text=True, check=True)
    m = json.loads(done.stdout.strip().splitlines()[-1])
    name = method if m['resolved'] == method else f'{method} ({m["resolved"]})'
    print(f'| {name} | {c:,} | {d} | {m["estimate"] / 1e9:.3f} GB | '
          f'{m["measured"] / 1e9:.3f} GB | {m["estimate"] / m["measured"]:.2f} |',
          flush=True)


if __name__ == '__main__':
  app.run(main)
