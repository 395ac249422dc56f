# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of ``MultiLabelPaperMetric`` against hand-computed numbers."""
import os.path as osp
from fractions import Fraction as F

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpretrain.evaluation import (AveragePrecision, VOCAveragePrecision,
                                   VOCMultiLabelMetric)
from mmpretrain.registry import METRICS
from mmpretrain.structures import DataSample

from mmmsl.evaluation.metrics import MultiLabelPaperMetric

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
KEYS = ('mAP', 'CP', 'CR', 'CF1', 'OP', 'OR', 'OF1')

# 6 samples x 4 classes, thr = 0.5.
SCORES = [
    [0.90, 0.40, 0.70, 0.35],
    [0.80, 0.30, 0.55, 0.90],
    [0.60, 0.20, 0.95, 0.40],
    [0.30, 0.10, 0.60, 0.30],
    [0.20, 0.45, 0.35, 0.10],
    [0.10, 0.05, 0.85, 0.45],
]
TARGET = [
    [1, 0, 1, 0],
    [0, 1, 0, 1],
    [1, 0, 0, 1],
    [1, 0, 0, 1],
    [0, 1, 0, 0],
    [0, 0, 1, 1],
]
# Per class (TP / #pred / #gt, P, R, F1, AP from the ranking):
# c0: 2/3/3  P=2/3 R=2/3 F1=2/3  ranks +,-,+,+  AP=(1+2/3+3/4)/3 = 29/36
# c1: 0/0/2  P=0 (no positive prediction) R=0 F1=0
#            ranks +(.45),-(.4),+(.3)          AP=(1+2/3)/2   = 5/6
# c2: 2/5/2  P=2/5 R=1 F1=4/7   ranks -,+,+     AP=(1/2+2/3)/2 = 7/12
# c3: 1/1/4  P=1 R=1/4 F1=2/5   ranks +,+,+,-,+ AP=(3+4/5)/4   = 19/20
# CP = (2/3+0+2/5+1)/4 = 31/60, CR = (2/3+0+1+1/4)/4 = 23/48
# CF1 = 2*CP*CR/(CP+CR) = (713/1440)/(239/240) = 713/1434
# mean of per-class F1 = (2/3+0+4/7+2/5)/4 = 43/105 (!= CF1)
# OP = 5/9, OR = 5/11, OF1 = (50/99)/(100/99) = 1/2
# mAP = (29/36+5/6+7/12+19/20)/4 = (145+150+105+171)/180/4 = 571/720
EXPECTED = dict(
    mAP=F(571, 720),
    CP=F(31, 60),
    CR=F(23, 48),
    CF1=F(713, 1434),
    OP=F(5, 9),
    OR=F(5, 11),
    OF1=F(1, 2))


def make_samples(scores=SCORES, target=TARGET, difficult=None,
                 as_score=False):
    """Data sample dicts as the model / evaluator give them.

    ``difficult`` maps a sample index to its difficult labels, which are
    removed from ``gt_label`` (a label only present as difficult).
    """
    difficult = difficult or {}
    samples = []
    for i, (score, gt) in enumerate(zip(scores, target)):
        gt = list(gt)
        for c in difficult.get(i, []):
            gt[c] = 0
        sample = DataSample().set_pred_score(torch.tensor(score))
        if as_score:
            sample.set_gt_score(torch.tensor(gt, dtype=torch.float))
        else:
            sample.set_gt_label([c for c, v in enumerate(gt) if v])
        sample.set_metainfo(dict(gt_label_difficult=difficult.get(i, [])))
        samples.append(sample.to_dict())
    return samples


def evaluate(samples, **kwargs):
    metric = MultiLabelPaperMetric(**kwargs)
    metric.process(data_batch=None, data_samples=samples)
    return metric.evaluate(len(samples))


def assert_expected(res, expected):
    assert list(res) == [f'multi-label/{k}' for k in KEYS]
    for k, v in expected.items():
        assert res[f'multi-label/{k}'] == pytest.approx(
            100 * float(v), abs=1e-4), k


@pytest.mark.parametrize('as_score', [False, True])
def test_hand_computed(as_score):
    res = evaluate(make_samples(as_score=as_score))
    assert_expected(res, EXPECTED)


def test_cf1_is_not_mean_of_classwise_f1():
    res = evaluate(make_samples())
    mean_f1 = F(2, 3) + 0 + F(4, 7) + F(2, 5)
    assert mean_f1 / 4 == F(43, 105)
    assert res['multi-label/CF1'] == pytest.approx(100 * 713 / 1434, abs=1e-4)
    assert res['multi-label/CF1'] - 100 * 43 / 105 > 8  # 49.72 vs 40.95
    # mmpretrain's macro f1-score is the mean of per-class F1
    voc = VOCMultiLabelMetric(thr=0.5)
    voc.process(None, make_samples())
    assert voc.evaluate(6)['multi-label/f1-score'] == pytest.approx(
        100 * 43 / 105, abs=1e-4)


def test_agrees_with_mmpretrain():
    for difficult, dap in [(None, None), ({1: [2], 2: [3]}, None),
                           ({1: [2]}, True), ({1: [2]}, False)]:
        samples = make_samples(difficult=difficult)
        res = evaluate(samples, difficult_as_positive=dap)
        ap = AveragePrecision() if dap is None and difficult is None else \
            VOCAveragePrecision(difficult_as_positive=dap)
        macro = VOCMultiLabelMetric(thr=0.5, difficult_as_positive=dap)
        micro = VOCMultiLabelMetric(
            thr=0.5, average='micro', difficult_as_positive=dap)
        ref = {}
        for m in (ap, macro, micro):
            m.process(None, samples)
            ref.update(m.evaluate(6))
        pairs = dict(mAP='mAP', CP='precision', CR='recall',
                     OP='precision_micro', OR='recall_micro',
                     OF1='f1-score_micro')
        for k, ref_k in pairs.items():
            assert res[f'multi-label/{k}'] == pytest.approx(
                ref[f'multi-label/{ref_k}'], abs=1e-4), (k, difficult, dap)


def test_difficult_false_positive():
    # sample 1, class 2: score .55, not a gt label -> a false positive.
    def run(dap, score=0.55):
        scores = [list(s) for s in SCORES]
        scores[1][2] = score
        return evaluate(
            make_samples(scores, difficult={1: [2]}),
            difficult_as_positive=dap)

    # None: ignored. c2: 2/4/2 P=1/2 R=1, AP unchanged (7/12)
    # CP = (2/3+0+1/2+1)/4 = 13/24, CF1 = (299/576)/(49/48) = 299/588
    # OP = 5/8, OR = 5/11, OF1 = (25/44)/(95/88) = 10/19
    ignored = run(None)
    assert_expected(
        ignored,
        dict(mAP=F(571, 720), CP=F(13, 24), CR=F(23, 48), CF1=F(299, 588),
             OP=F(5, 8), OR=F(5, 11), OF1=F(10, 19)))
    # whatever its score, an ignored entry changes nothing
    assert run(None, score=0.99) == pytest.approx(ignored)
    assert run(None, score=0.01) == pytest.approx(ignored)
    # False: a plain negative -> the false positive counts again
    assert_expected(run(False), EXPECTED)
    # True: a positive -> true positive. c2: 3/5/3 P=3/5 R=1,
    # ranks -,+,+,-,+ AP=(1/2+2/3+3/5)/3 = 53/90
    # CP = (2/3+0+3/5+1)/4 = 17/30, OP = 6/9, OR = 6/12
    # mAP = (145+150+106+171)/180/4 = 143/180
    assert_expected(
        run(True),
        dict(mAP=F(143, 180), CP=F(17, 30), CR=F(23, 48), OP=F(2, 3),
             OR=F(1, 2)))
    assert run(True, score=0.01) != pytest.approx(run(True))


def test_difficult_false_negative():
    # sample 2, class 3: score .4, a gt label -> a false negative.
    def run(dap, as_score=False):
        return evaluate(
            make_samples(difficult={2: [3]}, as_score=as_score),
            difficult_as_positive=dap)

    # None: ignored. c3: 1/1/3 P=1 R=1/3, ranks +,+,-,+ AP=11/12
    # CR = (2/3+0+1+1/3)/4 = 1/2, OR = 5/10
    # mAP = (145+150+105+165)/180/4 = 113/144
    expected = dict(mAP=F(113, 144), CP=F(31, 60), CR=F(1, 2), OP=F(5, 9),
                    OR=F(1, 2))
    assert_expected(run(None), expected)
    assert_expected(run(None, as_score=True), expected)  # gt given as score
    # True: a positive -> the false negative counts again
    assert_expected(run(True), EXPECTED)
    # False: a true negative at rank 3 -> same counts, AP(c3)=(2+3/5)/3=13/15
    # mAP = (145+150+105+156)/180/4 = 139/180
    assert_expected(run(False), dict(expected, mAP=F(139, 180)))


def test_topk():
    # top-1 per sample: c0 ok, c3 ok, c2 wrong, c2 wrong, c1 ok, c2 ok
    # c0: 1/1/3, c1: 1/1/2, c2: 1/3/2, c3: 1/1/4
    # CP = (1+1+1/3+1)/4 = 5/6, CR = (1/3+1/2+1/2+1/4)/4 = 19/48
    # OP = 4/6, OR = 4/11
    res = evaluate(make_samples(), topk=1)
    assert_expected(
        res,
        dict(mAP=F(571, 720), CP=F(5, 6), CR=F(19, 48), OP=F(2, 3),
             OR=F(4, 11)))


def test_registry_and_storage():
    metric = METRICS.build(
        dict(type='MultiLabelPaperMetric', difficult_as_positive=None))
    assert isinstance(metric, MultiLabelPaperMetric)
    metric.process(None, make_samples(difficult={1: [2]}))
    assert len(metric.results) == 6
    result = metric.results[1]
    assert set(result) == {'pred_score', 'gt_score'}
    assert result['pred_score'].device.type == 'cpu'
    assert result['gt_score'].tolist() == [0, 1, -1, 1]
    assert set(metric.evaluate(6)) == {f'multi-label/{k}' for k in KEYS}


# The MSL authors' utils/evaluation/cal_mAP.py (json_map) and cal_PR.py
# (metric), rewritten in plain numpy from their code. Their targets: 1
# positive; WIDER ('wider') 0 negative, 99 unspecified; VOC07 ('voc07') -1
# negative, 0 difficult. Fractions, not percent.
def authors_map(scores, targets, types):
    aps = []
    for c in range(scores.shape[1]):
        predict, target = scores[:, c].copy(), targets[:, c].copy()
        if types == 'wider':
            keep = target != 99
            predict, target = predict[keep], target[keep]
        if types == 'voc07':
            keep = target != 0
            predict, target = predict[keep], target[keep]
            target[target == -1] = 0
        target = target[np.argsort(-predict)]
        pre, obj = 0., 0.
        for i in range(len(target)):
            if target[i] == 1:
                obj += 1.
                pre += obj / (i + 1)
        aps.append(pre / obj)
    return np.mean(aps)


def authors_pr(scores, targets, types):
    num_class = scores.shape[1]
    gt_num, tp_num, predict_num = (np.zeros(num_class) for _ in range(3))
    for c in range(num_class):
        score, target = scores[:, c].copy(), targets[:, c].copy()
        if types == 'wider':
            target[target == 99] = 0  # the score is kept
        if types == 'voc07':
            keep = target != 0
            score, target = score[keep], target[keep]
            target[target == -1] = 0
        gt_num[c] = np.sum(target == 1)
        predict_num[c] = np.sum(score >= 0.5)
        tp_num[c] = np.sum(target * (score >= 0.5))
    predict_num[predict_num == 0] = 1
    OP = np.sum(tp_num) / np.sum(predict_num)
    OR = np.sum(tp_num) / np.sum(gt_num)
    CP = np.sum(tp_num / predict_num) / num_class
    CR = np.sum(tp_num / gt_num) / num_class
    return dict(CP=CP, CR=CR, CF1=2 * CP * CR / (CP + CR), OP=OP, OR=OR,
                OF1=2 * OP * OR / (OP + OR))


def random_case(seed=0, num=60, num_classes=6):
    """Scores, positives and unspecified / difficult entries (not
    positive) of a random problem."""
    rng = np.random.default_rng(seed)
    scores = rng.random((num, num_classes))
    unspecified = rng.random((num, num_classes)) < 0.2
    positive = (rng.random((num, num_classes)) < 0.4) & ~unspecified
    return scores, positive, unspecified


@pytest.mark.parametrize('types', ['voc07', 'wider'])
def test_authors_protocol_random(types):
    scores, positive, unspecified = random_case()
    if types == 'wider':
        targets = np.where(unspecified, 99, positive.astype(int))
    else:
        targets = np.where(unspecified, 0, np.where(positive, 1, -1))
    # Every class has positives and predictions (else the authors' code
    # gives NaN, and counts Np = 1 in OP, see the metric's docstring).
    counted = scores >= 0.5
    if types == 'voc07':
        counted &= ~unspecified
    assert positive.any(0).all() and counted.any(0).all()
    ref = dict(authors_pr(scores, targets, types),
               mAP=authors_map(scores, targets, types))

    samples = make_samples(
        scores.tolist(), positive.astype(int).tolist(),
        difficult={i: list(np.flatnonzero(u)) for i, u in
                   enumerate(unspecified)})
    mode = dict(voc07='ignore', wider='negative')[types]
    res = evaluate(samples, difficult_in_thresholded=mode)
    for k in KEYS:
        assert res[f'multi-label/{k}'] == pytest.approx(
            100 * ref[k], abs=1e-4), k
    if types == 'voc07':  # the default is the VOC protocol, unchanged
        assert evaluate(samples) == res
    else:  # unspecified entries above 0.5 are false positives
        other = evaluate(samples)
        assert res['multi-label/mAP'] == other['multi-label/mAP']
        assert res['multi-label/CP'] < other['multi-label/CP'] - 1
        assert res['multi-label/OP'] < other['multi-label/OP'] - 1


def test_unspecified_negative_hand_computed():
    # 4 samples x 2 classes, U = unspecified (gt_label_difficult)
    #   scores      targets
    #   .9  .2      1  0
    #   .8  .7      U  1
    #   .3  .4      0  U
    #   .6  .55     1  0
    # 'ignore': c0 TP 2 / pred 2 / gt 2 (U left out), c1 1 / 2 / 1
    #   CP = (1 + 1/2)/2 = 3/4, CR = 1, CF1 = (3/2)/(7/4) = 6/7
    #   OP = 3/4, OR = 3/3, OF1 = 6/7
    # 'negative': c0's U scored .8 is a false positive: c0 2 / 3 / 2;
    #   c1's U scored .4 is not predicted: c1 unchanged 1 / 2 / 1
    #   CP = (2/3 + 1/2)/2 = 7/12, CR = 1, CF1 = (7/6)/(19/12) = 14/19
    #   OP = 3/5, OR = 1, OF1 = (6/5)/(8/5) = 3/4
    # mAP leaves U out in both: c0 ranks +,+,- and c1 +,-,- -> 100.
    # (With U negative in AP too, difficult_as_positive=False:
    #  c0 ranks +,-,+,- AP = (1 + 2/3)/2 = 5/6, mAP = 11/12.)
    scores = [[.9, .2], [.8, .7], [.3, .4], [.6, .55]]
    target = [[1, 0], [0, 1], [0, 0], [1, 0]]
    samples = make_samples(scores, target, difficult={1: [0], 2: [1]})
    assert_expected(
        evaluate(samples),
        dict(mAP=F(1), CP=F(3, 4), CR=F(1), CF1=F(6, 7), OP=F(3, 4),
             OR=F(1), OF1=F(6, 7)))
    assert_expected(
        evaluate(samples, difficult_in_thresholded='negative'),
        dict(mAP=F(1), CP=F(7, 12), CR=F(1), CF1=F(14, 19), OP=F(3, 5),
             OR=F(1), OF1=F(3, 4)))
    assert_expected(
        evaluate(samples, difficult_as_positive=False),
        dict(mAP=F(11, 12), CP=F(7, 12), OP=F(3, 5)))
    # WIDERAttribute(unspecified='ignore') marks U as -1 in gt_score: same.
    with_score = [
        DataSample().set_pred_score(torch.tensor(s)).set_gt_score(
            torch.tensor(t, dtype=torch.float)).to_dict()
        for s, t in zip(scores, [[1, 0], [-1, 1], [0, -1], [1, 0]])
    ]
    for mode in ('ignore', 'negative'):
        assert evaluate(with_score, difficult_in_thresholded=mode) == \
            evaluate(samples, difficult_in_thresholded=mode)


def test_difficult_in_thresholded_is_checked():
    with pytest.raises(ValueError, match="difficult_in_thresholded='neg'"):
        MultiLabelPaperMetric(difficult_in_thresholded='neg')
    with pytest.raises(ValueError, match='difficult_as_positive=None'):
        MultiLabelPaperMetric(difficult_in_thresholded='negative',
                              difficult_as_positive=False)


@pytest.mark.parametrize('name,mode', [
    ('msl/vit-l16_csra_wider.py', 'negative'),
    ('msl/vit-b16_csra_wider.py', 'negative'),
    ('msl/vit-l16_csra_wider_ignore.py', 'negative'),
    ('baseline/vit-l16_csra_wider.py', 'negative'),
    ('msl/resnet101_csra_voc.py', 'ignore'),
    ('msl/vit-l16_csra_coco.py', 'ignore'),
])
def test_configs_protocol(name, mode):
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        metrics = [METRICS.build(e) for e in evaluator
                   if e['type'] == 'MultiLabelPaperMetric']
        assert [m.difficult_in_thresholded for m in metrics] == [mode]
