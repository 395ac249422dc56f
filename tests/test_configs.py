"""Every config under configs/ builds: model, datasets (fixture roots), and
its train pipeline yields what the model needs."""
import glob
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, MODELS

import mmmsl  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', '*', '*.py')))


def write_img(path, size=(40, 30)):
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = np.random.default_rng(0).integers(0, 255, (*size, 3), np.uint8)
    cv2.imwrite(path, img)


def make_coco(root):
    cats = [dict(id=i, name=f'c{i}') for i in range(1, 91) if i % 9 != 0]
    cats = cats[:80]
    for split in ('train2014', 'val2014'):
        images, anns = [], []
        for i in range(1, 4):
            name = f'COCO_{split}_{i:012d}.jpg'
            write_img(osp.join(root, split, name))
            images.append(dict(id=i, file_name=name, height=30, width=40))
            anns.append(dict(id=i, image_id=i, category_id=cats[i]['id'],
                             iscrowd=0, bbox=[0, 0, 4, 4], area=16))
        os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
        with open(osp.join(root, 'annotations', f'instances_{split}.json'),
                  'w') as f:
            json.dump(dict(images=images, annotations=anns,
                           categories=cats), f)


def make_wider(root):
    names = ['Male', 'longHair', 'sunglass', 'Hat', 'Tshirt', 'longSleeve',
             'formal', 'shorts', 'jeans', 'longPants', 'skirt', 'faceMask',
             'logo', 'stripe']
    for split in ('trainval', 'test'):
        name = f'0--Parade/{split}.jpg'
        write_img(osp.join(root, 'Image', name))
        images = [dict(file_name=name, scene_id=0, targets=[
            dict(bbox=[2, 3, 20, 20], attribute=[1, -1, 0] + [-1] * 11)])]
        with open(osp.join(root, f'wider_attribute_{split}.json'), 'w') as f:
            json.dump(dict(images=images, attribute_id_map={
                str(i): n for i, n in enumerate(names)}), f)


@pytest.fixture(scope='module')
def roots(tmp_path_factory):
    from conftest import make_voc
    base = tmp_path_factory.mktemp('data')
    make_voc(str(base / 'VOC2007'))
    make_coco(str(base / 'coco'))
    make_wider(str(base / 'wider'))
    return dict(VOC=str(base / 'VOC2007'),
                VOCMultiLabel=str(base / 'VOC2007'),
                COCOMultiLabel=str(base / 'coco'),
                WIDERAttribute=str(base / 'wider'),
                DigitsMultiLabel=str(base / 'digits'))


def test_every_config_has_a_baseline_twin():
    names = {osp.relpath(c, osp.join(REPO, 'configs')) for c in CONFIGS}
    msl = {n.split('/', 1)[1] for n in names if n.startswith('msl/')}
    base = {n.split('/', 1)[1] for n in names if n.startswith('baseline/')}
    assert msl and msl <= base


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(c, REPO) for c in CONFIGS])
def test_config_builds(path, roots):
    cfg = Config.fromfile(path)
    init_default_scope('mmpretrain')
    model_cfg = cfg.model.copy()
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    model = MODELS.build(model_cfg)  # no weights are loaded before init
    # the x10 rate of paramwise_cfg's 'head' key reaches the head alone, as
    # the authors' 'classifier' group (docs/recipe.md)
    keys = (cfg.optim_wrapper.get('paramwise_cfg') or {}).get('custom_keys')
    for key in keys or {}:
        names = [n for n, _ in model.named_parameters() if key in n]
        assert names and all(n.startswith('head.') for n in names), names
    is_msl = osp.basename(osp.dirname(path)) == 'msl'
    assert type(model).__name__ == ('MaskedSupervisedClassifier'
                                    if is_msl else 'ImageClassifier')
    for name in ('train_dataloader', 'val_dataloader'):
        ds_cfg = cfg[name].dataset.copy()
        ds_cfg.data_root = roots[ds_cfg.type]
        if ds_cfg.type == 'DigitsMultiLabel':  # the config's style, 16 of it
            ds_cfg.num_samples = 16
        dataset = DATASETS.build(ds_cfg)
        assert len(dataset) > 0
        assert len(dataset.metainfo['classes']) == model_cfg.head.num_classes
        item = dataset[0]
        assert item['inputs'].ndim == 3
        has_mask = item['data_samples'].get('msl_mask') is not None
        assert has_mask == (is_msl and name == 'train_dataloader')
        if has_mask:  # the image's size, or 1/f of it (f = 2 at 448 px)
            (mh, mw), (h, w) = (item['data_samples'].msl_mask.shape,
                                item['inputs'].shape[1:])
            f = -(-max(h, w) // max(mh, mw))
            assert (mh, mw) == (-(-h // f), -(-w // f)) and f <= 2
        if has_mask and model_cfg.get('hidden_labels'):
            # hidden_labels reads the boxes that the config's PackInputs
            # packs: one loss step on two samples of its own pipeline
            batch = model.data_preprocessor(
                pseudo_collate([item, dataset[1]]), True)
            share = model.loss(**batch)['hidden_share']
            assert 0 <= float(share) <= 1
        # unspecified WIDER attributes ignored in the loss: -1 targets, which
        # only IgnoreAwareBCELoss may see
        ignore = ds_cfg.get('unspecified') == 'ignore'
        assert ignore == (name == 'train_dataloader'
                          and path.endswith('_ignore.py'))
        if ignore:
            assert model_cfg.head.loss.type == 'IgnoreAwareBCELoss'
            assert -1 in item['data_samples'].gt_score.tolist()
    if 'voc' in osp.basename(path):
        assert cfg.train_dataloader.dataset.type == 'VOCMultiLabel'
        assert cfg.test_dataloader.dataset.type == 'VOCMultiLabel'
    assert any(m['type'] == 'MultiLabelPaperMetric'
               for m in (cfg.val_evaluator if isinstance(
                   cfg.val_evaluator, list) else [cfg.val_evaluator]))


def test_every_config_is_reproducible_resumable_and_keeps_its_own_dir():
    """A fixed seed, the batch the lr is meant for, a bounded number of
    checkpoints, the resume type check, and one work dir per config (twins
    included), under our tools and mmpretrain's alike."""
    work_dirs = {}
    for path in CONFIGS:
        cfg = Config.fromfile(path)
        name = osp.relpath(path, REPO)
        assert isinstance(cfg.randomness.seed, int), name
        assert cfg.auto_scale_lr.base_batch_size == (
            cfg.train_dataloader.batch_size), name
        keep = cfg.default_hooks.checkpoint.max_keep_ckpts
        assert 0 < keep <= 3, name
        assert any(h.type == 'ModelTypeCheckHook'
                   for h in cfg.custom_hooks), name
        work_dirs.setdefault(osp.normpath(cfg.work_dir), []).append(name)
    shared = {d: n for d, n in work_dirs.items() if len(n) > 1}
    assert not shared, shared


DYNAMIC = sorted(glob.glob(osp.join(REPO, 'configs', 'msl', 'dynamic',
                                    '*.py')))


def test_dynamic_configs_schedule_what_their_names_say():
    # configs/msl/dynamic/: the demo + one MaskScheduleHook rule each
    # (their baseline is configs/baseline/demo_digits.py).
    from mmpretrain.registry import HOOKS
    init_default_scope('mmpretrain')
    rules = {}
    for path in DYNAMIC:
        cfg = Config.fromfile(path)
        assert cfg.model.type == 'MaskedSupervisedClassifier'
        assert cfg.work_dir.startswith('./work_dirs/demo_msl_')
        hook, = [HOOKS.build(h) for h in cfg.custom_hooks
                 if h['type'] == 'MaskScheduleHook']
        name = osp.basename(path)[len('demo_digits_'):-3]
        rules[name] = {k: r.resolve(cfg.train_cfg.max_epochs)
                       for k, r in hook.rules.items()}
    assert set(rules) == {'ramp', 'low2high', 'short'}
    alpha = rules['short']['alpha']  # 10 epochs, ramp over the first five
    assert alpha(0) == (0.3, 0.0, 0.0) and alpha(5) == (0.3, 0.2, 0.5)
    short = Config.fromfile(osp.join(REPO, 'configs', 'msl', 'dynamic',
                                     'demo_digits_short.py'))
    assert short.train_cfg.max_epochs == short.param_scheduler[1].end == 10
    assert short.train_dataloader.dataset.pipeline[1].ratio == 'low'
    alpha = rules['ramp']['alpha']
    assert alpha(0) == (0.3, 0.0, 0.0) and alpha(20) == (0.3, 0.2, 0.5)
    assert alpha(10) == pytest.approx((0.3, 0.1, 0.25))
    ratio = rules['low2high']['ratio']
    assert ratio(0) == (0.0, 0.5) and ratio(39) == (0.5, 0.6)
    assert len(ratio.table()) == 5
