import multiprocessing as mp

import numpy as np
import pytest
from mmpretrain.registry import TRANSFORMS

import mmmsl  # noqa: F401
from mmmsl.datasets import IrregularMask


def _results(h=40, w=60, idx=0):
    rng = np.random.default_rng(idx)
    return dict(img=rng.integers(1, 255, (h, w, 3), dtype=np.uint8),
                sample_idx=idx)


def test_records_binary_keep_mask_sized_to_image(tmp_path):
    t = TRANSFORMS.build(dict(type='IrregularMask', ratio='high',
                              source='procedural'))
    res = t(_results(40, 60))
    m = res['msl_mask']
    assert m.shape == (40, 60) and m.dtype == np.uint8
    assert set(np.unique(m)) == {0, 1}
    assert 0.5 < (m == 0).mean() <= 0.6  # 1 = keep, 0 = hole
    assert res['img'].min() > 0  # the image itself is untouched


def test_bank_mask_of_a_larger_image_is_recorded_reduced():
    kw = dict(type='IrregularMask', ratio='high', bank_size=20, bank_res=32,
              seed=3)
    reduced = TRANSFORMS.build(kw)
    assert reduced.mask_size(32, 32) == (32, 32)  # not larger: full size
    assert reduced.mask_size(100, 64) == (25, 16)  # f = ceil(100 / 32) = 4
    m = reduced(_results(100, 64))['msl_mask']
    assert m.shape == (25, 16) and set(np.unique(m)) <= {0, 1}
    full = TRANSFORMS.build(dict(kw, full_size=True))(
        _results(100, 64))['msl_mask']
    assert full.shape == (100, 64)
    # apply=True always masks the image at its own size.
    out = TRANSFORMS.build(dict(kw, apply=True))(_results(100, 64))['img']
    assert out.shape == (100, 64, 3) and 0.5 < (out == 0).all(-1).mean() <= .6
    # Procedural masks are drawn at the image size.
    proc = TRANSFORMS.build(dict(kw, source='procedural'))
    assert proc.mask_size(100, 64) == (100, 64)


@pytest.mark.parametrize('source', ['procedural', 'bank'])
def test_seed_fixes_mask_per_sample(source):
    kw = dict(ratio='high', source=source, seed=5, bank_size=20,
              bank_res=64)
    a, b = IrregularMask(**kw), IrregularMask(**kw)
    m0 = a(_results(idx=0))['msl_mask']
    m1 = a(_results(idx=1))['msl_mask']
    assert np.array_equal(m0, b(_results(idx=0))['msl_mask'])
    assert np.array_equal(m0, a(_results(idx=0))['msl_mask'])  # no drift
    assert not np.array_equal(m0, m1)


def test_unseeded_follows_numpy_global_seed():
    def draw():
        np.random.seed(3)
        t = IrregularMask(source='procedural')
        return [t(_results(idx=0))['msl_mask'] for _ in range(2)]
    first, second = draw(), draw()
    assert np.array_equal(first[0], second[0])
    assert not np.array_equal(first[0], first[1])  # new mask every call


def _draw_in_child(t, q):
    np.random.seed(11)
    q.put(t(_results())['msl_mask'])


def test_forked_worker_gets_its_own_stream():
    np.random.seed(11)
    t = IrregularMask(source='procedural')
    parent = t(_results())['msl_mask']  # creates the parent's generator
    ctx = mp.get_context('fork')
    q = ctx.Queue()
    p = ctx.Process(target=_draw_in_child, args=(t, q))
    p.start()
    child = q.get(timeout=30)
    p.join()
    # Reseeded like mmengine's worker_init_fn does, the child starts over
    # from the seed instead of continuing (or copying) the parent's stream.
    np.random.seed(11)
    fresh = IrregularMask(source='procedural')(_results())['msl_mask']
    assert np.array_equal(child, fresh)
    assert np.array_equal(parent, fresh)


def test_prob_zero_keeps_everything():
    t = IrregularMask(prob=0.0, source='procedural')
    assert t(_results())['msl_mask'].min() == 1
    half = IrregularMask(prob=0.5, source='procedural', seed=0)
    masked = [half(_results(idx=i))['msl_mask'].min() == 0
              for i in range(40)]
    assert 5 < sum(masked) < 35


def test_apply_masks_the_image_with_fill():
    kw = dict(source='procedural', seed=1)
    keep = IrregularMask(**kw)(_results())['msl_mask'].astype(bool)
    res = IrregularMask(apply=True, fill=(1, 2, 3), **kw)(_results())
    clean = _results()['img']
    assert 'msl_mask' not in res
    assert np.array_equal(res['img'][keep], clean[keep])
    assert (res['img'][~keep] == [1, 2, 3]).all()
    grey = IrregularMask(apply=True, fill=0, **kw)(
        dict(img=clean[..., 0].copy(), sample_idx=0))
    assert (grey['img'][~keep] == 0).all() and grey['img'].ndim == 2


def test_bad_arguments_fail_at_build(tmp_path):
    with pytest.raises(ValueError, match='prob'):
        IrregularMask(prob=1.5)
    with pytest.raises(ValueError, match='ratio'):
        IrregularMask(ratio='huge')
    with pytest.raises(FileNotFoundError, match='no_masks'):
        IrregularMask(source='folder', path=str(tmp_path / 'no_masks'))


def test_apply_rounds_and_clips_the_fill():
    # The fill is a pixel value: rounded (half up) and clipped to uint8,
    # never truncated (103.9 -> 103) or wrapped (-4 -> 252, 300 -> 44).
    kw = dict(source='procedural', seed=1)
    keep = IrregularMask(**kw)(_results())['msl_mask'].astype(bool)
    out = IrregularMask(apply=True, fill=(103.9, -4.0, 300.0), **kw)(
        _results())['img']
    assert out.dtype == np.uint8
    assert (out[~keep] == [104, 0, 255]).all()
    assert (out[keep] == _results()['img'][keep]).all()
    # WIDER's mean = std = 127.5: the hole is grey 128 (half rounds up).
    grey = IrregularMask(apply=True, fill=127.5, **kw)(_results())['img']
    assert (grey[~keep] == 128).all()
    half = IrregularMask(apply=True, fill=[0.5, 1.5, 2.5], **kw)(
        _results())['img']
    assert (half[~keep] == [1, 2, 3]).all()
    # A float image gets the value itself.
    img = _results()['img'].astype(np.float32)
    out = IrregularMask(apply=True, fill=(0.25, -1.5, 300.0), **kw)(
        dict(img=img, sample_idx=0))['img']
    assert out.dtype == np.float32
    assert (out[~keep] == np.float32([0.25, -1.5, 300.0])).all()
    with pytest.raises(ValueError, match='finite'):
        IrregularMask(apply=True, fill=float('nan'))


def test_apply_can_record_its_keep_mask():
    kw = dict(source='procedural', seed=4)
    keep = IrregularMask(**kw)(_results())['msl_mask']
    res = IrregularMask(apply=True, keep_key='shown', **kw)(_results())
    assert np.array_equal(res['shown'], keep) and 'msl_mask' not in res
    assert (res['img'][keep == 0] == 0).all()


@pytest.mark.parametrize('shape', [(100, 64), (150, 97), (190, 190)])
def test_reduced_masks_are_in_the_bin_as_the_model_applies_them(shape):
    # The model resizes a reduced mask to the image itself: the hole ratio
    # must hold there, not only at the recorded size.
    import torch

    from mmmsl.models import MaskedSupervisedClassifier
    t = IrregularMask(ratio='high', bank_size=20, bank_res=64, seed=9)
    h, w = shape
    assert t.mask_size(h, w) != (h, w)
    masks = np.stack([t(_results(h, w, i))['msl_mask'] for i in range(300)])
    keep = MaskedSupervisedClassifier._to_device(
        masks, torch.zeros(1, 3, h, w), (h, w))
    # Hole counts over pixel counts, in float64, as the bin is defined.
    removed = (~keep).sum((1, 2, 3)).numpy() / (h * w)
    outside = removed[(removed <= 0.5) | (removed > 0.6)]
    assert outside.size == 0, outside
