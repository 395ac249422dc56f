"""Shared fixtures: tiny data in the genuine formats, built per test."""
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest

# Keep the cached procedural mask bank of the tests out of the user's cache.
os.environ.setdefault('MMMSL_CACHE', osp.join(osp.dirname(__file__), '..',
                                              'work_dirs', 'test_cache'))
if os.environ.get('PYTEST_XDIST_WORKER'):
    # One torch thread per xdist worker (and its subprocesses): the workers
    # already fill the cores, and at the tests' tiny sizes more threads only
    # wait for each other.
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    import torch
    torch.set_num_threads(1)

VOC_XML = """<annotation>
  <filename>{name}.jpg</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
{objects}</annotation>
"""
VOC_OBJECT = """  <object>
    <name>{cls}</name><difficult>{difficult}</difficult>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>8</xmax><ymax>8</ymax></bndbox>
  </object>
"""
# Each class is drawn as its own coloured shape so a tiny net can learn it.
SHAPES = {'cat': (0, 0, 255), 'dog': (255, 0, 0), 'car': (0, 255, 0)}


def make_voc(root, num_train=12, num_test=6, size=48, seed=0):
    """A VOCdevkit-style VOC2007 folder: JPEGImages, Annotations (XML with
    a difficult flag) and ImageSets/Main/{trainval,test}.txt. Returns the
    labels written, ``{img_id: (labels, difficult)}``."""
    rng = np.random.default_rng(seed)
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    written = {}
    splits = {'trainval': [], 'test': []}
    for i in range(num_train + num_test):
        img_id = f'{i:06d}'
        split = 'trainval' if i < num_train else 'test'
        splits[split].append(img_id)
        names = [n for n in SHAPES if rng.random() < 0.5] or ['cat']
        img = np.full((size, size, 3), 128, np.uint8)
        objects = ''
        for n in names:
            x, y = rng.integers(0, size - 16, 2)
            cv2.rectangle(img, (int(x), int(y)), (int(x) + 14, int(y) + 14),
                          SHAPES[n], -1)
            objects += VOC_OBJECT.format(cls=n, difficult=0)
        difficult = []
        if i % 5 == 4:  # a difficult object of another class
            extra = next(n for n in SHAPES if n not in names) \
                if len(names) < 3 else None
            if extra:
                objects += VOC_OBJECT.format(cls=extra, difficult=1)
                difficult.append(extra)
        cv2.imwrite(osp.join(root, 'JPEGImages', f'{img_id}.jpg'), img)
        with open(osp.join(root, 'Annotations', f'{img_id}.xml'), 'w') as f:
            f.write(VOC_XML.format(name=img_id, w=size, h=size,
                                   objects=objects))
        written[img_id] = (names, difficult)
    for split, ids in splits.items():
        with open(osp.join(root, 'ImageSets', 'Main', f'{split}.txt'),
                  'w') as f:
            f.write('\n'.join(ids) + '\n')
    return written


def build_once(tmp_path_factory, name, build):
    """A folder ``name`` filled by ``build(folder)`` once per test session,
    also across pytest-xdist workers (a module-scoped fixture runs once in
    every worker that gets one of the module's tests): the first worker
    builds it under a file lock, the others wait and reuse it. Without xdist
    a fresh folder of this session. Returns the folder (a ``Path``)."""
    if not os.environ.get('PYTEST_XDIST_WORKER'):
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    from filelock import FileLock  # a dependency of torch
    folder = tmp_path_factory.getbasetemp().parent / name  # this session's
    with FileLock(f'{folder}.lock'):
        if not (folder / '.built').exists():  # none yet, or a failed one
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / '.built').touch()
    return folder


@pytest.fixture(scope='module')
def one_torch_thread():
    """One torch thread for a module's in-process runs of the tools, as
    their subprocess runs get (``OMP_NUM_THREADS=1``): at these tiny sizes
    more threads only wait for each other on the cores the xdist workers
    share (a ResNet-18 step took 10 times longer with 2 on 2 busy cores)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def voc_root(tmp_path):
    root = str(tmp_path / 'VOC2007')
    make_voc(root)
    return root


def tiny_msl_cfg(data_root, work_dir, epochs=2, resume=False, **model_kw):
    """A Runner config: ResNet-18 + CSRA + IrregularMask on a tiny VOC."""
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.7, 1.)),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='IrregularMask', ratio='high', bank_size=50, bank_res=64),
        dict(type='PackInputs', algorithm_keys=('msl_mask', )),
    ]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=32),
        dict(type='PackInputs',
             meta_keys=('sample_idx', 'img_path', 'gt_label_difficult')),
    ]

    def loader(split, pipeline, shuffle):
        return dict(batch_size=4, num_workers=0,
                    dataset=dict(type='VOC', data_root=data_root,
                                 split=split, pipeline=pipeline),
                    sampler=dict(type='DefaultSampler', shuffle=shuffle))

    model = dict(
        type='MaskedSupervisedClassifier',
        backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
        head=dict(type='CSRAClsHead', num_classes=20, in_channels=512,
                  num_heads=1, lam=0.1,
                  loss=dict(type='CrossEntropyLoss', use_sigmoid=True)),
        data_preprocessor=dict(num_classes=20, to_rgb=True, to_onehot=True,
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375]))
    model.update(model_kw)
    return dict(
        default_scope='mmpretrain',
        custom_imports=dict(imports=['mmmsl'], allow_failed_imports=False),
        model=model,
        work_dir=work_dir,
        train_dataloader=loader('trainval', train_pipeline, True),
        val_dataloader=loader('test', test_pipeline, False),
        val_evaluator=[dict(type='VOCAveragePrecision'),
                       dict(type='VOCMultiLabelMetric')],
        train_cfg=dict(by_epoch=True, max_epochs=epochs, val_interval=1),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                                          weight_decay=1e-4)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(by_epoch=True),
        randomness=dict(seed=0),
        resume=resume,
        launcher='none',
        env_cfg=dict(dist_cfg=dict(backend='gloo')))


def pytest_collection_modifyitems(config, items):
    """The tests marked ``slow`` (the longest of ``--durations``) first, so
    that pytest-xdist starts them at once instead of ending the run with
    one of them alone on a worker."""
    items.sort(key=lambda item: item.get_closest_marker('slow') is None)
