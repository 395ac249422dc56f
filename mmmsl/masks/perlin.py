"""Blob-shaped hole masks from fractal lattice noise (Perlin-style).

The noise is Perlin's fractal sum of octaves (Perlin, "An image
synthesizer", SIGGRAPH 1985; the source of the blob masks of
anomaly-detection data synthesis such as DRAEM): octave ``o`` is random
values on a lattice of ``scale * 2**o`` cells along the shorter image side,
interpolated bicubically by ``cv2.resize`` (value noise: values at the
lattice points instead of Perlin's gradients, the same smooth blobs at a
fraction of the cost), weighted ``persistence**o``. The field is
thresholded at the quantile that gives a hole ratio drawn in the bin
(:func:`~mmmsl.masks.quantile.quantile_mask`), so the holes are the
field's highest blobs and every mask lands in its bin.
"""
from typing import Optional, Sequence

import cv2
import numpy as np

from .quantile import quantile_mask
from .ratio import RatioSpec


def check_number(family: str,
                 name: str,
                 value,
                 low: float,
                 integer: bool = False) -> None:
    """Raise a ValueError naming ``family`` and ``name`` unless ``value``
    is a number (an integer if ``integer``) ``>= low``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value < low or (integer and int(value) != value):
        kind = 'an integer' if integer else 'a number'
        raise ValueError(f'mask family {family!r}: {name}={value!r} must '
                         f'be {kind} >= {low}')


def work_shape(height: int, width: int, side: int) -> tuple:
    """``(h, w)`` of the aspect of ``(height, width)`` with the shorter
    side at most ``side``: the size a smooth field is drawn at before one
    bicubic resize to the mask (its detail is far coarser than a pixel)."""
    f = min(1.0, side / min(height, width))
    return max(1, int(round(height * f))), max(1, int(round(width * f)))


def fractal_noise(height: int,
                  width: int,
                  rng: np.random.Generator,
                  scale: float = 4.0,
                  octaves: int = 4,
                  persistence: float = 0.5) -> np.ndarray:
    """A ``(height, width)`` float32 field of fractal value noise.

    The octaves are summed at a shorter side of at most ``max(128, 4 *
    finest cells)`` px (4 px or more a lattice cell), then resized
    bicubically to ``(height, width)``.

    Args:
        height (int): Field height H.
        width (int): Field width W.
        rng (np.random.Generator): The random source.
        scale (float): Lattice cells along the shorter side at the first
            (coarsest) octave: the number of blobs across the image.
        octaves (int): Octaves summed, each with twice the cells of the
            last (capped at one cell a pixel).
        persistence (float): Weight ratio of one octave to the last.

    Returns:
        np.ndarray: ``(H, W)`` float32 noise.
    """
    finest = scale * 2**(int(octaves) - 1)
    h, w = work_shape(height, width, max(128, int(4 * finest)))
    side = min(h, w)
    field = np.zeros((h, w), np.float32)
    amp = 1.0
    for o in range(int(octaves)):
        cells = min(scale * 2**o, side)
        gh = max(1, int(round(cells * h / side))) + 1
        gw = max(1, int(round(cells * w / side))) + 1
        grid = rng.random((gh, gw), dtype=np.float32)
        field += amp * cv2.resize(grid, (w, h),
                                  interpolation=cv2.INTER_CUBIC)
        amp *= persistence
    if (h, w) == (height, width):
        return field
    return cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)


def random_perlin_mask(height: int,
                       width: int,
                       ratio: RatioSpec = 'high',
                       rng: Optional[np.random.Generator] = None,
                       scale: float = 4.0,
                       octaves: int = 4,
                       persistence: float = 0.5) -> np.ndarray:
    """A blob-shaped hole mask: fractal noise above its quantile.

    Args:
        height, width, ratio, rng: The mask's H and W, its hole-ratio bin
            and random source, as :func:`mmmsl.masks.random_irregular_mask`.
        scale (float): Blobs across the shorter side (the coarsest
            octave's lattice cells). Defaults to 4.
        octaves (int): Octaves of detail on the blobs' edges. Defaults
            to 4.
        persistence (float): Weight of each octave relative to the last.
            Defaults to 0.5.

    Returns:
        np.ndarray: ``(H, W)`` uint8 hole mask, 1 = removed pixel.
    """
    check_number('perlin', 'scale', scale, 1)
    check_number('perlin', 'octaves', octaves, 1, integer=True)
    check_number('perlin', 'persistence', persistence, 0)
    rng = np.random.default_rng() if rng is None else rng
    field = fractal_noise(height, width, rng, scale, octaves, persistence)
    return quantile_mask(field, ratio, rng)


__all__: Sequence[str] = ('check_number', 'work_shape', 'fractal_noise',
                          'random_perlin_mask')
