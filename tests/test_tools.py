"""The commands users type: tools/train.py, tools/test.py, dist_train.sh.

Each tool runs once here as a command (a subprocess); where the command line
itself is not what a test is about, the tool's ``main(argv)`` is called in
this process instead, with the same arguments.
"""
import glob
import importlib.util
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'msl', 'resnet101_csra_voc.py')
#: mmpretrain's own training tool, shipped inside its wheel.
MMPRETRAIN_TRAIN = osp.join(
    osp.dirname(importlib.util.find_spec('mmpretrain').origin), '.mim',
    'tools', 'train.py')


def small_options(root):
    """Shrink the paper config to ResNet-18 at 64 px, 2 epochs, fixtures."""
    opts = [
        'model.backbone.depth=18', 'model.backbone.init_cfg=None',
        'model.head.in_channels=512', 'train_cfg.max_epochs=2',
        'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
        'val_dataloader.batch_size=4', 'val_dataloader.num_workers=0',
        'test_dataloader.batch_size=4', 'test_dataloader.num_workers=0',
        'train_dataloader.dataset.pipeline.1.scale=64',
        'val_dataloader.dataset.pipeline.1.scale=64',
        'test_dataloader.dataset.pipeline.1.scale=64',
        'default_hooks.logger.interval=1',
    ]
    for loader in ('train', 'val', 'test'):
        opts.append(f'{loader}_dataloader.dataset.data_root={root}')
    return opts


def run(cmd, **kw):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600, **kw)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def load_tool(name, path):
    """``tools/<path>`` as a module (its ``main(argv)`` runs in-process)."""
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tools(one_torch_thread, monkeypatch):
    """``tools('train')``: tools/train.py as a module, to call its
    ``main(argv)`` in-process (one torch thread, as the subprocesses'
    OMP_NUM_THREADS=1; LOCAL_RANK, which the tools set, restored after)."""
    monkeypatch.setenv('LOCAL_RANK', '0')
    return lambda name: load_tool(f'mmmsl_{name}_tool', f'tools/{name}.py')


def last_log(work_dir):
    """The text of the newest run's log in ``work_dir`` (mmengine's
    ``<work_dir>/<timestamp>/<timestamp>.log``)."""
    with open(sorted(glob.glob(osp.join(work_dir, '*', '*.log')))[-1]) as f:
        return f.read()


def metric(out, name):
    found = re.findall(rf'multi-label/{name}: ([0-9.]+)', out)
    assert found, f'no multi-label/{name} in output'
    return float(found[-1])


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_train_then_test(voc_root, tmp_path, tools):
    wd = str(tmp_path / 'wd')
    # The paper config as it ships, for one epoch (its 2-epoch warm-up and
    # steps longer than the run), with the batch-size rule of the lr: the
    # command tools/train.py.
    out = run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', wd,
               '--auto-scale-lr', '--cfg-options'] + small_options(voc_root) +
              ['train_cfg.max_epochs=1'])
    assert 'Epoch(train) [1][3/3]' in out and 'Epoch(train) [2]' not in out
    assert 'Scaling the original LR by 0.6666' in out  # batch 4 of 6
    assert 'mmcv-lite' not in out  # mmcv's warning about a detection op
    # ... resumed to two epochs (in-process from here on; tools/test.py's
    # command runs in tools/dist_test.sh below, mask_sweep.py's here)
    tools('train').main([CONFIG, '--work-dir', wd, '--resume',
                         '--cfg-options'] + small_options(voc_root))
    out = last_log(wd)
    assert 'resumed epoch: 1, iter: 3' in out and 'Epoch(train) [2]' in out
    assert 0 <= metric(out, 'mAP') <= 100 and 0 <= metric(out, 'CF1') <= 100
    assert 'loss_consistency' in out
    ckpt = osp.join(wd, 'epoch_2.pth')
    assert osp.isfile(ckpt)

    test_tool = tools('test')
    metrics = test_tool.main([CONFIG, ckpt, '--work-dir', wd,
                              '--cfg-options'] + small_options(voc_root))
    clean = metrics['multi-label/mAP']
    assert 0 < clean <= 100 and 'multi-label/OF1' in metrics

    masked = test_tool.main([CONFIG, ckpt, '--work-dir', wd, '--mask',
                             '0.6,0.7', '--cfg-options'] +
                            small_options(voc_root))['multi-label/mAP']
    # Held-out masks are fixed per (seed, sample index) (test_transform.py,
    # test_masked_eval.py); the masked evaluation differs from the clean one.
    assert masked != clean

    # The sweep tool: one row per (checkpoint, family, ratio); its clean
    # row is tools/test's clean mAP, its strokes row tools/test --mask's.
    sweep = str(tmp_path / 'sweep')
    out = run([sys.executable, 'tools/analysis/mask_sweep.py', CONFIG, ckpt,
               '--labels', 'msl', '--ratios', '0', '0.7', '--families',
               'strokes', 'boxes', '--out-dir', sweep,
               '--cfg-options'] + small_options(voc_root))
    with open(osp.join(sweep, 'mask_sweep.csv')) as f:
        rows = [r.split(',') for r in f.read().split()]
    assert rows[0] == ['model', 'family', 'removed', 'multi-label/mAP']
    assert [r[:2] for r in rows[1:]] == [['msl', 'none'], ['msl', 'strokes'],
                                         ['msl', 'boxes']]
    assert abs(float(rows[1][3]) - clean) < 1e-3
    assert abs(float(rows[2][3]) - masked) < 1e-3
    assert osp.getsize(osp.join(sweep, 'mask_sweep.png')) > 1000


@pytest.mark.slow
def test_paper_config_trains_under_mmpretrains_own_tool(voc_root, tmp_path):
    """custom_imports is all mmpretrain's tools/train.py needs; one epoch,
    with its --auto-scale-lr."""
    wd = str(tmp_path / 'wd')
    out = run([sys.executable, MMPRETRAIN_TRAIN, CONFIG, '--work-dir', wd,
               '--auto-scale-lr', '--no-persistent-workers',
               '--cfg-options'] + small_options(voc_root) +
              ['train_cfg.max_epochs=1'])
    assert 'Epoch(train) [1][3/3]' in out and 'loss_masked' in out
    assert 0 <= metric(out, 'mAP') <= 100
    assert osp.isfile(osp.join(wd, 'epoch_1.pth'))


def test_auto_scale_lr_without_base_batch_is_a_named_error(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'mmmsl_train_tool', osp.join(REPO, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    from mmengine.config import Config
    path = str(tmp_path / 'no_auto_scale.py')
    Config(dict(model=dict(type='ImageClassifier'))).dump(path)
    args = train.parse_args([path, '--auto-scale-lr'])
    with pytest.raises(ValueError, match='no_auto_scale.py sets no '
                       'auto_scale_lr'):
        train.merge_args(Config.fromfile(path), args)
    # every shipped config has it
    cfg = train.merge_args(Config.fromfile(CONFIG),
                           train.parse_args([CONFIG, '--auto-scale-lr']))
    assert cfg.auto_scale_lr == dict(base_batch_size=6, enable=True)


#: A port taken between free_port() and the launcher's bind (other tests
#: run beside this one): the only failure worth another try.
PORT_TAKEN = ('Address already in use', 'EADDRINUSE', 'DistNetworkError')


def dist_run(args, tries=3):
    """``tools/dist_*.sh ARGS`` with two CPU processes on a free port."""
    for _ in range(tries):
        proc = subprocess.run(
            ['bash'] + args, cwd=REPO, capture_output=True, text=True,
            timeout=600, env=dict(os.environ, PORT=str(free_port()),
                                  PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
        out = proc.stdout + proc.stderr
        if proc.returncode == 0 or not any(e in out for e in PORT_TAKEN):
            break
    assert proc.returncode == 0, out[-4000:]
    assert 'Distributed launcher: pytorch' in out
    return out


@pytest.mark.slow
def test_dist_train_two_cpu_processes(voc_root, tmp_path):
    wd = str(tmp_path / 'dist')
    out = dist_run(['tools/dist_train.sh', CONFIG, '2', '--work-dir', wd,
                    '--cfg-options'] + small_options(voc_root))
    assert re.search(r'World size: 2|world_size: 2|Distributed training: '
                     r'True', out), out[-3000:]
    # 12 images, batch 4 per process, 2 processes: 2 iterations per epoch.
    assert 'Epoch(train) [2][2/2]' in out
    assert 0 <= metric(out, 'mAP') <= 100 and 0 <= metric(out, 'CF1') <= 100
    ckpt = osp.join(wd, 'epoch_2.pth')
    assert osp.isfile(ckpt)
    # tools/dist_test.sh: the same launcher, test.py and a checkpoint
    out = dist_run(['tools/dist_test.sh', CONFIG, ckpt, '2', '--work-dir',
                    wd, '--cfg-options'] + small_options(voc_root))
    assert 0 <= metric(out, 'mAP') <= 100


@pytest.mark.parametrize('in_model_masks', [False, True])
def test_existing_mmpretrain_config_becomes_msl(voc_root, tmp_path, tools,
                                                in_model_masks):
    """mmpretrain's own CSRA config + custom_imports + the model type
    (through tools/train.py in-process: that custom_imports alone is enough
    in a fresh process is the test with mmpretrain's own tool above)."""
    cfg = tmp_path / 'msl_from_mmpretrain.py'
    lines = [
        "_base_ = ['mmpretrain::csra/resnet101-csra_1xb16_voc07-448px.py']",
        "custom_imports = dict(imports=['mmmsl'], "
        'allow_failed_imports=False)',
    ]
    if in_model_masks:
        lines.append("model = dict(type='MaskedSupervisedClassifier', "
                     "mask_source=dict(ratio='high'))")
    else:
        lines += [
            "model = dict(type='MaskedSupervisedClassifier')",
            'train_pipeline = [',
            "    dict(type='LoadImageFromFile'),",
            "    dict(type='RandomResizedCrop', scale=448, "
            'crop_ratio_range=(0.7, 1.0)),',
            "    dict(type='RandomFlip', prob=0.5, direction='horizontal'),",
            "    dict(type='IrregularMask', ratio='high'),",
            "    dict(type='PackInputs', algorithm_keys=('msl_mask', )),",
            ']',
            'train_dataloader = dict(dataset=dict(pipeline=train_pipeline))',
        ]
    cfg.write_text('\n'.join(lines) + '\n')
    wd = str(tmp_path / 'wd')
    tools('train').main([
        str(cfg), '--work-dir', wd, '--no-validate', '--cfg-options',
        'train_cfg.max_epochs=1'
    ] + small_options(voc_root)[:7] + [
        'train_dataloader.dataset.pipeline.1.scale=64',
        f'train_dataloader.dataset.data_root={voc_root}'
    ])
    losses = re.findall(r'loss_masked: ([0-9.]+)', last_log(wd))
    assert losses and float(losses[0]) > 0
