"""Per-class thresholds: tuning, and the tuning set's checks."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

from conftest import tiny_msl_cfg
from mmmsl.apis import tune_class_thresholds
from mmmsl.apis.thresholds import class_f1_curve

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(name, path):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tune_tool = load_tool('tune_thresholds', 'tools/analysis/tune_thresholds.py')
class_f1 = tune_tool.class_f1  # mmpretrain's MultiLabelMetric (float32)


def _f1_at(scores, labels, thresholds):
    """F1 of one class at each threshold (mmpretrain's definition)."""
    return np.array([class_f1(scores[:, None], labels[:, None],
                              np.array([t]))[0] for t in thresholds])


def test_tune_perfect_separator():
    # P = 2. thr .9: TP 1 / pred 1 -> 2/3; .8: 2/2 -> 1; .3: 2/3 -> 4/5;
    # .2: 2/4 -> 2/3.
    scores, labels = np.array([.3, .9, .2, .8]), np.array([0, 1, 0, 1])
    np.testing.assert_allclose(_f1_at(scores, labels, [.9, .8, .3, .2]),
                               [2 / 3, 1, 4 / 5, 2 / 3], atol=1e-6)
    assert tune_class_thresholds(scores[:, None], labels[:, None]) == [.8]
    cand, f1 = class_f1_curve(scores, labels)  # a perfect threshold is 1.0
    np.testing.assert_allclose(cand, [.9, .8, .3, .2])
    np.testing.assert_allclose(f1, [2 / 3, 1, 4 / 5, 2 / 3])


def test_tune_ties():
    # P = 4; the three .7 form one candidate (all predicted together).
    # thr .9: TP 1 / pred 1 -> 2/5; .7: 3/4 -> 6/8; .4: 3/5 -> 6/9;
    # .2: 4/6 -> 8/10 (best).
    scores = np.array([.7, .9, .2, .7, .4, .7])
    labels = np.array([1, 1, 1, 0, 0, 1])
    np.testing.assert_allclose(_f1_at(scores, labels, [.9, .7, .4, .2]),
                               [2 / 5, 3 / 4, 2 / 3, 4 / 5], atol=1e-6)
    assert tune_class_thresholds(scores[:, None], labels[:, None]) == [.2]
    cand, f1 = class_f1_curve(scores, labels)
    np.testing.assert_allclose(cand, [.9, .7, .4, .2])
    np.testing.assert_allclose(f1, [2 / 5, 3 / 4, 2 / 3, 4 / 5])


@pytest.mark.parametrize('seed', range(5))
def test_tuned_threshold_is_the_highest_best_distinct_score(seed):
    # Brute force over every distinct score with mmpretrain's F1: the tuned
    # threshold has the best F1, and is the highest of the ties.
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 10, (40, 3)) / 10  # many ties
    labels = (rng.random((40, 3)) < 0.3).astype(int)
    labels[rng.random((40, 3)) < 0.1] = -1  # ignored
    thr = tune_class_thresholds(scores, labels)
    for c in range(3):
        valid = labels[:, c] >= 0
        cand = np.unique(scores[valid, c])[::-1]
        f1 = _f1_at(scores[valid, c], labels[valid, c], cand)
        assert thr[c] == cand[np.flatnonzero(f1 >= f1.max() - 1e-6)[0]]


def test_tune_thresholds_hand_made():
    # class 0: F1 at thr .9 .8 .3 .2 = 2/3, 1/2, 4/5, 2/3 -> 0.3
    # class 1: a tie (F1 2/3 at .9 and .6): the highest threshold, 0.9
    # class 2: no positive -> 0.5; class 3: equal scores form one candidate;
    # class 4: -1 (ignored) removes the 0.95 negative -> 0.7 (F1 1)
    scores = np.array([[.9, .9, .9, .4, .95],
                       [.8, .8, .2, .4, .7],
                       [.3, .7, .1, .4, .6],
                       [.2, .6, .3, .1, .5],
                       [.1, .1, .0, .0, .1]])
    labels = np.array([[1, 1, 0, 1, -1],
                       [0, 0, 0, 0, 1],
                       [1, 0, 0, 1, 0],
                       [0, 1, 0, 0, 0],
                       [0, 0, 0, 0, 0]])
    # class 3 (P = 2): thr .4 -> TP 2 of 3 predicted: F1 4/5; .1 -> 4/6.
    thr = tune_class_thresholds(scores[:4], labels[:4])
    np.testing.assert_allclose(thr, [0.3, 0.9, 0.5, 0.4, 0.7])
    np.testing.assert_allclose(class_f1(scores[:4], labels[:4], thr),
                               [4 / 5, 2 / 3, 0, 4 / 5, 1], atol=1e-6)
    # A fifth, all-negative row adds worse candidates only.
    np.testing.assert_allclose(tune_class_thresholds(scores, labels)[[0, 3]],
                               [0.3, 0.4])
    with pytest.raises(ValueError, match='labels must be'):
        tune_class_thresholds(scores, labels * 2)


@pytest.fixture
def voc_cfg(voc_root, tmp_path):
    """The tiny VOC (trainval 000000-000011, test 000012-000017) with
    train = 000000-000007 and val = 000008-000011, and a config that
    trains on trainval and tunes (val_dataloader) on val."""
    ids = [f'{i:06d}' for i in range(12)]
    for split, part in (('train', ids[:8]), ('val', ids[8:])):
        with open(osp.join(voc_root, 'ImageSets', 'Main', f'{split}.txt'),
                  'w') as f:
            f.write('\n'.join(part) + '\n')
    cfg = Config(tiny_msl_cfg(voc_root, str(tmp_path / 'wd')))
    cfg.val_dataloader.dataset.split = 'val'
    return cfg


def test_train_overlap(voc_cfg, voc_root):
    # val is inside trainval, the train split: refused.
    example = osp.join(voc_root, 'JPEGImages', '000008.jpg')
    assert tune_tool.train_overlap(voc_cfg, 'val') == (
        '4 of the 4 images of val_dataloader are also in train_dataloader, '
        f'e.g. {example}')
    assert tune_tool.train_overlap(voc_cfg, 'train').startswith(
        '12 of the 12 images of train_dataloader are also in')
    # Disjoint: train vs val, trainval vs test.
    voc_cfg.train_dataloader.dataset.split = 'train'
    assert tune_tool.train_overlap(voc_cfg, 'val') is None
    voc_cfg.train_dataloader.dataset.split = 'trainval'
    voc_cfg.val_dataloader.dataset.split = 'test'
    assert tune_tool.train_overlap(voc_cfg, 'val') is None


def test_tool_refuses_train_images_before_the_model(voc_cfg, tmp_path):
    cfg_file = str(tmp_path / 'tiny.py')
    Config(voc_cfg.to_dict()).dump(cfg_file)
    missing = str(tmp_path / 'missing.pth')  # never read if refused
    args = [cfg_file, missing, '--device', 'cpu', '--out',
            str(tmp_path / 'thr.json'), '--cfg-options']
    with pytest.raises(SystemExit) as e:
        tune_tool.main(args + ['val_dataloader.dataset.split=val'])
    msg = str(e.value.code)
    assert msg.startswith('Refusing to tune thresholds on training images: '
                          '4 of the 4 images of val_dataloader are also in '
                          'train_dataloader, e.g. ')
    assert '000008.jpg' in msg and cfg_file in msg
    assert 'train_dataloader.dataset.split=train' in msg
    assert '--allow-train-overlap' in msg
    # A disjoint split, or the flag: the checks pass and the model loads
    # (here: the missing checkpoint).
    for extra in (['val_dataloader.dataset.split=val',
                   'train_dataloader.dataset.split=train'],
                  ['val_dataloader.dataset.split=val',
                   '--allow-train-overlap']):
        with pytest.raises(FileNotFoundError, match='missing.pth'):
            tune_tool.main(args + extra)
    assert not osp.exists(tmp_path / 'thr.json')
