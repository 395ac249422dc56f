"""WIDER-Attribute: one multi-label sample per annotated person."""
import json
from typing import List, Optional, Union

from mmengine.fileio import exists, get_text, join_path
from mmpretrain.datasets import MultiLabelDataset
from mmpretrain.registry import DATASETS

from .checks import ImageErrorMixin, check_image_files

# Used when the annotation file has no ``attribute_id_map``.
WIDER_ATTRIBUTE_CATEGORIES = ('Male', 'longHair', 'sunglass', 'Hat', 'Tshirt',
                              'longSleeve', 'formal', 'shorts', 'jeans',
                              'longPants', 'skirt', 'faceMask', 'logo',
                              'stripe')


@DATASETS.register_module()
class WIDERAttribute(ImageErrorMixin, MultiLabelDataset):
    """`WIDER-Attribute <http://mmlab.ie.cuhk.edu.hk/projects/WIDERAttribute>`_
    person attribute recognition as multi-label classification.

    Directory layout: ::

        data/wider_attribute
        ├── Image
        │   ├── 0--Parade
        │   │   ├── 0_Parade_marchingband_1_5.jpg
        │   │   └── ...
        │   └── ...
        ├── wider_attribute_trainval.json
        └── wider_attribute_test.json

    Every person target (``bbox`` = ``[x, y, w, h]``) of every image is one
    sample with the keys ``img_path``, ``bbox``, ``gt_label`` (the indices
    of the attributes valued 1) and ``gt_label_difficult`` (those valued 0,
    "unspecified"). Targets whose box has no area (``w <= 0`` or
    ``h <= 0``) are skipped. Crop the person with :class:`CropPersonBox`
    after ``LoadImageFromFile``. The 14 classes are the names of the file's
    ``attribute_id_map`` in id order, or :data:`WIDER_ATTRIBUTE_CATEGORIES`
    when the map is absent; a user-given ``metainfo=dict(classes=...)`` must
    equal them (the attribute vectors are positional), else ValueError.

    Unspecified attributes, ``unspecified='negative'`` (default, the
    protocol of the published WIDER-Attribute numbers):

    - in training they count as negative: they are not in ``gt_label``, so
      the one-hot target of ``ClsDataPreprocessor(to_onehot=True)`` is 0;
    - in evaluation they are in ``gt_label_difficult``, which
      :class:`MultiLabelPaperMetric`, :class:`VOCAveragePrecision` and
      :class:`VOCMultiLabelMetric` mark as -1 and leave out of mAP (with
      their default ``difficult_as_positive=None``); the WIDER configs'
      ``MultiLabelPaperMetric(difficult_in_thresholded='negative')`` counts
      them as negatives in CP/CR/CF1/OP/OR/OF1, as the authors' code does.
      Pack the key with
      ``PackInputs(algorithm_keys=('gt_label_difficult', ))`` or as a meta
      key in the test pipeline.

    ``unspecified='ignore'``: ignored in the loss too. Every sample also
    gets ``gt_score``, the C-vector of targets with 1 for positive, 0 for
    negative and -1 for unspecified. ``PackInputs`` packs it,
    ``ClsDataPreprocessor`` uses it instead of building a one-hot target,
    and the head passes it unchanged to its loss, which must be
    :class:`mmmsl.models.IgnoreAwareBCELoss` (it drops the -1 entries).
    This route works with any ``MultiLabelClsHead`` and with
    ``MaskedSupervisedClassifier`` without a custom head, because the
    target is the one per-sample tensor the stock heads forward to the
    loss. The trade-off: with a stock loss (``CrossEntropyLoss``,
    ``AsymmetricLoss``) a -1 target makes the loss unbounded below, and
    batch augments (Mixup, CutMix) would mix the -1 entries, so use neither
    with this mode. Metrics are the same in both modes (``gt_label_difficult``
    is kept, and the -1 entries of ``gt_score`` are treated like it).

    Errors name the file at fault and are raised at build time: a missing
    file or key, an attribute vector of the wrong length or with values
    outside (1, 0, -1), no person target, and images that do not exist
    (count and first paths). An image that cannot be decoded raises
    :class:`~mmmsl.datasets.checks.CorruptImageError` naming it when the
    sample is first loaded.

    Args:
        ann_file (str): The annotation json, relative to ``data_root``, e.g.
            ``'wider_attribute_trainval.json'``.
        data_root (str): The root directory of ``ann_file`` and
            ``data_prefix``. Defaults to ''.
        data_prefix (str | dict): The image folder. Defaults to ``'Image'``.
        unspecified (str): ``'negative'`` or ``'ignore'``, see above.
            Defaults to ``'negative'``.
        metainfo (dict, optional): Meta information. Defaults to None.
        **kwargs: Other keyword arguments of :class:`BaseDataset`.

    Examples:
        >>> from mmmsl.datasets.wider import WIDERAttribute
        >>> test = WIDERAttribute(data_root='data/wider_attribute',
        ...                       ann_file='wider_attribute_test.json')
        >>> len(test.CLASSES)
        14
    """

    UNSPECIFIED_MODES = ('negative', 'ignore')

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 data_prefix: Union[str, dict] = 'Image',
                 unspecified: str = 'negative',
                 metainfo: Optional[dict] = None,
                 **kwargs):
        if unspecified not in self.UNSPECIFIED_MODES:
            raise ValueError(f'unspecified={unspecified!r} not in '
                             f'{self.UNSPECIFIED_MODES}')
        self.unspecified = unspecified
        super().__init__(ann_file=ann_file, metainfo=metainfo,
                         data_root=data_root, data_prefix=data_prefix,
                         **kwargs)

    def _set_classes(self, data: dict) -> tuple:
        """Set ``classes`` in the metainfo from ``attribute_id_map``."""
        if 'attribute_id_map' in data:
            id_map = data['attribute_id_map']
            classes = tuple(id_map[k] for k in sorted(id_map, key=int))
        else:
            classes = WIDER_ATTRIBUTE_CATEGORIES
        given = self._metainfo.get('classes')
        if given is not None and tuple(given) != classes:
            raise ValueError(f'Classes {tuple(given)} given in metainfo '
                             f'differ from those of {self.ann_file}: '
                             f'{classes}')
        self._metainfo['classes'] = classes
        return classes

    def load_data_list(self) -> List[dict]:
        """Load one sample per person target of ``ann_file``."""
        if not exists(self.ann_file):
            raise FileNotFoundError(
                f'WIDER-Attribute annotation file not found: {self.ann_file}')
        data = json.loads(get_text(self.ann_file))
        if 'images' not in data:
            raise KeyError(f'WIDER-Attribute annotation file {self.ann_file} '
                           "has no 'images' key")
        num_classes = len(self._set_classes(data))

        data_list = []
        for n, img in enumerate(data['images']):
            try:
                data_list += self._image_samples(img, num_classes)
            except KeyError as e:
                raise KeyError(f'Image {n} ({img.get("file_name")}) in '
                               f'{self.ann_file} has no key {e}') from e
        if not data_list:
            raise ValueError(f'No person targets in {self.ann_file}')
        check_image_files([d['img_path'] for d in data_list], self.ann_file)
        return data_list

    def _image_samples(self, img: dict, num_classes: int) -> List[dict]:
        """The samples of the person targets of one image."""
        img_path = join_path(self.img_prefix, img['file_name'])
        samples = []
        for i, target in enumerate(img['targets']):
            attr = target['attribute']
            if len(attr) != num_classes or not set(attr) <= {-1, 0, 1}:
                raise ValueError(
                    f'Target {i} of image {img["file_name"]} in '
                    f'{self.ann_file}: "attribute" must be {num_classes} '
                    f'values in (1, -1, 0), got {attr}')
            x, y, w, h = target['bbox']
            if w <= 0 or h <= 0:
                continue
            sample = dict(
                img_path=img_path,
                bbox=[x, y, w, h],
                gt_label=[k for k, v in enumerate(attr) if v == 1],
                gt_label_difficult=[k for k, v in enumerate(attr) if v == 0])
            if self.unspecified == 'ignore':
                # 1 positive, 0 negative (-1 in the file), -1 ignored (0)
                sample['gt_score'] = [{1: 1., -1: 0., 0: -1.}[v] for v in attr]
            samples.append(sample)
        return samples

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return super().extra_repr() + [
            f'Unspecified attributes: \t{self.unspecified}'
        ]
