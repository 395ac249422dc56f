"""Hole-ratio bins shared by every mask source."""
from typing import Sequence, Tuple, Union

import numpy as np

#: Named hole-ratio ranges ``(lo, hi]`` (fraction of pixels removed). ``high``
#: is the 50-60% bin of the NVIDIA Irregular Mask test set that the authors'
#: code samples from; ``low`` is everything up to 50%, the paper's "low".
RATIO_BINS = {'low': (0.0, 0.5), 'high': (0.5, 0.6)}

RatioSpec = Union[str, Sequence[float]]


def parse_ratio(ratio: RatioSpec) -> Tuple[float, float]:
    """Turn ``'low'``, ``'high'`` or ``(lo, hi)`` into a checked ``(lo, hi)``.

    The range is half-open, ``lo < hole_ratio <= hi``, with
    ``0 <= lo < hi <= 1``.
    """
    if isinstance(ratio, str):
        if ratio not in RATIO_BINS:
            raise ValueError(f'ratio={ratio!r}: expected one of '
                             f'{sorted(RATIO_BINS)} or a (lo, hi) pair')
        return RATIO_BINS[ratio]
    try:
        lo, hi = (float(v) for v in ratio)
    except (TypeError, ValueError):
        raise ValueError(f'ratio={ratio!r}: expected one of '
                         f'{sorted(RATIO_BINS)} or a (lo, hi) pair') from None
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f'ratio={ratio!r}: need 0 <= lo < hi <= 1')
    return lo, hi


def hole_ratio(hole: np.ndarray) -> float:
    """Fraction of pixels that are holes in a binary ``hole`` mask."""
    return float(np.count_nonzero(hole)) / hole.size


def in_range(ratio: float, lo: float, hi: float) -> bool:
    """Whether ``lo < ratio <= hi``."""
    return lo < ratio <= hi
