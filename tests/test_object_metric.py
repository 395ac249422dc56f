"""ObjectSizeMetric (mAP per object-size and occlusion bucket) on a score
matrix whose per-bucket APs are worked out by hand; the instances that
VOCMultiLabel, COCOMultiLabel and DigitsMultiLabel record (known areas
and visible fractions); tools/analysis/object_report.py on two trained
checkpoints; the configs that carry the metric."""
import csv
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import METRICS

from mmmsl.datasets import COCOMultiLabel, VOCMultiLabel
from mmmsl.datasets.coco import compact_coco
from mmmsl.datasets.digits_canvas import visible_fractions
from mmmsl.datasets.instances import box_visible_fractions
from mmmsl.evaluation import ObjectSizeMetric
from mmmsl.evaluation.metrics.object_size import OBJECT_META_KEYS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
NAN = float('nan')

# ------------------------------------------------ the hand-worked case --
# 3 classes (cat, dog, bird); per image: scores, labels, instances
# (class, area, visible). Default buckets: small < 1024 <= medium < 9216 <=
# large; visible0-50 < 0.5 <= visible50-75 < 0.75 <= visible75-100.
SCORES = [[0.9, 0.1, 0.35],
          [0.6, 0.8, 0.25],
          [0.7, 0.3, 0.15],
          [0.2, 0.4, 0.45],
          [0.4, 0.5, 0.05],
          [0.5, 0.6, 0.30]]
INSTANCES = [
    [(0, 500, 0.3)],                                    # cat small
    [(0, 2000, 0.6), (0, 100, 0.9), (1, 10000, 1.0)],   # cat in 2 buckets
    [(1, 400, 0.55)],                                   # dog small
    [(0, 20000, 0.75)],                                 # cat large
    [(0, 300, 0.2), (1, 5000, NAN)],                    # dog: unknown vis
    [(2, 100, 0.5)],                                    # bird small
]


def sample(scores, instances, ignore=None, difficult=(), **extra):
    """A data sample as the model gives it to the metric; the labels are
    the classes of the instances not flagged in ``ignore``."""
    ignore = [False] * len(instances) if ignore is None else ignore
    labels = sorted({c for (c, _, _), i in zip(instances, ignore) if not i})
    return dict(
        pred_score=torch.tensor(scores),
        gt_label=torch.tensor(labels, dtype=torch.long),
        gt_label_difficult=list(difficult),
        gt_bboxes_labels=np.array([c for c, _, _ in instances]),
        gt_areas=np.array([a for _, a, _ in instances], np.float32),
        gt_visible=np.array([v for _, _, v in instances], np.float32),
        gt_ignore_flags=np.array(ignore, bool), img_path='img.jpg', **extra)


def evaluate(samples, **kwargs):
    metric = ObjectSizeMetric(**kwargs)
    metric.process(None, samples)
    return metric.evaluate(len(samples))


def test_hand_worked_size_and_occlusion_buckets():
    res = evaluate([sample(s, i) for s, i in zip(SCORES, INSTANCES)])
    # cat small: +0.9 -0.7 -0.5 +0.4 (img1, img3 left out): (1 + 2/4) / 2
    # dog small: 0.3 is 3rd after negatives 0.6, 0.4: 1/3
    # bird small: 0.3 is 3rd after negatives 0.45, 0.35: 1/3
    # cat medium (img1, its largest cat): 0.6 after 0.7: 1/2
    # dog medium: 0.5 after 0.6: 1/2; bird: skipped
    # cat large: 0.2 after 0.7, 0.5: 1/3; dog large: 0.8 first: 1
    expected = dict(small=((0.75 + 1 / 3 + 1 / 3) / 3, 4, 3, 0),
                    medium=((0.5 + 0.5) / 2, 2, 2, 1),
                    large=((1 / 3 + 1) / 2, 2, 2, 1))
    # most visible instance decides: img1 cat 0.9 (not its largest, 0.6);
    # 0.75 and 0.5 are the lower ends of their buckets; img4's dog (NaN)
    # is left out of every occlusion bucket
    # cat <50%: img0 0.9, img4 0.4 vs 0.7, 0.5: 0.75; 50-75%: none
    # dog 50-75%: 0.3 after 0.6, 0.4: 1/3; bird 50-75%: 1/3
    # cat >=75%: img1 0.6, img3 0.2 vs 0.7, 0.5: (1/2 + 2/4) / 2; dog: 1
    expected.update({'visible0-50': (0.75, 2, 1, 2),
                     'visible50-75': ((1 / 3 + 1 / 3) / 2, 2, 2, 1),
                     'visible75-100': ((0.5 + 1) / 2, 3, 2, 1)})
    assert len(res) == 4 * len(expected)
    for name, (ap, num_pos, num_classes, skipped) in expected.items():
        assert res[f'objects/mAP_{name}'] == pytest.approx(100 * ap)
        assert res[f'objects/num_pos_{name}'] == num_pos
        assert res[f'objects/num_classes_{name}'] == num_classes
        assert res[f'objects/skipped_{name}'] == skipped


def test_relative_sizes_and_custom_buckets():
    # all images 100 x 100 except img3 (1000 x 1000): its 20000 px cat is
    # 2 % of the image, small for thresholds 1024 / 9216 of 100 x 100
    samples = [sample(s, i, ori_shape=(1000, 1000) if k == 3 else (100, 100))
               for k, (s, i) in enumerate(zip(SCORES, INSTANCES))]
    res = evaluate(samples, relative=True, size_thrs=(0.1024, 0.9216),
                   size_names=('S', 'M', 'L'), visible_thrs=None)
    assert sorted(res) == sorted(f'objects/{k}_{b}' for b in 'SML' for k in (
        'mAP', 'num_pos', 'num_classes', 'skipped'))
    # cat S: +0.9 -0.7 -0.5 +0.4 +0.2: (1 + 2/4 + 3/5) / 3; dog, bird: 1/3
    assert res['objects/mAP_S'] == pytest.approx(
        100 * (0.7 + 1 / 3 + 1 / 3) / 3)
    assert res['objects/mAP_L'] == pytest.approx(100.)  # dog only
    assert res['objects/skipped_L'] == 2 and res['objects/num_pos_S'] == 5
    # the default relative thresholds are COCO's over a 640 x 480 image
    assert ObjectSizeMetric(relative=True).size_thrs.tolist() == [
        1024 / 307200, 9216 / 307200]


def test_difficult_objects_are_left_out():
    # VOC semantics: img0 gets a difficult (ignored) large cat, which must
    # not decide its bucket; img5 a difficult cat only: no cat negative
    samples = [sample(s, i) for s, i in zip(SCORES, INSTANCES)]
    samples[0] = sample(SCORES[0], [*INSTANCES[0], (0, 50000, 1.)],
                        ignore=[False, True], difficult=(0, ))
    samples[5] = sample(SCORES[5], [*INSTANCES[5], (0, 50000, 1.)],
                        ignore=[False, True], difficult=(0, ))
    res = evaluate(samples, visible_thrs=None)
    # cat small: +0.9 -0.7 +0.4: (1 + 2/3) / 2; large: 0.2 after 0.7
    assert res['objects/mAP_small'] == pytest.approx(
        100 * ((1 + 2 / 3) / 2 + 1 / 3 + 1 / 3) / 3)
    assert res['objects/mAP_large'] == pytest.approx(100 * (1 / 2 + 1) / 2)
    assert res['objects/num_pos_large'] == 2  # img3's cat, img1's dog


def test_missing_keys_and_bad_input_are_named():
    bare = dict(pred_score=torch.tensor([0.5]), gt_label=torch.tensor([0]),
                img_path='a.jpg')
    with pytest.raises(KeyError, match=r"a\.jpg.*gt_bboxes_labels.*"
                       r"gt_areas.*PackInputs\(meta_keys=.*gt_visible"):
        evaluate([bare])
    with pytest.raises(KeyError, match='ori_shape'):
        evaluate([sample(SCORES[0], INSTANCES[0])], relative=True)
    lonely = sample([0.5, 0.5, 0.5], [(1, 10, 1.)])
    lonely['gt_label'] = torch.tensor([0, 1])
    with pytest.raises(ValueError, match='class 0 in gt_label but no'):
        evaluate([lonely])
    with pytest.raises(ValueError, match='size_thrs must be increasing'):
        ObjectSizeMetric(size_thrs=(100, 10))
    with pytest.raises(ValueError, match='visible_thrs.*< 1.0'):
        ObjectSizeMetric(visible_thrs=(0.5, 1.0))
    with pytest.raises(ValueError, match='3 size_names for 1 size_thrs'):
        ObjectSizeMetric(size_thrs=(10, ), size_names=('a', 'b', 'c'))
    # registered where mmpretrain's evaluators look
    assert isinstance(METRICS.build(dict(type='ObjectSizeMetric')),
                      ObjectSizeMetric)


def test_box_visible_fractions_exact():
    # A [0,20]^2 is covered by B on x 10..20 (200 px) and by D on 0..10
    # (100 px): 100 of 400 free; B loses 200 of 2000; C alone; D inside A
    boxes = [[0, 0, 20, 20], [10, 0, 50, 50], [100, 100, 200, 200],
             [0, 0, 10, 10], [5, 5, 5, 9]]
    np.testing.assert_allclose(box_visible_fractions(boxes),
                               [0.25, 0.9, 1., 0., NAN])
    assert box_visible_fractions(np.zeros((0, 4))).shape == (0, )


# ------------------------------------------------------------ VOC XML --

VOC_XML = """<annotation><size><width>{w}</width><height>{h}</height></size>
{objects}</annotation>"""
VOC_OBJ = ('<object><name>{}</name><difficult>{}</difficult><bndbox>'
           '<xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax>'
           '</bndbox></object>\n')
# 1-based inclusive VOC boxes: A (cat) 20x20 = 400 small, B (cat) 40x50 =
# 2000 medium (the image's cat is medium), C (dog) 100x100 = 10000 large,
# D (person, difficult) 10x10
VOC_OBJECTS = {
    '000001': [('cat', 0, 1, 1, 20, 20), ('cat', 0, 11, 1, 50, 50),
               ('dog', 0, 101, 101, 200, 200), ('person', 1, 1, 1, 10, 10)],
    '000002': [('person', 0, 1, 1, 30, 30)],
}


@pytest.fixture
def voc_boxes(tmp_path):
    root = tmp_path / 'VOC2007'
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True)
    for img_id, objs in VOC_OBJECTS.items():
        cv2.imwrite(str(root / 'JPEGImages' / f'{img_id}.jpg'),
                    np.zeros((200, 200, 3), np.uint8))
        (root / 'Annotations' / f'{img_id}.xml').write_text(VOC_XML.format(
            w=200, h=200, objects=''.join(VOC_OBJ.format(*o) for o in objs)))
    (root / 'ImageSets/Main/test.txt').write_text('000001\n000002\n')
    return str(root)


def test_voc_instances_known_areas_and_buckets(voc_boxes):
    ds = VOCMultiLabel(data_root=voc_boxes, split='test')
    cat, dog, person = (ds.class_to_idx[n] for n in ('cat', 'dog', 'person'))
    info = ds.get_data_info(0)
    np.testing.assert_array_equal(info['gt_bboxes'], [
        [0, 0, 20, 20], [10, 0, 50, 50], [100, 100, 200, 200],
        [0, 0, 10, 10]])
    assert info['gt_bboxes'].dtype == np.float32
    assert info['gt_bboxes_labels'].tolist() == [cat, cat, dog, person]
    assert info['gt_bboxes_labels'].dtype == np.int64
    assert info['gt_areas'].tolist() == [400, 2000, 10000, 100]
    np.testing.assert_allclose(info['gt_visible'], [0.25, 0.9, 1., 0.])
    assert info['gt_ignore_flags'].tolist() == [False, False, False, True]
    assert info['gt_label_difficult'] == [person]
    # through the metric: cat medium, dog large; person left out in img 1
    scores = torch.zeros(2, 20)
    scores[0, [cat, dog, person]] = torch.tensor([0.9, 0.8, 0.7])
    scores[1, person] = 0.1
    res = evaluate([dict(ds.get_data_info(i), pred_score=scores[i],
                         gt_label=torch.tensor(ds.get_data_info(i)[
                             'gt_label'])) for i in range(2)])
    assert [res[f'objects/num_pos_{b}'] for b in
            ('small', 'medium', 'large')] == [1, 1, 1]
    assert res['objects/mAP_small'] == pytest.approx(100.)  # person, img 2
    assert res['objects/num_pos_visible75-100'] == 3


# ---------------------------------------------------------- COCO json --

COCO_ANNS = [  # image id, category id, bbox, area, crowd
    (1, 1, [0, 0, 20, 20], 300.5, 0),     # person small
    (1, 1, [10, 0, 40, 50], 1500., 0),    # person medium: largest
    (1, 3, [100, 100, 100, 100], 10000., 0),  # car large
    (2, 3, [0, 0, 30, 30], 900., 1),      # crowd car, small
    (2, 90, [20, 0, 20, 30], 80., 0),     # toothbrush (not selected)
]


def test_coco_instances_known_areas_and_compact(tmp_path):
    images = [dict(id=i, file_name=f'{i}.jpg', height=480, width=640)
              for i in (1, 2)]
    (tmp_path / 'imgs').mkdir()
    for img in images:
        cv2.imwrite(str(tmp_path / 'imgs' / img['file_name']),
                    np.zeros((8, 8, 3), np.uint8))
    data = dict(images=images, categories=[
        dict(id=1, name='person'), dict(id=3, name='car'),
        dict(id=90, name='toothbrush')], annotations=[
            dict(id=k, image_id=i, category_id=c, bbox=b, area=a, iscrowd=z)
            for k, (i, c, b, a, z) in enumerate(COCO_ANNS)])
    full = str(tmp_path / 'full.json')
    with open(full, 'w') as f:
        json.dump(data, f)
    ds = COCOMultiLabel(ann_file=full, data_prefix=str(tmp_path / 'imgs'),
                        metainfo=dict(classes=['person', 'car']))
    a, b = ds.get_data_info(0), ds.get_data_info(1)
    np.testing.assert_array_equal(a['gt_bboxes'], [
        [0, 0, 20, 20], [10, 0, 50, 50], [100, 100, 200, 200]])
    assert a['gt_bboxes_labels'].tolist() == [0, 0, 1]
    assert a['gt_areas'].tolist() == [300.5, 1500, 10000]
    np.testing.assert_allclose(a['gt_visible'], [0.5, 0.9, 1.])
    # the unselected toothbrush is dropped but still covers the crowd car
    # (x 20..30 of its 0..30, all its height): 600 of 900 px visible
    assert b['gt_label'] == [1] and b['gt_bboxes_labels'].tolist() == [1]
    np.testing.assert_allclose(b['gt_visible'], [600 / 900])
    assert 'gt_ignore_flags' not in a
    compact = str(tmp_path / 'compact.json')
    compact_coco(full, compact)
    again = COCOMultiLabel(ann_file=compact,
                           data_prefix=str(tmp_path / 'imgs'),
                           metainfo=dict(classes=['person', 'car']))
    np.testing.assert_equal([again.get_data_info(i) for i in range(2)],
                            [a, b])
    scores = torch.tensor([[0.9, 0.2], [0.1, 0.8]])
    res = evaluate([dict(ds.get_data_info(i), pred_score=scores[i],
                         gt_label=torch.tensor(ds.get_data_info(i)[
                             'gt_label'])) for i in range(2)])
    # person: medium (its largest); car: large (img 1), small (crowd)
    assert [res[f'objects/num_pos_{b}'] for b in
            ('small', 'medium', 'large')] == [1, 1, 1]


# ------------------------------------------------------------- digits --


def test_digit_visible_fractions_by_construction():
    # solid 8x8 sources render as solid squares: exact overlaps
    solid = np.full((1, 8, 8), 16., np.float32)
    boxes = [[0, 0, 16, 16],     # 256 px: 8x16 under the 2nd, 8x8 3rd
             [8, 0, 24, 16],     # 256 px: 8x8 under the 3rd
             [8, 8, 16, 16]]     # last: all visible
    np.testing.assert_allclose(
        visible_fractions(solid, [0, 0, 0], boxes, 32),
        [(256 - 128) / 256, (256 - 64) / 256, 1.])
    # the first digit completely covered
    np.testing.assert_allclose(
        visible_fractions(solid, [0, 0], [[4, 4, 12, 12], [0, 0, 16, 16]],
                          16), [0., 1.])


def test_digits_dataset_records_sizes_and_visibility(tmp_path):
    from mmpretrain.registry import DATASETS
    ds = DATASETS.build(dict(type='DigitsMultiLabel', data_root=str(tmp_path),
                             split='test', num_samples=30))
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        sides = [x2 - x1 for x1, _, x2, _ in info['boxes']]
        np.testing.assert_array_equal(info['gt_bboxes'], info['boxes'])
        assert info['gt_areas'].tolist() == [s * s for s in sides]
        assert sorted(set(info['gt_bboxes_labels'].tolist())) == \
            info['gt_label']
        vis = info['gt_visible']
        assert vis[-1] == 1 and (vis >= 0.4 - 1e-6).all()  # min_visible


# ------------------------------------------------- configs and the tool --

CONFIGS = [f'configs/{kind}/{name}.py' for kind in ('msl', 'baseline')
           for name in ('resnet101_csra_voc', 'resnet101_csra_coco',
                        'vit-l16_csra_voc', 'vit-l16_csra_coco',
                        'demo_digits', 'digits_clutter')]


def test_configs_carry_the_metric_and_pack_its_keys():
    for path in sorted(glob.glob(osp.join(REPO, 'configs', '*', '*.py'))):
        cfg = Config.fromfile(path)
        name = osp.relpath(path, REPO)
        evaluator = cfg.test_evaluator if isinstance(
            cfg.test_evaluator, list) else [cfg.test_evaluator]
        metrics = [e for e in evaluator if e['type'] == 'ObjectSizeMetric']
        assert len(metrics) == (name in CONFIGS), name  # WIDER: none
        if metrics:
            assert cfg.val_evaluator == cfg.test_evaluator, name
            keys = [t for t in cfg.test_dataloader.dataset.pipeline
                    if t['type'] == 'PackInputs'][0]['meta_keys']
            needed = set(OBJECT_META_KEYS) - (
                {'gt_ignore_flags'} if 'digits' in name else set())
            assert needed <= set(keys), name


def _digits_cfg(root, work_dir, seed):
    cfg = Config.fromfile(osp.join(REPO, 'configs/baseline/demo_digits.py'))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(batch_size=10, num_workers=0,
                           persistent_workers=False)
        cfg[loader].dataset.update(data_root=root, num_samples=20,
                                   canvas_size=32, digit_size=(10, 16))
    cfg.merge_from_dict(dict(
        work_dir=work_dir, randomness=dict(seed=seed),
        train_cfg=dict(max_epochs=1, val_interval=10),
        default_hooks=dict(checkpoint=dict(interval=1))))
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] != 'ReuseFreedMemoryHook']
    return cfg


def test_object_report_on_two_trained_checkpoints(tmp_path):
    import runpy
    from mmengine.runner import Runner
    root = str(tmp_path / 'digits')
    ckpts = []
    for seed in (0, 1):
        cfg = _digits_cfg(root, str(tmp_path / f'wd{seed}'), seed)
        Runner.from_cfg(cfg).train()
        ckpts.append(str(tmp_path / f'wd{seed}' / 'epoch_1.pth'))
    config = str(tmp_path / 'digits_small.py')
    cfg.dump(config)
    tool = runpy.run_path(osp.join(REPO, 'tools/analysis/object_report.py'))
    out = str(tmp_path / 'report')
    rows = tool['main']([config, *ckpts, '--labels', 'seed0', 'seed1',
                         '--out-dir', out])
    with open(osp.join(out, 'object_report.csv')) as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ['model', 'group', 'bucket', 'mAP', 'num_pos',
                              'num_classes', 'skipped']
    buckets = ['all', 'small', 'medium', 'large', 'visible0-50',
               'visible50-75', 'visible75-100']
    assert [r['bucket'] for r in table] == buckets * 2
    assert [r['model'] for r in table] == ['seed0'] * 7 + ['seed1'] * 7
    assert [r['group'] for r in table[:7]] == ['all'] + ['size'] * 3 + [
        'visibility'] * 3
    # the counts are the test set's, equal for both checkpoints
    assert [r['num_pos'] for r in table[1:7]] == \
        [r['num_pos'] for r in table[8:]]
    assert sum(int(r['num_pos']) for r in table[1:4]) >= 20  # 1 per label
    for r in table[1:]:
        if r['group'] != 'all':
            assert int(r['num_classes']) + int(r['skipped']) == 10
    assert len(rows) == 14
    assert osp.getsize(osp.join(out, 'object_report.png')) > 1000
