"""Procedural free-form masks in the style of the Irregular Mask dataset.

DeepFill-v2 brush strokes (a random walk of vertices with alternating angle
jitter, drawn as thick lines with discs at the joints) plus the occasional
elliptical blob, with every length scaled to the image so a mask means the
same at 64 px and at 448 px. Masks are *hole* masks: ``1`` = removed pixel.

The strokes follow mmagic's ``brush_stroke_mask``
(``mmagic/datasets/transforms/random_mask.py``, the DeepFill-v2 sampler):
the same ``num_vertices`` range (4-12), ``mean_angle`` 2*pi/5,
``angle_range`` 2*pi/15 and alternating turns. They differ where a ratio
bin and any image size need it: ``brush_width`` and the vertex distance are
fractions of the image side instead of pixels (12-40 and 0-2x mean at
256 px), the start heading is random (not only upwards), and strokes are
added one by one until the hole ratio lands in the bin rather than a fixed
count of 1-4.
"""
import math
from typing import Optional, Sequence

import cv2
import numpy as np

from .ratio import RatioSpec, hole_ratio, parse_ratio


def draw_stroke(hole: np.ndarray,
                rng: np.random.Generator,
                width_scale: float = 1.0,
                blob_prob: float = 0.15) -> np.ndarray:
    """Draw one brush stroke (or, with ``blob_prob``, one ellipse) in place.

    Args:
        hole (np.ndarray): ``(H, W)`` uint8 hole mask, modified in place.
        rng (np.random.Generator): The random source.
        width_scale (float): Multiplies the stroke width (and, below 1, its
            length); the sampler shrinks it to land inside a narrow ratio
            range.
        blob_prob (float): Chance of an ellipse instead of a stroke.

    Returns:
        np.ndarray: ``hole`` itself.
    """
    h, w = hole.shape
    side = min(h, w)
    if rng.random() < blob_prob:
        center = (int(rng.integers(w)), int(rng.integers(h)))
        axes = (max(1, int(side * rng.uniform(0.05, 0.2) * width_scale)),
                max(1, int(side * rng.uniform(0.05, 0.2) * width_scale)))
        cv2.ellipse(hole, center, axes, float(rng.uniform(0, 180)), 0, 360, 1,
                    -1)
        return hole
    # DeepFill-v2 constants, with lengths relative to the image.
    mean_angle, angle_range = 2 * math.pi / 5, 2 * math.pi / 15
    radius = math.hypot(h, w) / 8 * min(1.0, max(width_scale, 0.25))
    num_vertices = int(rng.integers(4, 13))
    angle_min = mean_angle - rng.uniform(0, angle_range)
    angle_max = mean_angle + rng.uniform(0, angle_range)
    angles = rng.uniform(angle_min, angle_max, num_vertices)
    angles[::2] = 2 * math.pi - angles[::2]
    angles += rng.uniform(0, 2 * math.pi)  # any heading, not only upwards
    radii = np.clip(rng.normal(radius, radius / 2, num_vertices), 0,
                    2 * radius)
    pts = np.empty((num_vertices + 1, 2), np.float64)
    pts[0] = rng.uniform(0, w), rng.uniform(0, h)
    for i in range(num_vertices):
        pts[i + 1, 0] = np.clip(pts[i, 0] + radii[i] * math.cos(angles[i]),
                                0, w - 1)
        pts[i + 1, 1] = np.clip(pts[i, 1] + radii[i] * math.sin(angles[i]),
                                0, h - 1)
    width = max(1, int(side * rng.uniform(12 / 256, 40 / 256) * width_scale))
    pts = pts.round().astype(np.int32)
    cv2.polylines(hole, [pts], False, 1, width)
    for x, y in pts:
        cv2.circle(hole, (int(x), int(y)), width // 2, 1, -1)
    return hole


def random_irregular_mask(height: int,
                          width: int,
                          ratio: RatioSpec = 'high',
                          rng: Optional[np.random.Generator] = None,
                          max_strokes: int = 200) -> np.ndarray:
    """Sample a free-form hole mask whose hole ratio lies in ``ratio``.

    A target ratio is drawn uniformly in ``(lo, hi]`` and strokes are added
    until the mask reaches it; a stroke that would overshoot ``hi`` is
    rejected and the next one drawn thinner, so the result always lands in
    ``(lo, hi]`` (hole ratios are spread over the whole bin).

    Args:
        height (int): Mask height H.
        width (int): Mask width W.
        ratio (str | Sequence[float]): ``'low'``, ``'high'`` or ``(lo, hi)``,
            see :data:`mmmsl.masks.RATIO_BINS`. Defaults to ``'high'``.
        rng (np.random.Generator, optional): Random source; a fresh
            unseeded one if None.
        max_strokes (int): Strokes tried before starting over.

    Returns:
        np.ndarray: ``(H, W)`` uint8 hole mask, 1 = removed pixel.
    """
    lo, hi = parse_ratio(ratio)
    rng = np.random.default_rng() if rng is None else rng
    n = height * width
    # The largest ratio a mask of n pixels can have inside the bin.
    top = math.floor(hi * n) / n
    if top <= lo:
        raise ValueError(f'ratio={ratio!r}: no {height}x{width} mask has a '
                         f'hole ratio in ({lo}, {hi}]')
    while True:  # a new target per attempt, so no attempt can stall
        target = min(max(rng.uniform(lo, hi), math.nextafter(lo, 1.0)), top)
        hole = np.zeros((height, width), np.uint8)
        scale = 1.0
        for _ in range(max_strokes):
            cand = draw_stroke(hole.copy(), rng, scale)
            r = hole_ratio(cand)
            if r > hi:
                scale *= 0.7
                continue
            hole, scale = cand, min(1.0, scale * 1.2)
            if r >= target:
                return hole


def irregular_masks(num: int,
                    height: int,
                    width: int,
                    ratio: RatioSpec = 'high',
                    seed: Optional[int] = None) -> np.ndarray:
    """``num`` masks from :func:`random_irregular_mask` as ``(N, H, W)``."""
    rng = np.random.default_rng(seed)
    return np.stack([
        random_irregular_mask(height, width, ratio, rng) for _ in range(num)
    ]) if num else np.zeros((0, height, width), np.uint8)


__all__: Sequence[str] = ('draw_stroke', 'random_irregular_mask',
                          'irregular_masks')
