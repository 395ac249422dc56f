"""One hole pixel for every tool: IrregularMask(apply=True), test.py --mask
(add_test_masks), infer --mask, visualize_masks and mask_sweep."""
import copy
import importlib.util
import os.path as osp
import warnings

import cv2
import numpy as np
import pytest
from mmengine.config import Config

import mmmsl  # noqa: F401
from conftest import make_voc, tiny_msl_cfg
from mmmsl.apis.robustness import (EVAL_MASK_SEED, add_test_masks,
                                   hole_fill_pixels, insert_test_mask)
from mmmsl.datasets import IrregularMask
from mmmsl.masks import hole_pixel, round_pixel

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
IMAGENET = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])


def test_hole_pixel_values():
    # mean + fill * std per channel, BGR when to_rgb, rounded half up and
    # clipped to 0..255.
    assert hole_pixel(to_rgb=True, **IMAGENET) == (104, 116, 124)
    assert hole_pixel(to_rgb=False, **IMAGENET) == (124, 116, 104)
    assert hole_pixel([0] * 3, [255] * 3, to_rgb=True) == (0, 0, 0)
    assert hole_pixel([0] * 3, [255] * 3, fill=1.0) == (255, 255, 255)
    assert hole_pixel([127.5] * 3, [127.5] * 3, to_rgb=True) == (128,) * 3
    assert hole_pixel([127.5] * 3, [127.5] * 3, fill=-2.0) == (0,) * 3
    assert hole_pixel([127.5] * 3, [127.5] * 3, fill=5.0) == (255,) * 3
    # Per-channel fill, in the preprocessor's (RGB) order, reversed to BGR.
    assert hole_pixel([100, 110, 120], [10, 10, 10], fill=[1, 0, -1],
                      to_rgb=True) == (110, 110, 110)
    assert hole_pixel([100, 110, 120], [10, 10, 10], fill=[1, 2, 3],
                      to_rgb=True) == (150, 130, 110)
    # No mean: the preprocessor passes pixels through; the pixel is fill.
    assert hole_pixel() == (0, )
    assert hole_pixel(fill=[3.4, 2.5, -1], to_rgb=True) == (0, 3, 3)
    with pytest.raises(ValueError, match='channel'):
        hole_pixel([1, 2, 3], [1, 1, 1], fill=[0, 0])


def test_round_pixel_rounds_half_up_and_clips():
    np.testing.assert_array_equal(
        round_pixel([-3.0, 0.49, 0.5, 103.53, 127.5, 254.5, 300.0]),
        [0, 0, 1, 104, 128, 255, 255])
    assert round_pixel(127.5).dtype == np.uint8
    np.testing.assert_array_equal(round_pixel([-1.5, 2.25], np.float32),
                                  np.float32([-1.5, 2.25]))
    np.testing.assert_array_equal(round_pixel([-1.5, 70000], np.uint16),
                                  [0, 65535])


def test_hole_fill_pixels_reads_the_model_config():
    def cfg(pre=None, top=None, **model):
        c = dict(model=dict(type='MaskedSupervisedClassifier', **model))
        if pre is not None:
            c['model']['data_preprocessor'] = pre
        if top is not None:
            c['data_preprocessor'] = top
        return Config(c)

    assert hole_fill_pixels(cfg(dict(to_rgb=True, **IMAGENET))) == (
        104, 116, 124)
    # mmengine's spelling of to_rgb, and a top-level data_preprocessor.
    assert hole_fill_pixels(cfg(top=dict(bgr_to_rgb=True, **IMAGENET))) == (
        104, 116, 124)
    assert hole_fill_pixels(cfg(dict(mean=[127.5] * 3, std=[127.5] * 3),
                                fill=-1.0)) == (0, 0, 0)
    assert hole_fill_pixels(cfg(dict(to_rgb=True, mean=[0] * 3,
                                     std=[255] * 3))) == (0, 0, 0)
    # No mean (no normalisation), or no preprocessor: 0, as everywhere.
    assert hole_fill_pixels(cfg(dict(to_rgb=True))) == (0, )
    assert hole_fill_pixels(cfg()) == (0, )


# --- the same pixel in every tool --------------------------------------

#: Preprocessor variants and the hole pixel (BGR) each must give.
VARIANTS = {
    # No normalisation: black (visualize_masks used grey 128).
    'no-mean': (dict(), {}, (0, 0, 0)),
    # ImageNet mean: IrregularMask truncated to (103, 116, 123).
    'imagenet': (IMAGENET, {}, (104, 116, 124)),
    # WIDER (mean = std = 127.5): grey 128 (IrregularMask gave 127).
    'wider': (dict(mean=[127.5] * 3, std=[127.5] * 3), {}, (128, 128, 128)),
    # A fill below the range: clipped to 0 (it wrapped around, or failed).
    'clipped': (dict(mean=[127.5] * 3, std=[127.5] * 3), dict(fill=-2.0),
                (0, 0, 0)),
}


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('fill') / 'VOC2007')
    make_voc(root)
    return root


def _cfg(voc, tmp_path, variant):
    pre, model_kw, _ = VARIANTS[variant]
    d = tiny_msl_cfg(voc, str(tmp_path / 'wd'), epochs=1, **model_kw)
    d['model']['data_preprocessor'] = dict(num_classes=20, to_rgb=True,
                                           to_onehot=True, **pre)
    d.update(test_dataloader=d['val_dataloader'],
             test_evaluator=d['val_evaluator'], test_cfg={})
    return Config(d)


def _load_tool(name, path):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('variant', list(VARIANTS))
def test_every_tool_fills_holes_with_the_same_pixel(voc, tmp_path, variant):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS, TRANSFORMS

    from mmmsl.apis import MultiLabelInferencer
    init_default_scope('mmpretrain')
    expected = VARIANTS[variant][2]
    cfg = _cfg(voc, tmp_path, variant)
    assert hole_fill_pixels(cfg) in (expected, expected[:1])

    # IrregularMask(apply=True) as tools/test.py --mask and mask_sweep.py
    # insert it (add_test_masks).
    masked_cfg = add_test_masks(copy.deepcopy(cfg), 'high')
    step = masked_cfg.test_dataloader.dataset.pipeline[-2]
    assert step['type'] == 'IrregularMask' and step['apply']
    img = np.full((40, 40, 3), 77, np.uint8)
    out = TRANSFORMS.build(step)(dict(img=img, sample_idx=0))['img']
    holes = (out != 77).all(-1)
    assert 0.5 < holes.mean() <= 0.6
    assert (out[holes] == expected).all()

    # The test dataset's masked sample 0 (32 px after the Resize): its
    # holes, those of the fixed mask of (EVAL_MASK_SEED, 0), are the pixel.
    keep = IrregularMask(ratio='high', source='procedural',
                         seed=EVAL_MASK_SEED)(dict(
                             img=np.zeros((32, 32, 3), np.uint8),
                             sample_idx=0))['msl_mask'].astype(bool)
    clean = DATASETS.build(cfg.test_dataloader.dataset)
    masked = DATASETS.build(masked_cfg.test_dataloader.dataset)
    a = clean[0]['inputs'].permute(1, 2, 0).numpy()
    b = masked[0]['inputs'].permute(1, 2, 0).numpy()
    assert (b[~keep] == expected).all()
    np.testing.assert_array_equal(b[keep], a[keep])

    # tools/infer.py --mask (random weights: only the pixels matter here).
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        inferencer = MultiLabelInferencer(cfg)
    path = clean.get_data_info(0)['img_path']
    _, images = next(inferencer.iter_predictions([path], mask='high'))
    np.testing.assert_array_equal(images['keep'], keep)
    assert (images['masked'][~keep] == expected).all()
    np.testing.assert_array_equal(images['masked'], b)

    # tools/visualize_masks.py: the masked row's holes.
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    vis = _load_tool('visualize_masks', 'tools/visualize_masks.py')
    out_png = str(tmp_path / 'masks.png')
    vis.main([cfg_file, '--num', '2', '--tile', '64', '--out', out_png])
    grid = cv2.imread(out_png)
    pad, label_w, tile = 4, 96, 64
    rows = [grid[pad + r * (tile + pad):pad + r * (tile + pad) + tile,
                 label_w + pad:label_w + pad + tile] for r in range(3)]
    hole = rows[1][..., 0] == 0
    assert 0.3 < hole.mean() < 0.7
    assert (rows[2][hole] == expected).all()


def test_insert_test_mask_goes_right_before_packing():
    pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=32),
                dict(type='CenterCrop', crop_size=24),
                dict(type='mmpretrain.PackInputs'), dict(type='Other')]
    cfg = Config(dict(model=dict(data_preprocessor=dict(
        to_rgb=True, **IMAGENET))))
    steps = insert_test_mask(pipeline, cfg, 'low', seed=3)
    assert [s['type'] for s in steps] == [
        'LoadImageFromFile', 'Resize', 'CenterCrop', 'IrregularMask',
        'mmpretrain.PackInputs', 'Other']
    assert steps[3] == dict(type='IrregularMask', ratio='low',
                            source='procedural', seed=3, apply=True,
                            fill=[104, 116, 124])
    assert len(pipeline) == 5  # a copy: the given pipeline is unchanged
    # No packing step: at the end.
    assert insert_test_mask(pipeline[:3], cfg, 'low')[-1]['type'] == \
        'IrregularMask'
