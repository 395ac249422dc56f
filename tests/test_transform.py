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
    assert 0.5 < 1 - m.mean() <= 0.6  # 1 = keep, 0 = hole
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
    assert out.shape == (100, 64, 3) and 0.45 < (out == 0).all(-1).mean()
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
