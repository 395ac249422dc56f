"""Training-loop pieces: atomic checkpoints, early named errors, the
authors' warm-up."""
from .checkpoint import AtomicCheckpointHook, AtomicLocalBackend, atomic_write
from .hooks import (FiniteLossHook, ModelTypeCheckHook, NumClassesCheckHook,
                    saved_model_type)
from .layout import ChannelsLastHook, to_channels_last
from .memory import ReuseFreedMemoryHook, reuse_freed_memory
from .schedulers import LinearWarmUpLR

__all__ = [
    'AtomicCheckpointHook', 'AtomicLocalBackend', 'atomic_write',
    'FiniteLossHook', 'NumClassesCheckHook', 'ModelTypeCheckHook',
    'saved_model_type', 'ChannelsLastHook',
    'to_channels_last', 'ReuseFreedMemoryHook', 'reuse_freed_memory',
    'LinearWarmUpLR'
]
