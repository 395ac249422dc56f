"""MS-COCO 2014 as a multi-label classification dataset."""
import json
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.fileio import dump, exists, get_text, join_path
from mmpretrain.datasets import MultiLabelDataset
from mmpretrain.registry import DATASETS

from .checks import ImageErrorMixin, check_image_files
from .instances import batch_box_visible_fractions, instance_arrays


def _load_coco_json(ann_file: str) -> dict:
    """Read a COCO-style json, failing with the file name if it is absent."""
    if not exists(ann_file):
        raise FileNotFoundError(f'COCO annotation file not found: {ann_file}')
    return json.loads(get_text(ann_file))


def _require(data: dict, key: str, ann_file: str):
    """``data[key]``, or a KeyError naming the key and the file."""
    if key not in data:
        raise KeyError(f"COCO annotation file {ann_file} has no '{key}' key")
    return data[key]


def _image_instances(data: dict, ann_file: str) -> Dict[int, list]:
    """Map each image id to its instances ``[category_id, x, y, w, h,
    area]`` (the COCO ``bbox`` and ``area``), in file order.

    Reads either the original format (an ``annotations`` list, crowd
    annotations included) or the compact one written by
    :func:`compact_coco` (an ``instances`` list in every image).
    """
    images = _require(data, 'images', ann_file)
    if 'annotations' in data:
        instances = {img['id']: [] for img in images}
        for ann in data['annotations']:
            if ann['image_id'] not in instances:
                raise ValueError(
                    f"Annotation {ann.get('id')} in {ann_file} refers to "
                    f"image_id {ann['image_id']}, which is not in 'images'")
            try:
                instances[ann['image_id']].append(
                    [ann['category_id'], *ann['bbox'], ann['area']])
            except KeyError as e:
                raise KeyError(f"Annotation {ann.get('id')} in {ann_file} "
                               f'has no {e} key') from None
        return instances
    for img in images:
        if 'instances' not in img:
            raise KeyError(
                f"COCO annotation file {ann_file} has no 'annotations' key "
                f"and image {img['id']} has no 'instances' key (the "
                'compact format of compact_coco; a file written before '
                'instances were kept has only category_ids: write it again '
                'with tools/dataset_converters/compact_coco.py)')
    return {img['id']: img['instances'] for img in images}


def compact_coco(json_in: str, json_out: str) -> None:
    """Write the part of a COCO annotation file that
    :class:`COCOMultiLabel` needs, for a fast start-up.

    The output keeps ``categories`` (id, name) and, per image, ``id``,
    ``file_name`` and ``instances``: one ``[category_id, x, y, w, h,
    area]`` per annotation (its ``bbox`` and ``area``, crowd ones
    included). The 450 MB ``instances_train2014.json`` shrinks to about
    40 MB. The dataset reads both formats and gives identical samples.

    Args:
        json_in (str): A COCO ``instances_*.json``.
        json_out (str): Where to write the compact json.

    Examples:
        >>> from mmmsl.datasets.coco import compact_coco
        >>> compact_coco('data/coco/annotations/instances_val2014.json',
        ...              'data/coco/annotations/val2014_labels.json')
    """
    data = _load_coco_json(json_in)
    categories = _require(data, 'categories', json_in)
    instances = _image_instances(data, json_in)
    dump(
        dict(
            categories=[dict(id=c['id'], name=c['name']) for c in categories],
            images=[
                dict(
                    id=img['id'],
                    file_name=img['file_name'],
                    instances=instances[img['id']]) for img in data['images']
            ]),
        json_out,
        file_format='json')


@DATASETS.register_module()
class COCOMultiLabel(ImageErrorMixin, MultiLabelDataset):
    """`MS-COCO 2014 <https://cocodataset.org/>`_ for multi-label
    classification, read straight from the detection annotations.

    Directory layout: ::

        data/coco
        ├── annotations
        │   ├── instances_train2014.json
        │   └── instances_val2014.json
        ├── train2014
        │   ├── COCO_train2014_000000000009.jpg
        │   └── ...
        └── val2014
            ├── COCO_val2014_000000000042.jpg
            └── ...

    The classes are the json's ``categories`` sorted by category id, and
    the category ids (1..90, with gaps) are remapped to 0..79 in that order;
    ``dataset.CLASSES`` and ``dataset.metainfo['classes']`` therefore come
    from the file. The label set of an image is the unique remapped ids of
    all its annotations, crowd (``iscrowd=1``) annotations included, as in
    the common multi-label COCO protocol. Samples are ordered by image id.
    With ``drop_empty=True`` this gives 82,081 train / 40,137 val images.

    Every sample also has the instance arrays of its annotations
    (:mod:`mmmsl.datasets.instances`), crowd ones included as for the
    labels: ``gt_bboxes`` (the ``bbox`` ``x, y, w, h`` as ``x1, y1, x2,
    y2``), ``gt_bboxes_labels``, ``gt_areas`` (COCO's own ``area``, the
    segment's, in original pixels) and ``gt_visible``
    (:func:`~mmmsl.datasets.instances.box_visible_fractions` over all
    annotations of the image, selected classes or not: a proxy, COCO has no
    occlusion annotation). The 82,081 train images with their 600k
    instances serialize to about 52 MB (9 MB with labels only).

    A user-given ``metainfo=dict(classes=[...])`` (or ``classes=[...]``)
    selects a subset of categories by name: the labels follow the given
    order, annotations of the other categories are ignored, and
    ``drop_empty`` applies to the remaining labels. An unknown name is a
    ValueError. With ``lazy_init=True`` the classes are known only after
    :meth:`full_init`.

    The annotation file may also be the compact json written by
    :func:`compact_coco` (or ``tools/dataset_converters/compact_coco.py``);
    the format is recognised by its keys.

    Errors name the file at fault and are raised at build time: a missing
    data root, annotation file or image folder, a missing key (``images``,
    ``categories``, an annotation's ``bbox`` or ``area``), an annotation
    whose ``category_id`` is not in ``categories`` or whose ``image_id`` is not
    in ``images``, no sample left, and images that do not exist (count and
    first paths). An image that cannot be decoded raises
    :class:`~mmmsl.datasets.checks.CorruptImageError` naming it when the
    sample is first loaded.

    Args:
        ann_file (str): The annotation json, relative to ``data_root``,
            e.g. ``'annotations/instances_train2014.json'``.
        data_root (str): The root directory of ``ann_file`` and
            ``data_prefix``. Defaults to ''.
        data_prefix (str | dict): The image folder, e.g. ``'train2014'`` or
            ``dict(img_path='train2014')``. Defaults to ''.
        drop_empty (bool): Whether to drop images without any (selected)
            annotation. If False they are kept with an empty label set.
            Defaults to True.
        metainfo (dict, optional): Meta information; ``classes`` selects a
            subset of categories as described above. Defaults to None.
        **kwargs: Other keyword arguments of :class:`BaseDataset`.

    Examples:
        >>> from mmmsl.datasets.coco import COCOMultiLabel
        >>> train = COCOMultiLabel(
        ...     data_root='data/coco',
        ...     ann_file='annotations/instances_train2014.json',
        ...     data_prefix='train2014')
        >>> len(train), len(train.CLASSES)
        (82081, 80)
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 data_prefix: Union[str, dict] = '',
                 drop_empty: bool = True,
                 metainfo: Optional[dict] = None,
                 **kwargs):
        self.drop_empty = drop_empty
        super().__init__(ann_file=ann_file, metainfo=metainfo,
                         data_root=data_root, data_prefix=data_prefix,
                         **kwargs)

    def _class_index(self, categories: Sequence[dict]) -> Dict[int, int]:
        """Set ``classes`` in the metainfo and map category id to label.

        Categories of the file that the user's ``classes`` leave out map to
        -1 (ignored).
        """
        categories = sorted(categories, key=lambda c: c['id'])
        file_classes = tuple(c['name'] for c in categories)
        classes = self._metainfo.get('classes') or file_classes
        unknown = [name for name in classes if name not in file_classes]
        if unknown:
            raise ValueError(f'Classes {unknown} given in metainfo are not '
                             f"in the 'categories' of {self.ann_file}")
        self._metainfo['classes'] = tuple(classes)
        name_to_label = {name: i for i, name in enumerate(classes)}
        return {c['id']: name_to_label.get(c['name'], -1) for c in categories}

    def load_data_list(self) -> List[dict]:
        """Load the images, their label sets and instances."""
        data = _load_coco_json(self.ann_file)
        cat_to_label = self._class_index(
            _require(data, 'categories', self.ann_file))
        image_instances = _image_instances(data, self.ann_file)

        lut = np.full(max(cat_to_label, default=0) + 1, -2)  # -2: unknown
        lut[list(cat_to_label)] = list(cat_to_label.values())
        kept = []  # (image, instance rows, labels), rows: cat, box, area
        for img in sorted(data['images'], key=lambda x: x['id']):
            try:
                rows = np.array(image_instances[img['id']],
                                np.float64).reshape(-1, 6)
            except ValueError:
                raise ValueError(
                    f'Image {img["id"]} in {self.ann_file} has an instance '
                    'that is not category_id, x, y, w, h, area (a bbox of '
                    'other than 4 values?)') from None
            rows[:, 3:5] += rows[:, 1:3]  # x, y, w, h -> x1, y1, x2, y2
            cats = rows[:, 0].astype(int)
            known = (cats >= 0) & (cats < len(lut))
            labels = np.where(known, lut[np.where(known, cats, 0)], -2)
            if (labels == -2).any():
                raise ValueError(
                    f'category_id {cats[labels == -2][0]} of image '
                    f"{img['id']} in {self.ann_file} is not in 'categories'")
            if not self.drop_empty or (labels >= 0).any():
                kept.append((img, rows, labels))
        # the proxy covers with every annotation, selected class or not
        visible = batch_box_visible_fractions([r[:, 1:5] for _, r, _ in kept])
        data_list = []
        for (img, rows, labels), vis in zip(kept, visible):
            keep = labels >= 0
            data_list.append(
                dict(
                    img_path=join_path(self.img_prefix, img['file_name']),
                    gt_label=sorted(set(labels[keep].tolist())),
                    **instance_arrays(rows[keep, 1:5], labels[keep],
                                      rows[keep, 5], vis[keep])))

        if not data_list:
            raise ValueError(f'No images with labels in {self.ann_file} '
                             f'(drop_empty={self.drop_empty})')
        check_image_files([d['img_path'] for d in data_list], self.ann_file)
        return data_list

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return super().extra_repr() + [
            f'Drop empty images: \t{self.drop_empty}'
        ]
