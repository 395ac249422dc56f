"""mAP against the fraction of the image removed (the paper's Fig. 3).

    python tools/analysis/mask_sweep.py CONFIG CKPT [CKPT ...] \
        [--labels A B] [--ratios 0 0.1 0.2 0.3 0.4 0.5 0.6 0.7] \
        [--families strokes perlin ...] [--out-dir work_dirs/mask_sweep] \
        [--cfg-options ...]

Each checkpoint is evaluated on clean test images (ratio 0) and on test
images with fixed held-out masks whose hole ratio lies in
``(r - 0.1, r]`` for every other ``r``, inserted as ``tools/test.py --mask``
does (``mmmsl.apis.add_test_masks``: right before packing, holes of the
pixel ``mmmsl.apis.robustness.hole_fill_pixels`` gives), of every mask family
of ``--families`` (a cross-family robustness matrix). Writes
``mask_sweep.csv`` (model, family, removed, metric; the clean row's family
is ``none``) and ``mask_sweep.png`` to ``--out-dir``.
"""
import argparse
import csv
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mmmsl  # noqa: F401
from mmmsl.apis import add_test_masks
from mmmsl.masks import known_families


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoints', nargs='+')
    p.add_argument('--labels', nargs='+', help='one name per checkpoint')
    p.add_argument('--ratios', nargs='+', type=float,
                   default=[0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    p.add_argument('--width', type=float, default=0.1,
                   help='each masked point uses ratios in (r - width, r]')
    p.add_argument('--families', nargs='+', default=['strokes'],
                   choices=known_families(), help='test mask families')
    p.add_argument('--metric', default='multi-label/mAP')
    p.add_argument('--out-dir', default='work_dirs/mask_sweep')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    if args.labels and len(args.labels) != len(args.checkpoints):
        p.error('--labels needs one name per checkpoint')
    return args


def evaluate(args, ckpt, ratio, family='strokes'):
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.load_from = ckpt
    cfg.work_dir = osp.join(args.out_dir, 'logs')
    if ratio > 0:
        add_test_masks(cfg, (max(ratio - args.width, 0.0), ratio),
                       family=family)
    metrics = Runner.from_cfg(cfg).test()
    if args.metric not in metrics:
        raise KeyError(f'--metric {args.metric!r} not among the test '
                       f'metrics {sorted(metrics)}')
    return float(metrics[args.metric])


def main(argv=None):
    args = parse_args(argv)
    labels = args.labels or [
        osp.splitext(osp.basename(c))[0] for c in args.checkpoints
    ]
    os.makedirs(args.out_dir, exist_ok=True)
    rows = [(label, fam if r > 0 else 'none', r, evaluate(args, ckpt, r, fam))
            for label, ckpt in zip(labels, args.checkpoints)
            for r in args.ratios
            for fam in (args.families if r > 0 else ['none'])]
    csv_path = osp.join(args.out_dir, 'mask_sweep.csv')
    with open(csv_path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['model', 'family', 'removed', args.metric])
        writer.writerows(rows)

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label in labels:
        for fam in args.families:
            pts = [(r, v) for m, f, r, v in rows
                   if m == label and f in (fam, 'none')]
            ax.plot(*zip(*pts), marker='o', label=label if len(
                args.families) == 1 else f'{label} / {fam}')
    ax.set_xlabel('fraction of the image removed')
    ax.set_ylabel(args.metric)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png_path = osp.join(args.out_dir, 'mask_sweep.png')
    fig.savefig(png_path, dpi=120)
    for row in rows:
        print(f'{row[0]:>20s}  {row[1]:>8s}  removed<={row[2]:.2f}  '
              f'{row[3]:.2f}')
    print(f'wrote {csv_path} and {png_path}')
    return rows


if __name__ == '__main__':
    main()
