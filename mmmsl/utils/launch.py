"""Launch helpers shared by ``tools/train.py`` and ``tools/test.py``."""
import argparse
import os
import os.path as osp

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction


def setup_distributed(cfg: Config, launcher: str) -> Config:
    """Make ``launcher='pytorch'`` work with or without CUDA.

    With CUDA nothing changes (NCCL, one GPU per process). Without it,
    mmengine's launcher would call ``torch.cuda.set_device``; so the gloo
    process group is initialised here first (mmengine then skips its own
    initialisation) and DDP is told to use no device ids. That is how
    ``tools/dist_train.sh`` runs on CPU.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    if launcher != 'pytorch':
        raise ValueError(f'launcher={launcher!r} needs CUDA; on CPU use '
                         "'pytorch' (tools/dist_train.sh)")
    cfg.setdefault('env_cfg', {})
    cfg.env_cfg.setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    cfg.model_wrapper_cfg = dict(
        type='MMDistributedDataParallel', device_ids=None)
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    return cfg


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The flags ``tools/train.py`` and ``tools/test.py`` share with
    mmpretrain's: ``--work-dir``, ``--cfg-options``, ``--launcher`` and
    ``--local-rank`` (see :func:`apply_common_args`)."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. '
        'train_cfg.max_epochs=2 model.alpha="(0.3,0.2,0.5)")')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def apply_common_args(cfg: Config, args) -> Config:
    """``--cfg-options`` merged into ``cfg`` and its work dir set (the
    command line, else the config's, else ``work_dirs/<config name>``);
    ``LOCAL_RANK`` from ``--local-rank`` unless the launcher set it."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_runner(cfg: Config):
    """mmengine's ``Runner`` of ``cfg``, or its ``runner_type``'s."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return (Runner.from_cfg(cfg)
            if 'runner_type' not in cfg else RUNNERS.build(cfg))
