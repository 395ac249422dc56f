"""Cutout / random-erasing hole masks: a union of axis-aligned rectangles.

Rectangles as random erasing draws them (Zhong et al., AAAI 2020;
mmpretrain's ``RandomErasing``, timm's ``RandomErasing``): an area drawn as
a fraction of the image, a log-uniform aspect ratio, a uniform position
(Cutout, DeVries & Taylor 2017, is the fixed-size square case). Rectangles
are added until the hole ratio reaches a target drawn in the bin; one that
would overshoot the bin is rejected and the next drawn smaller, so every
mask lands in its bin (the strokes' scheme).
"""
import math
from typing import Optional, Sequence

import cv2
import numpy as np

from .quantile import target_count
from .ratio import RatioSpec, bin_counts, parse_ratio


def _check_range(name: str, value, low: float, high: float) -> tuple:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        a = b = float('nan')
    if not low < a <= b <= high:
        raise ValueError(f"mask family 'boxes': {name}={value!r} must be "
                         f'(min, max) with {low} < min <= max <= {high}')
    return a, b


def random_box_mask(height: int,
                    width: int,
                    ratio: RatioSpec = 'high',
                    rng: Optional[np.random.Generator] = None,
                    area: Sequence[float] = (0.02, 0.25),
                    aspect: Sequence[float] = (0.3, 3.3),
                    max_boxes: int = 1000) -> np.ndarray:
    """A hole mask made of random rectangles.

    Args:
        height, width, ratio, rng: The mask's H and W, its hole-ratio bin
            and random source, as :func:`mmmsl.masks.random_irregular_mask`.
        area (Sequence[float]): Range of one rectangle's area as a
            fraction of the image. Defaults to (0.02, 0.25) (random
            erasing's (0.02, 0.4), capped so that several rectangles make
            a 50-60% mask).
        aspect (Sequence[float]): Range of height / width, drawn
            log-uniformly. Defaults to random erasing's (0.3, 3.3).
        max_boxes (int): Rectangles tried before the last mask is
            completed with single pixels.

    Returns:
        np.ndarray: ``(H, W)`` uint8 hole mask, 1 = removed pixel.
    """
    a_lo, a_hi = _check_range('area', area, 0.0, 1.0)
    r_lo, r_hi = _check_range('aspect', aspect, 0.0, math.inf)
    rng = np.random.default_rng() if rng is None else rng
    cmax = bin_counts(height * width, *parse_ratio(ratio))[1]
    target = target_count(height * width, ratio, rng)
    hole = np.zeros((height, width), np.uint8)
    count, scale = 0, 1.0
    for _ in range(int(max_boxes)):
        u = rng.random(4)
        size = (a_lo + (a_hi - a_lo) * u[0]) * height * width * scale
        r = math.exp(math.log(r_lo) + (math.log(r_hi) - math.log(r_lo)) *
                     u[1])
        bh = min(height, max(1, int(round(math.sqrt(size * r)))))
        bw = min(width, max(1, int(round(math.sqrt(size / r)))))
        y0 = int(u[2] * (height - bh + 1))
        x0 = int(u[3] * (width - bw + 1))
        region = hole[y0:y0 + bh, x0:x0 + bw]
        new = bh * bw - cv2.countNonZero(region)
        if count + new > cmax:
            scale *= 0.5
            continue
        region[:] = 1
        count, scale = count + new, min(1.0, scale * 1.5)
        if count >= target:
            return hole
    # Rarely reached: complete with kept pixels as 1x1 rectangles.
    flat = hole.reshape(-1)  # a view
    flat[rng.choice(np.flatnonzero(flat == 0), target - count,
                    replace=False)] = 1
    return hole


__all__: Sequence[str] = ('random_box_mask', )
