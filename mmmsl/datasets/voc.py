"""mmpretrain's VOC dataset with early errors that name the file at
fault, and the objects' boxes for evaluation by object size."""
import xml.etree.ElementTree as ET
from typing import List, Tuple

import numpy as np
from mmengine.fileio import list_from_file
from mmpretrain.datasets import VOC
from mmpretrain.datasets.categories import VOC2007_CATEGORIES
from mmpretrain.registry import DATASETS

from .checks import ImageErrorMixin, check_image_files
from .instances import box_visible_fractions, instance_arrays


@DATASETS.register_module()
class VOCMultiLabel(ImageErrorMixin, VOC):
    """:class:`mmpretrain.datasets.VOC` that fails early on broken data.

    Same arguments, samples and labels as ``VOC`` (``gt_label`` and
    ``gt_label_difficult`` from the XML files); it adds errors where ``VOC``
    silently drops data or fails late with a message that names nothing:

    - a missing data root, split file, image or annotation folder:
      FileNotFoundError naming it, at build
      (:func:`~mmmsl.datasets.checks.check_data_paths`);
    - an empty split file (``ImageSets/Main/<split>.txt`` without ids):
      ValueError naming it (blank lines are skipped, ``VOC`` reads them as
      the image id ``''``);
    - images of the split that do not exist: FileNotFoundError at build,
      with their count and the first paths
      (:func:`~mmmsl.datasets.checks.check_image_files`);
    - an image that cannot be decoded: :class:`CorruptImageError` naming it
      when the sample is first loaded;
    - an XML that does not parse, or an object without ``<name>``,
      ``<difficult>`` or a numeric ``<bndbox>``: ValueError naming the XML
      file;
    - an object whose ``<name>`` is not one of the classes: ValueError
      naming the XML file and the name, when the classes are VOC's 20.
      With a user-given ``metainfo=dict(classes=...)`` (a subset) such
      objects are skipped, as in ``VOC``.

    Every sample also has the instance arrays of its objects
    (:mod:`mmmsl.datasets.instances`): ``gt_bboxes`` (the XML's 1-based,
    inclusive ``bndbox`` as pixel edges ``xmin - 1, ymin - 1, xmax,
    ymax``), ``gt_bboxes_labels``, ``gt_areas`` (the box area, ``(xmax -
    xmin + 1) * (ymax - ymin + 1)`` as in the VOC devkit), ``gt_visible``
    (:func:`~mmmsl.datasets.instances.box_visible_fractions` over all the
    image's objects, a proxy) and ``gt_ignore_flags`` (the difficult
    objects). Difficult objects are instances with the flag set: as for
    the labels, an image whose objects of a class are all difficult is
    neither a positive nor a negative of that class in
    :class:`~mmmsl.evaluation.ObjectSizeMetric`.

    Args:
        **kwargs: The arguments of :class:`mmpretrain.datasets.VOC`.

    Examples:
        >>> from mmmsl.datasets import VOCMultiLabel
        >>> train = VOCMultiLabel(data_root='data/VOC2007', split='trainval')
        >>> len(train)
        5011
    """

    def _get_labels_from_xml(self, img_id: str) -> Tuple[list, list]:
        """``gt_label`` and ``gt_label_difficult`` of one XML file."""
        return self._parse_xml(img_id)[:2]

    def _parse_xml(self, img_id: str) -> Tuple[list, list, dict]:
        """Labels, difficult labels and instance arrays of one XML file."""
        xml_path = self.backend.join_path(self.ann_prefix, f'{img_id}.xml')
        try:
            root = ET.fromstring(self.backend.get(xml_path))
        except ET.ParseError as e:
            raise ValueError(
                f'Cannot parse VOC annotation {xml_path}: {e}') from e
        class_to_idx = self.class_to_idx
        strict = tuple(self.CLASSES) == tuple(VOC2007_CATEGORIES)
        labels, labels_difficult = set(), set()
        boxes, kept = [], []  # all objects' boxes; (index, label, difficult)
        for i, obj in enumerate(root.findall('object')):
            name, difficult = obj.findtext('name'), obj.findtext('difficult')
            if name is None or difficult is None:
                raise ValueError(f'Object {i} in VOC annotation {xml_path} '
                                 'has no <name> or no <difficult>')
            try:  # 1-based inclusive pixels -> pixel edges
                x1, y1, x2, y2 = (float(obj.findtext(f'bndbox/{k}'))
                                  for k in ('xmin', 'ymin', 'xmax', 'ymax'))
            except (TypeError, ValueError):
                raise ValueError(
                    f'Object {i} in VOC annotation {xml_path} has no valid '
                    '<bndbox> (xmin, ymin, xmax, ymax)') from None
            boxes.append([x1 - 1, y1 - 1, x2, y2])
            if name not in class_to_idx:
                if strict:
                    raise ValueError(
                        f'Object {i} in VOC annotation {xml_path} has '
                        f'<name>{name!r}, which is not one of the classes '
                        f'{tuple(self.CLASSES)}')
                continue
            kept.append((i, class_to_idx[name], bool(int(difficult))))
            if int(difficult):
                labels_difficult.add(class_to_idx[name])
            else:
                labels.add(class_to_idx[name])
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        visible = box_visible_fractions(boxes)
        idx = [i for i, _, _ in kept]
        boxes = boxes[idx]
        instances = instance_arrays(
            boxes, [c for _, c, _ in kept],
            (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]),
            visible[idx], ignore_flags=[d for _, _, d in kept])
        return list(labels), list(labels_difficult), instances

    def load_data_list(self) -> List[dict]:
        """Load the split's images and labels, checking them."""
        img_ids = [
            i.strip() for i in list_from_file(self.image_set_path)
            if i.strip()
        ]
        if not img_ids:
            raise ValueError(
                f'VOC split file {self.image_set_path} lists no image ids')
        data_list = []
        no_ann = (None, None, instance_arrays([], [], [], ignore_flags=[]))
        for img_id in img_ids:
            labels, difficult, instances = no_ann if self.ann_prefix is None \
                else self._parse_xml(img_id)
            data_list.append(
                dict(
                    img_path=self.backend.join_path(self.img_prefix,
                                                    f'{img_id}.jpg'),
                    gt_label=labels,
                    gt_label_difficult=difficult,
                    **instances))
        check_image_files([d['img_path'] for d in data_list],
                          self.image_set_path)
        return data_list
