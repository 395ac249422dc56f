from .linear_warmup_lr import LinearWarmUpLR

__all__ = ['LinearWarmUpLR']
