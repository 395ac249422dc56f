"""Training-loop safety: atomic checkpoints and early, named errors."""
from .checkpoint import AtomicCheckpointHook, AtomicLocalBackend, atomic_write
from .hooks import FiniteLossHook, NumClassesCheckHook

__all__ = [
    'AtomicCheckpointHook', 'AtomicLocalBackend', 'atomic_write',
    'FiniteLossHook', 'NumClassesCheckHook'
]
