r"""Privileged information: max cos vs. semantic agreement on CIFAR-100 class names.

  PYTHONPATH=. python experiments/semantic_tradeoff.py --dim=10

Class names are embedded offline by MiniLM (extra `embed`); agreement is the Spearman
correlation of prototype cosines with embedding cosines over all class pairs.
"""

import sys
import time

from absl import app
from absl import flags

from hyperproto import prototypes
from hyperproto.data import class_names
from hyperproto.prototypes import semantic
from hyperproto.prototypes import text_embed

_DIM = flags.DEFINE_integer('dim', 10, 'Prototype dimension.')
_OUTPUT = flags.DEFINE_string('output', 'experiments/results/semantic_tradeoff.md',
                              'Markdown file to write.')


def main(argv):
  del argv
  emb = text_embed.embed(list(class_names.CIFAR100))
  c, d = len(emb), _DIM.value
  lines = ['# CIFAR-100 prototypes: separation vs. semantic agreement', '',
           'Command: `PYTHONPATH=. python ' + ' '.join(sys.argv) + '`', '',
           f'C={c}, d={d}, seed 300, MiniLM class-name embeddings.', '',
           '| placement | max cos | Spearman (prototype vs. embedding cosines) | time |',
           '|---|---|---|---|']
  runs = [('embedding (PCA baseline)', 'embedding', {}),
          ('hpn (original)', 'hpn', {}), ('separation', 'separation', {})]
  runs += [(f'semantic, pi_weight={w:g}', 'semantic', {'pi_weight': w})
           for w in (0.1, 0.3, 1.0, 3.0)]
  for label, method, kw in runs:
    if method in ('embedding', 'semantic'):
      kw = dict(kw, embeddings=emb)
    start = time.perf_counter()
    p = prototypes.place(method, c, d, **kw)
    secs = time.perf_counter() - start
    row = (f'| {label} | {prototypes.max_cos(p):.4f} | '
           f'{semantic.semantic_agreement(p, emb):.3f} | {secs:.1f} s |')
    print(row, flush=True)
    lines.append(row)
  with open(_OUTPUT.value, 'w') as f:
    f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
  app.run(main)
