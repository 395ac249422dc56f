"""The object boxes an image-dependent mask family (``objects``) reads, and
the checks that they are there and still belong to the image."""
import sys
from typing import List, Optional, Tuple

import numpy as np

#: mmpretrain transforms that move or resize the image but not
#: ``gt_bboxes`` (mmcv's ``Resize``, ``RandomResize``, ``RandomFlip``,
#: ``CenterCrop`` and ``Pad`` update the boxes).
BOX_BLIND = ('RandomCrop', 'RandomResizedCrop', 'EfficientNetRandomCrop',
             'EfficientNetCenterCrop', 'ResizeEdge', 'RandomTranslatePad',
             'RandomResizedCropAndInterpolationWithTwoPic',
             'MAERandomResizedCrop', 'Rotate', 'Shear', 'Translate',
             'RandAugment', 'AutoAugment', 'TorchVisonTransformWrapper',
             'Albumentations')
#: Datasets of ours that put ``gt_bboxes`` into their samples.
BOX_DATASETS = ('VOCMultiLabel', 'COCOMultiLabel', 'DigitsMultiLabel')


def building_pipeline(depth: int = 16) -> Tuple[Optional[str], List]:
    """Where the transform being built sits, when mmengine's ``Compose``
    (a dataset's ``pipeline``) builds it: the dataset's class name and the
    transforms built before it in the same pipeline.

    Found from the calling frames (``Compose.__init__``'s ``self`` and the
    dataset's ``__init__``'s ``self``), a best effort: ``(None, [])`` for a
    transform built on its own.
    """
    from mmengine.dataset import BaseDataset
    dataset, before = None, None
    frame = sys._getframe(1)
    for _ in range(depth):
        if frame is None:
            break
        owner = frame.f_locals.get('self')
        if (before is None and type(owner).__name__ == 'Compose'
                and isinstance(getattr(owner, 'transforms', None), list)):
            before = list(owner.transforms)
        if isinstance(owner, BaseDataset):
            dataset = type(owner).__name__
            break
        frame = frame.f_back
    return dataset, before or []


def check_box_pipeline(before: List, family, dataset: Optional[str]) -> None:
    """Raise a ValueError if an mmpretrain transform that does not update
    ``gt_bboxes`` runs before the mask: its boxes would be stale."""
    for t in before:
        name = type(t).__name__
        if type(t).__module__.startswith('mmpretrain') and name in BOX_BLIND:
            raise ValueError(
                f'IrregularMask(family={family!r}) in the pipeline of '
                f'{dataset or "a dataset"} comes after mmpretrain\'s {name}, '
                "which moves the image but not results['gt_bboxes']: the "
                'holes would miss the objects. Use box-aware transforms '
                "before it (mmcv's Resize, RandomResize, RandomFlip, "
                'CenterCrop) or put no geometric transform before it')


def outside_image(boxes: np.ndarray, h: int, w: int,
                  tol: float = 1.0) -> np.ndarray:
    """Which ``(N, 4)`` boxes reach more than ``tol`` pixels past an
    ``h x w`` image: boxes that a transform left behind (bool ``(N, )``)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return ((boxes[:, [0, 2]] > w + tol).any(1) |
            (boxes[:, [1, 3]] > h + tol).any(1) | (boxes < -tol).any(1))


def image_boxes(results: dict, family, dataset: Optional[str] = None,
                tol: float = 1.0) -> np.ndarray:
    """``results['gt_bboxes']`` as a float64 ``(N, 4)`` array, checked to lie
    inside the current image.

    Args:
        results (dict): The pipeline's results (``img``, ``gt_bboxes``).
        family: The mask family, for the messages.
        dataset (str, optional): The dataset's class name, for the messages.
        tol (float): Pixels a box may reach past the image border.

    Raises:
        KeyError: No ``gt_bboxes`` in ``results``.
        ValueError: A box reaches past the image: the boxes were not
            updated with the image (they are those of another shape).
    """
    where = (f"{dataset + ' ' if dataset else ''}sample "
             f"{results.get('img_path', results.get('sample_idx', '?'))}")
    if 'gt_bboxes' not in results:
        raise KeyError(
            f"IrregularMask(family={family!r}) needs results['gt_bboxes'] "
            f'(the objects\' boxes, x1 y1 x2 y2 in pixels), but {where} has '
            f'none: use a dataset that loads them ({", ".join(BOX_DATASETS)}'
            ') or another family')
    boxes = results['gt_bboxes']
    boxes = np.asarray(getattr(boxes, 'tensor', boxes), np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{where}: results['gt_bboxes'] has shape "
                         f'{boxes.shape}, expected (N, 4) x1 y1 x2 y2')
    h, w = results['img'].shape[:2]
    out = outside_image(boxes, h, w, tol)
    if out.any():
        raise ValueError(
            f"{where}: results['gt_bboxes'] {boxes[out][0].tolist()} reaches "
            f'past the {w}x{h} image, so a transform before '
            f'IrregularMask(family={family!r}) changed the image without '
            "updating the boxes (e.g. mmpretrain's RandomResizedCrop, "
            "RandomCrop, EfficientNetCenterCrop); use mmcv's Resize / "
            'RandomFlip / CenterCrop, which update them')
    return boxes
