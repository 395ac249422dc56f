"""FMix-style hole masks: binarised low-frequency Fourier noise.

As FMix (Harris et al., "FMix: Enhancing Mixed Sample Data Augmentation",
2020, ``sample_mask``): a complex Gaussian spectrum whose amplitude decays
as ``1 / f**decay_power`` with the frequency ``f`` (clipped below at one
cycle per image), inverse-transformed to a real field and thresholded at
the quantile that gives the hole ratio, here drawn in the bin
(:func:`~mmmsl.masks.quantile.quantile_mask`), so every mask lands in it.
A larger ``decay_power`` gives fewer, smoother holes.
"""
from functools import lru_cache
from typing import Optional, Sequence

import cv2
import numpy as np

from .perlin import work_shape
from .quantile import quantile_mask
from .ratio import RatioSpec


@lru_cache(maxsize=64)
def _amplitude(h: int, w: int, decay_power: float) -> np.ndarray:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None]
    freqs = np.sqrt(fy * fy + fx * fx)
    amp = 1.0 / np.maximum(freqs, 1.0 / max(h, w))**decay_power
    amp.flags.writeable = False
    return amp


def fourier_noise(height: int,
                  width: int,
                  rng: np.random.Generator,
                  decay_power: float = 3.0,
                  max_side: int = 128) -> np.ndarray:
    """A ``(height, width)`` real field of low-frequency Fourier noise.

    Drawn at a shorter side of at most ``max_side`` px and resized
    bicubically: the frequencies left out (above ``max_side / 2`` cycles an
    image) have less than ``(2 / max_side)**decay_power`` of the lowest
    one's amplitude.

    Args:
        height (int): Field height H.
        width (int): Field width W.
        rng (np.random.Generator): The random source.
        decay_power (float): Exponent of the spectrum's ``1 / f**d``
            decay (FMix's ``decay_power``).
        max_side (int): Shorter side the spectrum is drawn at.

    Returns:
        np.ndarray: ``(H, W)`` float32 noise (periodic, as FMix's).
    """
    h, w = work_shape(height, width, max_side)
    amp = _amplitude(h, w, float(decay_power))
    spec = rng.standard_normal((2, ) + amp.shape, dtype=np.float32)
    field = np.fft.irfft2((spec[0] + 1j * spec[1]) * amp,
                          s=(h, w)).astype(np.float32)
    if (h, w) == (height, width):
        return field
    return cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)


def random_fourier_mask(height: int,
                        width: int,
                        ratio: RatioSpec = 'high',
                        rng: Optional[np.random.Generator] = None,
                        decay_power: float = 3.0) -> np.ndarray:
    """An FMix hole mask: Fourier noise above its quantile.

    Args:
        height, width, ratio, rng: The mask's H and W, its hole-ratio bin
            and random source, as :func:`mmmsl.masks.random_irregular_mask`.
        decay_power (float): Spectrum decay, FMix's default 3; larger is
            smoother. Must be > 0.

    Returns:
        np.ndarray: ``(H, W)`` uint8 hole mask, 1 = removed pixel.
    """
    ok = isinstance(decay_power, (int, float)) and not isinstance(
        decay_power, bool)
    if not ok or decay_power <= 0:
        raise ValueError("mask family 'fourier': decay_power="
                         f'{decay_power!r} must be a number > 0')
    rng = np.random.default_rng() if rng is None else rng
    return quantile_mask(fourier_noise(height, width, rng, decay_power),
                         ratio, rng)


__all__: Sequence[str] = ('fourier_noise', 'random_fourier_mask')
