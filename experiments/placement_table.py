r"""Prototype placement: ours (`auto`) vs. the original recipe (`hpn`) vs. the bounds.

  PYTHONPATH=. python experiments/placement_table.py \
      --output=experiments/results/placement_table.md

Sections, each cell timed:
  * The paper's grid (C=100 x d in {3,5,10,25,50,100}; C=200 x d in {10,25,50,100,200};
    C=46 x d=46) plus 12 points in 3-D, next to the original recipe (`hpn`, 10k steps;
    `--nohpn` leaves it out).
  * Codes: the Kerdock cells (288, 16), (4224, 64), (66048, 256) (exact to 1e-9) and
    (1000, 64) (<= 0.125 in <= 60 s).
  * Budget: a spread of cells with C <= 1,000, d <= 128 (<= 60 s each).
  * 3-D: the proven Tammes optima N = 3..14 and 24 (within 0.05 degrees).
  * 3-D, best known (`tammes`): N = 15..--tammes_max (but 24) against the best-known
    packings of Hardin, Sloane and Smith (tabulated to N = 130, certificates.py): within
    0.05 degrees in <= 60 s for N <= 100, reported beyond. Alone:
      PYTHONPATH=. python experiments/placement_table.py --sections=tammes --noscale \
          --output=experiments/results/placement_3d.md
  * Seeds (`seeds`): each of SEED_CELLS (method, C, d) for seeds 0..19 (`--num_seeds`),
    the best and the worst max cos (max |cos| for `ebv`), duplicates and time per seed:
    whether a researcher's placement depends on the seed. The fast cells are also a test
    (tests/placement_test.py, EverySeedTest). Alone:
      PYTHONPATH=. python experiments/placement_table.py --sections=seeds --noscale \
          --output=experiments/results/placement_seeds.md
  * Scale (`--scale`): C = 10,000 at d = 128 (auto), C = 100,000 at d = 512 from two
    256-d Kerdock codes (`construction`, family='kerdock') and by `auto` (the Gold code
    of length 511), each placed and certified in a fresh subprocess that reports its
    peak RSS. `--large` adds the Kerdock code in d = 1024 (1,050,624 points at 1/32,
    4.3 GB; about a minute), not run by default:
      PYTHONPATH=. python experiments/placement_table.py --sections= --noscale --large \
          --output=/tmp/placement_large.md
Every cell lists the max cos, the target, every lower bound that applies (simplex /
Rankin / Levenshtein; certificates.py), the best-known value where one is tabulated, and
the gaps. Only the paper's grid runs the original recipe.
"""

import json
import resource
import subprocess
import sys
import time
from typing import Optional

from absl import app
from absl import flags
import numpy as np

from hyperproto import prototypes

_OUTPUT = flags.DEFINE_string('output', 'experiments/results/placement_table.md',
                              'Markdown file to write.')
_SEED = flags.DEFINE_integer('seed', 300, 'Seed for every placement.')
_HPN = flags.DEFINE_bool('hpn', True, 'Run the original recipe (10k steps) on the '
                         "paper's grid.")
_SCALE = flags.DEFINE_bool('scale', True, 'Add the C=10,000 and C=100,000 rows.')
_LARGE = flags.DEFINE_bool('large', False, 'Add the 1,050,624 x 1024 Kerdock row to the '
                           'scale rows (about a minute, 4.3 GB of memory).')
_SECTIONS = flags.DEFINE_list('sections', ['grid', 'codes', 'budget', 'proven', 'tammes'],
                              "Sections to run: grid (the paper's), codes, budget (C <= "
                              '1,000, d <= 128: time only), proven (3-D, '
                              'N = 3..14 and 24), tammes (3-D, N = tammes_min..tammes_max '
                              'against the best known), seeds (SEED_CELLS over seeds '
                              '0..num_seeds-1). --scale adds the scale rows.')
_NUM_SEEDS = flags.DEFINE_integer('num_seeds', 20, 'Seeds 0..num_seeds-1 of the seeds '
                                   'section.')
_TAMMES_MIN = flags.DEFINE_integer('tammes_min', 15, 'First N of the tammes section.')
_TAMMES_MAX = flags.DEFINE_integer('tammes_max', 200, 'Last N of the tammes section.')
_CELL = flags.DEFINE_string('cell', None, 'Internal: place and certify one "C,d,family" '
                            'cell (family empty: auto), print JSON (the scale rows run '
                            'this in a subprocess).')

GRID = ([(100, d) for d in (3, 5, 10, 25, 50, 100)]
        + [(200, d) for d in (10, 25, 50, 100, 200)] + [(46, 46), (12, 3)])
CODES = [(288, 16), (4224, 64), (66048, 256), (1000, 64)]
# `budget`: any C <= 1,000, d <= 128 in <= 60 s; a spread of cells without an exact
# optimum (a time target only; the bounds and gaps are listed).
BUDGET = [(1000, 3), (1000, 10), (1000, 33), (1000, 50), (1000, 100), (1000, 128),
          (700, 20), (500, 127)]
TAMMES = [(n, 3) for n in list(range(3, 15)) + [24] if n != 12]
# The seeds section: (label, placement, C, d, kwargs, target). Max |cos| for the lines
# (EBV's criterion), max cos otherwise. Target: ('=', value, tol) every seed within tol
# of value; ('<=', value, tol) every seed at most value + tol; None: reported only.
SNUB = float(np.cos(np.radians(43.6907671)))  # 24 points in 3-D, proven.
SEED_CELLS = [
    ('ebv', 'ebv', 6, 3, {}, ('=', 5 ** -0.5, 1e-3)),  # The icosahedron's axes.
    ("ebv's optimiser", 'separation', 6, 3, 'ebv', ('=', 5 ** -0.5, 1e-3)),
    ('ebv', 'ebv', 12, 3, {}, ('=', 0.7445208, 1e-3)),  # Best known (Conway et al.).
    ('separation', 'separation', 24, 3, {}, ('=', SNUB, 1e-3)),
    ('auto', 'auto', 24, 3, {}, ('=', SNUB, 1e-6)),
    ('auto', 'auto', 100, 10, {}, ('<=', 1 / 3, 1e-9)),  # The triples code's 1/3.
    ('separation', 'separation', 100, 10, {}, None),
    ('hpn (original recipe)', 'hpn', 100, 10, {}, None),
    ('ebv', 'ebv', 100, 10, {}, None),
    ('uniformity (DL2PA)', 'uniformity', 24, 3, {}, None),
    ('uniformity (DL2PA)', 'uniformity', 100, 10, {}, None),
    ('auto', 'auto', 200, 25, {}, None),
    ('busemann (d = 2)', 'busemann', 10, 2, {}, ('=', float(np.cos(2 * np.pi / 10)), 1e-6)),
    ('ebv (d = 2)', 'ebv', 10, 2, {}, ('=', float(np.cos(np.pi / 10)), 1e-6)),
]
# (C, d, construction family or None for `auto`).
SCALE = [(10_000, 128, None), (100_000, 512, 'kerdock'), (100_000, 512, None)]
SCALE_LARGE = [(1_050_624, 1024, None)]  # `--large`: the Kerdock code in d = 1024.
# The targets: a strong optimiser's values (+ 1e-3 tolerance) where no optimum
# is known; the optima themselves (1e-9) elsewhere; 0.05 degrees in 3-D.
STRONG = {(100, 3): 0.93339, (100, 5): 0.68501, (100, 10): 0.33462, (100, 25): 0.11050,
          (200, 10): 0.45378, (200, 25): 0.18243, (200, 50): 0.07595}
AT_MOST = {(1000, 64): 0.125, (100_000, 512): 0.0625,
           (10_000, 128): 15 / 127}  # The Gold code's max cos.
# Time targets (placement + certificate), by (C, d, family); the paper's grid: 60 s.
SECONDS = {(1000, 64, None): 60, (100_000, 512, 'kerdock'): 120, (100_000, 512, None): 120,
           (1_050_624, 1024, None): 300}
# The tammes section's target, for N <= TAMMES_TARGET_N: within TAMMES_DEGREES of the best
# known in <= 60 s.
TAMMES_DEGREES = 0.05
TAMMES_TARGET_N = 100


def target(c: int, d: int, metrics: dict) -> tuple[float, float, str]:
  """(value, tolerance, description) the cell must reach."""
  if (c, d) in STRONG:
    return STRONG[(c, d)], 1e-3, f'{STRONG[(c, d)]:.5f} ± 0.001'
  if (c, d) in AT_MOST:
    return AT_MOST[(c, d)], 1e-12, f'≤ {AT_MOST[(c, d)]:.5f}'
  if d == 3 and 'best_known' in metrics:
    goal = metrics['best_known']
    # 0.05 degrees at the optimum's angle, as a cosine.
    tol = np.cos(np.arccos(goal) - np.radians(0.05)) - goal
    return goal, tol, f'{np.degrees(np.arccos(goal)):.4f}° − 0.05°'
  if 'best_known' in metrics:
    return metrics['best_known'], 1e-9, f'{metrics["best_known"]:.5f} ± 1e-9'
  bound = max(metrics['bounds'].values())
  return bound, 1e-9, f'{bound:.5f} ± 1e-9'


def place_and_certify(c: int, d: int, seed: int, family: str = '') -> dict:
  start = time.perf_counter()
  if family:
    best = prototypes.codes.best_construction(c, d, family)
    protos, resolved = prototypes.place('construction', c, d, seed, family=family), (
        f'construction (family={family}): {best.name}')
  else:
    protos, resolved = prototypes.auto_placement(c, d, seed)
  protos = np.asarray(protos, np.float32)  # No copy of a float32 code (4.3 GB at d=1024).
  seconds = time.perf_counter() - start
  start = time.perf_counter()
  m = prototypes.certify(protos)
  m.update(resolved=resolved, seconds=seconds,
           certify_seconds=time.perf_counter() - start,
           peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
  return m


def _bounds(m: dict) -> str:
  return ', '.join(f'{k} {v:.5f}' for k, v in m['bounds'].items())


def _row(c, d, m, hpn_cols=None, family=None, time_only=False) -> tuple[str, bool]:
  if time_only:
    met, goal_text = m['num_duplicates'] == 0, 'time only'
  else:
    goal, tol, goal_text = target(c, d, m)
    met = m['max_cos'] <= goal + tol and m['num_duplicates'] == 0
  limit = SECONDS.get((c, d, family), 60 if (c, d) in GRID or time_only else None)
  if limit is not None:
    met &= m['seconds'] + m['certify_seconds'] <= limit
    goal_text += f' in ≤ {limit} s'
  known = '–'
  if 'best_known' in m:
    known = f'{m["best_known"]:.7f} (gap {m["gap_to_best_known"]:.1e})'
  best = m['best_bound_name']
  cols = [c, d, m['resolved'], f'{m["max_cos"]:.9f} ({m["min_angle_deg"]:.3f}°)',
          f'{m["seconds"]:.1f} s + {m["certify_seconds"]:.1f} s', goal_text,
          'yes' if met else '**no**', m['num_duplicates']]
  if hpn_cols is not None:
    cols += hpn_cols
  cols += [_bounds(m), f'{m["gaps"][best]:.2e} ({best})', known]
  return '| ' + ' | '.join(str(x) for x in cols) + ' |', met


def _tammes_row(n: int, m: dict) -> tuple[str, Optional[bool], Optional[float]]:
  """A row of the tammes section; met (None: report only) and the gap in degrees."""
  seconds = m['seconds'] + m['certify_seconds']
  known, gap = m.get('best_known'), None
  if known is not None:
    gap = np.degrees(np.arccos(known)) - m['min_angle_deg']
  met = None
  if n <= TAMMES_TARGET_N:
    met = gap is not None and gap <= TAMMES_DEGREES and seconds <= 60
    met &= m['num_duplicates'] == 0
  cols = [n, m['resolved'], f'{m["max_cos"]:.9f}', f'{m["min_angle_deg"]:.5f}°',
          '–' if known is None else f'{np.degrees(np.arccos(known)):.5f}°',
          '–' if gap is None else f'{gap:+.5f}°', f'{seconds:.1f} s',
          'report only' if met is None else ('yes' if met else '**no**')]
  return '| ' + ' | '.join(str(x) for x in cols) + ' |', met, gap


def _tammes_section(seed: int) -> tuple[list[str], bool]:
  """The tammes section's lines and whether every N <= TAMMES_TARGET_N met its target."""
  rows, gaps, times, all_met = [], {}, [], True
  for n in range(_TAMMES_MIN.value, _TAMMES_MAX.value + 1):
    if n == 24:  # Proven (the snub cube): in the proven section.
      continue
    m = place_and_certify(n, 3, seed)
    row, met, gap = _tammes_row(n, m)
    all_met &= met is not False
    gaps[n] = gap
    times.append(m['seconds'] + m['certify_seconds'])
    print(row, flush=True)
    rows.append(row)
  header = ['N', 'ours: method', 'max cos', 'min angle', 'best known', 'gap', 'time',
            f'within {TAMMES_DEGREES}° in ≤ 60 s']
  lines = _table('3-D: the best-known packings (Hardin, Sloane and Smith; not proven)',
                 header, rows)
  for lo, hi in ((_TAMMES_MIN.value, TAMMES_TARGET_N), (TAMMES_TARGET_N + 1, 10**9)):
    known = {n: g for n, g in gaps.items() if lo <= n <= hi and g is not None}
    if known:
      worst = max(known, key=known.get)
      within = sum(g <= TAMMES_DEGREES for g in known.values())
      lines.append(f'N = {min(known)}..{max(known)}: {within} of {len(known)} within '
                   f'{TAMMES_DEGREES}° of the best known; largest gap {known[worst]:+.5f}° '
                   f'(N = {worst}); mean gap {np.mean(list(known.values())):+.5f}°.')
  lines += [f'Slowest cell {max(times):.1f} s, all cells {sum(times):.0f} s.', '']
  return lines, all_met


def _seeds_section() -> tuple[list[str], bool]:
  """The seeds section's lines and whether every cell with a target met it."""
  rows, all_met = [], True
  seeds = range(_NUM_SEEDS.value)
  for label, method, c, d, kwargs, target in SEED_CELLS:
    lines = method == 'ebv' or kwargs == 'ebv'
    if kwargs == 'ebv':
      kwargs = dict(criterion='max_abs_cos', **prototypes.separation.ebv_defaults(c, d))
    values, dups, seconds = [], 0, []
    for seed in seeds:
      start = time.perf_counter()
      m = prototypes.certify(prototypes.place(method, c, d, seed, **kwargs))
      seconds.append(time.perf_counter() - start)
      values.append(m['max_abs_cos'] if lines else m['max_cos'])
      dups += m['num_duplicates']
    met, goal_text = None, '–'
    if target is not None:
      kind, goal, tol = target
      met = dups == 0 and (max(values) <= goal + tol if kind == '<=' else
                           max(abs(v - goal) for v in values) <= tol)
      goal_text = f'{goal:.7f} ± {tol:g}' if kind == '=' else f'≤ {goal:.7f}'
      all_met &= met
    worst, best = int(np.argmax(values)), int(np.argmin(values))
    cols = [label, c, d, r'max \|cos\|' if lines else 'max cos',
            f'{values[best]:.7f} (seed {best})', f'{values[worst]:.7f} (seed {worst})',
            f'{values[worst] - values[best]:.1e}', dups,
            goal_text, 'report only' if met is None else ('yes' if met else '**no**'),
            f'{np.median(seconds):.2f} s']
    row = '| ' + ' | '.join(str(x) for x in cols) + ' |'
    print(row, flush=True)
    rows.append(row)
  header = ['placement', 'C', 'd', 'criterion', 'best', 'worst', 'spread', 'dups',
            'target', 'met', 'time per seed (median)']
  return _table(f'Seeds 0..{_NUM_SEEDS.value - 1}: the spread of one cell over seeds',
                header, rows), all_met


def _table(title, header, rows):
  return [f'## {title}', '', '| ' + ' | '.join(header) + ' |',
          '|' + '---|' * len(header)] + rows + ['']


def main(argv):
  del argv
  unknown = set(_SECTIONS.value) - {'grid', 'codes', 'budget', 'proven', 'tammes', 'seeds'}
  if unknown:
    raise app.UsageError(f'Unknown --sections {sorted(unknown)}; use grid, codes, budget, '
                         'proven, tammes, seeds.')
  if _CELL.value:
    c, d, family = _CELL.value.split(',')
    m = place_and_certify(int(c), int(d), _SEED.value, family)
    print(json.dumps({k: v for k, v in m.items() if not isinstance(v, np.ndarray)}))
    return
  lines = ['# Prototype placement: ours vs. the original recipe vs. the bounds', '',
           'Command: `PYTHONPATH=. python ' + ' '.join(sys.argv) + '`', '',
           f'Seed {_SEED.value} (the seeds section: its own seeds); float32 prototypes, '
           'certified by `certify` (float64, or '
           'exact integer arithmetic for codes); times are wall clock on this machine (2 '
           'CPU cores, shared with other jobs) and include compilation: placement + '
           'certificate.', '']
  base = ['C', 'd', 'ours: method', 'ours: max cos (min angle)', 'time', 'target',
          'met', 'dups']
  tail = ['lower bounds', 'gap to the best bound', 'best known (gap)']
  all_met = True
  sections = [('grid', 'The paper\'s grid', GRID, True), ('codes', 'Codes', CODES, False),
              ('budget', 'Any C ≤ 1,000, d ≤ 128 in ≤ 60 s (a spread of cells)', BUDGET,
               False),
              ('proven', '3-D: the proven Tammes optima', TAMMES, False)]
  for name, title, cells, with_hpn in sections:
    if name not in _SECTIONS.value:
      continue
    rows = []
    hpn_head = (['original (hpn, 10k): max cos', 'dups', 'time']
                if with_hpn and _HPN.value else [])
    for c, d in cells:
      m = place_and_certify(c, d, _SEED.value)
      hpn_cols = None
      if hpn_head:
        start = time.perf_counter()
        h = prototypes.separation_metrics(prototypes.place('hpn', c, d, _SEED.value))
        hpn_cols = [f'{h["max_cos"]:.5f}', h['num_duplicates'],
                    f'{time.perf_counter() - start:.1f} s']
      row, met = _row(c, d, m, hpn_cols, time_only=name == 'budget')
      all_met &= met
      print(row, flush=True)
      rows.append(row)
    lines += _table(title, base + hpn_head + tail, rows)
  if 'seeds' in _SECTIONS.value:
    seed_lines, met = _seeds_section()
    lines += seed_lines
    all_met &= met
  if 'tammes' in _SECTIONS.value:
    tammes_lines, met = _tammes_section(_SEED.value)
    lines += tammes_lines
    all_met &= met
  if _SCALE.value or _LARGE.value:
    rows = []
    for c, d, family in (SCALE if _SCALE.value else []) + (SCALE_LARGE if _LARGE.value
                                                          else []):
      done = subprocess.run([sys.executable, __file__, f'--cell={c},{d},{family or ""}',
                             f'--seed={_SEED.value}'], capture_output=True, text=True,
                            check=True)
      m = json.loads(done.stdout.strip().splitlines()[-1])
      row, met = _row(c, d, m, family=family)
      row += f' {m["peak_rss_gb"]:.2f} GB |'
      all_met &= met
      print(row, flush=True)
      rows.append(row)
    lines += _table('Scale (a fresh process per cell; blocked certificate, no C x C '
                    'matrix)', base + tail + ['peak RSS'], rows)
  lines += [f'All targets met: {"yes" if all_met else "no"}.', '']
  with open(_OUTPUT.value, 'w') as f:
    f.write('\n'.join(lines))
  print(f'Wrote {_OUTPUT.value}')


if __name__ == '__main__':
  app.run(main)
