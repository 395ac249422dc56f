"""COCOMultiLabel and WIDERAttribute on tiny files in the genuine formats;
WIDERAttribute(unspecified='ignore') with IgnoreAwareBCELoss; the
compact_coco CLI. Their errors are in test_datasets_errors.py."""
import json
import os
import os.path as osp
import runpy
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.evaluation import VOCAveragePrecision
from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS

from mmmsl.datasets.coco import COCOMultiLabel, compact_coco
from mmmsl.datasets.wider import WIDERAttribute
from mmmsl.evaluation.metrics import MultiLabelPaperMetric
from mmmsl.models.losses import IgnoreAwareBCELoss

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# ------------------------------------------------------------------ COCO --

# Category ids with gaps, given out of order: sorted by id they are
# person (1) -> 0, car (3) -> 1, toothbrush (90) -> 2.
COCO_CATEGORIES = [
    dict(id=90, name='toothbrush', supercategory='indoor'),
    dict(id=1, name='person', supercategory='person'),
    dict(id=3, name='car', supercategory='vehicle'),
]
# image id -> annotations as (category_id, iscrowd); images out of order.
COCO_IMAGES = {
    42: [(90, 0), (1, 0)],
    7: [(3, 0), (3, 0), (1, 0)],  # duplicate category
    9: [],  # no annotation
    30: [(90, 1)],  # crowd only
    15: [(3, 0)],
}


def coco_name(img_id):
    return f'COCO_val2014_{img_id:012d}.jpg'


def coco_json(images=COCO_IMAGES, categories=COCO_CATEGORIES):
    anns = []
    for img_id, objs in images.items():
        for cat_id, crowd in objs:
            anns.append(
                dict(id=len(anns) + 1, image_id=img_id, category_id=cat_id,
                     iscrowd=crowd, bbox=[0, 0, 4, 4], area=16,
                     segmentation=[[0, 0, 4, 0, 4, 4]]))
    return dict(
        info=dict(description='tiny'), licenses=[],
        images=[dict(id=i, file_name=coco_name(i), height=8, width=8)
                for i in images],
        annotations=anns, categories=categories)


def write_json(path, data):
    with open(path, 'w') as f:
        json.dump(data, f)
    return str(path)


def write_images(root, names, size=(8, 8)):
    rng = np.random.default_rng(0)
    for name in names:
        path = osp.join(root, name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(path, rng.integers(0, 256, (*size, 3), np.uint8))


@pytest.fixture
def coco_root(tmp_path):
    (tmp_path / 'annotations').mkdir()
    write_json(tmp_path / 'annotations' / 'instances_val2014.json',
               coco_json())
    write_images(str(tmp_path / 'val2014'), map(coco_name, COCO_IMAGES))
    return str(tmp_path)


def build_coco(root, ann='annotations/instances_val2014.json', **kwargs):
    return COCOMultiLabel(data_root=root, ann_file=ann,
                          data_prefix='val2014', **kwargs)


def samples(dataset):
    return [(osp.basename(dataset.get_data_info(i)['img_path']),
             dataset.get_data_info(i)['gt_label'])
            for i in range(len(dataset))]


def infos(dataset):
    """All data infos, for ``np.testing.assert_equal`` (arrays, NaN)."""
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def test_coco_classes_remapping_and_order(coco_root):
    ds = build_coco(coco_root)
    assert ds.CLASSES == ('person', 'car', 'toothbrush')
    assert ds.metainfo['classes'] == ('person', 'car', 'toothbrush')
    assert samples(ds) == [(coco_name(7), [0, 1]), (coco_name(15), [1]),
                           (coco_name(30), [2]), (coco_name(42), [0, 2])]
    assert ds.get_data_info(0)['img_path'] == osp.join(
        coco_root, 'val2014', coco_name(7))
    assert ds.get_cat_ids(3) == [0, 2]


def test_coco_keep_empty(coco_root):
    ds = build_coco(coco_root, drop_empty=False)
    assert samples(ds) == [(coco_name(7), [0, 1]), (coco_name(9), []),
                           (coco_name(15), [1]), (coco_name(30), [2]),
                           (coco_name(42), [0, 2])]
    ds.pipeline = TRANSFORMS.build(dict(type='PackInputs'))
    assert ds[1]['data_samples'].gt_label.tolist() == []


def test_coco_registry_build(coco_root):
    import mmmsl.datasets.coco  # noqa: F401
    ds = DATASETS.build(
        dict(type='COCOMultiLabel', data_root=coco_root,
             ann_file='annotations/instances_val2014.json',
             data_prefix=dict(img_path='val2014'), drop_empty=False))
    assert isinstance(ds, COCOMultiLabel)
    assert len(ds) == 5 and ds.CLASSES == ('person', 'car', 'toothbrush')


def test_coco_class_subset(coco_root):
    ds = build_coco(coco_root,
                    metainfo=dict(classes=['toothbrush', 'person']))
    assert ds.CLASSES == ('toothbrush', 'person')
    # image 15 (car only) has no selected label left and is dropped
    assert samples(ds) == [(coco_name(7), [1]), (coco_name(30), [0]),
                           (coco_name(42), [0, 1])]
    with pytest.raises(ValueError, match=r"\['dog'\].*'categories'"):
        build_coco(coco_root, metainfo=dict(classes=['person', 'dog']))


def test_coco_compact_roundtrip(coco_root, tmp_path):
    full = osp.join(coco_root, 'annotations', 'instances_val2014.json')
    compact = str(tmp_path / 'annotations' / 'val2014_labels.json')
    compact_coco(full, compact)
    with open(compact) as f:
        data = json.load(f)
    assert 'annotations' not in data
    assert {img['id']: [r[0] for r in img['instances']]
            for img in data['images']} == {
        42: [90, 1], 7: [3, 3, 1], 9: [], 30: [90], 15: [3]}
    assert data['images'][0]['instances'][0] == [90, 0, 0, 4, 4, 16]
    for drop_empty in (True, False):
        ref = build_coco(coco_root, drop_empty=drop_empty)
        ds = build_coco(coco_root, ann='annotations/val2014_labels.json',
                        drop_empty=drop_empty)
        assert ds.CLASSES == ref.CLASSES
        np.testing.assert_equal(infos(ds), infos(ref))


# ----------------------------------------------------------------- WIDER --

ATTRS = ['Male', 'longHair', 'sunglass', 'Hat', 'Tshirt', 'longSleeve',
         'formal', 'shorts', 'jeans', 'longPants', 'skirt', 'faceMask',
         'logo', 'stripe']
# person A: positive Male, Hat; unspecified sunglass, stripe
ATTR_A = [1, -1, 0, 1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0]
# person B: positive longHair, sunglass; unspecified Male
ATTR_B = [0, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1]
IMG_A = '0--Parade/0_Parade_marchingband_1_5.jpg'
IMG_B = '1--Handshaking/1_Handshaking_1_3.jpg'
H, W = 20, 30


def wider_json():
    return dict(
        images=[
            dict(file_name=IMG_A, scene_id=0, targets=[
                dict(bbox=[2, 3, 10, 8], attribute=ATTR_A),
                dict(bbox=[5, 5, 0, 7], attribute=[1] * 14),  # no area
            ]),
            dict(file_name=IMG_B, scene_id=1, targets=[
                dict(bbox=[25, 15, 10, 10], attribute=ATTR_B),
            ]),
        ],
        # keys in reverse order: classes must follow the numeric ids
        attribute_id_map={str(i): ATTRS[i] for i in reversed(range(14))},
        scene_id_map={'0': 'Parade', '1': 'Handshaking'})


@pytest.fixture
def wider_root(tmp_path):
    rng = np.random.default_rng(0)
    for name in (IMG_A, IMG_B):
        path = tmp_path / 'Image' / name
        path.parent.mkdir(parents=True)
        cv2.imwrite(str(path), rng.integers(0, 256, (H, W, 3), np.uint8))
    write_json(tmp_path / 'wider_attribute_test.json', wider_json())
    return str(tmp_path)


def build_wider(root, ann_file='wider_attribute_test.json', **kwargs):
    return WIDERAttribute(data_root=root, ann_file=ann_file, **kwargs)


def test_wider_samples(wider_root):
    ds = build_wider(wider_root)
    assert ds.CLASSES == tuple(ATTRS)
    assert len(ds) == 2  # the zero-area target is skipped
    a, b = ds.get_data_info(0), ds.get_data_info(1)
    assert a['img_path'] == osp.join(wider_root, 'Image', IMG_A)
    assert a['bbox'] == [2, 3, 10, 8]
    assert a['gt_label'] == [0, 3] and a['gt_label_difficult'] == [2, 13]
    assert b['img_path'] == osp.join(wider_root, 'Image', IMG_B)
    assert b['bbox'] == [25, 15, 10, 10]
    assert b['gt_label'] == [1, 2] and b['gt_label_difficult'] == [0]


def test_wider_registry_and_classes(wider_root):
    ds = DATASETS.build(dict(type='WIDERAttribute', data_root=wider_root,
                             ann_file='wider_attribute_test.json'))
    assert ds.metainfo['classes'] == tuple(ATTRS)
    renamed = wider_json()
    renamed['attribute_id_map']['13'] = 'stripes'
    write_json(osp.join(wider_root, 'renamed.json'), renamed)
    assert build_wider(wider_root, ann_file='renamed.json').CLASSES[
        -1] == 'stripes'
    no_map = wider_json()
    del no_map['attribute_id_map']
    write_json(osp.join(wider_root, 'no_map.json'), no_map)
    assert build_wider(wider_root,
                       ann_file='no_map.json').CLASSES == tuple(ATTRS)
    with pytest.raises(ValueError, match='differ from those of'):
        build_wider(wider_root, metainfo=dict(classes=ATTRS[::-1]))


def test_wider_pipeline_crops_person(wider_root):
    ds = build_wider(wider_root, pipeline=[
        dict(type='LoadImageFromFile'), dict(type='CropPersonBox')])
    for i, name, (y1, y2, x1, x2) in [(0, IMG_A, (3, 11, 2, 12)),
                                      (1, IMG_B, (15, 20, 25, 30))]:
        full = cv2.imread(osp.join(wider_root, 'Image', name))
        out = ds[i]
        assert out['ori_shape'] == (H, W)
        assert out['img_shape'] == (y2 - y1, x2 - x1)
        np.testing.assert_array_equal(out['img'], full[y1:y2, x1:x2])


def test_crop_person_box_expand_and_clip():
    img = np.arange(H * W).reshape(H, W)

    def crop(bbox, **kwargs):
        t = TRANSFORMS.build(dict(type='CropPersonBox', **kwargs))
        return t(dict(img=img, bbox=bbox))

    out = crop([2, 3, 10, 8], expand=2.0)  # x -3..17, y -1..15
    np.testing.assert_array_equal(out['img'], img[0:15, 0:17])
    assert out['img_shape'] == (15, 17)
    np.testing.assert_array_equal(  # fractional box rounds outwards
        crop([2.5, 3.2, 4.0, 1.5])['img'], img[3:5, 2:7])
    np.testing.assert_array_equal(crop([40, 30, 5, 5])['img'],
                                  img[H - 1:H, W - 1:W])
    np.testing.assert_array_equal(crop([-9, -9, 4, 4])['img'], img[0:1, 0:1])
    with pytest.raises(ValueError, match='expand'):
        crop([0, 0, 1, 1], expand=0)


def wider_ap(ds, scores, **metric_kw):
    """Per-class AP of ``scores`` (one row per sample) on ``ds``."""
    metric = VOCAveragePrecision(average=None, **metric_kw)
    pack = TRANSFORMS.build(
        dict(type='PackInputs', algorithm_keys=('gt_label_difficult', )))
    outputs = []
    for i, score in enumerate(scores):
        sample = pack(ds.get_data_info(i))['data_samples']
        outputs.append(sample.set_pred_score(torch.tensor(score)).to_dict())
    metric.process(None, outputs)
    return metric.compute_metrics(metric.results)['AP_classwise']


def test_wider_unspecified_ignored_by_voc_ap(wider_root):
    ds = build_wider(wider_root)
    good = [[0.1] * 14, [0.1] * 14]
    good[0][0], good[1][0] = 0.9, 0.2  # Male: A positive, B unspecified
    good[0][2], good[1][2] = 0.2, 0.9  # sunglass: A unspecified, B positive
    # wrong only on the unspecified entries: they now outrank the positives
    bad = [list(good[0]), list(good[1])]
    bad[0][2], bad[1][0] = 0.99, 0.99

    ap_good, ap_bad = wider_ap(ds, good), wider_ap(ds, bad)
    assert ap_good[0] == ap_bad[0] == 100.0
    assert ap_good[2] == ap_bad[2] == 100.0
    assert ap_good == ap_bad
    # counted as negatives they would cost AP: the check above can fail
    ap_neg = wider_ap(ds, bad, difficult_as_positive=False)
    assert ap_neg[0] == ap_neg[2] == 50.0


# ------------------------------------------- WIDER unspecified='ignore' --

# targets of ATTR_A / ATTR_B: 1 positive, 0 negative, -1 unspecified
SCORE_A = [1., 0., -1., 1., 0., 0., 0., 0., 0., 0., 0., 0., 0., -1.]
SCORE_B = [-1., 1., 1., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.]


def test_wider_ignore_mode_samples(wider_root):
    neg, ign = build_wider(wider_root), build_wider(wider_root,
                                                    unspecified='ignore')
    assert 'gt_score' not in neg.get_data_info(0)
    for i, score in enumerate((SCORE_A, SCORE_B)):
        info = ign.get_data_info(i)
        assert info.pop('gt_score') == score
        assert info == neg.get_data_info(i)  # labels, difficult, box, path
    with pytest.raises(ValueError, match="unspecified='positive' not in"):
        build_wider(wider_root, unspecified='positive')


def random_case(seed=0, n=5, c=7):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g) * 3
    target = torch.randint(-1, 2, (n, c), generator=g).float()
    target[0, 0], target[0, 1] = -1, 0.3  # one ignored, one soft
    return logits, target


def test_ignore_aware_bce_exact():
    logits, target = random_case()
    keep = target >= 0
    x, t = logits[keep], target[keep]
    n = logits.size(0)
    loss = IgnoreAwareBCELoss()
    # mean over the kept entries, and sum over them / avg_factor
    torch.testing.assert_close(loss(logits, target),
                               F.binary_cross_entropy_with_logits(x, t))
    per_entry = F.binary_cross_entropy_with_logits(x, t, reduction='none')
    torch.testing.assert_close(loss(logits, target, avg_factor=n),
                               per_entry.sum() / n)
    torch.testing.assert_close(loss(logits, target, reduction_override='sum'),
                               per_entry.sum())
    none = loss(logits, target, reduction_override='none')
    assert none.shape == logits.shape and (none[~keep] == 0).all()
    torch.testing.assert_close(none[keep], per_entry)
    # per-sample and per-entry weights, loss_weight
    w = torch.arange(1., n + 1)
    torch.testing.assert_close(
        IgnoreAwareBCELoss(loss_weight=0.5)(logits, target, weight=w,
                                            avg_factor=n),
        0.5 * (per_entry * w[:, None].expand_as(logits)[keep]).sum() / n)
    torch.testing.assert_close(
        loss(logits, target, weight=keep.float() * 2, avg_factor=n),
        2 * per_entry.sum() / n)
    # everything ignored: 0, not NaN
    assert loss(logits, torch.full_like(target, -1)).item() == 0
    with pytest.raises(ValueError, match='use_sigmoid'):
        IgnoreAwareBCELoss(use_sigmoid=False)
    with pytest.raises(ValueError, match='differ in shape'):
        loss(logits, target[:, :3])


def test_ignore_aware_bce_is_stock_bce_without_ignored():
    logits, target = random_case(seed=1)
    target = target.clamp(min=0)
    stock = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=True,
                              loss_weight=0.25))
    ours = MODELS.build(dict(type='IgnoreAwareBCELoss', use_sigmoid=True,
                             loss_weight=0.25))
    w = torch.rand(logits.size(0))
    for kw in (dict(avg_factor=5), dict(), dict(weight=w, avg_factor=5),
               dict(reduction_override='none')):
        torch.testing.assert_close(ours(logits, target, **kw),
                                   stock(logits, target, **kw))


def test_ignore_aware_bce_zero_gradient_on_ignored():
    logits, target = random_case(seed=2)
    logits.requires_grad_(True)
    IgnoreAwareBCELoss()(logits, target, avg_factor=5).backward()
    ignored = target < 0
    assert (logits.grad[ignored] == 0).all()
    assert (logits.grad[~ignored] != 0).all()


def head_loss(ds, logits, loss_type):
    """The loss of a MultiLabelClsHead on ``ds``'s samples, through
    PackInputs and ClsDataPreprocessor(to_onehot=True) as in training."""
    pack = TRANSFORMS.build(dict(type='PackInputs'))
    batch = [pack(dict(ds.get_data_info(i), img=np.zeros((4, 4, 3),
                                                         np.uint8)))
             for i in range(len(ds))]
    pre = MODELS.build(dict(type='ClsDataPreprocessor', num_classes=14,
                            to_onehot=True))
    data = pre(dict(inputs=[b['inputs'] for b in batch],
                    data_samples=[b['data_samples'] for b in batch]),
               training=True)
    head = MODELS.build(dict(type='MultiLabelClsHead',
                             loss=dict(type=loss_type, use_sigmoid=True)))
    return head.loss((logits, ), data['data_samples'])['loss']


def test_wider_ignore_loss_through_the_head(wider_root):
    logits = torch.randn(2, 14, generator=torch.Generator().manual_seed(3))
    target = torch.tensor([SCORE_A, SCORE_B])
    keep = target >= 0
    expected = F.binary_cross_entropy_with_logits(
        logits[keep], target[keep], reduction='sum') / 2
    ign = build_wider(wider_root, unspecified='ignore')
    torch.testing.assert_close(head_loss(ign, logits, 'IgnoreAwareBCELoss'),
                               expected)
    # the unspecified logits do not matter ...
    moved = logits.masked_fill(~keep, 50.)
    torch.testing.assert_close(head_loss(ign, moved, 'IgnoreAwareBCELoss'),
                               expected)
    # ... whereas in 'negative' mode they are negatives of the stock loss
    neg = build_wider(wider_root)
    negative = F.binary_cross_entropy_with_logits(
        logits, target.clamp(min=0), reduction='sum') / 2
    torch.testing.assert_close(head_loss(neg, logits, 'CrossEntropyLoss'),
                               negative)
    assert not torch.isclose(negative, expected)


def test_wider_ignore_loss_in_msl_classifier(wider_root):
    ds = build_wider(wider_root, unspecified='ignore', pipeline=[
        dict(type='LoadImageFromFile'), dict(type='CropPersonBox'),
        dict(type='Resize', scale=(32, 32)), dict(type='PackInputs')])
    model = MODELS.build(dict(
        type='MaskedSupervisedClassifier', alpha=(1., 1., 1.),
        class_reduction='sum', mask_source=dict(ratio='high'),
        backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
        head=dict(type='CSRAClsHead', num_classes=14, in_channels=512,
                  num_heads=1, lam=0.1, loss=dict(type='IgnoreAwareBCELoss')),
        data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=14,
                               to_onehot=True)))
    model.eval()  # BatchNorm: the same clean logits in both calls
    data = model.data_preprocessor(
        dict(inputs=[ds[i]['inputs'] for i in range(2)],
             data_samples=[ds[i]['data_samples'] for i in range(2)]), True)
    logits = model.head(model.extract_feat(data['inputs']))
    target = torch.tensor([SCORE_A, SCORE_B])
    keep = target >= 0
    expected = F.binary_cross_entropy_with_logits(
        logits[keep], target[keep], reduction='sum') / 2
    losses = model.loss(data['inputs'], data['data_samples'])
    torch.testing.assert_close(losses['loss_clean'], expected)


def paper_metric(ds, scores, pack_difficult=True, **kw):
    keys = ('gt_label_difficult', ) if pack_difficult else ()
    pack = TRANSFORMS.build(dict(type='PackInputs', algorithm_keys=keys))
    metric = MultiLabelPaperMetric(**kw)
    metric.process(None, [
        pack(ds.get_data_info(i))['data_samples'].set_pred_score(
            torch.tensor(score)).to_dict() for i, score in enumerate(scores)
    ])
    return metric.compute_metrics(metric.results)


def test_wider_ignore_mode_metrics_unchanged(wider_root):
    neg = build_wider(wider_root)
    ign = build_wider(wider_root, unspecified='ignore')
    # wrong only on the unspecified entries (Male of B, sunglass of A)
    scores = [[0.1] * 14, [0.1] * 14]
    scores[0][0], scores[1][0] = 0.9, 0.99
    scores[0][2], scores[1][2] = 0.99, 0.9
    ref = paper_metric(neg, scores)
    assert paper_metric(ign, scores) == ref
    # the -1 of gt_score alone is enough to ignore them
    assert paper_metric(ign, scores, pack_difficult=False) == ref
    # counted as negatives they change the numbers: the checks can fail
    assert paper_metric(neg, scores, difficult_as_positive=False) != ref


# ------------------------------------------------- compact_coco CLI --


def test_compact_coco_cli(coco_root, tmp_path, monkeypatch, capsys):
    full = osp.join(coco_root, 'annotations', 'instances_val2014.json')
    out = str(tmp_path / 'new_dir' / 'val2014_labels.json')
    monkeypatch.setattr(sys, 'argv', ['compact_coco.py', full, out])
    runpy.run_path(
        osp.join(REPO, 'tools', 'dataset_converters', 'compact_coco.py'),
        run_name='__main__')
    assert out in capsys.readouterr().out
    with open(out) as f:
        assert 'annotations' not in json.load(f)
    ref = build_coco(coco_root, drop_empty=False)
    ds = build_coco(coco_root, ann=out, drop_empty=False)
    assert ds.CLASSES == ref.CLASSES and len(ds) == 5
    np.testing.assert_equal(infos(ds), infos(ref))
