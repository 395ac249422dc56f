"""tools/app.py (the web demo): its pure functions, in-process, without
Gradio; the page itself is checked by tools/analysis/app_browser_check.py."""
import importlib.util
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import save_checkpoint

import mmmsl  # noqa: F401
from mmmsl.apis import init_model
from mmmsl.masks import hole_ratio

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLASSES = ('cat', 'dog', 'car')
MEAN, STD = [120.0, 110.0, 100.0], [60.0, 60.0, 60.0]


def load_app():
    spec = importlib.util.spec_from_file_location(
        'mmmsl_app', osp.join(REPO, 'tools', 'app.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app = load_app()


def tiny_cfg():
    """A ResNet-18 (16 base channels) + CSRA at 32 px, 3 classes."""
    return dict(
        default_scope='mmpretrain',
        custom_imports=dict(imports=['mmmsl'], allow_failed_imports=False),
        model=dict(
            type='MaskedSupervisedClassifier', fill=0.0,
            backbone=dict(type='ResNet', depth=18, base_channels=16,
                          stem_channels=16, out_indices=(3, )),
            head=dict(type='CSRAClsHead', num_classes=3, in_channels=128,
                      num_heads=1, lam=0.1,
                      loss=dict(type='CrossEntropyLoss', use_sigmoid=True)),
            data_preprocessor=dict(num_classes=3, mean=MEAN, std=STD,
                                   to_rgb=True, to_onehot=True)),
        test_dataloader=dict(dataset=dict(
            type='VOC', data_root='/nonexistent', split='test', pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=32),
                dict(type='PackInputs')])))


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """The config file and two checkpoints of 0 epochs (seeds 0 and 1),
    saved as training saves them, with the class names in their meta."""
    base = tmp_path_factory.mktemp('app')
    cfg_file = str(base / 'tiny.py')
    Config(tiny_cfg()).dump(cfg_file)
    ckpts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        with pytest.warns(UserWarning, match='random'):
            model = init_model(cfg_file)
        ckpts.append(str(base / f'seed{seed}.pth'))
        save_checkpoint(dict(state_dict=model.state_dict(),
                             meta=dict(dataset_meta=dict(classes=CLASSES))),
                        ckpts[-1])
    thr_file = str(base / 'thr.json')
    with open(thr_file, 'w') as f:
        json.dump(dict(thresholds=dict(cat=0.0, dog=1.01, car=0.5)), f)
    return dict(cfg=cfg_file, ckpts=ckpts, thr=thr_file)


@pytest.fixture(scope='module')
def models(files):
    return [app.load_model(files['cfg'], ckpt, name)
            for ckpt, name in zip(files['ckpts'], ('msl', 'other'))]


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)


@pytest.mark.parametrize('family', app.mask_families())
def test_family_keep_removes_the_slider_fraction(family):
    for removed in (0.1, 0.5, 0.8):
        keep = app.family_keep((60, 90), family, removed, seed=3)
        assert keep.shape == (60, 90) and keep.dtype == np.uint8
        assert set(np.unique(keep)) <= {0, 1}
        assert abs(hole_ratio(keep == 0) - removed) <= app.RATIO_TOL
    np.testing.assert_array_equal(
        keep, app.family_keep((60, 90), family, removed, seed=3))
    assert not np.array_equal(
        keep, app.family_keep((60, 90), family, removed, seed=4))


def test_family_keep_large_image_and_errors():
    # drawn at 256 px, upsampled: the fraction holds at the image's size
    keep = app.family_keep((600, 300), 'strokes', 0.3, seed=0)
    assert keep.shape == (600, 300)
    assert abs(hole_ratio(keep == 0) - 0.3) <= app.RATIO_TOL
    assert app.family_keep((8, 8), 'strokes', 0.0).all()
    with pytest.raises(ValueError, match='removed=1.5'):
        app.family_keep((8, 8), 'strokes', 1.5)
    with pytest.raises(ValueError, match="family='nope'"):
        app.family_keep((8, 8), 'nope', 0.5)


def test_mask_families_drive_the_dropdown(monkeypatch):
    families = app.mask_families()
    assert families[0] == 'strokes' and 'objects' not in families
    monkeypatch.setattr(app.masks, 'FAMILIES', dict(perlin=None, grid=None))
    assert app.mask_families() == ('perlin', 'grid')


def test_brush_layers_become_holes():
    layer = np.zeros((10, 12, 4), np.uint8)
    layer[2:4, 5:9] = (255, 0, 255, 255)  # drawn
    layer[6, 1] = (255, 0, 255, 0)  # colour but transparent: not drawn
    keep = app.brush_keep([layer], (10, 12))
    expected = np.ones((10, 12), np.uint8)
    expected[2:4, 5:9] = 0
    np.testing.assert_array_equal(keep, expected)
    # a layer at half the size is scaled up to the image
    half = np.zeros((5, 6, 4), np.uint8)
    half[0, 0, 3] = 200
    assert app.brush_keep([half], (10, 12))[:2, :2].sum() == 0
    assert app.brush_keep(None, (3, 3)).all()
    with pytest.raises(ValueError, match=r'brush layer 0.*\(10, 12, 3\)'):
        app.brush_keep([layer[..., :3]], (10, 12))


def test_hole_pixel_and_occlude(models, image):
    # the pixel the preprocessor maps to fill 0: the mean, in RGB
    np.testing.assert_array_equal(app.hole_rgb(models[0]), MEAN)
    keep = np.ones(image.shape[:2], np.uint8)
    keep[5:10, :] = 0
    out = app.occlude(image, keep, (1, 2, 3))
    assert (out[5:10] == (1, 2, 3)).all()
    np.testing.assert_array_equal(out[keep == 1], image[keep == 1])
    with pytest.raises(ValueError, match='does not match'):
        app.occlude(image, keep[1:], (0, 0, 0))


def test_predict_is_the_inferencer(models, image, files):
    rec = app.predict(models[0], [image])[0]
    direct = models[0].inferencer([np.ascontiguousarray(image[..., ::-1])])
    np.testing.assert_allclose(rec['scores'], direct[0]['scores'], atol=1e-6)
    assert models[0].classes == list(CLASSES)
    # per-class thresholds: cat 0 (always), dog > 1 (never)
    m = app.load_model(files['cfg'], files['ckpts'][0], 'thr',
                       thr_file=files['thr'])
    np.testing.assert_array_equal(m.thresholds, [0.0, 1.01, 0.5])
    rec = app.predict(m, [image])[0]
    labels = {x['label'] for x in rec['labels']}
    assert 'cat' in labels and 'dog' not in labels
    assert ('car' in labels) == (rec['scores'][2] >= 0.5)


def test_run_demo_brush_and_family(models, image):
    layer = np.zeros(image.shape[:2] + (4, ), np.uint8)
    layer[:, :8, 3] = 255  # 8 of 56 columns brushed
    out = app.run_demo(models, image, [layer], 'strokes', 0.5, seed=1)
    keep = out['keep']
    assert (keep[:, :8] == 0).all()
    assert (out['occluded'][keep == 0] == app.hole_rgb(models[0])).all()
    np.testing.assert_array_equal(out['occluded'][keep == 1],
                                  image[keep == 1])
    fam = app.family_keep(image.shape[:2], 'strokes', 0.5, seed=1)
    np.testing.assert_array_equal(keep, fam & app.brush_keep(
        [layer], image.shape[:2]))
    assert out['removed'] == pytest.approx(1 - keep.mean())
    # each record is the model on the clean / the occluded image
    clean, occl = out['records']['msl']
    np.testing.assert_allclose(
        clean['scores'], app.predict(models[0], [image])[0]['scores'],
        atol=1e-6)
    np.testing.assert_allclose(
        occl['scores'],
        app.predict(models[0], [out['occluded']])[0]['scores'], atol=1e-6)
    # nothing removed: both views are the clean image
    out = app.run_demo(models[:1], image)
    assert out['removed'] == 0
    a, b = out['records']['msl']
    np.testing.assert_allclose(a['scores'], b['scores'], atol=1e-6)


def test_format_results_side_by_side(models, image):
    out = app.run_demo(models, image, None, 'strokes', 0.6, seed=0)
    labels, headers, rows = app.format_results(models, out['records'])
    assert headers == ['class', 'threshold', 'msl clean', 'msl occluded',
                       'other clean', 'other occluded']
    assert sorted(r[0] for r in rows) == sorted(CLASSES)
    scores = {name: [np.asarray(r['scores']) for r in recs]
              for name, recs in out['records'].items()}
    # the compared model's column differs: other weights
    assert not np.allclose(scores['msl'][0], scores['other'][0], atol=1e-3)
    for row in rows:
        c = CLASSES.index(row[0])
        assert row[1] == '0.50'
        cells = [scores[n][v][c] for n in ('msl', 'other') for v in (0, 1)]
        assert row[2:] == [f'{s:.2f}' + (' ✓' if s >= 0.5 else '')
                           for s in cells]
    best = [max(scores[n][v][CLASSES.index(r[0])] for n in scores
                for v in (0, 1)) for r in rows]
    assert best == sorted(best, reverse=True)
    for (clean, occl), name in zip(labels, ('msl', 'other')):
        assert clean == {CLASSES[i]: round(float(s), 4) for i, s in
                         enumerate(scores[name][0]) if s >= 0.5}


def test_default_names_and_examples(tmp_path, files):
    assert app.default_names(['configs/msl/demo_digits.py',
                              'configs/baseline/demo_digits.py']) == [
                                  'msl/demo_digits', 'baseline/demo_digits']
    assert app.default_names(['a/x.py', 'a/y.py']) == ['x', 'y']
    assert app.default_examples(files['cfg']) == []  # no data_root


class FakePage:
    """What ``build_ui`` returns, recording ``launch``."""

    def __init__(self, models, examples):
        self.models, self.examples, self.launched = models, examples, None

    def launch(self, **kwargs):
        self.launched = kwargs


def test_main_wires_models_thresholds_examples(monkeypatch, files, tmp_path):
    pages = []
    monkeypatch.setattr(app, 'build_ui', lambda models, examples: pages.append(
        FakePage(models, examples)) or pages[-1])
    img = tmp_path / 'a.png'
    cv2.imwrite(str(img), np.zeros((8, 8, 3), np.uint8))
    app.main([files['cfg'], files['ckpts'][0], '--compare', files['cfg'],
              files['ckpts'][1], '--thr-file', files['thr'], '--names', 'A',
              'B', '--examples', str(tmp_path), '--port', '7999'])
    page = pages[0]
    assert [m.name for m in page.models] == ['A', 'B']
    for m in page.models:  # the file's thresholds for both
        np.testing.assert_array_equal(m.thresholds, [0.0, 1.01, 0.5])
    assert page.examples == [str(img)]
    assert page.launched['server_port'] == 7999
    with pytest.raises(SystemExit, match='2 names for 1 models'):
        app.main([files['cfg'], files['ckpts'][0], '--names', 'A', 'B'])


def test_main_refuses_models_of_other_classes(monkeypatch, files, tmp_path):
    other = str(tmp_path / 'other.pth')
    ckpt = torch.load(files['ckpts'][1], weights_only=False)
    ckpt['meta']['dataset_meta']['classes'] = ('a', 'b', 'c')
    torch.save(ckpt, other)
    monkeypatch.setattr(app, 'build_ui', lambda *a: pytest.fail('built'))
    with pytest.raises(SystemExit, match='same classes'):
        app.main([files['cfg'], files['ckpts'][0], '--compare', files['cfg'],
                  other])


def test_build_ui_with_gradio(models):
    pytest.importorskip('gradio')
    page = app.build_ui(models, [])
    ids = {getattr(b, 'elem_id', None) for b in page.blocks.values()}
    assert {'image', 'occluded', 'family', 'removed', 'predict', 'table',
            'labels-0-clean', 'labels-1-occluded'} <= ids
    family = next(b for b in page.blocks.values()
                  if getattr(b, 'elem_id', None) == 'family')
    assert [c[0] for c in family.choices] == list(app.mask_families())
