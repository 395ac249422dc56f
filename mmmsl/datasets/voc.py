"""mmpretrain's VOC dataset with early errors that name the file at
fault."""
import xml.etree.ElementTree as ET
from typing import List, Tuple

from mmengine.fileio import list_from_file
from mmpretrain.datasets import VOC
from mmpretrain.datasets.categories import VOC2007_CATEGORIES
from mmpretrain.registry import DATASETS

from .checks import ImageErrorMixin, check_image_files


@DATASETS.register_module()
class VOCMultiLabel(ImageErrorMixin, VOC):
    """:class:`mmpretrain.datasets.VOC` that fails early on broken data.

    Same arguments, samples and labels as ``VOC`` (``gt_label`` and
    ``gt_label_difficult`` from the XML files); it adds errors where ``VOC``
    silently drops data or fails late with a message that names nothing:

    - an empty split file (``ImageSets/Main/<split>.txt`` without ids):
      ValueError naming it (blank lines are skipped, ``VOC`` reads them as
      the image id ``''``);
    - images of the split that do not exist: FileNotFoundError at build,
      with their count and the first paths
      (:func:`~mmmsl.datasets.checks.check_image_files`);
    - an image that cannot be decoded: :class:`CorruptImageError` naming it
      when the sample is first loaded;
    - an XML that does not parse, or an object without ``<name>`` or
      ``<difficult>``: ValueError naming the XML file;
    - an object whose ``<name>`` is not one of the classes: ValueError
      naming the XML file and the name, when the classes are VOC's 20.
      With a user-given ``metainfo=dict(classes=...)`` (a subset) such
      objects are skipped, as in ``VOC``.

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
        xml_path = self.backend.join_path(self.ann_prefix, f'{img_id}.xml')
        try:
            root = ET.fromstring(self.backend.get(xml_path))
        except ET.ParseError as e:
            raise ValueError(
                f'Cannot parse VOC annotation {xml_path}: {e}') from e
        class_to_idx = self.class_to_idx
        strict = tuple(self.CLASSES) == tuple(VOC2007_CATEGORIES)
        labels, labels_difficult = set(), set()
        for i, obj in enumerate(root.findall('object')):
            name, difficult = obj.findtext('name'), obj.findtext('difficult')
            if name is None or difficult is None:
                raise ValueError(f'Object {i} in VOC annotation {xml_path} '
                                 'has no <name> or no <difficult>')
            if name not in class_to_idx:
                if strict:
                    raise ValueError(
                        f'Object {i} in VOC annotation {xml_path} has '
                        f'<name>{name!r}, which is not one of the classes '
                        f'{tuple(self.CLASSES)}')
                continue
            if int(difficult):
                labels_difficult.add(class_to_idx[name])
            else:
                labels.add(class_to_idx[name])
        return list(labels), list(labels_difficult)

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
        for img_id in img_ids:
            labels, difficult = (None, None) if self.ann_prefix is None \
                else self._get_labels_from_xml(img_id)
            data_list.append(
                dict(
                    img_path=self.backend.join_path(self.img_prefix,
                                                    f'{img_id}.jpg'),
                    gt_label=labels,
                    gt_label_difficult=difficult))
        check_image_files([d['img_path'] for d in data_list],
                          self.image_set_path)
        return data_list
