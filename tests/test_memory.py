"""ReuseFreedMemoryHook: freed host memory stays for the next step."""
import os.path as osp
import platform
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmpretrain.registry import HOOKS

import mmmsl  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# A 24 MiB block (an activation's size) is allocated and touched, freed, and
# allocated and touched again; prints how much the RSS fell at the free and
# rose at the second allocation.
SCRIPT = r'''
import ctypes, sys
mode = sys.argv[1]
if mode == 'hook':
    import types, torch
    import mmmsl
    from mmpretrain.registry import HOOKS
    runner = types.SimpleNamespace(model=torch.nn.Linear(2, 2))  # on CPU
    HOOKS.build(dict(type='ReuseFreedMemoryHook')).before_run(runner)
elif mode == 'function':
    from mmmsl.engine import reuse_freed_memory
    assert reuse_freed_memory()

def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024

libc = ctypes.CDLL('libc.so.6')
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
n = 24 << 20
p = libc.malloc(n)
ctypes.memset(p, 1, n)
r0 = rss()
libc.free(p)
r1 = rss()
p = libc.malloc(n)
ctypes.memset(p, 1, n)
r2 = rss()
print(r0 - r1, r2 - r1)
'''

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith('linux') or platform.libc_ver()[0] != 'glibc',
    reason='mallopt is glibc-only')


def _released_and_refaulted(mode):
    out = subprocess.run([sys.executable, '-c', SCRIPT, mode], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    released, refaulted = (int(v) for v in out.stdout.split()[-2:])
    return released, refaulted


@glibc_only
def test_glibc_default_gives_memory_back_and_faults_it_again():
    # The cost the hook removes: without it the block goes back to the
    # kernel at free and is page-faulted afresh at the next allocation.
    released, refaulted = _released_and_refaulted('default')
    assert released > 20 << 20
    assert refaulted > 20 << 20


@glibc_only
@pytest.mark.parametrize('mode', ['function', 'hook'])
def test_reuse_keeps_freed_memory_for_the_next_allocation(mode):
    released, refaulted = _released_and_refaulted(mode)
    assert released < 1 << 20
    assert refaulted < 1 << 20


@pytest.mark.parametrize('threshold', [0, 64 << 20])
def test_hook_rejects_threshold_glibc_cannot_take(threshold):
    with pytest.raises(ValueError, match=f'mmap_threshold={threshold}'):
        HOOKS.build(dict(type='ReuseFreedMemoryHook',
                         mmap_threshold=threshold))


@pytest.mark.parametrize('config', [
    'configs/msl/resnet101_csra_voc.py', 'configs/msl/vit-l16_csra_wider.py',
    'configs/msl/demo_digits.py', 'configs/baseline/resnet101_csra_coco.py'
])
def test_configs_reuse_freed_memory(config):
    hooks = Config.fromfile(osp.join(ROOT, config)).custom_hooks
    assert dict(type='ReuseFreedMemoryHook') in hooks


@pytest.mark.parametrize('device, applied', [('cpu', True), ('meta', False)])
def test_hook_acts_only_for_a_model_on_the_cpu(monkeypatch, device,
                                               applied):
    """A model on an accelerator (here the 'meta' device, as CUDA is not at
    hand) leaves glibc's process-wide settings alone."""
    from types import SimpleNamespace

    import torch.nn as nn

    from mmmsl.engine.hooks import reuse_freed_memory_hook as memory
    calls = []
    monkeypatch.setattr(memory, 'reuse_freed_memory',
                        lambda threshold: calls.append(threshold) or True)
    runner = SimpleNamespace(model=nn.Linear(2, 2, device=device))
    HOOKS.build(dict(type='ReuseFreedMemoryHook')).before_run(runner)
    assert calls == ([memory.MAX_MMAP_THRESHOLD] if applied else [])
