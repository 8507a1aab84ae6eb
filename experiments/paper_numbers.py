"""Published numbers, keyed by the config cells that reproduce them: the HPN paper's
tables (HPN.md section 4) and those of the fixed-classifier papers after it.

Each table: its config (one for all columns, None: the column names it, or a dict
column -> config), metric, columns, and rows; a row is (label, cells) or (label, cells,
source), a cell (`:arg` string of the config, published mean, published std) with None
where the paper has no number (or gives no std). `experiments/tables.py` prints our
measured mean +- std next to these, and each row's source under its table.
"""

TABLES = {
    'table1': dict(
        title='Table 1: CIFAR-100 accuracy (%) by output dimension',
        config='cifar100', metric='test/accuracy', scale=100.0,
        columns=('10', '25', '50', '100'),
        rows=[
            ('one-hot', {'100': ('prototypes=one_hot,dim=100', 62.1, 0.1)}),
            ('word2vec (class-name embeddings)', {
                '10': ('prototypes=embedding,dim=10', 29.0, 0.0),
                '25': ('prototypes=embedding,dim=25', 44.5, 0.5),
                '50': ('prototypes=embedding,dim=50', 54.3, 0.1),
                '100': ('prototypes=embedding,dim=100', 57.6, 0.6)}),
            ('HPN (original placement)', {
                '10': ('prototypes=hpn,dim=10', 51.1, 0.7),
                '25': ('prototypes=hpn,dim=25', 63.0, 0.1),
                '50': ('prototypes=hpn,dim=50', 64.7, 0.2),
                '100': ('prototypes=hpn,dim=100', 65.0, 0.3)}),
            ('HPN (our placement)', {
                c: (f'prototypes=ours,dim={c}', None, None)
                for c in ('10', '25', '50', '100')}),
        ]),
    'table2': dict(
        title='Table 2: CIFAR-100 accuracy (%) with privileged information',
        config='cifar100', metric='test/accuracy', scale=100.0,
        columns=('3', '5', '10', '25'),
        rows=[
            ('HPN', {'3': ('prototypes=hpn,dim=3', 5.5, 0.3),
                     '5': ('prototypes=hpn,dim=5', 28.7, 0.4),
                     '10': ('prototypes=hpn,dim=10', 51.1, 0.7),
                     '25': ('prototypes=hpn,dim=25', 63.0, 0.1)}),
            ('HPN + privileged info', {
                '3': ('prototypes=semantic,dim=3', 11.5, 0.4),
                '5': ('prototypes=semantic,dim=5', 37.0, 0.8),
                '10': ('prototypes=semantic,dim=10', 57.0, 0.6),
                '25': ('prototypes=semantic,dim=25', 64.0, 0.2)}),
            ('HPN (our placement)', {
                c: (f'prototypes=ours,dim={c}', None, None) for c in ('3', '5', '10', '25')}),
        ]),
    'table3': dict(
        title='Table 3: accuracy (%) vs. softmax cross-entropy',
        config=None, metric='test/accuracy', scale=100.0,
        columns=('cifar100', 'imagenet200', 'cub'),
        rows=[
            ('softmax CE', {'cifar100': ('method=softmax', 64.4, 0.4),
                            'imagenet200': ('method=softmax', 44.2, 0.0),
                            'cub': ('method=softmax', 43.1, 0.6)}),
            ('HPN', {'cifar100': ('prototypes=hpn,dim=100', 65.0, 0.3),
                     'imagenet200': ('prototypes=hpn', 46.4, 0.0),
                     'cub': ('prototypes=hpn', 47.3, 0.1)}),
            ('HPN (our placement)', {'cifar100': ('prototypes=ours,dim=100', None, None),
                                     'imagenet200': ('prototypes=ours', None, None),
                                     'cub': ('prototypes=ours', None, None)}),
        ]),
    'table4': dict(
        title='Table 4: OmniArt creation year, MAE (years; lower is better)',
        config='omniart', metric='test/mae', scale=1.0,
        columns=('2-D, lr 1e-2', '2-D, lr 1e-3', '3-D, lr 1e-2', '3-D, lr 1e-3'),
        rows=[
            (name, {f'{d}-D, lr 1e-{e}': (
                f'task=regression,method={method},dim={d},lr={10.0 ** -e:g}', *paper)
                    for (d, e), paper in zip(((2, 2), (2, 3), (3, 2), (3, 3)), numbers)})
            for name, method, numbers in (
                ('MSE', 'mse', ((210.7, 140.1), (110.3, 0.8), (339.9, 0.0), (109.9, 0.5))),
                ('HPN', 'hpn', ((84.4, 10.7), (76.3, 5.6), (82.9, 1.9), (73.2, 0.6))))
        ]),
    'table5': dict(
        title='Table 5: OmniArt joint year (MAE) and style (accuracy %)',
        config='omniart', metric=None, scale=None,
        columns=('year MAE', 'style accuracy'),
        rows=[
            ('multi-task baseline', {
                'year MAE': ('task=joint,method=multitask', 354.7, 7.8),
                'style accuracy': ('task=joint,method=multitask', 47.2, 0.4)}),
            ('HPN (joint)', {'year MAE': ('task=joint,prototypes=hpn', 68.3, 1.1),
                             'style accuracy': ('task=joint,prototypes=hpn', 52.6, 0.1)}),
            ('HPN (joint, our placement)', {
                'year MAE': ('task=joint,prototypes=ours', None, None),
                'style accuracy': ('task=joint,prototypes=ours', None, None)}),
        ]),
}

# The long-tailed tables of Saadabadi et al. (DL2PA, CVPR 2024), as its repository's
# readme.md prints them (msed-Ebrahimi/DL2PA_CVPR24, commit 132d3f7; the table
# copies the paper's, the same values): its "PSC" (a learnable softmax classifier) and
# "ETF" rows are Yang et al.'s (NeurIPS 2022, ETF classifier + dot-regression loss),
# which DL2PA cites. ResNet-32, test accuracy (%), one number per cell, no std; the LT
# references log the best test accuracy over the 200 epochs ("Best Prec@1", evaluated
# after every epoch), not the last.
_LT_SOURCE = ('Saadabadi et al., CVPR 2024 (DL2PA), long-tailed tables, as in '
              'msed-Ebrahimi/DL2PA_CVPR24 readme.md')
_LT_COLUMNS = tuple(f'{d} {r}' for d in ('CIFAR-10-LT', 'CIFAR-100-LT')
                    for r in ('0.005', '0.01', '0.02'))
_LT_RECIPES = {'softmax': 'method=softmax,recipe=etf', 'etf': 'method=etf,recipe=etf',
               'dl2pa': 'method=dl2pa,recipe=dl2pa_lt', 'hpn': 'method=hpn,recipe=hpn,dim=64'}


def _lt_cells(method, numbers):
  return {column: (f'{_LT_RECIPES[method]},backbone=resnet32,imbalance='
                   f'{column.split()[1]}', value, None)
          for column, value in zip(_LT_COLUMNS, numbers)
          if value is not None or column.startswith('CIFAR-10-')}


TABLES.update({
    'lt': dict(
        title='CIFAR-10-LT and CIFAR-100-LT accuracy (%) by imbalance ratio: ResNet-32, '
              'each paper\'s recipe',
        config={c: 'cifar10' if c.startswith('CIFAR-10-') else 'cifar100'
                for c in _LT_COLUMNS},
        metric='test/accuracy', scale=100.0, columns=_LT_COLUMNS,
        rows=[
            ('softmax (learnable classifier, ETF\'s recipe)', _lt_cells(
                'softmax', (67.3, 72.8, 78.6, 38.7, 43.0, 48.1)),
             f'{_LT_SOURCE}, "PSC" row (Yang et al., NeurIPS 2022)'),
            ('ETF + DR (d = 64 / 128)', _lt_cells(
                'etf', (71.9, 76.5, 81.0, 40.9, 45.3, 50.4)),
             f'{_LT_SOURCE}, "ETF" row (Yang et al., NeurIPS 2022)'),
            ('DL2PA (d = 64 / 128)', _lt_cells(
                'dl2pa', (71.5, 76.9, 81.4, 41.3, 44.9, 50.7)),
             f'{_LT_SOURCE}, "Ours" row'),
            ('HPN (HPN\'s recipe, d = 64)', _lt_cells('hpn', (None,) * 6),
             'no published number (ours)'),
        ]),
    'dims': dict(
        title='CIFAR-100 accuracy (%) by output dimension: DL2PA beside HPN',
        config='cifar100', metric='test/accuracy', scale=100.0,
        columns=('10', '25', '50', '100'),
        rows=[
            ('softmax (learnable classifier)', {'100': ('method=softmax', 62.1, None)},
             'Saadabadi et al., CVPR 2024 (DL2PA), balanced table, "PSC" row at d = 100 '
             '(msed-Ebrahimi/DL2PA_CVPR24 readme.md; its header says CIFAR-10, but its '
             'HPN and word2vec rows are the HPN paper\'s CIFAR-100 Table 1; 62.1 is that '
             'table\'s one-hot row, and the HPN paper\'s Table 3 softmax is 64.4)'),
            ('DL2PA', {d: (f'method=dl2pa,dim={d}', v, None) for d, v in
                       (('10', 57.21), ('25', 64.63), ('50', 66.22), ('100', 62.85))},
             'Saadabadi et al., CVPR 2024 (DL2PA), balanced table, "Ours" row '
             '(msed-Ebrahimi/DL2PA_CVPR24 readme.md)'),
            ('HPN (original placement)', {d: (f'prototypes=hpn,dim={d}', m, s) for d, m, s in
                                          (('10', 51.1, 0.7), ('25', 63.0, 0.1),
                                           ('50', 64.7, 0.2), ('100', 65.0, 0.3))},
             'Mettes et al., NeurIPS 2019, Table 1'),
        ]),
})

# Table 5 has a metric per column; Table 3 a config per column.
COLUMN_METRICS = {'table5': {'year MAE': ('test/mae', 1.0),
                             'style accuracy': ('test/accuracy', 100.0)}}

for _n in range(1, 6):
  TABLES[f'table{_n}'].setdefault('source', f'Mettes et al., NeurIPS 2019 (HPN), Table {_n}')
