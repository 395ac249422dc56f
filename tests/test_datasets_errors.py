"""Broken dataset files fail early (at build, or at the sample's first
load) with an error whose type is asserted and whose message names the
file, key or value at fault: VOCMultiLabel, COCOMultiLabel,
WIDERAttribute."""
import os
import os.path as osp
import re
import shutil

import numpy as np
import pytest
from conftest import make_voc
from mmpretrain.datasets import VOC
from mmpretrain.registry import DATASETS
# coco_root and wider_root are fixtures
from test_datasets_coco_wider import (IMG_A, build_coco, build_wider,  # noqa
                                      coco_json, coco_name, coco_root,
                                      wider_json, wider_root, write_json)

from mmmsl.datasets import CorruptImageError, VOCMultiLabel
from mmmsl.datasets.coco import COCOMultiLabel
from mmmsl.datasets.wider import WIDERAttribute

LOAD = [dict(type='LoadImageFromFile')]


def raises(err, *names):
    """pytest.raises(err) whose message contains every one of ``names``."""
    return pytest.raises(err, match=''.join(f'(?=.*{re.escape(str(n))})'
                                            for n in names))


def corrupt(path, content=b'this is not a jpeg'):
    with open(path, 'wb') as f:
        f.write(content)


# ------------------------------------------------------------------- VOC --


@pytest.fixture
def voc(tmp_path):
    root = str(tmp_path / 'VOC2007')
    make_voc(root)  # 12 trainval, 6 test images
    return root


def ann(root, img_id):
    return osp.join(root, 'Annotations', f'{img_id}.xml')


def voc_infos(ds, ref=None):
    """The data infos of ``ds`` restricted to the keys of ``ref``'s."""
    ref = ref or ds
    return [{k: ds.get_data_info(i)[k] for k in ref.get_data_info(i)}
            for i in range(len(ref))]


def test_voc_multilabel_equals_voc(voc):
    for split in ('trainval', 'test'):
        ours = DATASETS.build(dict(type='VOCMultiLabel', data_root=voc,
                                   split=split))
        ref = VOC(data_root=voc, split=split)
        assert isinstance(ours, VOCMultiLabel) and len(ours) == len(ref)
        assert voc_infos(ours, ref) == voc_infos(ref)
        # plus the instance arrays
        assert set(ours.get_data_info(0)) - set(ref.get_data_info(0)) == {
            'gt_bboxes', 'gt_bboxes_labels', 'gt_areas', 'gt_visible',
            'gt_ignore_flags'}
    # the fixture has difficult labels: the comparison covers them
    ref = VOC(data_root=voc, split='trainval')
    assert any(ref.get_data_info(i)['gt_label_difficult'] for i in range(12))


def test_voc_missing_images(voc):
    split = osp.join(voc, 'ImageSets', 'Main', 'trainval.txt')
    os.remove(osp.join(voc, 'JPEGImages', '000001.jpg'))
    os.remove(osp.join(voc, 'JPEGImages', '000003.jpg'))
    with raises(FileNotFoundError, '2 of the 12 images', split,
                osp.join(voc, 'JPEGImages', '000001.jpg'),
                osp.join(voc, 'JPEGImages', '000003.jpg')):
        VOCMultiLabel(data_root=voc, split='trainval')
    VOCMultiLabel(data_root=voc, split='test')  # the other split is fine


@pytest.mark.parametrize('content', [b'garbage bytes', b''],
                         ids=['garbage', 'empty'])
def test_voc_corrupt_image_at_first_load(voc, content):
    path = osp.join(voc, 'JPEGImages', '000002.jpg')
    corrupt(path, content)
    ds = VOCMultiLabel(data_root=voc, split='trainval', pipeline=LOAD)
    assert ds[1]['img'].shape == (48, 48, 3)  # the other images load
    with raises(CorruptImageError, path, f'({len(content)} bytes)'):
        ds[2]
    with raises(CorruptImageError, path):  # also in test mode
        VOCMultiLabel(data_root=voc, split='trainval', test_mode=True,
                      pipeline=LOAD)[2]


def test_voc_other_pipeline_errors_unchanged(voc):
    # CropPersonBox needs 'bbox': the image is fine, the KeyError stays
    ds = VOCMultiLabel(data_root=voc, split='trainval',
                       pipeline=LOAD + [dict(type='CropPersonBox')])
    with pytest.raises(KeyError, match="'bbox'"):
        ds[0]


def test_voc_unknown_class(voc):
    path = ann(voc, '000003')
    with open(path) as f:
        xml = f.read()
    assert '<name>cat</name>' in xml or '<name>dog</name>' in xml
    with open(path, 'w') as f:
        f.write(re.sub(r'<name>\w+</name>', '<name>kitten</name>', xml, 1))
    with raises(ValueError, path, "'kitten'"):
        VOCMultiLabel(data_root=voc, split='trainval')
    # with a user-given class subset, other names are skipped, as in VOC
    classes = ('cat', 'dog', 'car')
    ours = VOCMultiLabel(data_root=voc, split='trainval',
                         metainfo=dict(classes=classes))
    ref = VOC(data_root=voc, split='trainval', metainfo=dict(classes=classes))
    assert voc_infos(ours, ref) == voc_infos(ref)
    assert set(np.concatenate([ours.get_data_info(i)['gt_bboxes_labels']
                               for i in range(12)])) <= {0, 1, 2}


def test_voc_bad_xml(voc):
    path = ann(voc, '000001')
    corrupt(path, b'<annotation><object>')
    with raises(ValueError, 'Cannot parse', path):
        VOCMultiLabel(data_root=voc, split='trainval')
    corrupt(path, b'<annotation><object><name>cat</name></object>'
            b'</annotation>')
    with raises(ValueError, path, '<difficult>'):
        VOCMultiLabel(data_root=voc, split='trainval')
    os.remove(path)
    with raises(FileNotFoundError, path):
        VOCMultiLabel(data_root=voc, split='trainval')


@pytest.mark.parametrize('content', ['', '\n \n'], ids=['empty', 'blank'])
def test_voc_empty_split_file(voc, content):
    path = osp.join(voc, 'ImageSets', 'Main', 'trainval.txt')
    with open(path, 'w') as f:
        f.write(content)
    with raises(ValueError, path, 'no image ids'):
        VOCMultiLabel(data_root=voc, split='trainval')


def test_voc_blank_lines_skipped(voc):
    path = osp.join(voc, 'ImageSets', 'Main', 'test.txt')
    with open(path) as f:
        ids = f.read().split()
    with open(path, 'w') as f:
        f.write('\n' + '\n\n'.join(ids) + '\n\n')
    ds = VOCMultiLabel(data_root=voc, split='test')
    assert [osp.basename(ds.get_data_info(i)['img_path'])
            for i in range(len(ds))] == [f'{i}.jpg' for i in ids]


# ------------------------------------------------------------------ COCO --


def bad_coco(tmp_path, data):
    return write_json(tmp_path / 'bad.json', data)


def test_coco_missing_file_or_key(tmp_path):
    with raises(FileNotFoundError, str(tmp_path / 'missing.json')):
        COCOMultiLabel(ann_file=str(tmp_path / 'missing.json'))
    for key in ('categories', 'images'):
        data = coco_json()
        del data[key]
        path = bad_coco(tmp_path, data)
        with raises(KeyError, path, f"'{key}'"):
            COCOMultiLabel(ann_file=path)
    data = coco_json()
    del data['annotations']  # neither format
    path = bad_coco(tmp_path, data)
    with raises(KeyError, path, "'instances'", 'compact_coco.py'):
        COCOMultiLabel(ann_file=path)
    data = coco_json()
    del data['annotations'][2]['area']
    path = bad_coco(tmp_path, data)
    with raises(KeyError, path, 'Annotation 3', "'area'"):
        COCOMultiLabel(ann_file=path)


def test_coco_unknown_category_or_image(tmp_path):
    data = coco_json()
    data['annotations'][0]['category_id'] = 5
    path = bad_coco(tmp_path, data)
    with raises(ValueError, path, 'category_id 5'):
        COCOMultiLabel(ann_file=path)
    data = coco_json()
    data['annotations'][0]['image_id'] = 1234
    path = bad_coco(tmp_path, data)
    with raises(ValueError, path, 'image_id 1234'):
        COCOMultiLabel(ann_file=path)


def test_coco_no_images_or_annotations(tmp_path):
    for images in ({}, {9: []}):  # no images; images without annotation
        path = bad_coco(tmp_path, coco_json(images=images))
        with raises(ValueError, 'No images with labels', path):
            COCOMultiLabel(ann_file=path)
    path = bad_coco(tmp_path, coco_json(images={}))
    with raises(ValueError, path):
        COCOMultiLabel(ann_file=path, drop_empty=False)


def test_coco_missing_and_corrupt_images(coco_root):  # noqa: F811
    path = osp.join(coco_root, 'val2014', coco_name(30))
    corrupt(path)
    ds = build_coco(coco_root, pipeline=LOAD)
    assert osp.basename(ds.get_data_info(2)['img_path']) == coco_name(30)
    ds[1]  # noqa: B018  (loads)
    with raises(CorruptImageError, path):
        ds[2]
    os.remove(path)
    with raises(FileNotFoundError, '1 of the 4 images', path,
                'instances_val2014.json'):
        build_coco(coco_root)


# ----------------------------------------------------------------- WIDER --


def wider(ann_file):
    """A WIDERAttribute of ``ann_file`` only (no image folder to check)."""
    return WIDERAttribute(ann_file=ann_file, data_prefix='')


def bad_wider(tmp_path, edit):
    data = wider_json()
    edit(data)
    return write_json(tmp_path / 'bad.json', data)


def test_wider_missing_file_or_key(tmp_path):
    with raises(FileNotFoundError, str(tmp_path / 'missing.json')):
        wider(str(tmp_path / 'missing.json'))
    path = bad_wider(tmp_path, lambda d: d.pop('images'))
    with raises(KeyError, path, "'images'"):
        wider(path)
    path = bad_wider(tmp_path, lambda d: d['images'][1].pop('targets'))
    with raises(KeyError, path, 'Image 1', "'targets'"):
        wider(path)
    path = bad_wider(tmp_path,
                     lambda d: d['images'][0]['targets'][0].pop('bbox'))
    with raises(KeyError, path, IMG_A, "'bbox'"):
        wider(path)


@pytest.mark.parametrize('attr', [[1] * 13, [1] * 15, [2] + [1] * 13],
                         ids=['short', 'long', 'value'])
def test_wider_bad_attribute(tmp_path, attr):
    def edit(data):
        data['images'][0]['targets'][1]['attribute'] = attr

    path = bad_wider(tmp_path, edit)
    with raises(ValueError, 'Target 1 of image', IMG_A, path, str(attr)):
        wider(path)


def test_wider_no_targets(tmp_path):
    def edit(data):
        for img in data['images']:
            img['targets'] = []

    path = bad_wider(tmp_path, edit)
    with raises(ValueError, 'No person targets', path):
        wider(path)


def test_wider_missing_and_corrupt_images(wider_root):  # noqa: F811
    path = osp.join(wider_root, 'Image', IMG_A)
    corrupt(path)
    ds = build_wider(wider_root, pipeline=LOAD + [dict(type='CropPersonBox')])
    ds[1]  # noqa: B018  (loads)
    with raises(CorruptImageError, path):
        ds[0]
    os.remove(path)
    with raises(FileNotFoundError, '1 of the 2 images', path,
                'wider_attribute_test.json'):
        build_wider(wider_root)


# ------------------------------------------ missing data root / files --

LAYOUT = ('docs/configs_and_data.md', '"Data layouts"')


def test_voc_missing_root_split_or_folder(voc):
    with raises(FileNotFoundError, 'VOCMultiLabel', 'data root',
                voc + '-absent', *LAYOUT):
        VOCMultiLabel(data_root=voc + '-absent', split='test')
    os.remove(osp.join(voc, 'ImageSets', 'Main', 'test.txt'))
    with raises(FileNotFoundError, 'split file',
                osp.join(voc, 'ImageSets', 'Main', 'test.txt'), *LAYOUT):
        VOCMultiLabel(data_root=voc, split='test')
    for folder, what in (('Annotations', 'annotation folder'),
                         ('JPEGImages', 'image folder')):
        shutil.rmtree(osp.join(voc, folder))
        with raises(FileNotFoundError, what, osp.join(voc, folder),
                    *LAYOUT):
            VOCMultiLabel(data_root=voc, split='trainval')


def test_coco_missing_root_file_or_folder(coco_root):  # noqa: F811
    with raises(FileNotFoundError, 'COCOMultiLabel', 'data root',
                coco_root + '-absent', *LAYOUT):
        build_coco(coco_root + '-absent')
    ann = osp.join(coco_root, 'annotations', 'instances_train2014.json')
    with raises(FileNotFoundError, 'annotation file', ann, *LAYOUT):
        build_coco(coco_root, ann='annotations/instances_train2014.json')
    shutil.rmtree(osp.join(coco_root, 'val2014'))
    with raises(FileNotFoundError, 'image folder',
                osp.join(coco_root, 'val2014'), *LAYOUT):
        build_coco(coco_root)


def test_wider_missing_root_file_or_folder(wider_root):  # noqa: F811
    with raises(FileNotFoundError, 'WIDERAttribute', 'data root',
                wider_root + '-absent', *LAYOUT):
        build_wider(wider_root + '-absent')
    ann = osp.join(wider_root, 'wider_attribute_trainval.json')
    with raises(FileNotFoundError, 'annotation file', ann, *LAYOUT):
        build_wider(wider_root, ann_file='wider_attribute_trainval.json')
    shutil.rmtree(osp.join(wider_root, 'Image'))
    with raises(FileNotFoundError, 'image folder',
                osp.join(wider_root, 'Image'), *LAYOUT):
        build_wider(wider_root)
