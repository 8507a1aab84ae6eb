r"""Recomputes the best-known 3-D packings of `certificates.best_known` from their files.

  PYTHONPATH=. python experiments/tammes_best_known.py --packings=DIR

DIR holds N. J. A. Sloane's coordinate files pack.3.N.txt (Hardin, Sloane and Smith,
Tables of spherical codes, neilsloane.com/packings/dim3/; mirrored, N = 4..130, in
github.com/josephko91/spherical-code, data/text-files/). Each file is 3N coordinates, one
point per line or one number per line, with a trailing comment in some (N = 24); N = 124
is in integer form (a header "3 124 1", then coordinates x 2^30). For every N the max
cosine is computed in float64 and compared with the table in certificates.py (1e-11;
1e-8 for the proven optima, tabulated as closed forms or angles to 7 decimals); prints
one line per N and exits non-zero on a mismatch.
"""

import os

from absl import app
from absl import flags
import numpy as np

from hyperproto.prototypes import certificates

_PACKINGS = flags.DEFINE_string('packings', None, 'Folder of pack.3.N.txt files.',
                                required=True)


def read_packing(path: str, n: int) -> np.ndarray:
  """The N x 3 unit rows of a pack.3.N.txt file (either format above)."""
  numbers = []
  with open(path) as f:
    for line in f:
      try:
        numbers += [float(x) for x in line.split()]
      except ValueError:  # A comment line ("min angle = ...", "date: ...").
        pass
  p = np.asarray(numbers, np.float64)
  if p.size == 3 * n + 3 and tuple(p[:3]) == (3, n, 1):
    p = p[3:] / 2**30  # Integer form.
  if p.size != 3 * n:
    raise ValueError(f'{path}: {p.size} numbers, expected {3 * n} (3 x N).')
  p = p.reshape(n, 3)
  return p / np.linalg.norm(p, axis=1, keepdims=True)


def main(argv):
  del argv
  bad = 0
  for n in range(3, 131):
    path = os.path.join(_PACKINGS.value, f'pack.3.{n}.txt')
    if not os.path.exists(path):
      continue
    p = read_packing(path, n)
    cos = p @ p.T
    np.fill_diagonal(cos, -np.inf)
    value = float(cos.max())
    known, source = certificates.best_known(n, 3)
    # The proven optima are closed forms or angles to 7 decimals: 1e-8 in cosine.
    ok = abs(value - known) <= (1e-11 if 'not proven' in source else 1e-8)
    bad += not ok
    print(f'{n:4d}  max cos {value:.12f}  min angle {np.degrees(np.arccos(value)):.7f}  '
          f'table {known:.12f}  {"ok" if ok else "MISMATCH"}  ({source})')
  if bad:
    raise SystemExit(f'{bad} mismatches')


if __name__ == '__main__':
  app.run(main)
