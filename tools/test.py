"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [options]``.

``--mask high|low|LO,HI`` evaluates on masked test images (fixed held-out
masks, the paper's Fig. 3) instead of clean ones.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmmsl  # noqa: F401  (registers the MSL components)
from mmmsl.apis import add_test_masks
from mmmsl.masks import parse_ratio
from mmmsl.utils import setup_distributed


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs')
    parser.add_argument('--out', help='dump the predictions to this .pkl')
    parser.add_argument(
        '--mask', type=parse_ratio,
        help='evaluate on masked images: high, low or LO,HI')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic-mixed-precision inference')
    parser.add_argument('--show-dir',
                        help='save images with predictions to this dir')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args) -> Config:
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    if args.mask is not None:
        add_test_masks(cfg, args.mask)
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
    cfg = merge_args(Config.fromfile(args.config), args)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    return runner.test()


if __name__ == '__main__':
    main()
