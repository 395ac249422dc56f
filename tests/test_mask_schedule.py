"""Masking schedules: the rules, the shared level that reaches dataloader
workers, and MaskScheduleHook through mmengine's Runner."""
import glob
import json
import math
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, Runner
from mmpretrain.structures import DataSample
from torch.utils.data import DataLoader, Dataset

import mmmsl  # noqa: F401
from conftest import tiny_msl_cfg
from mmmsl.datasets import IrregularMask
from mmmsl.engine import LevelRule, MaskScheduleHook
from mmmsl.masks import hole_ratio, upsample_nearest
from mmmsl.masks.scheduled import ScheduledSource
from mmmsl.models import MaskedSupervisedClassifier

LOW_HIGH = [(0.0, 0.5), (0.125, 0.525), (0.25, 0.55), (0.375, 0.575),
            (0.5, 0.6)]


@pytest.fixture(autouse=True, scope='module')
def one_torch_thread():
    """Tiny models train faster on one thread, on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _bank_mask(ratio='low', **kw):
    return IrregularMask(ratio=ratio, bank_size=40, bank_res=64, **kw)


def test_rule_values_by_hand():
    lin = LevelRule('prob', [1.0, 0.0], begin=2, end=6)
    assert [lin(s)[0] for s in range(9)] == pytest.approx(
        [1, 1, 1, 0.75, 0.5, 0.25, 0, 0, 0])
    cos = LevelRule('prob', [0.0, 1.0], mode='cosine', end=4)
    assert cos(1)[0] == pytest.approx((1 - math.cos(math.pi / 4)) / 2)
    assert cos(2)[0] == pytest.approx(0.5) and cos(4) == (1.0, )
    step = LevelRule('ratio', ['low', 'high', (0.2, 0.3)], mode='step',
                     milestones=[2, 5])
    assert [step(s) for s in (0, 1, 2, 4, 5, 9)] == [
        (0.0, 0.5), (0.0, 0.5), (0.5, 0.6), (0.5, 0.6), (0.2, 0.3),
        (0.2, 0.3)]
    # A ratio rule is quantised to 5 bins; end=None is the last step (8).
    ratio = LevelRule('ratio', ['low', 'high']).resolve(9)
    assert ratio.end == 8
    np.testing.assert_allclose(ratio.table(), LOW_HIGH)
    # t = s / 8 rounded to quarters: s = 1 is halfway to bin 1, rounds up.
    expect = [0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert [ratio(s) for s in range(9)] == [ratio.table()[k] for k in expect]
    alpha = LevelRule('alpha', [(0.3, 0, 0), (0.3, 0.2, 0.5)], end=20)
    alpha.resolve(40)
    assert alpha(10) == pytest.approx((0.3, 0.1, 0.25))
    assert alpha(30) == pytest.approx((0.3, 0.2, 0.5))


@pytest.mark.parametrize('kwargs, match', [
    (dict(ratoi=dict(values=['low', 'high'])), r"unknown parameter.*ratoi"),
    (dict(ratio=dict(values=['low', 'high'], bgein=1)), 'unknown key.*bgein'),
    (dict(ratio=dict(values=[(0.6, 0.5), 'high'])), r'ratio\.values\[0\]'),
    (dict(prob=dict(values=[0.5, 1.5])), r'prob\.values\[1\]=1\.5'),
    (dict(alpha=dict(values=[(0, 0, 0), (0.3, 0.2, 0.5)])),
     r'alpha\.values\[0\].*not all zero'),
    (dict(alpha=dict(values=[(0.3, 0.2), (0.3, 0.2, 0.5)])),
     r'alpha\.values\[0\].*3 finite'),
    (dict(weights=dict(values=[(1, 0), (1, 1, 1)])), 'same number'),
    (dict(ratio=dict(values=['low', 'high'], mode='step')), 'one value more'),
    (dict(ratio=dict(values=['low'])), 'two values'),
    (dict(prob=dict(values=[1, 0], begin=5, end=3)), 'end=3 must be after'),
    (dict(prob=dict(values=[1, 0, 1], mode='step', milestones=[3, 2])),
     'must increase'),
    (dict(prob=dict(values=[1, 0], mode='step', milestones=[2], end=4)),
     r'prob\.end is not used'),
    (dict(prob=dict(values=[1, 0], mode='bogus')), "mode='bogus'"),
    (dict(prob=dict(values=[1, 0], by='batch')), "by='batch'"),
    (dict(), 'no rule'),
])
def test_bad_rules_fail_when_built(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaskScheduleHook(**kwargs)


def test_rule_steps_checked_against_training():
    with pytest.raises(ValueError, match='prob.end=10 is never reached'):
        LevelRule('prob', [1, 0], end=10).resolve(10)
    with pytest.raises(ValueError, match='milestones has 12, never reached'):
        LevelRule('prob', [1, 0], mode='step', milestones=[12]).resolve(10)


def test_each_level_draws_in_its_bin_from_banks_built_once():
    bins = LevelRule('ratio', ['low', 'high']).table()
    t = _bank_mask()
    t.set_level(ratio=bins[0])
    t.source.prebuild(bins)
    sources = [t.source.source(b) for b in bins]
    assert len({id(s) for s in sources}) == 5
    for level in (2, 4, 0, 3, 1, 2):
        lo, hi = bins[level]
        t.set_level(ratio=(lo, hi))
        assert t.ratio == (lo, hi) and t.source._current is sources[level]
        for hw in ((64, 64), (100, 80)):  # full size; reduced (50 x 40)
            for _ in range(30):
                keep = t.transform(dict(img=np.zeros(hw, np.uint8)))[
                    'msl_mask']
                assert keep.shape == ((64, 64) if hw == (64, 64) else
                                      (50, 40))
                r = hole_ratio(upsample_nearest(keep, *hw) == 0)
                assert lo < r <= hi, (level, hw, r)
    assert [t.source.source(b) for b in bins] == sources  # no rebuild


def test_constant_schedule_draws_the_unscheduled_masks():
    plain = _bank_mask('high', prob=0.5, seed=3)
    sched = _bank_mask('high', prob=0.5, seed=3)
    sched.set_level(ratio='high')
    assert sched.prob == 1.0 and sched.source.prob == 0.5
    masks = [[t.transform(dict(img=np.zeros((48, 48)), sample_idx=i))[
        'msl_mask'] for i in range(40)] for t in (plain, sched)]
    np.testing.assert_array_equal(masks[0], masks[1])
    assert 0 < sum(m.all() for m in masks[0]) < 40  # both outcomes seen
    sched.set_level(prob=0.0)
    assert all(
        sched.transform(dict(img=np.zeros((8, 8))))['msl_mask'].all()
        for _ in range(10))


class _Mixture:
    """A stand-in mixture source: records the weights it is used with."""

    def __init__(self, ratio):
        self.ratio = ratio
        self.weights = [0.5, 0.5]

    def sample(self, height, width, rng, size=None):
        hole = np.zeros((height, width), np.uint8)
        hole.flat[:int(self.weights[1] * hole.size)] = 1
        return hole


class _Masks(Dataset):
    """Hole ratios drawn by IrregularMask (or a source) in the workers."""

    def __init__(self, source=None, n=16):
        self.t = _bank_mask((0.1, 0.2))
        self.source, self.n = source, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if self.source is not None:
            rng = np.random.default_rng(i)
            return hole_ratio(self.source.sample(10, 10, rng))
        keep = self.t.transform(dict(img=np.zeros((32, 32), np.uint8)))
        return hole_ratio(keep['msl_mask'] == 0)


def _ratios(loader):
    return [b.tolist() for b in loader]


def test_level_reaches_persistent_workers():
    data = _Masks()
    data.t.set_level(ratio=(0.1, 0.2))
    data.t.source.prebuild([(0.5, 0.6)])
    loader = DataLoader(data, batch_size=2, num_workers=2,
                        persistent_workers=True)
    first = _ratios(loader)
    data.t.set_level(ratio=(0.5, 0.6))  # between epochs: exact
    second = _ratios(loader)
    assert all(0.1 < r <= 0.2 for b in first for r in b)
    assert all(0.5 < r <= 0.6 for b in second for r in b)
    data.t.set_level(prob=0.0)
    assert all(r == 0 for b in _ratios(loader) for r in b)
    # Within an epoch: batches asked for after the change (all but the
    # prefetch_factor * num_workers = 4 already in flight) have it.
    data.t.set_level(ratio=(0.1, 0.2), prob=1.0)
    got = []
    for k, batch in enumerate(loader):
        got.append(batch.tolist())
        if k == 1:
            data.t.set_level(ratio=(0.5, 0.6))
    assert all(0.1 < r <= 0.2 for b in got[:2] for r in b)
    assert all(0.5 < r <= 0.6 for b in got[6:] for r in b)
    # A mixture's weights (normalised) reach the workers' sources too.
    mix = ScheduledSource(_Mixture, _Mixture((0.0, 1.0)))
    loader = DataLoader(_Masks(mix, n=8), batch_size=2, num_workers=2,
                        persistent_workers=True)
    assert all(r == 0.5 for b in _ratios(loader) for r in b)
    mix.set(weights=[1, 3])
    assert all(r == 0.75 for b in _ratios(loader) for r in b)


def _fake_runner(pipeline=(), model=None, loop=EpochBasedTrainLoop,
                 total=4):
    train_loop = object.__new__(loop)
    train_loop._max_epochs, train_loop._max_iters = total, total * 3
    return SimpleNamespace(
        train_dataloader=SimpleNamespace(
            dataset=SimpleNamespace(pipeline=Compose(list(pipeline)))),
        train_loop=train_loop, model=model or SimpleNamespace(), epoch=0,
        iter=0, logger=MMLogger.get_current_instance(),
        message_hub=MessageHub.get_current_instance())


@pytest.mark.parametrize('hook, runner, match', [
    (dict(weights=dict(values=[(1, 0), (0, 1)])),
     dict(pipeline=[_bank_mask()]), 'weights rule.*IrregularMask #0.*not a '
     'mixture'),
    (dict(ratio=dict(values=['low', 'high'])), dict(),
     'ratio rule.*no IrregularMask.*no mask_source'),
    (dict(alpha=dict(values=[(1, 0, 0), (1, 1, 1)])),
     dict(pipeline=[_bank_mask()]), 'alpha rule.*has no alpha'),
    (dict(prob=dict(values=[0, 1])),
     dict(pipeline=[_bank_mask()], loop=IterBasedTrainLoop),
     "prob.by='epoch' needs an epoch-based"),
    (dict(prob=dict(values=[0, 1], end=4)), dict(pipeline=[_bank_mask()]),
     'prob.end=4 is never reached'),
])
def test_bad_schedules_fail_before_training(hook, runner, match):
    with pytest.raises(ValueError, match=match):
        MaskScheduleHook(**hook).before_train(_fake_runner(**runner))


def test_model_mask_source_follows_the_ratio_rule():
    model = MaskedSupervisedClassifier(
        backbone=dict(type='ResNet', depth=18, base_channels=8,
                      out_indices=(3, )),
        head=dict(type='MultiLabelLinearClsHead', num_classes=3,
                  in_channels=64),
        mask_source=dict(ratio='high', source='procedural'))
    runner = _fake_runner(model=model)
    hook = MaskScheduleHook(ratio=dict(values=[(0.1, 0.2), (0.3, 0.4)],
                                       mode='step', milestones=[2]))
    hook.before_train(runner)
    for epoch, (lo, hi) in enumerate([(0.1, 0.2)] * 2 + [(0.3, 0.4)] * 2):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        keep = model.keep_masks(torch.zeros(4, 3, 24, 24),
                                [DataSample() for _ in range(4)])
        for m in keep:  # drawn in the model: no mask in the samples
            assert lo < 1 - m.float().mean().item() <= hi


def test_schedule_through_runner_with_persistent_workers(voc_root, tmp_path):
    wd = str(tmp_path / 'wd')
    cfg = tiny_msl_cfg(voc_root, wd, epochs=4)
    cfg['val_cfg'] = cfg['val_dataloader'] = cfg['val_evaluator'] = None
    cfg['train_cfg'] = dict(by_epoch=True, max_epochs=4)
    cfg['train_dataloader'].update(num_workers=2, persistent_workers=True)
    cfg['model']['backbone'].update(base_channels=8, stem_channels=8)
    cfg['model']['head']['in_channels'] = 64
    cfg['train_dataloader']['dataset']['pipeline'][1]['scale'] = 16
    cfg['default_hooks'] = dict(logger=dict(type='LoggerHook', interval=1),
                                checkpoint=None)
    cfg['custom_hooks'] = [
        dict(type='MaskScheduleHook',
             ratio=dict(mode='step', values=[(0.1, 0.2), (0.5, 0.6)],
                        milestones=[2]),
             alpha=dict(values=[(0.3, 0, 0), (0.3, 0.2, 0.5)], by='iter',
                        end=6))
    ]
    runner = Runner.from_cfg(Config(cfg))
    model, seen = runner.model, []
    keep_masks = model.keep_masks

    def record(inputs, data_samples):  # what the model actually gets
        keep = keep_masks(inputs, data_samples)
        seen.append((runner.epoch, runner.iter, model.alpha,
                     (1 - keep.float().mean((1, 2, 3))).tolist()))
        return keep

    model.keep_masks = record
    runner.train()
    assert [s[:2] for s in seen] == [(i // 3, i) for i in range(12)]
    for epoch, it, alpha, ratios in seen:
        lo, hi = (0.1, 0.2) if epoch < 2 else (0.5, 0.6)
        assert all(lo < r <= hi for r in ratios), (epoch, ratios)
        f = min(it / 6, 1.0)
        assert alpha == pytest.approx((0.3, 0.2 * f, 0.5 * f))
    # The logged level: each epoch's lines in the json log say the bin.
    log = glob.glob(osp.join(wd, '*', 'vis_data', '2*.json'))
    lines = [json.loads(line) for line in open(log[0])]
    assert [(d['epoch'], d['mask_ratio_hi']) for d in lines] == [
        (e, 0.2 if e < 3 else 0.6) for e in (1, 2, 3, 4) for _ in range(3)]
    assert [d['alpha_masked'] for d in lines] == pytest.approx(
        [0.2 * min(i / 6, 1) for i in range(12)])


def test_mixture_weights_follow_the_rule_and_are_logged():
    t = IrregularMask(ratio='high', source='procedural',
                      family=['strokes', 'boxes'])
    runner = _fake_runner(pipeline=[t])
    with pytest.raises(ValueError, match='weights.values have 3 weights, '
                       r'the train pipeline IrregularMask #0 mixture has 2'):
        MaskScheduleHook(weights=dict(values=[(1, 0, 0), (0, 1, 0)])
                         ).before_train(runner)
    hook = MaskScheduleHook(weights=dict(values=[(3, 1), (0, 2)],
                                         mode='step', milestones=[2]))
    hook.before_train(runner)
    for epoch, expect in enumerate([(0.75, 0.25)] * 2 + [(0.0, 1.0)] * 2):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        mixture = t.source._current  # the MixtureMasks in use
        np.testing.assert_allclose(mixture.weights, expect)
        hub = runner.message_hub
        assert hub.get_scalar('train/mask_weight_boxes').current() == \
            pytest.approx(expect[1])


def test_ratio_rule_for_a_bank_file_fails_before_training(tmp_path):
    from mmmsl.masks import MaskBank
    path = str(tmp_path / 'bank.npz')
    MaskBank.procedural(10, 32, 'high').save(path)
    runner = _fake_runner(pipeline=[IrregularMask(ratio='high', path=path)])
    with pytest.raises(ValueError, match=r'IrregularMask #0: Mask bank file '
                       r'.* holds ratio range \(0.5, 0.6\)'):
        MaskScheduleHook(ratio=dict(values=['low', 'high'])).before_train(
            runner)
