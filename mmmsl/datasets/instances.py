"""Per-image object instances kept by the multi-label datasets for
evaluation by object size and visibility (:class:`ObjectSizeMetric`).

Every sample of :class:`VOCMultiLabel`, :class:`COCOMultiLabel` and
:class:`DigitsMultiLabel` carries, beside its labels, these numpy arrays
(``N`` instances, possibly 0):

- ``gt_bboxes``: float32 (N, 4), ``x1, y1, x2, y2`` in pixels of the image
  as loaded (mmdet's key: mmcv's ``Resize`` and ``RandomFlip`` transform
  them with the image);
- ``gt_bboxes_labels``: int64 (N, ), class indices;
- ``gt_areas``: float32 (N, ), the area in pixels of the original image
  (COCO: the annotation's ``area``, the segment's; VOC and digits: the
  box's), never changed by transforms;
- ``gt_visible``: float32 (N, ), the visible fraction in [0, 1], NaN where
  unknown (digits: exact; VOC and COCO: :func:`box_visible_fractions`, a
  proxy);
- ``gt_ignore_flags``: bool (N, ), VOC only: difficult objects.

Pack them for the metric with ``PackInputs(meta_keys=(...,
*mmmsl.evaluation.metrics.object_size.OBJECT_META_KEYS))``.
"""
from collections import defaultdict
from typing import Optional, Sequence

import numpy as np


#: Grid cells computed at once by :func:`batch_box_visible_fractions`
#: (about 40 bytes each): bounds its memory.
CELLS_PER_CHUNK = 1 << 20


def box_visible_fractions(bboxes: np.ndarray) -> np.ndarray:
    """The share of each box not covered by the union of the other boxes.

    A proxy of visibility for datasets that give boxes but no depth order
    (VOC, COCO): a box inside or behind others counts as covered whether
    the object is in front or not. Exact areas by coordinate compression.

    Args:
        bboxes (np.ndarray): (N, 4) ``x1, y1, x2, y2``.

    Returns:
        np.ndarray: float32 (N, ) fractions in [0, 1]; NaN for a box
        without area.
    """
    return batch_box_visible_fractions([bboxes])[0]


def batch_box_visible_fractions(bboxes: Sequence[np.ndarray]) -> list:
    """:func:`box_visible_fractions` of many images, vectorised over the
    images with equal box counts (COCO's 82k train images in about a
    second).

    Args:
        bboxes (Sequence[np.ndarray]): One (N_i, 4) array per image.

    Returns:
        list[np.ndarray]: One float32 (N_i, ) array per image.
    """
    boxes = [np.asarray(b, np.float64).reshape(-1, 4) for b in bboxes]
    by_count = defaultdict(list)
    for i, b in enumerate(boxes):
        by_count[len(b)].append(i)
    out = [None] * len(boxes)
    for n, index in by_count.items():
        step = max(1, CELLS_PER_CHUNK // max(4 * n * n, 1))
        for s in range(0, len(index), step):
            chunk = index[s:s + step]
            vis = _visible_fractions(np.stack([boxes[i] for i in chunk]))
            for i, v in zip(chunk, vis):
                out[i] = v
    return out


def _visible_fractions(boxes: np.ndarray) -> np.ndarray:
    """(B, N, 4) boxes -> (B, N) float32 fractions (see above), O(N^2) per
    image: the grid of the sorted box edges, how many boxes cover each
    cell (a 2-D difference array) and, per box, the area of its cells that
    it alone covers (2-D prefix sums)."""
    num, k = len(boxes), 2 * boxes.shape[1]
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    b = np.arange(num)[:, None]
    grid, index = [], []
    for lo, hi in ((0, 2), (1, 3)):  # x, then y
        edges = np.sort(boxes[..., (lo, hi)].reshape(num, -1), 1)  # (B, K)
        grid.append(np.diff(edges, axis=1))  # cell sides; 0 for duplicates
        index += [(edges[:, None, :] < boxes[..., i, None]).sum(-1)
                  for i in (lo, hi)]  # (B, N): first edge equal to it
    x1, x2, y1, y2 = index
    diff = np.zeros((num, k, k), np.int32)
    for xi, yi, sign in ((x1, y1, 1), (x2, y1, -1), (x1, y2, -1),
                         (x2, y2, 1)):
        np.add.at(diff, (b, xi, yi), sign)
    count = diff.cumsum(1).cumsum(2)[:, :-1, :-1]  # boxes over each cell
    alone = (count == 1) * grid[0][:, :, None] * grid[1][:, None, :]
    prefix = np.zeros((num, k, k))
    prefix[:, 1:, 1:] = alone.cumsum(1).cumsum(2)
    free = (prefix[b, x2, y2] - prefix[b, x1, y2] - prefix[b, x2, y1] +
            prefix[b, x1, y1])
    with np.errstate(invalid='ignore', divide='ignore'):
        frac = np.clip(free / area, 0, 1)
    return np.where(area > 0, frac, np.nan).astype(np.float32)


def instance_arrays(bboxes, labels, areas, visible=None,
                    ignore_flags: Optional[list] = None) -> dict:
    """The instance keys of one sample (see the module doc) as arrays.

    Args:
        bboxes: (N, 4) ``x1, y1, x2, y2`` boxes (any sequence).
        labels: (N, ) class indices.
        areas: (N, ) areas in original pixels.
        visible: (N, ) visible fractions, or None for all unknown (NaN).
        ignore_flags: (N, ) flags, or None to leave the key out.

    Returns:
        dict: ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_areas``,
        ``gt_visible`` and, if given, ``gt_ignore_flags``.
    """
    n = len(labels)
    out = dict(
        gt_bboxes=np.asarray(bboxes, np.float32).reshape(n, 4),
        gt_bboxes_labels=np.asarray(labels, np.int64).reshape(n),
        gt_areas=np.asarray(areas, np.float32).reshape(n),
        gt_visible=np.full(n, np.nan, np.float32) if visible is None else
        np.asarray(visible, np.float32).reshape(n))
    if ignore_flags is not None:
        out['gt_ignore_flags'] = np.asarray(ignore_flags, bool).reshape(n)
    return out
