"""infer --mask and test --mask mask the same image at the same place: after
the test pipeline's resize, right before packing (the model's input)."""
import copy
import warnings

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate

import mmmsl  # noqa: F401
from conftest import make_voc, tiny_msl_cfg
from mmmsl.apis import MultiLabelInferencer
from mmmsl.apis.robustness import (EVAL_MASK_SEED, add_test_masks,
                                   insert_test_mask)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A tiny VOC (48 px images, test pipeline Resize(32)), its config
    with a test split, and an inferencer with random weights (only the
    pixels and the forward matter here)."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    base = tmp_path_factory.mktemp('masked_eval')
    root = str(base / 'VOC2007')
    make_voc(root)
    d = tiny_msl_cfg(root, str(base / 'wd'), epochs=1)
    d.update(test_dataloader=d['val_dataloader'],
             test_evaluator=d['val_evaluator'], test_cfg={})
    cfg = Config(d)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # no checkpoint: random weights
        torch.manual_seed(0)
        inferencer = MultiLabelInferencer(cfg)
    return cfg, inferencer


def _test_samples(cfg, ratio, seed, family='strokes'):
    """The samples ``tools/test.py --mask RATIO`` evaluates (its dataset
    with :func:`add_test_masks`), and their image paths."""
    from mmpretrain.registry import DATASETS
    masked = add_test_masks(copy.deepcopy(cfg), ratio, seed, family=family)
    dataset = DATASETS.build(masked.test_dataloader.dataset)
    index = range(len(dataset))
    return ([dataset[i] for i in index],
            [dataset.get_data_info(i)['img_path'] for i in index])


def _hwc(sample):
    return sample['inputs'].permute(1, 2, 0).numpy()


@pytest.mark.slow
@pytest.mark.parametrize('ratio, seed', [('high', EVAL_MASK_SEED),
                                         ((0.2, 0.3), 7)])
def test_infer_mask_is_test_mask(setup, ratio, seed):
    cfg, inferencer = setup
    tested, paths = _test_samples(cfg, ratio, seed)
    lo, hi = (0.5, 0.6) if ratio == 'high' else ratio
    records = list(inferencer.iter_predictions(paths, mask=ratio,
                                               mask_seed=seed, batch_size=4))
    assert len(records) == len(tested) == 6
    for i, ((record, images), sample) in enumerate(zip(records, tested)):
        # The same masked model input as tools/test.py's, pixel for pixel:
        # the mask is drawn on the 32 px model input, not on the 48 px
        # loaded image ...
        np.testing.assert_array_equal(images['masked'], _hwc(sample))
        assert images['clean'].shape == (48, 48, 3)
        assert images['masked'].shape == images['input'].shape == (32, 32, 3)
        # ... made of the clean input and holes where keep == 0.
        keep = images['keep'].astype(bool)
        assert lo < (~keep).mean() <= hi
        assert record['masked']['removed'] == (~keep).mean()
        np.testing.assert_array_equal(images['masked'][keep],
                                      images['input'][keep])
        assert (images['masked'][~keep] == (104, 116, 124)).all()
    # And so the same scores as the test loop's forward of those samples.
    with torch.no_grad():
        ref = torch.stack([
            s.pred_score for s in inferencer.model.test_step(
                pseudo_collate(tested))
        ]).numpy()
    np.testing.assert_allclose([r['masked']['scores'] for r, _ in records],
                               ref, atol=1e-5)


def test_generated_image_masked_like_the_test_pipeline(setup):
    # An array input (no file): the infer side vs the test pipeline built
    # with the same helper, on the same results dict.
    from mmpretrain.registry import TRANSFORMS
    cfg, inferencer = setup
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    rest = cfg.test_dataloader.dataset.pipeline[1:]  # after loading
    masked = Compose([TRANSFORMS.build(t) for t in insert_test_mask(
        rest, cfg, 'high', seed=3)])
    plain = Compose([TRANSFORMS.build(t) for t in rest])
    runs = {seed: list(inferencer.iter_predictions(
        [img] * 6, mask='high', mask_seed=seed, batch_size=4))
        for seed in (3, 4)}
    for index in (0, 5):
        record, images = runs[3][index]
        assert record['image'] == f'array_{index}'
        results = dict(img=img, img_shape=img.shape[:2],
                       ori_shape=img.shape[:2], sample_idx=index)
        ref = masked(dict(results))['inputs']
        assert torch.equal(torch.from_numpy(images['masked']).permute(
            2, 0, 1), ref)
        assert images['masked'].shape[:2] == ref.shape[1:] != img.shape[:2]
        assert 0.5 < (images['keep'] == 0).mean() <= 0.6
        # Without a mask: the plain test pipeline; 'clean' as given.
        assert torch.equal(torch.from_numpy(images['input']).permute(
            2, 0, 1), plain(dict(results))['inputs'])
        np.testing.assert_array_equal(images['clean'], img)
    # Another index or seed: another mask.
    a, b, c = (runs[3][0][1], runs[3][1][1], runs[4][0][1])
    assert not np.array_equal(a['masked'], b['masked'])
    assert not np.array_equal(a['masked'], c['masked'])
    np.testing.assert_array_equal(a['input'], b['input'])


def _load_tool(name):
    import importlib.util
    import os.path as osp
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        f'{name}_tool', osp.join(repo, 'tools', f'{name}.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


@pytest.mark.parametrize('tool', ['test', 'infer'])
def test_mask_flag_is_the_one_ratio_parser(tool, capsys):
    # tools/test.py and tools/infer.py parse --mask with parse_ratio: a
    # named bin or LO,HI, checked, and an argparse error naming the value.
    parse = _load_tool(tool).parse_args
    head = ['cfg.py', 'ckpt.pth'] + (['img.png'] if tool == 'infer' else [])
    assert parse(head + ['--mask', 'high']).mask == (0.5, 0.6)
    assert parse(head + ['--mask', '0.2,0.3']).mask == (0.2, 0.3)
    assert parse(head).mask is None
    for bad, why in (('0.5', 'expected one of'), ('0.6,0.5', 'lo < hi'),
                     ('medium', 'expected one of')):
        with pytest.raises(SystemExit):
            parse(head + ['--mask', bad])
        err = capsys.readouterr().err
        assert f"argument --mask: ratio='{bad}'" in err and why in err


def test_infer_picture_shows_the_masked_model_input(setup):
    # tools/infer.py --show-dir: the clean and the masked model input side
    # by side, aligned pixel for pixel (both 32 px, upscaled x8 to 256).
    tool = _load_tool('infer')
    cfg, inferencer = setup
    _, paths = _test_samples(cfg, 'high', EVAL_MASK_SEED)
    record, images = next(inferencer.iter_predictions(paths[:1],
                                                      mask='high'))
    pic = tool.visualize(record, images)
    clean, masked = pic[:256, :256], pic[:256, -256:]
    assert pic.shape[1] >= 2 * 256 and pic.shape[0] > 256
    up = np.kron(images['keep'], np.ones((8, 8), np.uint8)).astype(bool)
    np.testing.assert_array_equal(
        clean, np.kron(images['input'], np.ones((8, 8, 1), np.uint8)))
    np.testing.assert_array_equal(masked[up], clean[up])
    assert (masked[~up] == (104, 116, 124)).all()
    # Without a mask: one panel, the image as loaded (48 px -> 256).
    record, images = next(inferencer.iter_predictions(paths[:1]))
    assert set(images) == {'clean', 'input'}
    assert 256 <= tool.visualize(record, images).shape[1] < 2 * 256


def test_mask_family_of_the_test_masks(setup):
    # tools/test.py --mask high --mask-family grid: held-out grid masks
    # (whole cells of one pixel value, not strokes), in the bin.
    cfg, _ = setup
    args = _load_tool('test').parse_args(
        ['cfg.py', 'ckpt.pth', '--mask', 'high', '--mask-family', 'grid'])
    assert args.mask_family == 'grid'
    from mmpretrain.registry import DATASETS
    dataset = DATASETS.build(copy.deepcopy(cfg.test_dataloader.dataset))
    clean = [dataset[i] for i in range(len(dataset))]
    strokes, _ = _test_samples(cfg, 'high', EVAL_MASK_SEED)
    grid, _ = _test_samples(cfg, 'high', EVAL_MASK_SEED, family='grid')
    for c, s, g in zip(clean, strokes, grid):
        holes_s = (_hwc(c) != _hwc(s)).any(-1)
        holes_g = (_hwc(c) != _hwc(g)).any(-1)
        assert not np.array_equal(holes_s, holes_g)
        # changed pixels are a subset of the holes; the bin's upper end
        assert holes_g.mean() <= 0.6
    with pytest.raises(SystemExit):
        _load_tool('test').parse_args(['c.py', 'k.pth', '--mask-family', 'x'])
