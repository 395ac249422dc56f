"""Per-class thresholds maximising each class's F1 on a validation split.

    python tools/analysis/tune_thresholds.py CONFIG CKPT \
        [--split val] [--out work_dirs/thresholds.json] \
        [--batch-size 16] [--device cpu|cuda] [--allow-test] \
        [--allow-train-overlap] [--cfg-options ...]

Runs the model on the dataset of ``{split}_dataloader`` (default: the
config's ``val_dataloader``; ``--split train`` uses the train dataset with
the val pipeline, i.e. no augmentation or masks) and, for every class,
picks the threshold with the best F1 of ``score >= thr`` among the class's
distinct scores (ties: the highest threshold; a class without positives:
0.5). Labels flagged difficult / unspecified (``gt_label_difficult``) are
left out of that class's F1. Writes ``{"thresholds": {class: thr}, ...}``,
the file ``tools/infer.py --thr-file`` reads.

Before the model is loaded, two checks refuse a tuning set that would make
the thresholds optimistic:

- test data: a split that is, or looks like, the test data (``--split
  test``, the same dataset as ``test_dataloader``, or a dataset ``split`` /
  file named ``test``), unless ``--allow-test``;
- training images: any image (``img_path``) of the tuning dataset that is
  also in ``train_dataloader``'s dataset (both built without pipelines),
  unless ``--allow-train-overlap``. The check reads this config's
  ``train_dataloader`` (after ``--cfg-options``), so pass the overrides the
  checkpoint was trained with.

The paper's VOC configs train on ``trainval``, which contains ``val``; tune
VOC thresholds on ``val`` with a model trained on ``train``::

    python tools/train.py CONFIG \
        --cfg-options train_dataloader.dataset.split=train
    python tools/analysis/tune_thresholds.py CONFIG CKPT --cfg-options \
        train_dataloader.dataset.split=train val_dataloader.dataset.split=val
"""
import argparse
import os.path as osp
import re
import sys
from typing import Optional

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.utils import ProgressBar
from mmpretrain.evaluation import MultiLabelMetric

import mmmsl  # noqa: F401  (registers the MSL components)
from mmmsl.apis import init_model, save_thresholds, tune_class_thresholds
from mmmsl.apis.thresholds import FALLBACK_THRESHOLD


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--split', default='val',
                   help='which {split}_dataloader to tune on (default val)')
    p.add_argument('--out', default='work_dirs/thresholds.json')
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--device',
                   default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--allow-test', action='store_true',
                   help='tune on data that looks like the test set anyway')
    p.add_argument('--allow-train-overlap', action='store_true',
                   help='tune on data that shares images with the train '
                   'dataset anyway')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    return p.parse_args(argv)


def _without_pipeline(dataset_cfg) -> dict:
    return {k: v for k, v in dict(dataset_cfg).items() if k != 'pipeline'}


def looks_like_test_data(cfg, split: str):
    """Why the dataset of ``{split}_dataloader`` looks like test data, or
    None."""
    if split == 'test':
        return '--split test is the test set'
    dataset = cfg[f'{split}_dataloader'].dataset
    test = (cfg.get('test_dataloader') or {}).get('dataset')
    if test is not None and _without_pipeline(dataset) == \
            _without_pipeline(test):
        return (f'{split}_dataloader has the same dataset as '
                'test_dataloader')
    for key in ('split', 'ann_file', 'data_prefix'):
        value = dataset.get(key)
        if value and re.search(r'(^|[^a-z])test', str(value).lower()):
            return f'{split}_dataloader.dataset.{key}={value!r} names test'
    return None


def _without_pipelines(cfg):
    """A dataset config without any ``pipeline`` (also of wrapped ones)."""
    if isinstance(cfg, dict):
        return {
            k: _without_pipelines(v)
            for k, v in cfg.items() if k != 'pipeline'
        }
    if isinstance(cfg, (list, tuple)):
        return [_without_pipelines(v) for v in cfg]
    return cfg


def image_paths(dataset_cfg) -> set:
    """The ``img_path`` of every sample of a dataset config, normalised
    (local paths made absolute); the dataset is built without pipeline."""
    from mmpretrain.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = DATASETS.build(_without_pipelines(dataset_cfg))
    paths = (str(dataset.get_data_info(i)['img_path'])
             for i in range(len(dataset)))
    return {p if '://' in p else osp.abspath(p) for p in paths}


def train_overlap(cfg, split: str) -> Optional[str]:
    """Which images of ``{split}_dataloader``'s dataset are also training
    images (those of ``train_dataloader``'s dataset), or None.

    Args:
        cfg (Config): The (merged) config.
        split (str): The dataloader to tune on, ``'val'``, ``'train'``...

    Returns:
        str | None: The count and an example path of the shared images, or
        None if there are none (or the config has no ``train_dataloader``).
    """
    if not cfg.get('train_dataloader'):
        return None
    train = image_paths(cfg.train_dataloader.dataset)
    tune = train if split == 'train' else image_paths(
        cfg[f'{split}_dataloader'].dataset)
    common = sorted(tune & train)
    if not common:
        return None
    return (f'{len(common)} of the {len(tune)} images of {split}_dataloader '
            f'are also in train_dataloader, e.g. {common[0]}')


def build_dataset(cfg, split: str):
    """The dataset to tune on (train: with the val pipeline)."""
    from mmpretrain.registry import DATASETS
    dataset_cfg = dict(cfg[f'{split}_dataloader'].dataset)
    if split == 'train':
        dataset_cfg['pipeline'] = (cfg.get('val_dataloader')
                                   or cfg.test_dataloader).dataset.pipeline
        dataset_cfg['test_mode'] = True
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return DATASETS.build(dataset_cfg)


def label_matrix(dataset, num_classes: int) -> np.ndarray:
    """Ground truth ``(N, C)``: 1 positive, 0 negative, -1 ignored (a
    label only among ``gt_label_difficult``, as the metrics do)."""
    labels = np.zeros((len(dataset), num_classes), np.int64)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        difficult = info.get('gt_label_difficult') or []
        labels[i, np.asarray(difficult, np.int64)] = -1
        labels[i, np.asarray(info.get('gt_label') or [], np.int64)] = 1
    return labels


def class_f1(scores: np.ndarray, labels: np.ndarray,
             thresholds: np.ndarray) -> np.ndarray:
    """Per-class F1 (a fraction) of ``score >= thr``, as mmpretrain's
    ``MultiLabelMetric`` computes it (labels -1 ignored; 0 for a class
    without positives or predictions). Shapes (N, C), (N, C), (C, ) ->
    (C, )."""
    f1 = MultiLabelMetric.calculate(
        torch.as_tensor(np.asarray(scores, np.float64)),
        torch.as_tensor(np.asarray(labels)), average=None,
        thr=torch.as_tensor(np.asarray(thresholds, np.float64)))[2]
    return f1.double().numpy() / 100


@torch.no_grad()
def score_matrix(model, dataset, batch_size: int) -> np.ndarray:
    """Sigmoid scores ``(N, C)`` of the model on the dataset, in order."""
    out = []
    bar = ProgressBar(len(dataset), file=sys.stderr)
    for start in range(0, len(dataset), batch_size):
        idx = range(start, min(start + batch_size, len(dataset)))
        samples = model.test_step(pseudo_collate([dataset[i] for i in idx]))
        out += [s.pred_score.float().cpu().numpy() for s in samples]
        for _ in idx:
            bar.update()
    sys.stderr.write('\n')
    return np.stack(out)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if f'{args.split}_dataloader' not in cfg:
        sys.exit(f'{args.config} has no {args.split}_dataloader')
    reason = looks_like_test_data(cfg, args.split)
    if reason and not args.allow_test:
        sys.exit(f'Refusing to tune thresholds on test data: {reason}. '
                 'Thresholds tuned on the test set make test results '
                 'optimistic. Use a held-out validation split (e.g. '
                 '--cfg-options val_dataloader.dataset.split=val), or pass '
                 '--allow-test if you know what you are doing.')
    overlap = train_overlap(cfg, args.split)
    if overlap and not args.allow_train_overlap:
        sys.exit(f'Refusing to tune thresholds on training images: '
                 f'{overlap} ({args.config}). Scores on images the model '
                 'was trained on are overconfident, so thresholds tuned '
                 'there do not carry over to new images. Tune on a held-out '
                 'split the model was not trained on, e.g. for VOC train on '
                 'train and tune on val '
                 '(--cfg-options train_dataloader.dataset.split=train '
                 'val_dataloader.dataset.split=val, here and for '
                 'training), or pass --allow-train-overlap if you know '
                 'what you are doing.')
    model = init_model(cfg, args.checkpoint, args.device)
    cfg, classes = model._config, model._dataset_meta['classes']
    dataset = build_dataset(cfg, args.split)
    scores = score_matrix(model, dataset, args.batch_size)
    labels = label_matrix(dataset, len(classes))
    thr = tune_class_thresholds(scores, labels)
    f1 = class_f1(scores, labels, thr)
    f1_half = class_f1(scores, labels, np.full(len(classes), 0.5))
    positives = (labels == 1).sum(0)

    print(f'{"class":<16} {"thr":>6} {"F1":>6} {"F1@0.5":>7} {"pos":>5}')
    for i, name in enumerate(classes):
        print(f'{name[:16]:<16} {thr[i]:6.3f} {f1[i]:6.3f} '
              f'{f1_half[i]:7.3f} {positives[i]:5d}')
    print(f'{"mean":<16} {"":>6} {f1.mean():6.3f} {f1_half.mean():7.3f}')
    if reason:
        print(f'WARNING: tuned on test data ({reason})', file=sys.stderr)
    if overlap:
        print(f'WARNING: tuned on training images ({overlap})',
              file=sys.stderr)
    save_thresholds(
        args.out, thr, classes,
        extra=dict(
            f1={c: float(v) for c, v in zip(classes, f1)},
            f1_at_0_5={c: float(v) for c, v in zip(classes, f1_half)},
            num_positives={c: int(v) for c, v in zip(classes, positives)},
            rule=('per class, the score >= thr maximising F1 (candidates: '
                  'the distinct scores; ties: highest thr; no positives: '
                  f'{FALLBACK_THRESHOLD})'),
            config=args.config,
            checkpoint=args.checkpoint,
            split=args.split,
            num_samples=len(dataset),
            tuned_on_test_data=bool(reason),
            tuned_on_train_images=bool(overlap)))
    print(f'Wrote {args.out}', file=sys.stderr)
    return thr


if __name__ == '__main__':
    main()
