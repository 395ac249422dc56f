"""Hole counts drawn inside a ratio bin, and the binary masks that take
exactly that many pixels of a noise field: the bin step of the
threshold-based families (``perlin``, ``fourier``, ``objects``)."""
import numpy as np

from .ratio import RatioSpec, bin_counts, parse_ratio


def target_count(n: int, ratio: RatioSpec,
                 rng: np.random.Generator) -> int:
    """A hole-pixel count of an ``n``-pixel mask, uniform over the counts
    whose ratio lies in ``ratio`` (:func:`~mmmsl.masks.ratio.bin_counts`).

    Raises:
        ValueError: No count of ``n`` pixels is in the bin.
    """
    lo, hi = parse_ratio(ratio)
    cmin, cmax = bin_counts(n, lo, hi)
    if cmin > cmax:
        raise ValueError(f'ratio={ratio!r}: no {n}-pixel mask has a hole '
                         f'ratio in ({lo}, {hi}]')
    return int(rng.integers(cmin, cmax + 1))


def top_pixels(field: np.ndarray, count: int) -> np.ndarray:
    """Flat indices of the ``count`` largest values of ``field``: the field
    thresholded at its quantile, with exactly ``count`` pixels whatever
    the ties."""
    flat = field.ravel()
    count = int(min(max(count, 0), flat.size))
    if count == 0:
        return np.zeros(0, np.int64)
    return np.argpartition(flat, flat.size - count)[flat.size - count:]


def quantile_mask(field: np.ndarray, ratio: RatioSpec,
                  rng: np.random.Generator) -> np.ndarray:
    """``field`` thresholded so that its largest values become holes, at a
    count drawn by :func:`target_count`: always in the bin.

    Args:
        field (np.ndarray): ``(H, W)`` real noise.
        ratio (str | Sequence[float]): The bin, see
            :func:`~mmmsl.masks.ratio.parse_ratio`.
        rng (np.random.Generator): Draws the count.

    Returns:
        np.ndarray: ``(H, W)`` uint8 hole mask, 1 = removed pixel.
    """
    hole = np.zeros(field.size, np.uint8)
    hole[top_pixels(field, target_count(field.size, ratio, rng))] = 1
    return hole.reshape(field.shape)
