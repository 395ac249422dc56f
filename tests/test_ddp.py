"""One process vs two CPU (gloo) DDP processes through the user's commands.

Both runs train the same tiny config for 2 epochs with the same effective
batch: 4 images in one process, or 2 per process x 2 processes
(``tools/dist_train.sh``). They are equivalent, up to float summation order,
because:

- DefaultSampler draws one permutation from its seed on every rank and
  gives rank r the indices ``perm[r::2]``, so iteration i of the DDP run
  sees exactly the 4 images ``perm[4i:4i+4]`` of the single run;
- DDP averages the ranks' gradients of their 2-image mean losses, which is
  the gradient of the 4-image mean loss;
- the backbone uses GroupNorm (per sample) instead of BatchNorm, whose
  statistics DDP without SyncBN would compute per rank on 2 images;
- the pipeline is deterministic (Resize, no random crop or flip);
- masks are random per rank by design, so MSL runs with
  ``alpha=(1, 0, 0)``: the masks are drawn, packed and run through the
  masked branch, but that branch gets zero weight, so the run is the
  baseline and its numbers can be compared.

A probe hook saves each rank's first-batch masks; they must differ across
ranks (no duplicated randomness) and rank 0's must repeat those of the
single process (same rank and seed, same draws).
"""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

import mmmsl  # noqa: F401  (weights_only allow-list for torch.load)
from conftest import build_once, make_voc, tiny_msl_cfg

pytestmark = pytest.mark.slow  # started first (tests/conftest.py)
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: mAP is in percent. Summation order differs between 1 and 2 processes,
#: so weights agree to float32 round-off (measured: 6e-6 after 6 steps);
#: mAP, a ranking metric, to within 0.01 points. For scale, the same pair of
#: runs differs by ~1e-2 in the weights with real masks (alpha=(0.3, 0.2,
#: 0.5)) and by ~2 with BatchNorm, and 2 epochs move them by ~8e-2.
MAP_TOL = 1e-2
WEIGHT_ATOL = 1e-4

MASK_PROBE = '''
import os
import numpy as np
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class SaveFirstMasks(Hook):
    """Test helper: save this rank's first training batch's msl_mask."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == 0:
            masks = [np.asarray(s.msl_mask)
                     for s in data_batch['data_samples']]
            np.save(os.path.join(runner.work_dir,
                                 f'masks_rank{get_rank()}.npy'),
                    np.stack(masks))
'''


def ddp_cfg(root, work_dir, batch_size):
    cfg = tiny_msl_cfg(root, work_dir, epochs=2,
                       alpha=(1.0, 0.0, 0.0))
    cfg['model']['backbone'] = dict(
        type='ResNet', depth=18, stem_channels=16, base_channels=16,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        out_indices=(3, ))
    cfg['model']['neck'] = dict(type='GlobalAveragePooling')
    cfg['model']['head'] = dict(
        type='MultiLabelLinearClsHead', num_classes=20, in_channels=128,
        loss=dict(type='CrossEntropyLoss', use_sigmoid=True))
    for split in ('train', 'val'):
        loader = cfg[f'{split}_dataloader']
        loader['batch_size'] = batch_size
        loader['sampler']['seed'] = 0
    cfg['train_dataloader']['dataset']['pipeline'] = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=32),
        dict(type='IrregularMask', ratio='high', bank_size=50, bank_res=64),
        dict(type='PackInputs', algorithm_keys=('msl_mask', )),
    ]
    cfg['custom_imports']['imports'].append('mask_probe')
    cfg['default_hooks']['checkpoint'] = dict(type='AtomicCheckpointHook',
                                              interval=1)
    cfg['custom_hooks'] = [dict(type='FiniteLossHook'),
                           dict(type='NumClassesCheckHook'),
                           dict(type='SaveFirstMasks')]
    return cfg


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def val_maps(wd):
    """{epoch: mAP} from the run's vis_data/scalars.json."""
    (path, ) = glob.glob(osp.join(wd, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {r['step']: r['multi-label/mAP'] for r in rows
            if 'multi-label/mAP' in r}


def train_both(tmp):
    """Train with 1 process (batch 4) and 2 gloo processes (batch 2 each),
    in the folders ``tmp/wd1`` and ``tmp/wd2``."""
    root = str(tmp / 'VOC2007')
    make_voc(root)
    (tmp / 'mask_probe.py').write_text(MASK_PROBE)
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([REPO, str(tmp)]))
    for procs, batch in ((1, 4), (2, 2)):
        wd = str(tmp / f'wd{procs}')
        cfg_path = str(tmp / f'cfg{procs}.py')
        Config(ddp_cfg(root, wd, batch)).dump(cfg_path)
        if procs == 1:
            cmd = [sys.executable, 'tools/train.py', cfg_path]
        else:
            cmd = ['bash', 'tools/dist_train.sh', cfg_path, '2']
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                             env=dict(env, PORT=str(free_port())),
                             timeout=600)
        log = out.stdout + out.stderr
        assert out.returncode == 0, log[-4000:]
        if procs == 2:
            assert 'Distributed launcher: pytorch' in log
            assert 'Epoch(train) [2][3/3]' in log  # 12 images / (2 x 2)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """The work dirs of :func:`train_both`'s runs, ``{processes: dir}``
    (trained once per session, shared by the xdist workers)."""
    tmp = build_once(tmp_path_factory, 'ddp', train_both)
    return {procs: str(tmp / f'wd{procs}') for procs in (1, 2)}


def test_two_processes_match_one_process(runs):
    one, two = val_maps(runs[1]), val_maps(runs[2])
    assert sorted(one) == sorted(two) == [1, 2]
    for epoch in one:
        assert abs(one[epoch] - two[epoch]) <= MAP_TOL, (epoch, one, two)
    a = torch.load(osp.join(runs[1], 'epoch_2.pth'), weights_only=True)
    b = torch.load(osp.join(runs[2], 'epoch_2.pth'), weights_only=True)
    assert a['meta']['iter'] == b['meta']['iter'] == 6
    for key, value in a['state_dict'].items():
        torch.testing.assert_close(b['state_dict'][key], value,
                                   atol=WEIGHT_ATOL, rtol=1e-4, msg=key)
    # ... and training did change the weights, so the match means something.
    init = torch.load(osp.join(runs[1], 'epoch_1.pth'), weights_only=True)
    moved = sum(not torch.equal(init['state_dict'][k], v)
                for k, v in a['state_dict'].items())
    assert moved > 10


def test_masks_differ_across_ranks_and_repeat_per_rank(runs):
    rank0 = np.load(osp.join(runs[2], 'masks_rank0.npy'))
    rank1 = np.load(osp.join(runs[2], 'masks_rank1.npy'))
    single = np.load(osp.join(runs[1], 'masks_rank0.npy'))
    assert rank0.shape == rank1.shape == (2, 32, 32)
    assert single.shape == (4, 32, 32)
    for m in (rank0, rank1, single):
        assert set(np.unique(m).tolist()) == {0, 1}
        assert (0.4 < 1 - m.mean(axis=(1, 2))).all()
    # No duplicated randomness: rank 1 draws other masks than rank 0 ...
    for m1 in rank1:
        assert not any(np.array_equal(m1, m0) for m0 in rank0)
    # ... and rank 0 draws, from the same seed, the same masks as the
    # single process did for its first two samples.
    np.testing.assert_array_equal(rank0, single[:2])
