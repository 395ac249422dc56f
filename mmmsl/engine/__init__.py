"""Training-loop safety: atomic checkpoints and early, named errors."""
from .checkpoint import AtomicCheckpointHook, AtomicLocalBackend, atomic_write
from .hooks import FiniteLossHook, NumClassesCheckHook
from .layout import ChannelsLastHook, to_channels_last
from .memory import ReuseFreedMemoryHook, reuse_freed_memory

__all__ = [
    'AtomicCheckpointHook', 'AtomicLocalBackend', 'atomic_write',
    'FiniteLossHook', 'NumClassesCheckHook', 'ChannelsLastHook',
    'to_channels_last', 'ReuseFreedMemoryHook', 'reuse_freed_memory'
]
