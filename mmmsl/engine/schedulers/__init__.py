from .linear_warmup_lr import LinearWarmUpLR
from .mask_level import LevelRule

__all__ = ['LinearWarmUpLR', 'LevelRule']
