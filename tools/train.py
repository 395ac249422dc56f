"""Train a model: ``python tools/train.py CONFIG [options]``.

The flags mirror mmpretrain's ``tools/train.py``; importing ``mmmsl`` makes
its components available to every config. ``--launcher pytorch`` (used by
``tools/dist_train.sh``) also runs on CPU machines, with gloo.
"""
import argparse

from mmengine.config import Config, ConfigDict

import mmmsl  # noqa: F401  (registers the MSL components)
from mmmsl.utils.launch import (add_common_args, apply_common_args,
                                build_runner, setup_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or without a value from the '
        'latest checkpoint in the work directory')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by the actual / the base batch size')
    parser.add_argument('--no-pin-memory', action='store_true')
    parser.add_argument('--no-persistent-workers', action='store_true')
    add_common_args(parser)
    return parser.parse_args(argv)


def merge_args(cfg: Config, args) -> Config:
    """Merge the command line into the config (as mmpretrain does)."""
    apply_common_args(cfg, args)
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        if 'base_batch_size' not in (cfg.get('auto_scale_lr') or {}):
            raise ValueError(
                f'--auto-scale-lr: {args.config} sets no auto_scale_lr = '
                'dict(base_batch_size=N), the total batch its learning rate '
                'is meant for; add it to the config or drop the flag')
        cfg.auto_scale_lr.enable = True
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(field) is None:
            continue
        loader = ConfigDict(pin_memory=True, persistent_workers=True,
                            collate_fn=dict(type='default_collate'))
        loader.update(cfg[field])
        if args.no_pin_memory:
            loader.pin_memory = False
        if args.no_persistent_workers or not loader.get('num_workers'):
            loader.persistent_workers = False
        cfg[field] = loader
    return setup_distributed(cfg, args.launcher)


def main(argv=None):
    args = parse_args(argv)
    runner = build_runner(merge_args(Config.fromfile(args.config), args))
    runner.train()


if __name__ == '__main__':
    main()
