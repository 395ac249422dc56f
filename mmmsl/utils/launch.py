"""Launch helpers shared by ``tools/train.py`` and ``tools/test.py``."""
import torch
import torch.distributed as dist
from mmengine.config import Config


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
