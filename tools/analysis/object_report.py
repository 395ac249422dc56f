"""mAP per object-size and occlusion bucket of one or more checkpoints.

    python tools/analysis/object_report.py CONFIG CKPT [CKPT ...] \
        [--labels A B] [--mask high|low|LO,HI] \
        [--out-dir work_dirs/object_report] [--cfg-options ...]

Each checkpoint is evaluated on the config's test set (``--mask``: on
masked test images, as ``tools/test.py --mask``) with its
``ObjectSizeMetric`` (docs/objects.md); a config without one gets
``ObjectSizeMetric()`` and the instance keys in its test ``PackInputs``.
Prints a table (bucket x checkpoint mAP, with the positives per bucket and
the classes evaluated / all) and writes ``object_report.csv`` (one row per
checkpoint and bucket: model, group, bucket, mAP, num_pos, num_classes,
skipped; group ``all`` is the config's overall ``multi-label/mAP``) and
``object_report.png`` (grouped bars) to ``--out-dir``.
"""
import argparse
import csv
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.registry import Registry
from mmengine.runner import Runner
from mmpretrain.datasets.transforms import PackInputs
from mmpretrain.registry import METRICS

import mmmsl  # noqa: F401
from mmmsl.apis import add_test_masks
from mmmsl.evaluation.metrics.object_size import (OBJECT_META_KEYS,
                                                  ObjectSizeMetric)
from mmmsl.masks import parse_ratio

COLUMNS = ('model', 'group', 'bucket', 'mAP', 'num_pos', 'num_classes',
           'skipped')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoints', nargs='+')
    p.add_argument('--labels', nargs='+', help='one name per checkpoint')
    p.add_argument('--mask', type=parse_ratio,
                   help='evaluate on masked images: high, low or LO,HI')
    p.add_argument('--out-dir', default='work_dirs/object_report')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    if args.labels and len(args.labels) != len(args.checkpoints):
        p.error('--labels needs one name per checkpoint')
    return args


def _type_name(cfg) -> str:
    t = cfg['type']
    return getattr(t, '__name__', None) or Registry.split_scope_key(t)[1]


def object_metric_cfg(cfg) -> dict:
    """The ``ObjectSizeMetric`` of ``cfg.test_evaluator``; added (with the
    instance keys packed by the test pipeline) if there is none."""
    evaluator = cfg.test_evaluator
    evaluator = list(evaluator) if isinstance(evaluator, (list, tuple)) \
        else [evaluator]
    found = [e for e in evaluator if _type_name(e) == 'ObjectSizeMetric']
    if found:
        return found[0]
    metric = dict(type='ObjectSizeMetric')
    cfg.test_evaluator = evaluator + [metric]
    for step in cfg.test_dataloader.dataset.pipeline:
        if _type_name(step) == 'PackInputs':
            keys = tuple(step.get('meta_keys', PackInputs.DEFAULT_META_KEYS))
            step['meta_keys'] = keys + tuple(k for k in OBJECT_META_KEYS
                                             if k not in keys)
    return metric


def evaluate(args, ckpt):
    """The test metrics of one checkpoint and its ObjectSizeMetric."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.load_from = ckpt
    cfg.work_dir = osp.join(args.out_dir, 'logs')
    metric_cfg = object_metric_cfg(cfg)
    if args.mask is not None:
        add_test_masks(cfg, args.mask)
    metric = METRICS.build(dict(metric_cfg, type=ObjectSizeMetric))
    return Runner.from_cfg(cfg).test(), metric


def report_rows(label, metrics, metric):
    """CSV rows (dicts of :data:`COLUMNS`) of one checkpoint."""
    prefix = metric.prefix
    groups = [('size', metric.size_names)]
    if metric.visible_thrs is not None and \
            f'{prefix}/mAP_{metric.visible_names[0]}' in metrics:
        groups.append(('visibility', metric.visible_names))
    rows = []
    if 'multi-label/mAP' in metrics:
        rows.append(dict(model=label, group='all', bucket='all',
                         mAP=float(metrics['multi-label/mAP']), num_pos='',
                         num_classes='', skipped=''))
    for group, names in groups:
        for name in names:
            rows.append(dict(
                model=label, group=group, bucket=name,
                mAP=float(metrics[f'{prefix}/mAP_{name}']),
                **{k: int(metrics[f'{prefix}/{k}_{name}'])
                   for k in ('num_pos', 'num_classes', 'skipped')}))
    return rows


def print_table(rows, labels):
    buckets = list(dict.fromkeys((r['group'], r['bucket']) for r in rows))
    by = {(r['model'], r['group'], r['bucket']): r for r in rows}
    head = f'{"group":<11}{"bucket":<15}{"positives":>10}{"classes":>9}'
    print(head + ''.join(f'{label[:14]:>15}' for label in labels))
    for group, bucket in buckets:
        first = by[(labels[0], group, bucket)]
        classes = '' if first['num_classes'] == '' else \
            f"{first['num_classes']}/{first['num_classes'] + first['skipped']}"
        print(f'{group:<11}{bucket:<15}{first["num_pos"]:>10}'
              f'{classes:>9}' + ''.join(
                  f'{by[(label, group, bucket)]["mAP"]:>15.2f}'
                  for label in labels))


def plot(rows, labels, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    bars = [r for r in rows if r['group'] != 'all']
    buckets = list(dict.fromkeys((r['group'], r['bucket']) for r in bars))
    by = {(r['model'], r['group'], r['bucket']): r for r in bars}
    # a gap between the size and the visibility buckets
    x = np.arange(len(buckets), dtype=float)
    x += np.cumsum([i > 0 and g != buckets[i - 1][0]
                    for i, (g, _) in enumerate(buckets)]) * 0.6
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(buckets), 3.6))
    for i, label in enumerate(labels):
        ax.bar(x + (i - (len(labels) - 1) / 2) * width,
               [by[(label, g, b)]['mAP'] for g, b in buckets], width,
               label=label)
    ax.set_xticks(x)
    ax.set_xticklabels([f'{b}\nn={by[(labels[0], g, b)]["num_pos"]}'
                        for g, b in buckets], fontsize=8)
    ax.set_ylabel('mAP (%)')
    ax.set_title(title, fontsize=9)
    ax.grid(axis='y', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    labels = args.labels or [
        osp.splitext(osp.basename(c))[0] for c in args.checkpoints
    ]
    os.makedirs(args.out_dir, exist_ok=True)
    rows = []
    for label, ckpt in zip(labels, args.checkpoints):
        metrics, metric = evaluate(args, ckpt)
        rows += report_rows(label, metrics, metric)
    csv_path = osp.join(args.out_dir, 'object_report.csv')
    with open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    png_path = osp.join(args.out_dir, 'object_report.png')
    title = osp.basename(args.config) + (
        '' if args.mask is None else f', masked {args.mask}')
    plot(rows, labels, png_path, title)
    print_table(rows, labels)
    print(f'wrote {csv_path} and {png_path}')
    return rows


if __name__ == '__main__':
    main()
