"""Using a trained model: tools/infer.py, thresholds, mask pictures.

tools/infer.py and tune_thresholds.py run once each as commands (the folder
run, the refusal); elsewhere their ``main(argv)`` is called in-process with
the same arguments.
"""
import importlib.util
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import warnings
from functools import lru_cache

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmmsl  # noqa: F401
from conftest import build_once, make_voc, tiny_msl_cfg
from mmmsl.apis import (MultiLabelInferencer, decode_scores, expand_inputs,
                        inference_multilabel, load_thresholds,
                        resolve_thresholds, save_thresholds)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
               'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')


def run(args, ok=True):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable] + args, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


@lru_cache()
def load_tool(name, path):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def keep_formatwarning(monkeypatch):
    """tools/infer.py's main sets ``warnings.formatwarning``; restore it."""
    monkeypatch.setattr(warnings, 'formatwarning', warnings.formatwarning)


def trained_cfg(data):
    """The config of the ``trained`` fixture's run in the folder ``data``."""
    cfg_dict = tiny_msl_cfg(str(data / 'VOC2007'), str(data / 'wd'),
                            epochs=1)
    cfg_dict['train_cfg']['val_interval'] = 10  # no validation run
    return cfg_dict


def train_tiny(data):
    """Train ``trained_cfg(data)``; its test config, inputs to ``data``."""
    root = str(data / 'VOC2007')
    make_voc(root)
    cfg_dict = trained_cfg(data)
    Runner.from_cfg(Config(cfg_dict)).train()
    cfg_dict.update(test_dataloader=cfg_dict['val_dataloader'],
                    test_evaluator=cfg_dict['val_evaluator'], test_cfg={})
    Config(cfg_dict).dump(str(data / 'tiny_msl.py'))

    folder = data / 'inputs'
    (folder / 'sub').mkdir(parents=True)
    jpgs = sorted(os.listdir(osp.join(root, 'JPEGImages')))
    for name in jpgs[12:15]:  # test images
        shutil.copy(osp.join(root, 'JPEGImages', name), folder / name)
    shutil.copy(osp.join(root, 'JPEGImages', jpgs[15]),
                folder / 'sub' / jpgs[15])
    (folder / 'notes.txt').write_text('not an image\n')


@pytest.fixture(scope='module')
def trained(tmp_path_factory, one_torch_thread):
    """A 1-epoch MSL checkpoint on the tiny VOC, its config file and an
    input folder: 3 images, 1 more in a subfolder and a notes.txt. Built
    once per session (read-only: xdist workers share it); ``base``: this
    worker's folder for the tests' outputs."""
    data = build_once(tmp_path_factory, 'infer_trained', train_tiny)
    cfg_dict = trained_cfg(data)
    cfg_dict.update(test_dataloader=cfg_dict['val_dataloader'],
                    test_evaluator=cfg_dict['val_evaluator'], test_cfg={})
    return dict(root=str(data / 'VOC2007'), cfg=str(data / 'tiny_msl.py'),
                ckpt=str(data / 'wd' / 'epoch_1.pth'),
                folder=str(data / 'inputs'), cfg_dict=cfg_dict,
                base=tmp_path_factory.mktemp('infer'))


def infer(trained, *args):
    """The command tools/infer.py CONFIG CKPT ARGS."""
    return run(['tools/infer.py', trained['cfg'], trained['ckpt']] +
               [str(a) for a in args])


def infer_main(trained, *args):
    """tools/infer.py's ``main`` in-process: the records."""
    return load_tool('infer', 'tools/infer.py').main(
        [trained['cfg'], trained['ckpt']] + [str(a) for a in args])


def out_json(trained, name, *args):
    """The records tools/infer.py writes with ``--out``."""
    path = str(trained['base'] / name)
    records = infer_main(trained, *args, '--out', path)
    with open(path) as f:
        assert json.load(f) == records
    return records


@pytest.fixture(scope='module')
def folder_run(trained):
    """tools/infer.py on the input folder (default --thr 0.5)."""
    path = str(trained['base'] / 'folder.json')
    proc = infer(trained, trained['folder'], '--out', path)
    with open(path) as f:
        return proc, json.load(f)


def test_folder_schema_scores_and_skipped_file(trained, folder_run):
    proc, records = folder_run
    folder = trained['folder']
    expected = sorted(
        osp.join(folder, n) for n in os.listdir(folder) if n.endswith('.jpg'))
    expected.append(osp.join(folder, 'sub', os.listdir(f'{folder}/sub')[0]))
    assert [r['image'] for r in records] == expected  # sorted, recursive
    assert 'notes.txt' in proc.stderr and 'Skipping' in proc.stderr
    assert all('notes' not in r['image'] for r in records)
    for r in records:
        assert set(r) == {'image', 'labels', 'scores'}
        scores = np.array(r['scores'])
        assert scores.shape == (20, ) and ((scores > 0) & (scores < 1)).all()
        # Multi-label: exactly the classes at or above 0.5, best first.
        assert [x['index'] for x in r['labels']] == sorted(
            np.flatnonzero(scores >= 0.5), key=lambda i: -scores[i])
        for x in r['labels']:
            assert x['label'] == VOC_CLASSES[x['index']]
            assert x['score'] == pytest.approx(scores[x['index']])
        assert osp.basename(r['image']) in proc.stdout  # the table

    # The scores are those of the model on the config's test pipeline.
    from mmpretrain.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    init_default_scope('mmpretrain')
    cfg = Config(trained['cfg_dict'])
    model = MODELS.build(cfg.model)
    load_checkpoint(model, trained['ckpt'])
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    by_name = {osp.basename(r['image']): r['scores'] for r in records}
    for i in range(len(dataset)):
        name = osp.basename(dataset.get_data_info(i)['img_path'])
        if name in by_name:
            with torch.no_grad():
                ref = model.eval().test_step(pseudo_collate([dataset[i]]))
            np.testing.assert_allclose(by_name.pop(name),
                                       ref[0].pred_score.numpy(), atol=1e-5)
    assert not by_name  # all four images compared


def test_threshold_and_topk_are_honoured(trained):
    # The options tools/infer.py passes on (its CLI: the folder run; its
    # --thr-file: the per-class file below).
    inferencer = MultiLabelInferencer(trained['cfg'], trained['ckpt'])
    sub = osp.join(trained['folder'], 'sub')
    image = osp.join(sub, os.listdir(sub)[0])
    scores = np.array(inferencer(image)[0]['scores'])
    best = int(np.argmax(scores))
    s = float(scores[best])

    def labels(**kw):
        return [x['index'] for x in inferencer(image, **kw)[0]['labels']]

    # A class scored s is a label at a threshold just below s, not above.
    assert best in labels(thr=s - 1e-4)
    assert labels(thr=s + 1e-4) == []  # it was the best class
    # thr 0 with topk 3: the three best classes, in order.
    assert labels(thr=0, topk=3) == list(np.argsort(-scores)[:3])
    # topk never adds a class below the threshold.
    assert labels(thr=s - 1e-4, topk=5) == [best]

    # Per-class threshold file (the CLI): only the chosen class passes.
    second = int(np.argsort(-scores)[1])
    thr = {c: 1.01 for c in VOC_CLASSES}
    thr[VOC_CLASSES[second]] = float(scores[second]) - 1e-4
    thr_file = str(trained['base'] / 'per_class.json')
    save_thresholds(thr_file, [thr[c] for c in VOC_CLASSES], VOC_CLASSES)
    rec = out_json(trained, 'per_class_out.json', image, '--thr-file',
                   thr_file)[0]
    assert [x['index'] for x in rec['labels']] == [second]


def test_missing_input_and_bad_threshold_file(trained, tmp_path):
    # sys.exit(message): the command prints it, exits 1, no traceback.
    with pytest.raises(SystemExit) as exc:
        infer_main(trained, tmp_path / 'nope.jpg')
    assert isinstance(exc.value.code, str)  # a message, not a crash
    assert 'FileNotFoundError' in exc.value.code
    assert 'nope.jpg' in exc.value.code
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'thresholds': {'cat': 0.5, 'unicorn': 0.5}}))
    with pytest.raises(SystemExit) as exc, pytest.warns(UserWarning,
                                                        match='notes.txt'):
        infer_main(trained, trained['folder'], '--thr-file', bad)
    msg = exc.value.code
    assert isinstance(msg, str) and 'ValueError' in msg and 'bad.json' in msg
    # The unknown class and the missing ones are named.
    assert 'unicorn' in msg and 'aeroplane' in msg


def test_show_dir_with_masked_input(trained):
    show = trained['base'] / 'show'
    images = sorted(
        osp.join(trained['folder'], n) for n in os.listdir(trained['folder'])
        if n.endswith('.jpg'))[:2]
    records = out_json(trained, 'masked.json', *images, '--show-dir', show,
                       '--mask', 'high')
    for r in records:
        assert 0.5 <= r['masked']['removed'] <= 0.6  # the 'high' bin
        assert len(r['masked']['scores']) == 20
        assert r['masked']['scores'] != r['scores']
    names = sorted(os.listdir(show))
    assert names == [osp.splitext(osp.basename(p))[0] + '.png'
                     for p in images]
    for name in names:
        pic = cv2.imread(str(show / name))
        h, w = pic.shape[:2]
        # Two 48 px images upscaled to 256 px side by side, text below.
        assert w >= 2 * 256 and h > 256 and pic.std() > 10
        clean, masked = pic[:256, :256], pic[:256, -256:]
        assert clean.std() > 5 and np.abs(
            clean.astype(int) - masked.astype(int)).mean() > 5
        # Both panels are the 32 px model input (x8), aligned: the masked
        # one differs only in holes, of the dataset mean's pixel (BGR).
        holes = (clean != masked).any(-1)
        assert 0.3 < holes.mean() <= 0.6
        assert (masked[holes] == (104, 116, 124)).all()
        # Text band under the clean image: white with dark glyphs.
        band = pic[256:, :256]
        assert band.max() == 255 and band.min() < 100
    # Without --mask: one panel per image.
    infer_main(trained, images[0], '--show-dir', trained['base'] / 'show1')
    pic = cv2.imread(str(trained['base'] / 'show1' / names[0]))
    assert 256 <= pic.shape[1] < 2 * 256


def test_thresholds_decode_and_inputs(tmp_path):
    classes = ['cat', 'dog', 'car']
    with pytest.raises(ValueError, match=r"unknown classes \['cow'\]"):
        resolve_thresholds({'cat': .5, 'dog': .5, 'car': .5, 'cow': .5},
                           classes)
    with pytest.raises(ValueError, match=r"no threshold for classes \['car"):
        resolve_thresholds({'cat': .5, 'dog': .5}, classes)
    with pytest.raises(ValueError, match='2 values for 3 classes'):
        resolve_thresholds([.5, .5], classes)
    path = str(tmp_path / 't.json')
    save_thresholds(path, [.1, .2, .3], classes, extra=dict(f1={}))
    np.testing.assert_allclose(load_thresholds(path, classes), [.1, .2, .3])
    with pytest.raises(ValueError, match='t.json.*unknown classes'):
        load_thresholds(path, ['cat', 'dog', 'bus'])

    # Multi-label, not argmax: two classes above their thresholds.
    labels = decode_scores([.6, .9, .2], classes, np.array([.5, .5, .5]))
    assert [(x['label'], x['score']) for x in labels] == [('dog', .9),
                                                          ('cat', .6)]
    assert decode_scores([.6, .9, .2], classes, np.array([.7] * 3)) == [
        dict(label='dog', index=1, score=.9)]
    assert [x['index'] for x in decode_scores(
        [.6, .9, .2], classes, np.zeros(3), topk=2)] == [1, 0]

    (tmp_path / 'a' / 'b').mkdir(parents=True)
    for p in ('a/2.png', 'a/1.JPG', 'a/b/0.jpg', 'a/readme.md'):
        (tmp_path / p).write_bytes(b'')
    with pytest.warns(UserWarning, match='readme.md'):
        found = expand_inputs([str(tmp_path / 'a')])
    assert found == [str(tmp_path / p) for p in ('a/1.JPG', 'a/2.png',
                                                 'a/b/0.jpg')]
    assert expand_inputs(str(tmp_path / 'a' / '*.png')) == [
        str(tmp_path / 'a' / '2.png')]
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        expand_inputs([str(tmp_path / 'a' / '2.png'),
                       str(tmp_path / 'missing.jpg')])
    with pytest.raises(FileNotFoundError, match=r'\*.bmp'):
        expand_inputs(str(tmp_path / '*.bmp'))


def test_api_plain_classifier_and_class_names(trained, tmp_path):
    with pytest.warns(UserWarning, match='notes.txt'):
        images = expand_inputs(trained['folder'])
    assert len(images) == 4
    msl = MultiLabelInferencer(trained['cfg'], trained['ckpt'])
    assert msl.classes == list(VOC_CLASSES)
    assert type(msl.model).__name__ == 'ImageClassifier'  # MSL: plain
    ref = np.array([r['scores'] for r in msl(images, batch_size=3)])
    # In-memory BGR arrays (named array_i) through the functional form:
    # the same scores as the files; a grey array is read as 3 channels.
    arrays = [cv2.imread(p) for p in images]
    records = inference_multilabel(msl.model, arrays, thr=0.5, batch_size=2)
    assert [r['image'] for r in records] == ['array_0', 'array_1',
                                             'array_2', 'array_3']
    np.testing.assert_allclose([r['scores'] for r in records], ref,
                               atol=1e-5)
    assert all(r['labels'] == decode_scores(r['scores'], VOC_CLASSES,
                                            np.full(20, 0.5))
               for r in records)
    grey = msl(cv2.cvtColor(arrays[0], cv2.COLOR_BGR2GRAY))[0]
    assert grey['image'] == 'array_0' and len(grey['scores']) == 20
    # The same weights in a plain ImageClassifier config, and a checkpoint
    # without meta (class names then come from the config's dataset).
    cfg = Config(trained['cfg_dict'])
    cfg.model.type = 'ImageClassifier'
    ckpt = torch.load(trained['ckpt'], weights_only=True)
    bare = str(tmp_path / 'bare.pth')
    torch.save(dict(state_dict=ckpt['state_dict']), bare)
    plain = MultiLabelInferencer(cfg, bare)
    assert type(plain.model).__name__ == 'ImageClassifier'
    assert plain.classes == list(VOC_CLASSES)
    records = plain(images, thr={c: .5 for c in VOC_CLASSES})
    np.testing.assert_allclose([r['scores'] for r in records], ref,
                               atol=1e-5)
    cfg.model.head.num_classes = 3
    with pytest.raises(RuntimeError, match='size mismatch'):
        MultiLabelInferencer(cfg, trained['ckpt'])


def test_tune_thresholds_tool_feeds_infer(trained):
    tool = ['tools/analysis/tune_thresholds.py', trained['cfg'],
            trained['ckpt']]
    out = str(trained['base'] / 'tuned.json')
    # The fixture's val_dataloader is the test split: refused (the command).
    proc = run(tool + ['--out', out], ok=False)
    assert proc.returncode != 0 and 'Refusing' in proc.stderr
    assert not osp.exists(out)
    # trainval is the training set: allowed here for the test's sake (the
    # refusal is tests/test_thresholds.py's); in-process from here on.
    load_tool('tune_thresholds', tool[0]).main(
        tool[1:] + ['--out', out, '--cfg-options',
                    'val_dataloader.dataset.split=trainval',
                    '--allow-train-overlap'])
    with open(out) as f:
        tuned = json.load(f)
    assert tuned['tuned_on_train_images'] is True
    thr = np.array([tuned['thresholds'][c] for c in VOC_CLASSES])
    pos = np.array([tuned['num_positives'][c] for c in VOC_CLASSES])
    assert tuned['split'] == 'val' and tuned['num_samples'] == 12
    assert (thr[pos == 0] == 0.5).all() and (pos > 0).sum() == 3
    assert all(0 <= tuned['f1'][c] <= 1 for c in VOC_CLASSES)
    # Each tuned class threshold is one of the class's scores on trainval.
    from mmengine.dataset import pseudo_collate
    from mmpretrain.registry import DATASETS
    inferencer = MultiLabelInferencer(trained['cfg'], trained['ckpt'])
    cfg = Config(trained['cfg_dict'])
    cfg.val_dataloader.dataset.split = 'trainval'
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    with torch.no_grad():
        samples = inferencer.model.test_step(
            pseudo_collate([dataset[i] for i in range(len(dataset))]))
    scores = torch.stack([s.pred_score for s in samples]).numpy()
    for c in np.flatnonzero(pos):
        assert np.isclose(scores[:, c], thr[c], atol=1e-6).any()

    # tools/infer.py reads the file: labels are exactly score >= thr[c].
    with pytest.warns(UserWarning, match='notes.txt'):  # reported
        records = out_json(trained, 'tuned_out.json', trained['folder'],
                           '--thr-file', out)
    for r in records:
        s = np.array(r['scores'])
        assert sorted(x['index'] for x in r['labels']) == list(
            np.flatnonzero(s >= thr))


def test_visualize_masks_grid(trained):
    out = str(trained['base'] / 'masks.png')
    proc = run(['tools/visualize_masks.py', trained['cfg'], '--num', '3',
                '--tile', '64', '--out', out])
    assert 'Note' not in proc.stdout  # the pipeline has its IrregularMask
    grid = cv2.imread(out)
    tile, pad, label_w = 64, 4, 96
    assert grid.shape == (3 * tile + 4 * pad, label_w + 3 * tile + 4 * pad,
                          3)
    rows = [grid[pad + r * (tile + pad):pad + r * (tile + pad) + tile,
                 label_w + pad:] for r in range(3)]
    clean, mask, masked = rows
    assert clean.std() > 10
    assert set(np.unique(mask)) == {0, 255}  # binary, with holes
    hole_frac = (mask[..., 0] == 0).mean()
    assert 0.3 < hole_frac < 0.7  # 'high' masks: 50-60% of each image
    # Holes are filled with the dataset mean (BGR of mean [123.7, 116.3,
    # 103.5] RGB) where the mask is black.
    holes = mask[..., 0] == 0
    np.testing.assert_array_equal(np.unique(masked[holes], axis=0),
                                  [[104, 116, 124]])
    assert (masked[~holes] == clean[~holes]).all()

    vis = load_tool('visualize_masks', 'tools/visualize_masks.py')
    steps, key, notes = vis.mask_pipeline(
        [dict(type='LoadImageFromFile'), dict(type='PackInputs')])
    assert key == 'msl_mask' and len(notes) == 1
    assert [s['type'] for s in steps] == ['LoadImageFromFile',
                                          'IrregularMask']
