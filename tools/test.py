"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [options]``.

``--mask high|low|LO,HI`` evaluates on masked test images (fixed held-out
masks, the paper's Fig. 3) instead of clean ones; ``--mask-family`` draws
them from another mask family (default: the strokes).
"""
import argparse

from mmengine.config import Config

import mmmsl  # noqa: F401  (registers the MSL components)
from mmmsl.apis import add_test_masks
from mmmsl.masks import known_families, parse_ratio
from mmmsl.utils.launch import (add_common_args, apply_common_args,
                                build_runner, setup_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the predictions to this .pkl')
    parser.add_argument(
        '--mask', type=parse_ratio,
        help='evaluate on masked images: high, low or LO,HI')
    parser.add_argument('--mask-family', default='strokes',
                        choices=known_families(),
                        help='mask family of --mask (default: strokes)')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic-mixed-precision inference')
    parser.add_argument('--show-dir',
                        help='save images with predictions to this dir')
    add_common_args(parser)
    return parser.parse_args(argv)


def merge_args(cfg: Config, args) -> Config:
    apply_common_args(cfg, args)
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    if args.mask is not None:
        add_test_masks(cfg, args.mask, family=args.mask_family)
    if args.show_dir:
        cfg.default_hooks.visualization = dict(
            type='VisualizationHook', enable=True, out_dir=args.show_dir)
    if args.out:
        cfg.test_evaluator = list(
            cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else
            [cfg.test_evaluator]) + [dict(type='DumpResults',
                                          out_file_path=args.out)]
    return setup_distributed(cfg, args.launcher)


def main(argv=None):
    args = parse_args(argv)
    runner = build_runner(merge_args(Config.fromfile(args.config), args))
    return runner.test()


if __name__ == '__main__':
    main()
