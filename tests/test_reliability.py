"""Failure modes: named errors, interrupted runs, unsafe checkpoints, NaNs.

Everything runs on CPU on the tiny VOC fixture with a slim ResNet-18
(16 base channels, 32 px), so each training run takes about a second.
"""
import glob
import json
import os
import os.path as osp
import pickle
import resource
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.registry import MODELS, TRANSFORMS

import mmmsl  # noqa: F401
from conftest import make_voc, tiny_msl_cfg
from mmmsl.engine import FiniteLossHook, atomic_write
from mmmsl.masks import irregular_masks

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(autouse=True, scope='module')
def one_torch_thread():
    """Tiny models train faster on one thread, on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_cfg(root, work_dir, epochs=2, resume=False, **model_kw):
    """``tiny_msl_cfg`` with a slim ResNet-18 and the mmmsl safety hooks
    (the config lines docs/troubleshooting.md recommends)."""
    cfg = tiny_msl_cfg(root, work_dir, epochs=epochs, resume=resume,
                       **model_kw)
    cfg['model']['backbone'].update(stem_channels=16, base_channels=16)
    cfg['model']['head']['in_channels'] = 128
    cfg['default_hooks']['checkpoint'] = dict(type='AtomicCheckpointHook',
                                              interval=1)
    cfg['custom_hooks'] = [dict(type='FiniteLossHook'),
                           dict(type='NumClassesCheckHook')]
    return cfg


def ckpts(wd):
    return sorted(osp.basename(p) for p in glob.glob(osp.join(wd, '*.pth')))


def last_checkpoint(wd):
    with open(osp.join(wd, 'last_checkpoint')) as f:
        return f.read().strip()


# --------------------------------------------------------------- mask folders
def _write_masks(folder, holes, blur=False, size=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i, h in enumerate(holes):
        img = h.astype(np.uint8) * 255
        if size is not None:
            img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
        if blur:  # anti-aliased edges: many grey levels
            img = cv2.GaussianBlur(img, (5, 5), 0)
        cv2.imwrite(str(folder / f'{i:03d}.png'), img)


def _build_folder_mask(path, ratio='high'):
    return TRANSFORMS.build(dict(type='IrregularMask', source='folder',
                                 path=str(path), ratio=ratio, bank_res=64))


def test_mask_folder_errors_at_build_name_folder_file_and_range(tmp_path):
    with pytest.raises(FileNotFoundError, match='no_such_folder'):
        _build_folder_mask(tmp_path / 'no_such_folder')
    (tmp_path / 'bank.npz').write_bytes(b'x')
    with pytest.raises(NotADirectoryError, match=r'bank\.npz is a file'):
        _build_folder_mask(tmp_path / 'bank.npz')
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'notes.txt').write_text('no masks here')
    with pytest.raises(ValueError, match='empty holds no image file'):
        _build_folder_mask(tmp_path / 'empty')
    # One truncated PNG among good masks: the folder fails, naming the file.
    _write_masks(tmp_path / 'corrupt', irregular_masks(2, 32, 32, 'high', 0))
    good = (tmp_path / 'corrupt' / '000.png').read_bytes()
    (tmp_path / 'corrupt' / 'cut.png').write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match=r'cut\.png cannot be read'):
        _build_folder_mask(tmp_path / 'corrupt')
    # Only low masks, high asked: names the folder, the range and what the
    # folder holds.
    _write_masks(tmp_path / 'lows', irregular_masks(3, 32, 32, 'low', 0))
    with pytest.raises(ValueError) as err:
        _build_folder_mask(tmp_path / 'lows', ratio='high')
    msg = str(err.value)
    assert 'lows' in msg and '(0.5, 0.6)' in msg and 'range from' in msg


def test_folder_masks_binarised_and_resized_to_the_image(tmp_path):
    """Anti-aliased 100x70 masks used on a 32x48 image: the recorded mask
    has the image's size and is strictly binary."""
    holes = irregular_masks(6, 64, 64, 'high', seed=3)
    _write_masks(tmp_path / 'soft', holes, blur=True, size=(100, 70))
    levels = np.unique(cv2.imread(str(tmp_path / 'soft' / '000.png'), 0))
    assert len(levels) > 10  # the files really are grey
    t = _build_folder_mask(tmp_path / 'soft')
    for i in range(5):
        m = t(dict(img=np.zeros((32, 48, 3), np.uint8),
                   sample_idx=i))['msl_mask']
        assert m.shape == (32, 48) and m.dtype == np.uint8
        assert set(np.unique(m).tolist()) == {0, 1}
        assert 0.35 < 1 - m.mean() < 0.75  # about the 'high' bin


@pytest.mark.parametrize('mode', ['gray', 'rgba'])
def test_gray_and_rgba_images_become_3_channels_with_a_mask(tmp_path, mode):
    rng = np.random.default_rng(0)
    if mode == 'gray':
        img = rng.integers(0, 255, (30, 44), dtype=np.uint8)
    else:
        img = rng.integers(0, 255, (30, 44, 4), dtype=np.uint8)
    path = str(tmp_path / f'{mode}.png')
    cv2.imwrite(path, img)
    assert cv2.imread(path, cv2.IMREAD_UNCHANGED).shape == img.shape
    pipeline = Compose([
        TRANSFORMS.build(t) for t in [
            dict(type='LoadImageFromFile'),
            dict(type='IrregularMask', source='procedural'),
            dict(type='PackInputs', algorithm_keys=('msl_mask', )),
        ]
    ])
    out = pipeline(dict(img_path=path, sample_idx=0))
    assert tuple(out['inputs'].shape) == (3, 30, 44)
    mask = np.asarray(out['data_samples'].msl_mask)
    assert mask.shape == (30, 44) and set(np.unique(mask).tolist()) == {0, 1}
    # A per-channel fill on a single-channel image is a named error, not a
    # numpy broadcasting error.
    grey = dict(img=np.zeros((30, 44), np.uint8), img_path=path)
    with pytest.raises(ValueError, match=r'fill=\(1, 2, 3\).*1 channel'):
        TRANSFORMS.build(dict(type='IrregularMask', source='procedural',
                              apply=True, fill=(1, 2, 3)))(grey)


# ------------------------------------------------------------ model config
@pytest.mark.parametrize('alpha', [(-0.1, 0.5, 0.5), (0, 0, 0),
                                   (float('nan'), 1, 1), 0.5, (1, 'x', 1),
                                   (1, 1)])
def test_bad_alpha_is_a_value_error_naming_alpha(voc_root, tmp_path, alpha):
    cfg = small_cfg(voc_root, str(tmp_path), alpha=alpha)
    with pytest.raises(ValueError, match=r'alpha=.*non-negative'):
        MODELS.build(cfg['model'])


def test_head_num_classes_mismatch_fails_before_training(voc_root, tmp_path):
    """CSRAClsHead stores no num_classes: the config's value is checked."""
    wd = str(tmp_path / 'wd')
    cfg = small_cfg(voc_root, wd)
    cfg['model']['head']['num_classes'] = 5
    runner = Runner.from_cfg(Config(cfg))
    with pytest.raises(ValueError) as err:
        runner.train()
    msg = str(err.value)
    assert 'model.head.num_classes=5' in msg
    assert 'train dataset (VOC' in msg and '20 classes' in msg
    assert runner.iter == 0 and ckpts(wd) == []


def test_preprocessor_num_classes_mismatch_fails_before_val(
        voc_root, tmp_path):
    cfg = small_cfg(voc_root, str(tmp_path / 'wd'))
    cfg['model']['data_preprocessor']['num_classes'] = 7
    runner = Runner.from_cfg(Config(cfg))
    with pytest.raises(ValueError,
                       match=r'data_preprocessor.num_classes=7, but the val '
                       r'dataset \(VOC.*has 20 classes'):
        runner.val()


# ------------------------------------------------------------------ numerics
def test_nan_loss_stops_training_before_a_nan_checkpoint(voc_root, tmp_path):
    """loss_masked turns NaN at the 5th iteration (epoch 2, batch 2 of 3):
    the error names it, and epoch 2's checkpoint (NaN weights) never
    exists."""
    wd = str(tmp_path / 'wd')
    runner = Runner.from_cfg(Config(small_cfg(voc_root, wd, epochs=3)))
    model, loss = runner.model, runner.model.loss

    def nan_at_iter_5(inputs, data_samples):
        out = loss(inputs, data_samples)
        if runner.iter == 4:  # 0-based: the 5th iteration
            out['loss_masked'] = out['loss_masked'] * float('nan')
        return out

    model.loss = nan_at_iter_5
    with pytest.raises(FloatingPointError) as err:
        runner.train()
    msg = str(err.value)
    assert 'iteration 5 (epoch 2, iteration 2/3 of the epoch)' in msg
    assert 'loss_masked=nan, loss=nan (finite: loss_clean=' in msg
    assert 'loss_clean=nan' not in msg and 'loss_clean=' in msg  # finite
    assert '.jpg' in msg  # the batch's images are named
    assert ckpts(wd) == ['epoch_1.pth']
    assert last_checkpoint(wd).endswith('epoch_1.pth')
    # What the hook kept from being saved: the NaN step did reach the
    # weights.
    assert not all(torch.isfinite(p).all() for p in model.parameters())


def test_non_finite_weights_are_never_saved():
    hook = FiniteLossHook()
    runner = SimpleNamespace(iter=7, epoch=2)
    ok = {'state_dict': {'w': torch.ones(3), 'n': torch.tensor(3)}}
    hook.before_save_checkpoint(runner, ok)
    bad = {'meta': dict(epoch=3, iter=9),
           'state_dict': {'w': torch.ones(3),
                          'head.fc.weight': torch.tensor([1., float('inf')])}}
    with pytest.raises(FloatingPointError,
                       match="epoch 3, iteration 9: weight 'head.fc.weight'"):
        hook.before_save_checkpoint(runner, bad)
    FiniteLossHook(check_weights=False).before_save_checkpoint(runner, bad)


# -------------------------------------------------------- atomic checkpoints
def test_atomic_write_replaces_whole_or_not_at_all(tmp_path, monkeypatch):
    path = str(tmp_path / 'f.bin')
    atomic_write(b'old' * 1000, path)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # as open() would

    def fail(*args):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', fail)
    with pytest.raises(OSError, match='disk full'):
        atomic_write(b'new', path)
    with open(path, 'rb') as f:
        assert f.read() == b'old' * 1000
    assert os.listdir(tmp_path) == ['f.bin']  # no temporary file left


def _train_with_file_size_limit(cfg, limit):
    """Run ``cfg`` with writes beyond ``limit`` bytes failing (EFBIG), as a
    disk filling up or a kill in the middle of a checkpoint write would."""
    runner = Runner.from_cfg(Config(cfg))
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old_limit[1]))
    try:
        with pytest.raises(OSError):
            runner.train()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


@pytest.mark.parametrize('hook', ['AtomicCheckpointHook', 'CheckpointHook'])
def test_failed_checkpoint_write_keeps_the_last_good_one(voc_root, tmp_path,
                                                         hook):
    """Epoch 2's checkpoint write fails half-way, with max_keep_ckpts=1.
    AtomicCheckpointHook: epoch_1.pth and last_checkpoint are intact and the
    run resumes. mmengine's CheckpointHook (the control) deleted epoch_1.pth
    first and leaves a truncated epoch_2.pth."""
    wd = str(tmp_path / 'wd')
    cfg = small_cfg(voc_root, wd, epochs=1)
    cfg['default_hooks']['checkpoint'] = dict(type=hook, interval=1,
                                              max_keep_ckpts=1)
    Runner.from_cfg(Config(cfg)).train()
    first = osp.join(wd, 'epoch_1.pth')
    size = osp.getsize(first)
    cfg.update(resume=True)
    cfg['train_cfg']['max_epochs'] = 2
    _train_with_file_size_limit(cfg, size // 2)
    if hook == 'CheckpointHook':
        assert not osp.exists(first)
        assert osp.getsize(osp.join(wd, 'epoch_2.pth')) == size // 2
        # --resume follows last_checkpoint to the deleted file: named error.
        with pytest.raises(FileNotFoundError, match='epoch_1.pth not found'):
            Runner.from_cfg(Config(cfg)).train()
        return
    assert ckpts(wd) == ['epoch_1.pth'] and osp.getsize(first) == size
    assert last_checkpoint(wd) == first
    assert not [f for f in os.listdir(wd) if 'partial' in f]
    assert torch.load(first, weights_only=True)['meta']['epoch'] == 1
    # A temporary file left by a killed writer is cleaned up on resume.
    stale = osp.join(wd, '.epoch_2.pth.abc123.mmmsl-partial')
    open(stale, 'wb').close()
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    assert runner.epoch == 2 and not osp.exists(stale)
    assert ckpts(wd) == ['epoch_2.pth']  # max_keep_ckpts=1, removed last
    assert last_checkpoint(wd) == osp.join(wd, 'epoch_2.pth')


STALL_HOOK = '''
import os, time
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class StallForKill(Hook):
    """Test helper: after iteration $STALL_AT_ITER (0-based) write
    work_dir/stalled and sleep, so the test can kill the run there."""
    priority = 'LOWEST'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        at = os.environ.get('STALL_AT_ITER')
        if at is not None and runner.iter == int(at):
            open(os.path.join(runner.work_dir, 'stalled'), 'w').close()
            time.sleep(120)
'''


def _scalars(wd):
    """All lines of every run's vis_data/scalars.json under ``wd``."""
    rows = []
    for path in glob.glob(osp.join(wd, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


@pytest.mark.slow
def test_sigkill_then_resume_finishes_with_every_epoch_logged(
        voc_root, tmp_path):
    """tools/train.py is SIGKILLed in the middle of epoch 2 (after the 5th
    of 12 iterations; epoch_1.pth is the last checkpoint), then rerun with
    --resume: it redoes epoch 2 from epoch_1.pth and finishes, every
    epoch's validation is logged and the final checkpoint loads with
    weights_only=True."""
    (tmp_path / 'stall_probe.py').write_text(STALL_HOOK)
    wd = str(tmp_path / 'wd')
    cfg = small_cfg(voc_root, wd, epochs=4)
    cfg['custom_imports']['imports'].append('stall_probe')
    cfg['custom_hooks'].append(dict(type='StallForKill'))
    cfg['default_hooks']['checkpoint']['max_keep_ckpts'] = 2
    Config(cfg).dump(str(tmp_path / 'cfg.py'))
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([REPO, str(tmp_path)]))
    cmd = [sys.executable, 'tools/train.py', str(tmp_path / 'cfg.py'),
           '--work-dir', wd]
    proc = subprocess.Popen(cmd, cwd=REPO, env=dict(env, STALL_AT_ITER='4'),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not osp.exists(osp.join(wd, 'stalled')):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline, 'the run never reached iteration 5'
        time.sleep(0.1)
    proc.kill()  # SIGKILL: no handler, no cleanup
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stderr.close()
    assert ckpts(wd) == ['epoch_1.pth']
    assert last_checkpoint(wd) == osp.join(wd, 'epoch_1.pth')

    out = subprocess.run(cmd + ['--resume'], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'Auto resumed from the latest checkpoint' in log
    assert 'resumed epoch: 1, iter: 3' in log
    rows = _scalars(wd)
    val_epochs = sorted({r['step'] for r in rows if 'multi-label/mAP' in r})
    train_iters = {r['step'] for r in rows if 'loss_consistency' in r}
    assert val_epochs == [1, 2, 3, 4]
    assert train_iters == set(range(1, 13))
    assert ckpts(wd) == ['epoch_3.pth', 'epoch_4.pth']  # max_keep_ckpts=2
    final = osp.join(wd, 'epoch_4.pth')
    assert last_checkpoint(wd) == final
    ckpt = torch.load(final, weights_only=True)
    assert ckpt['meta']['epoch'] == 4 and ckpt['meta']['iter'] == 12
    model = MODELS.build(Config(cfg).model)
    model.load_state_dict(ckpt['state_dict'], strict=True)


# ------------------------------------------------------------- safe loading
class _Shell:
    """Unpickling this runs a shell command (a malicious checkpoint)."""

    def __init__(self, call, marker):
        self.call, self.marker = call, marker

    def __reduce__(self):
        if self.call == 'os.system':
            return os.system, (f'touch {self.marker}', )
        if self.call == 'subprocess':
            return subprocess.call, (['touch', self.marker], )
        return eval, (f'open({self.marker!r}, "w")', )


@pytest.fixture(scope='module')
def plain_ckpt(tmp_path_factory):
    """A plain mmpretrain ImageClassifier trained 1 epoch by mmengine's
    Runner (no mmmsl hooks, pipeline or model)."""
    tmp = tmp_path_factory.mktemp('plain')
    make_voc(str(tmp / 'VOC2007'))
    wd = str(tmp / 'wd')
    cfg = tiny_msl_cfg(str(tmp / 'VOC2007'), wd, epochs=1)
    cfg['model']['type'] = 'ImageClassifier'
    cfg['model']['backbone'].update(stem_channels=16, base_channels=16)
    cfg['model']['head']['in_channels'] = 128
    cfg['train_dataloader']['dataset']['pipeline'] = [
        t for t in cfg['train_dataloader']['dataset']['pipeline']
        if t['type'] != 'IrregularMask'
    ]
    cfg['train_dataloader']['dataset']['pipeline'][-1] = dict(
        type='PackInputs')
    Runner.from_cfg(Config(cfg)).train()
    return cfg, osp.join(wd, 'epoch_1.pth')


@pytest.mark.parametrize('call', ['os.system', 'subprocess', 'eval'])
def test_malicious_checkpoint_is_refused_and_nothing_runs(
        plain_ckpt, tmp_path, call):
    cfg, path = plain_ckpt
    ckpt = torch.load(path, weights_only=True)  # the allow-list suffices
    assert 'message_hub' in ckpt and 'optimizer' in ckpt
    marker = str(tmp_path / 'pwned')
    evil = str(tmp_path / 'evil.pth')
    ckpt['meta']['note'] = _Shell(call, marker)
    torch.save(ckpt, evil)
    cfg = dict(cfg, resume=True, load_from=evil,
               work_dir=str(tmp_path / 'wd'))
    cfg['train_cfg'] = dict(cfg['train_cfg'], max_epochs=2)
    runner = Runner.from_cfg(Config(cfg))
    with pytest.raises(pickle.UnpicklingError) as err:
        runner.train()
    msg = str(err.value)
    assert f'Refused to load checkpoint {evil}' in msg
    # torch names the global as pickled, e.g. posix.system, commands.call
    assert {'os.system': '.system', 'subprocess': '.call',
            'eval': 'the global eval'}[call] in msg
    assert 'Nothing in it was executed' in msg
    assert not osp.exists(marker) and runner.iter == 0


def test_plain_mmpretrain_checkpoint_resumes(plain_ckpt, tmp_path):
    """A checkpoint of mmpretrain's ImageClassifier, saved by mmengine's
    Runner, resumes under torch's weights_only default."""
    cfg, path = plain_ckpt
    cfg = dict(cfg, resume=True, load_from=path,
               work_dir=str(tmp_path / 'wd'))
    cfg['train_cfg'] = dict(cfg['train_cfg'], max_epochs=2)
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    assert runner.epoch == 2 and runner.iter == 6  # only epoch 2 ran
    ckpt = torch.load(osp.join(str(tmp_path / 'wd'), 'epoch_2.pth'),
                      weights_only=True)
    assert ckpt['meta']['epoch'] == 2


def test_truncated_checkpoint_is_a_named_error(plain_ckpt, tmp_path):
    _, path = plain_ckpt
    cut = str(tmp_path / 'cut.pth')
    with open(path, 'rb') as f, open(cut, 'wb') as g:
        g.write(f.read()[:4096])
    with pytest.raises(RuntimeError, match=r'cut\.pth is truncated'):
        CheckpointLoader.load_checkpoint(cut, map_location='cpu')
    (tmp_path / 'noise.pth').write_bytes(np.random.default_rng(0).bytes(999))
    with pytest.raises(pickle.UnpicklingError,
                       match=r'noise\.pth: it is corrupt'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'noise.pth'))
