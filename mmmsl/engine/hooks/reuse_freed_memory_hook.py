"""Reuse of freed host memory between training steps (glibc malloc)."""
import ctypes
import ctypes.util

from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmpretrain.registry import HOOKS

#: ``mallopt`` parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: glibc's largest mmap threshold on 64-bit systems (32 MiB).
MAX_MMAP_THRESHOLD = 32 * 2**20


def mallopt(param: int, value: int) -> bool:
    """glibc's ``mallopt(param, value)``; False where it fails or the C
    library has none (not glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        return libc.mallopt(int(param), int(value)) == 1
    except (OSError, AttributeError):
        return False


def reuse_freed_memory(mmap_threshold: int = MAX_MMAP_THRESHOLD) -> bool:
    """Make glibc keep the memory a training step frees for the next step.

    By default glibc serves every block over its mmap threshold (128 KiB at
    start, raised to the size of freed mapped blocks, up to 32 MiB) with a
    fresh ``mmap`` that it unmaps when freed, and gives the free top of the
    heap back to the kernel. A CPU training step frees its activations when
    backward ends and allocates them again in the next forward, so the
    kernel zero-fills and page-faults the same hundreds of MiB every step.
    The more memory a step holds at once, the more of it takes that road:
    measured on a ResNet-50 step (``docs/benchmarks.md``), an MSL step,
    which keeps both branches' activations until backward, lost 17 % of its
    time to it, the plain classifier's 2 %.

    This sets the mmap threshold to ``mmap_threshold`` and turns heap
    trimming off (``mallopt``), so blocks up to that size come from the heap
    and freed memory stays there for reuse: the process keeps the RSS of its
    peak step, as PyTorch's CUDA caching allocator does on the GPU. It is
    process-wide, applies to later allocations, and is inherited by
    processes forked afterwards (e.g. dataloader workers).

    Args:
        mmap_threshold (int): Blocks larger than this many bytes are still
            mapped on their own. Defaults to glibc's maximum, 32 MiB.

    Returns:
        bool: Whether the settings were applied (False where the C library
        has no ``mallopt``, i.e. not glibc).
    """
    # A trim threshold of -1 turns trimming off.
    return (mallopt(M_MMAP_THRESHOLD, mmap_threshold)
            and mallopt(M_TRIM_THRESHOLD, -1))


@HOOKS.register_module()
class ReuseFreedMemoryHook(Hook):
    """Apply :func:`reuse_freed_memory` before the run.

    Training on CPU spends a large share of each step page-faulting
    activation memory that glibc handed back to the kernel the step before;
    with this hook the memory is reused instead (measured in
    ``docs/benchmarks.md``). It acts only when the model is on the CPU: on
    CUDA the activations are not in host memory, so it leaves glibc's
    settings (process-wide, inherited by dataloader workers) alone and logs
    one line. Add ``custom_hooks = [dict(type='ReuseFreedMemoryHook')]``;
    the mmmsl configs have it.

    Args:
        mmap_threshold (int): See :func:`reuse_freed_memory`.
    """

    priority = 'VERY_HIGH'

    def __init__(self, mmap_threshold: int = MAX_MMAP_THRESHOLD) -> None:
        if not 0 < mmap_threshold <= MAX_MMAP_THRESHOLD:
            raise ValueError(
                f'ReuseFreedMemoryHook: mmap_threshold={mmap_threshold!r} '
                f'must be in (0, {MAX_MMAP_THRESHOLD}] bytes (glibc caps it)')
        self.mmap_threshold = mmap_threshold

    def before_run(self, runner) -> None:
        devices = {p.device.type for p in runner.model.parameters()}
        if devices - {'cpu'}:
            MMLogger.get_current_instance().info(
                'ReuseFreedMemoryHook: the model is on '
                f"{', '.join(sorted(devices))}, not the CPU; glibc's memory "
                'settings are left as they are')
            return
        if not reuse_freed_memory(self.mmap_threshold):
            MMLogger.get_current_instance().warning(
                'ReuseFreedMemoryHook: the C library has no mallopt (not '
                'glibc); freed memory is handled by its own allocator')
