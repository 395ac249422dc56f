from .atomic_checkpoint_hook import (AtomicCheckpointHook, AtomicLocalBackend,
                                     atomic_write)
from .channels_last_hook import ChannelsLastHook, to_channels_last
from .finite_loss_hook import FiniteLossHook
from .mask_schedule_hook import MaskScheduleHook
from .model_type_check_hook import ModelTypeCheckHook, saved_model_type
from .num_classes_check_hook import NumClassesCheckHook
from .reuse_freed_memory_hook import ReuseFreedMemoryHook, reuse_freed_memory

__all__ = [
    'AtomicCheckpointHook', 'AtomicLocalBackend', 'atomic_write',
    'ChannelsLastHook', 'to_channels_last', 'FiniteLossHook',
    'MaskScheduleHook', 'ModelTypeCheckHook', 'saved_model_type',
    'NumClassesCheckHook', 'ReuseFreedMemoryHook', 'reuse_freed_memory'
]
