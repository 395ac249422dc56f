"""Semantic hole masks: holes on the labelled objects themselves.

For datasets that know where their objects are (``results['gt_bboxes']``,
mmdet's key: VOC's XML boxes, COCO's bboxes, the digits' paste boxes), a
share ``inside`` of the hole pixels is placed inside the union of the
boxes and the rest outside, each as the highest blobs of one fractal noise
field (:func:`~mmmsl.masks.perlin.fractal_noise`), so an object loses
blob-shaped parts rather than a fixed rectangle. The count is drawn in the
ratio bin (:func:`~mmmsl.masks.quantile.target_count`), so every mask lands
in it. Boxes that cannot hold their share (small objects, a high ratio)
pass the rest outside; an image without boxes gets all its holes
anywhere. The mask depends on the image's boxes: it is drawn per image,
never taken from a bank.
"""
from typing import Optional, Sequence

import numpy as np

from .perlin import check_number, fractal_noise
from .quantile import target_count
from .ratio import RatioSpec


def box_region(height: int, width: int, boxes: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: the pixels covered by any box ``(x1, y1, x2, y2)``
    (pixel edges; fractional borders include the pixels they touch)."""
    region = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        c0, r0 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
        c1 = min(width, int(np.ceil(x2)))
        r1 = min(height, int(np.ceil(y2)))
        region[r0:r1, c0:c1] = True
    return region


def random_object_mask(height: int,
                       width: int,
                       boxes: Optional[np.ndarray] = None,
                       ratio: RatioSpec = 'high',
                       rng: Optional[np.random.Generator] = None,
                       inside: float = 0.8,
                       scale: float = 8.0,
                       octaves: int = 2) -> np.ndarray:
    """A hole mask on the objects of ``boxes``.

    Args:
        height (int): Mask height H.
        width (int): Mask width W.
        boxes (np.ndarray): ``(N, 4)`` boxes ``x1, y1, x2, y2`` in pixels
            of this mask; None or ``N = 0``: no object.
        ratio (str | Sequence[float]): The hole-ratio bin of the whole
            mask, ``'high'``, ``'low'`` or ``(lo, hi)``. Defaults to
            ``'high'``.
        rng (np.random.Generator, optional): Random source; a fresh
            unseeded one if None.
        inside (float): Share of the hole pixels inside the boxes (as far
            as they hold them), the rest outside. Defaults to 0.8.
        scale (float): Blobs across the shorter side. Defaults to 8.
        octaves (int): Octaves of the noise. Defaults to 2.

    Returns:
        np.ndarray: ``(H, W)`` uint8 hole mask, 1 = removed pixel.
    """
    if not isinstance(inside, (int, float)) or not 0.0 <= inside <= 1.0:
        raise ValueError(f"mask family 'objects': inside={inside!r} must "
                         'be a number in [0, 1]')
    check_number('objects', 'scale', scale, 1)
    check_number('objects', 'octaves', octaves, 1, integer=True)
    rng = np.random.default_rng() if rng is None else rng
    n = height * width
    count = target_count(n, ratio, rng)
    region = box_region(height, width,
                        np.zeros((0, 4)) if boxes is None else boxes)
    room = int(np.count_nonzero(region))
    c_in = min(int(round(inside * count)), room)
    c_in += max(0, count - c_in - (n - room))  # background too small
    field = fractal_noise(height, width, rng, scale, octaves).ravel()
    # One partition of the noise ranked with the boxes' pixels above all
    # others: ranks [n - c_in, n) are the boxes' c_in highest pixels,
    # [n - room - c_out, n - room) the background's c_out highest.
    rank = field.astype(np.float64)
    rank += region.ravel() * (float(field.max() - field.min()) + 1.0)
    a, b, c = n - room - (count - c_in), n - room, n - c_in
    kth = sorted({k for k in (a, b, c) if 0 <= k < n})
    order = np.argpartition(rank, kth) if kth else np.arange(n)
    hole = np.zeros(n, np.uint8)
    hole[order[a:b]] = 1
    hole[order[c:]] = 1
    return hole.reshape(height, width)


__all__: Sequence[str] = ('box_region', 'random_object_mask')
