"""The paper's numbers (HPN.md section 4), keyed by the config cells that reproduce them.

Each table: its config, metric, columns, and rows of cells; a cell is (`:arg` string of
the config, paper mean, paper std), or None where the paper has no number. Rows marked
`ours=True` are our additions (no paper number). `experiments/tables.py` prints our
measured mean +- std next to these.
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

# Table 5 has a metric per column; Table 3 a config per column.
COLUMN_METRICS = {'table5': {'year MAE': ('test/mae', 1.0),
                             'style accuracy': ('test/accuracy', 100.0)}}
