"""Smoke tests of the benchmark tools (tools/analysis/benchmark_*.py).

They run each tool's command line at a tiny size (ResNet-18 at 32 px, batch
2, 2 steps; masks at 32/64 px from tiny banks) and check that every figure
the docs report is there and sane. No timing thresholds: speed is measured
by the tools, not asserted here. The train tool runs with one torch thread:
on a shared machine two OpenMP threads can spin against other processes
and make even this tiny model take seconds a step.
"""
import importlib.util
import inspect
import json
import math
import os
import os.path as osp
import statistics
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmpretrain.models import ImageClassifier

from mmmsl.models import MaskedSupervisedClassifier

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(ROOT, 'tools', 'analysis')


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'_bench_{name}', osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_tool(name, args, tmp_path):
    out = str(tmp_path / f'{name}.json')
    # PYTHONPATH: the tool imports this checkout's mmmsl, not an install's.
    env = dict(os.environ, MMMSL_CACHE=str(tmp_path / 'cache'),
               PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, osp.join(TOOLS, f'{name}.py'), *args, '--json', out],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out) as f:
        return json.load(f), proc.stdout


def _positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.mark.slow
def test_benchmark_train_cli(tmp_path):
    res, stdout = _run_tool('benchmark_train', [
        '--preset', 'r18-csra', '--batch-size', '2', '--img-size', '32',
        '--iters', '2', '--warmup', '1', '--mem-steps', '1', '--device',
        'cpu', '--threads', '1'
    ], tmp_path)
    assert res['settings']['malloc'] == 'reuse'
    assert 'malloc reuse' in stdout
    assert res['settings']['img_size'] == 32
    assert res['settings']['num_classes'] == 20
    for name in ('baseline', 'msl-two_pass', 'msl-concat'):
        v = res['train'][name]
        assert len(v['times_ms']) == 2
        assert all(_positive(t) for t in v['times_ms'])
        assert _positive(v['median_ms']) and _positive(v['imgs_per_s'])
        assert v['p25_ms'] <= v['median_ms'] <= v['p75_ms']
        mem = v['memory']
        assert _positive(mem['peak_mib']) and _positive(mem['base_mib'])
        assert mem['peak_mib'] >= mem['base_mib']
        assert name in stdout
    for name in ('baseline', 'msl'):
        assert _positive(res['inference'][name]['median_ms'])
    for key in ('train_two_pass', 'train_concat', 'mem_growth_two_pass',
                'mem_growth_concat', 'mem_peak_two_pass', 'mem_peak_concat',
                'inference', 'train_two_pass_paired', 'train_concat_paired',
                'inference_paired'):
        assert _positive(res['ratios'][key]), key
    # The ratio is what the table says it is.
    base = res['train']['baseline']['median_ms']
    assert res['ratios']['train_two_pass'] == pytest.approx(
        res['train']['msl-two_pass']['median_ms'] / base)
    assert res['ratios']['train_two_pass_paired'] == pytest.approx(
        statistics.median(a / b for a, b in zip(
            res['train']['msl-two_pass']['times_ms'],
            res['train']['baseline']['times_ms'])))
    for name in ('baseline', 'msl-two_pass', 'msl-concat'):  # prompt-free
        assert _positive(res['train'][name]['memory']['live']['peak_mib'])
    assert 'MSL / baseline' in stdout


def test_benchmark_train_config_handling():
    tool = _load_tool('benchmark_train')
    # A plain ImageClassifier config becomes MSL by its type; the twin keeps
    # no MSL key and nothing pretrained is loaded anywhere.
    cfg = Config(dict(
        model=dict(
            type='ImageClassifier', pretrained='x.pth',
            backbone=dict(type='ResNet', depth=18,
                          init_cfg=dict(type='Pretrained', checkpoint='y')),
            head=dict(type='MultiLabelLinearClsHead', num_classes=5,
                      in_channels=512)),
        data_preprocessor=dict(num_classes=5),
        train_pipeline=[dict(type='LoadImageFromFile'),
                        dict(type='RandomResizedCrop', scale=96)]))
    msl, base = tool.model_cfgs(cfg)
    assert msl['type'] == 'MaskedSupervisedClassifier'
    assert base['type'] == 'ImageClassifier'
    for m in (msl, base):
        assert 'pretrained' not in m and m['backbone']['init_cfg'] is None
        assert m['data_preprocessor'] == dict(num_classes=5)
    assert tool.default_img_size(cfg) == 96
    assert tool.num_classes_of(msl) == 5
    # The repo's MSL config: its MSL keys stay out of the baseline twin.
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'msl',
                                   'resnet101_csra_voc.py'))
    msl, base = tool.model_cfgs(cfg)
    assert msl['class_reduction'] == 'mean'
    msl_only = set(inspect.signature(
        MaskedSupervisedClassifier.__init__).parameters) - set(
            inspect.signature(ImageClassifier.__init__).parameters)
    assert 'class_reduction' in msl_only and not msl_only & set(base)
    assert msl['backbone']['init_cfg'] is None
    assert tool.default_img_size(cfg) == 448
    with pytest.raises(SystemExit):
        tool.parse_args([])  # neither CONFIG nor --preset
    # A preset is the paper's VOC config at another depth and side.
    cfg, size, classes = tool.setup(tool.parse_args(
        ['--preset', 'r18-csra', '--malloc', 'default']))
    assert (cfg.model.backbone.depth, cfg.model.head.in_channels) == (18, 512)
    assert (size, classes) == (224, 20)
    assert tool.setup(tool.parse_args(
        ['--preset', 'r101-csra', '--malloc', 'default']))[1] == 448


def test_benchmark_masks_cli(tmp_path):
    res, stdout = _run_tool('benchmark_masks', [
        '--sizes', '32', '64', '--n', '10', '--bank-size', '20',
        '--bank-res', '64', '--folder-count', '12', '--folder-res', '64'
    ], tmp_path)
    assert res['env']['torch_threads'] == 1
    sources = ('procedural', 'folder', 'bank')
    for size in ('32', '64'):
        for source in sources:
            rate = res['rates'][size][source]
            assert _positive(rate['masks_per_s']), (size, source)
            assert 0.3 < rate['mean_removed'] < 0.8
            p = res['pipeline'][size][source]
            assert 0.0 < p['mask_share_pct'] < 100.0
            assert p['total_us'] == pytest.approx(sum(p['step_us'].values()))
            assert all(_positive(v) for v in p['step_us'].values())
    assert res['build']['folder']['bank_masks'] >= 1
    assert 'mask %' in stdout
