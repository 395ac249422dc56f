"""The pixel value of a test-time hole: one definition for every tool."""
from numbers import Number
from typing import Optional, Sequence, Tuple, Union

import numpy as np

FillType = Union[Number, Sequence[Number]]


def round_pixel(values: FillType, dtype=np.uint8) -> np.ndarray:
    """``values`` as pixel values of an image of ``dtype``.

    For an integer dtype they are rounded half up (``floor(v + 0.5)``, so
    127.5 becomes 128) and clipped to the dtype's range (0..255 for uint8)
    instead of being truncated or wrapped around, as a plain
    ``np.asarray(values, np.uint8)`` would do (``-1`` -> 255, ``103.9`` ->
    103). Float dtypes keep the values as they are.

    Returns:
        np.ndarray: 1-D, one value per channel (a single value for a
        scalar), of ``dtype``.
    """
    dtype = np.dtype(dtype)
    v = np.atleast_1d(np.asarray(values, np.float64)).ravel()
    if not np.isfinite(v).all():
        raise ValueError(f'hole fill {values!r} is not finite')
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        v = np.clip(np.floor(v + 0.5), info.min, info.max)
    return v.astype(dtype)


def hole_pixel(mean: Optional[Sequence[float]] = None,
               std: Optional[Sequence[float]] = None,
               fill: FillType = 0.0,
               to_rgb: bool = False) -> Tuple[int, ...]:
    """The uint8 pixel that a data preprocessor maps to the model's ``fill``.

    A ``ClsDataPreprocessor(mean, std, to_rgb)`` turns a loaded (BGR) pixel
    ``p`` into ``(q - mean) / std`` with ``q = p[::-1]`` (RGB) when
    ``to_rgb``, else ``q = p``; the hole pixel
    is the ``p`` it maps to ``fill`` (the MSL model's hole value in the
    normalised batch): ``mean + fill * std`` per channel, reversed to BGR
    when ``to_rgb``, rounded half up and clipped to 0..255.

    Without ``mean`` the preprocessor does not normalise, so the pixel is
    ``fill`` itself: 0 (black) for the default ``fill=0``.

    Examples:
        ImageNet mean/std, ``to_rgb=True``, ``fill=0``: ``(104, 116, 124)``;
        ``mean=0, std=255``: ``(0, 0, 0)``; ``mean=std=127.5``:
        ``(128, 128, 128)``.

    Args:
        mean (Sequence[float], optional): The preprocessor's ``mean``
            (channel order after ``to_rgb``).
        std (Sequence[float], optional): Its ``std``; 1 per channel if None.
        fill (Number | Sequence[Number]): The model's hole value, per
            channel (same order as ``mean``) if a sequence.
        to_rgb (bool): The preprocessor's ``to_rgb``/``bgr_to_rgb``.

    Returns:
        tuple[int, ...]: One value per channel in the loaded image's (BGR)
        order; a 1-tuple (any number of channels) when neither ``mean`` nor
        ``fill`` has channels.
    """
    fills = np.atleast_1d(np.asarray(fill, np.float64)).ravel()
    if mean is None:
        pix = fills
    else:
        mean = np.atleast_1d(np.asarray(mean, np.float64)).ravel()
        std = np.ones_like(mean) if std is None else np.atleast_1d(
            np.asarray(std, np.float64)).ravel()
        if std.size == 1:
            std = np.repeat(std, mean.size)
        if fills.size not in (1, mean.size) or std.size != mean.size:
            raise ValueError(f'hole pixel: fill={fill!r}, mean={list(mean)}'
                             f' and std={list(std)} do not have matching '
                             'channel counts')
        pix = mean + fills * std
    if to_rgb:
        pix = pix[::-1]
    return tuple(int(v) for v in round_pixel(pix, np.uint8))
