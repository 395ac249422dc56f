import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from mmpretrain.datasets.transforms import LoadImageFromFile
from mmpretrain.registry import DATASETS

import mmmsl.datasets.digits  # noqa: F401
from mmmsl.datasets.digits_canvas import (INK_THRESHOLD, compose_split,
                                          load_digit_sources, make_canvases,
                                          render_digit, split_source_indices)


@pytest.fixture(scope='module')
def sources():
    return load_digit_sources()


def _make(sources, seed, n=50, **kwargs):
    images, labels = sources
    return make_canvases(images, labels, n, np.random.default_rng(seed),
                         **kwargs)


def _build(root, **kwargs):
    return DATASETS.build(
        dict(type='DigitsMultiLabel', data_root=str(root), **kwargs))


def test_make_canvases_deterministic(sources):
    a, b, c = _make(sources, 0), _make(sources, 0), _make(sources, 1)
    assert a[0].dtype == np.uint8 and a[0].shape == (50, 64, 64, 3)
    assert a[0].tobytes() == b[0].tobytes()
    assert a[1:] == b[1:]
    assert a[0].tobytes() != c[0].tobytes()
    assert a[1] != c[1]


@pytest.mark.parametrize('size,digit_size,min_visible',
                         [(64, (16, 32), 0.4), (32, (24, 32), 0.9)])
def test_labels_match_visible_digits(sources, size, digit_size, min_visible):
    images, labels = sources
    canvases, label_sets, srcs, boxes = _make(
        sources, 3, n=200, canvas_size=size, digit_size=digit_size,
        min_visible=min_visible, return_boxes=True)
    counts = []
    for canvas, label_set, src, box in zip(canvases, label_sets, srcs,
                                           boxes):
        gray = canvas[..., 0]
        assert (canvas == gray[..., None]).all()  # 3 equal channels
        assert 1 <= len(src) <= 4 and len(set(src)) == len(src)
        counts.append(len(src))
        # labels are exactly the classes of the kept digits
        assert label_set == sorted({int(labels[s]) for s in src})
        # re-render the kept digits: they alone compose the canvas and each
        # keeps >= min_visible of its ink visible (unchanged on the canvas)
        redo = np.zeros_like(gray)
        for s, (x1, y1, x2, y2) in zip(src, box):
            assert 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size
            assert x2 - x1 == y2 - y1
            assert digit_size[0] <= x2 - x1 <= digit_size[1]
            digit = render_digit(images[s], x2 - x1)
            region = redo[y1:y2, x1:x2]
            ink = digit >= INK_THRESHOLD
            region[...] = np.where(ink, digit, np.maximum(region, digit))
        assert (redo == gray).all()  # dropped digits leave no pixel
        for s, (x1, y1, x2, y2) in zip(src, box):
            digit = render_digit(images[s], x2 - x1)
            ink = digit >= INK_THRESHOLD
            shown = gray[y1:y2, x1:x2][ink] == digit[ink]
            assert shown.mean() >= min_visible - 1e-9
    if size == 32:  # crowded canvas: digits must get dropped, never all
        assert min(counts) == 1 and np.mean(counts) < 2.5


def test_sources_disjoint(tmp_path):
    pools = split_source_indices()
    assert len(pools['train']) > 0 and len(pools['test']) > 0
    assert not set(pools['train']) & set(pools['test'])
    assert len(pools['train']) + len(pools['test']) == 1797

    src = {}
    for split in ('train', 'test'):
        ds = _build(tmp_path, split=split, num_samples=100)
        src[split] = {i for k in range(len(ds))
                      for i in ds.get_data_info(k)['src_idx']}
        assert src[split] <= set(pools[split].tolist())
    assert src['train'] and src['test']
    assert not src['train'] & src['test']


def test_dataset_build_and_load(tmp_path, sources):
    _, labels = sources
    ds = _build(tmp_path, split='test', num_samples=20)
    assert len(ds) == 20 and ds.CLASSES == tuple('0123456789')
    assert ds.metainfo['params']['num_samples'] == 20
    load = LoadImageFromFile()
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert ds.get_cat_ids(i) == info['gt_label']
        assert info['gt_label'] == sorted(
            {int(labels[s]) for s in info['src_idx']})
        img = load(dict(img_path=info['img_path']))['img']
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    # same seed -> identical files; the test split differs from train
    again = _build(tmp_path / 'other', split='test', num_samples=20)
    train = _build(tmp_path, split='train', num_samples=20)
    for i in range(3):
        a, b, c = (open(d.get_data_info(i)['img_path'], 'rb').read()
                   for d in (ds, again, train))
        assert a == b and a != c
    seed1 = _build(tmp_path, split='test', num_samples=20, seed=1)
    assert [seed1.get_cat_ids(i) for i in range(20)] != \
        [ds.get_cat_ids(i) for i in range(20)]
    # through the standard pipeline
    piped = _build(tmp_path, split='test', num_samples=20, canvas_size=48,
                   digit_size=(12, 24),
                   pipeline=[dict(type='LoadImageFromFile'),
                             dict(type='PackInputs')])
    out = piped[0]
    assert tuple(out['inputs'].shape) == (3, 48, 48)
    assert out['data_samples'].gt_label.tolist() == piped.get_cat_ids(0)


def _mtimes(folder):
    return {f: os.stat(osp.join(folder, f)).st_mtime_ns
            for f in os.listdir(folder)}


def test_cache_reuse_and_regenerate(tmp_path):
    ds = _build(tmp_path, split='train', num_samples=10)
    before = _mtimes(ds.cache_dir)
    assert len(before) == 11  # 10 PNG + ann.json
    ds2 = _build(tmp_path, split='train', num_samples=10)
    assert ds2.cache_dir == ds.cache_dir
    assert _mtimes(ds2.cache_dir) == before  # reused, not rewritten

    # a changed parameter generates a new cache
    ds3 = _build(tmp_path, split='train', num_samples=10, min_visible=0.5)
    assert ds3.cache_dir != ds.cache_dir
    assert ds3.metainfo['params']['min_visible'] == 0.5
    assert len(_mtimes(ds3.cache_dir)) == 11

    # an incomplete or mismatching cache is not trusted
    ann_file = osp.join(ds.cache_dir, 'ann.json')
    with open(ann_file) as f:
        ann = json.load(f)
    ann['metainfo']['params']['seed'] = 123
    with open(ann_file, 'w') as f:
        json.dump(ann, f)
    ds4 = _build(tmp_path, split='train', num_samples=10)
    assert ds4.metainfo['params']['seed'] == 0
    os.remove(osp.join(ds.cache_dir, 'ann.json'))
    ds5 = _build(tmp_path, split='train', num_samples=10)
    assert len(ds5) == 10 and osp.isfile(ann_file)
    # no temporary folders are left behind
    assert not [f for f in os.listdir(tmp_path) if f.startswith('.')]


def test_compose_split_deterministic():
    kwargs = dict(canvas_size=48, digit_size=(12, 24), min_visible=0.5)
    a = compose_split('test', 30, seed=5, **kwargs)
    b = compose_split('test', 30, seed=5, **kwargs)
    assert a[0].tobytes() == b[0].tobytes() and a[1:] == b[1:]
    assert a[0].shape == (30, 48, 48, 3) and a[0].dtype == np.uint8
    # another seed, another split or another parameter: other canvases
    for other in (compose_split('test', 30, seed=6, **kwargs),
                  compose_split('train', 30, seed=5, **kwargs),
                  compose_split('test', 30, seed=5, num_digits=(1, 2))):
        assert other[0].tobytes() != a[0].tobytes()
    # global source indices, from the split's own pool only
    pool = set(split_source_indices()['test'].tolist())
    assert {i for kept in a[2] for i in kept} <= pool
    with pytest.raises(AssertionError, match='split must be one of'):
        compose_split('val', 3)


def test_dataset_caches_what_the_generator_composes(tmp_path):
    ds = _build(tmp_path, split='test', num_samples=12, seed=2)
    canvases, label_sets, src_idx, boxes = compose_split('test', 12, seed=2)
    load = LoadImageFromFile()
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        img = load(dict(img_path=info['img_path']))['img']
        assert img.tobytes() == canvases[i].tobytes()  # lossless PNG
        assert info['gt_label'] == label_sets[i]
        assert info['src_idx'] == src_idx[i] and info['boxes'] == boxes[i]


def test_generator_runs_without_the_dataset_stack(tmp_path):
    """``digits_canvas`` loads and composes with mmengine, mmpretrain and
    mmmsl unimportable, and gives the same canvases in a fresh process."""
    path = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'mmmsl',
                    'datasets', 'digits_canvas.py')
    out = tmp_path / 'canvases.npy'
    code = '\n'.join([
        'import importlib.util, json, sys',
        'import numpy as np',
        'for name in ("mmengine", "mmpretrain", "mmcv", "mmmsl"):',
        '    sys.modules[name] = None  # any import of them fails',
        f'spec = importlib.util.spec_from_file_location("dc", {path!r})',
        'mod = importlib.util.module_from_spec(spec)',
        'spec.loader.exec_module(mod)',
        'canvases, *rest = mod.compose_split("train", 25, seed=7)',
        f'np.save({str(out)!r}, canvases)',
        'print(json.dumps(rest))',
    ])
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    canvases, *rest = compose_split('train', 25, seed=7)
    assert np.load(out).tobytes() == canvases.tobytes()
    assert json.loads(proc.stdout) == rest


def test_clutter_style_repaints_the_gray_composition(sources):
    """The owner replay reproduces the gray canvas exactly; the clutter
    style keeps which digit shows where (its colour, at full opacity) and
    paints a background that is neither black nor gray."""
    from mmmsl.datasets.digits_style import apply_style, shown_owner
    images, _ = sources
    kwargs = dict(num_digits=(1, 5), digit_size=(14, 30))
    gray, label_sets, srcs, boxes = compose_split('test', 40, 3, **kwargs)
    styled = apply_style('clutter', 'test', 3, gray, srcs, boxes)
    again = apply_style('clutter', 'test', 3, gray, srcs, boxes)
    other = apply_style('clutter', 'test', 4, gray, srcs, boxes)
    assert styled.dtype == np.uint8 and styled.shape == gray.shape
    assert styled.tobytes() == again.tobytes()
    assert styled.tobytes() != other.tobytes()
    assert apply_style('gray', 'test', 3, gray, srcs, boxes) is gray
    for i in range(len(gray)):
        owner = shown_owner(images, srcs[i], boxes[i], 64)
        replay = np.zeros((64, 64), np.uint8)
        for k, (s, (x1, y1, x2, y2)) in enumerate(zip(srcs[i], boxes[i])):
            mine = owner[y1:y2, x1:x2] == k
            replay[y1:y2, x1:x2][mine] = render_digit(images[s],
                                                      x2 - x1)[mine]
        assert np.array_equal(replay, gray[i, ..., 0])
        full = gray[i, ..., 0] == 255
        for k in range(len(srcs[i])):  # one colour per digit at full ink
            colours = styled[i][full & (owner == k)]
            if len(colours):
                assert (colours.max(0) - colours.min(0)).max() <= 1
    background = styled[gray[..., 0] == 0]  # (P, 3) BGR
    assert np.abs(np.diff(background.astype(int), axis=-1)).mean() > 5
    with pytest.raises(ValueError, match="style must be one of.*'sepia'"):
        apply_style('sepia', 'test', 3, gray, srcs, boxes)


def test_clutter_dataset_has_the_gray_labels_in_colour(tmp_path):
    kwargs = dict(split='test', num_samples=12, seed=2, num_digits=(1, 5),
                  digit_size=(14, 30))
    gray = _build(tmp_path, **kwargs)
    clutter = _build(tmp_path, style='clutter', **kwargs)
    assert clutter.cache_dir != gray.cache_dir
    assert 'style' not in gray.params  # gray caches of before stay valid
    load = LoadImageFromFile()
    for i in range(len(gray)):
        a, b = gray.get_data_info(i), clutter.get_data_info(i)
        assert a['gt_label'] == b['gt_label']
        assert np.array_equal(a['gt_bboxes'], b['gt_bboxes'])
        assert np.array_equal(a['gt_visible'], b['gt_visible'])
        img = load(dict(img_path=b['img_path']))['img']
        assert img.shape == (64, 64, 3)
        assert np.abs(np.diff(img.astype(int), axis=-1)).mean() > 5
    with pytest.raises(ValueError, match="style must be one of.*'sepia'"):
        _build(tmp_path, style='sepia', **kwargs)
