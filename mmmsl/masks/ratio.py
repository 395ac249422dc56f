"""Hole-ratio bins shared by every mask source, and the checks that keep a
mask inside its bin at the size where it is used."""
import argparse
import math
from functools import lru_cache
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

#: Named hole-ratio ranges ``(lo, hi]`` (fraction of pixels removed). ``high``
#: is the 50-60% bin of the NVIDIA Irregular Mask test set that the authors'
#: code samples from; ``low`` is everything up to 50%, the paper's "low".
RATIO_BINS = {'low': (0.0, 0.5), 'high': (0.5, 0.6)}

RatioSpec = Union[str, Sequence[float]]


class RatioError(ValueError, argparse.ArgumentTypeError):
    """A bad ratio: a ``ValueError`` whose message argparse shows as it is
    for a ``type=parse_ratio`` flag (``argument --mask: ratio='x': ...``)."""


def parse_ratio(ratio: RatioSpec) -> Tuple[float, float]:
    """Turn ``'low'``, ``'high'``, ``(lo, hi)`` or the command-line form
    ``'LO,HI'`` into a checked ``(lo, hi)``; the one ratio parser of the
    package and of every tool's ``--mask`` (``type=parse_ratio``).

    The range is half-open, ``lo < hole_ratio <= hi``, with
    ``0 <= lo < hi <= 1``.
    """
    if isinstance(ratio, str) and ratio in RATIO_BINS:
        return RATIO_BINS[ratio]
    try:
        lo, hi = (float(v) for v in (
            ratio.split(',') if isinstance(ratio, str) else ratio))
    except (TypeError, ValueError):
        raise RatioError(f'ratio={ratio!r}: expected one of '
                         f'{sorted(RATIO_BINS)}, a (lo, hi) pair or '
                         "'LO,HI'") from None
    if not 0.0 <= lo < hi <= 1.0:
        raise RatioError(f'ratio={ratio!r}: need 0 <= lo < hi <= 1')
    return lo, hi


def hole_ratio(hole: np.ndarray) -> float:
    """Fraction of pixels that are holes in a binary ``hole`` mask."""
    return float(np.count_nonzero(hole)) / hole.size


def in_range(ratio: float, lo: float, hi: float) -> bool:
    """Whether ``lo < ratio <= hi``."""
    return lo < ratio <= hi


def bin_counts(n: int, lo: float, hi: float) -> Tuple[int, int]:
    """The smallest and largest hole-pixel counts ``c`` of an ``n``-pixel
    mask with ``lo < c / n <= hi`` (as :func:`in_range` compares them);
    the first exceeds the second when no count fits."""
    return _bin_counts(int(n), float(lo), float(hi))


@lru_cache(maxsize=1024)
def _bin_counts(n: int, lo: float, hi: float) -> Tuple[int, int]:
    cmin = math.floor(lo * n) + 1
    while cmin > 0 and (cmin - 1) / n > lo:
        cmin -= 1
    while cmin <= n and cmin / n <= lo:
        cmin += 1
    cmax = math.floor(hi * n)
    while cmax >= 0 and cmax / n > hi:
        cmax -= 1
    while cmax < n and (cmax + 1) / n <= hi:
        cmax += 1
    return cmin, cmax


def nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """Source index of every output pixel of a nearest-neighbour resize
    from ``in_size`` to ``out_size`` pixels, as torch's
    ``F.interpolate(mode='nearest')`` (and so the MSL model) computes it:
    ``min(floor(i * float32(in_size / out_size)), in_size - 1)``. Cached,
    read-only."""
    return _nearest_index(int(in_size), int(out_size))


@lru_cache(maxsize=256)
def _nearest_index(in_size: int, out_size: int) -> np.ndarray:
    if in_size == out_size:
        idx = np.arange(out_size)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
        idx = np.minimum(
            np.floor(np.arange(out_size, dtype=np.float32) *
                     scale).astype(np.int64), in_size - 1)
    idx.flags.writeable = False
    return idx


def upsample_nearest(mask: np.ndarray, height: int,
                     width: int) -> np.ndarray:
    """``mask`` resized nearest-neighbour to ``(height, width)`` exactly as
    the MSL model resizes a reduced keep mask on the device."""
    h, w = mask.shape[:2]
    if (h, w) == (height, width):
        return mask
    return mask[nearest_index(h, height)][:, nearest_index(w, width)]


def upsample_weights(h: int, w: int, height: int,
                     width: int) -> Tuple[np.ndarray, np.ndarray]:
    """How many pixels each row and each column of an ``(h, w)`` mask
    becomes in its :func:`upsample_nearest` to ``(height, width)``.

    Returns:
        tuple[np.ndarray, np.ndarray]: The row and column counts (int64,
        read-only; a pixel ``(i, j)`` covers ``rows[i] * cols[j]`` output
        pixels).
    """
    return _count_plan(int(h), int(w), int(height), int(width))[:2]


@lru_cache(maxsize=256)
def _count_plan(h, w, height, width):
    """Row and column counts, and the same as the most common count of
    each minus a few exceptions: ``(rows, cols, (mr, ri, er), (mc, ci,
    ec))`` with ``rows = mr - e`` where ``e[ri] = er`` and 0 elsewhere
    (``ri``, ``er`` as tuples of ints)."""
    plan = []
    counts = []
    for n_in, n_out in ((h, height), (w, width)):
        c = np.bincount(nearest_index(n_in, n_out), minlength=n_in)
        c.flags.writeable = False
        mode = int(np.bincount(c).argmax())
        idx = np.flatnonzero(c != mode)
        counts.append(c)
        plan.append((mode, tuple(idx.tolist()),
                     tuple((mode - c[idx]).tolist())))
    return counts[0], counts[1], plan[0], plan[1]


def hole_count(hole: np.ndarray,
               size: Optional[Tuple[int, int]] = None) -> int:
    """Hole pixels of the binary mask ``hole``, or of its
    :func:`upsample_nearest` to ``size = (H, W)`` (computed without
    making it).

    With ``rows = mr - er`` and ``cols = mc - ec`` (the pixel counts of
    :func:`upsample_weights`, as their most common value minus a few
    exceptions: a reduced mask repeats most rows ``f`` times) the count is
    ``mr * mc * N - mc * sum(er * R) - mr * sum(ec * C) + sum(er * ec *
    hole[er, ec])`` over the exceptional rows' and columns' counts ``R``,
    ``C``: about the cost of one ``countNonZero``.
    """
    if hole.dtype != np.uint8:
        hole = (hole != 0).astype(np.uint8)
    n = cv2.countNonZero(hole)
    if size is None or (size[0], size[1]) == hole.shape:
        return n
    h, w = hole.shape
    _, _, (mr, ri, er), (mc, ci, ec) = _count_plan(h, w, int(size[0]),
                                                   int(size[1]))
    total = mr * mc * n
    if len(ri) + len(ci) > 32:  # not a reduced mask's few exceptions
        rows, cols = upsample_weights(h, w, int(size[0]), int(size[1]))
        return int(rows @ (hole != 0).astype(np.int64) @ cols)
    for i, e in zip(ri, er):
        total -= mc * e * cv2.countNonZero(hole[i:i + 1])
    for j, e in zip(ci, ec):
        total -= mr * e * cv2.countNonZero(hole[:, j:j + 1])
    for i, ei in zip(ri, er):
        for j, ej in zip(ci, ec):
            if hole[i, j]:
                total += ei * ej
    return int(total)


#: 4-neighbourhood: a hole's boundary pixels touch a kept pixel.
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
#: Golden-ratio (Weyl) sequence: any prefix of its argsort is spread evenly
#: over the candidate pixels.
_PHI = (math.sqrt(5) - 1) / 2


def fit_ratio(hole: np.ndarray,
              ratio: RatioSpec,
              size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """``hole`` with the fewest boundary pixels flipped so that its hole
    ratio lies in ``ratio`` (``lo < r <= hi``).

    A mask with too few holes grows: kept pixels that touch a hole become
    holes; one with too many shrinks: hole pixels that touch a kept pixel
    are kept. Only as many pixels as needed are flipped, spread evenly
    along the boundary (deterministic: no random draw), one ring at a time
    until the ratio is in range. A mask already in range is returned as
    it is.

    Args:
        hole (np.ndarray): ``(h, w)`` binary hole mask (non-zero = hole).
        ratio (str | Sequence[float]): The bin, see :func:`parse_ratio`.
        size (tuple[int, int], optional): ``(H, W)`` the mask is used at
            after :func:`upsample_nearest` (the MSL model's resize of a
            reduced mask): the ratio is then guaranteed at that size.

    Returns:
        np.ndarray: ``(h, w)`` uint8 hole mask, 0 / 1 (a new array if
        anything was flipped).

    Raises:
        ValueError: No mask of that many pixels has a ratio in the bin.
    """
    lo, hi = parse_ratio(ratio)
    h, w = hole.shape
    height, width = (h, w) if size is None else (int(size[0]), int(size[1]))
    cmin, cmax = bin_counts(height * width, lo, hi)
    if cmin > cmax:
        raise ValueError(f'ratio={ratio!r}: no {height}x{width} mask has a '
                         f'hole ratio in ({lo}, {hi}]')
    hole_u8 = (hole != 0).astype(np.uint8)
    count = hole_count(hole_u8, (height, width))
    if cmin <= count <= cmax:
        return hole
    hole = hole_u8
    rows, cols = upsample_weights(h, w, height, width)
    for _ in range(4 * (h + w)):  # rings are never empty: always ends
        grow = count < cmin
        if grow:  # kept pixels next to a hole (any kept pixel if none)
            ring = cv2.dilate(hole, _CROSS) > hole
            if not ring.any():
                ring = hole == 0
        else:  # hole pixels next to a kept pixel (any hole if none)
            ring = cv2.erode(hole, _CROSS) < hole
            if not ring.any():
                ring = hole != 0
        flat = np.flatnonzero(ring)
        flat = flat[np.argsort(np.arange(len(flat)) * _PHI % 1.0,
                               kind='stable')]
        ys, xs = np.divmod(flat, w)
        cost = rows[ys] * cols[xs]
        total = np.cumsum(cost)
        need = cmin - count if grow else count - cmax
        k = min(int(np.searchsorted(total, need)) + 1, len(ys))
        hole[ys[:k], xs[:k]] = 1 if grow else 0
        count += int(total[k - 1]) if grow else -int(total[k - 1])
        if cmin <= count <= cmax:
            return hole
    raise ValueError(f'ratio={ratio!r}: cannot fit a {h}x{w} mask used at '
                     f'{height}x{width} into ({lo}, {hi}]')
