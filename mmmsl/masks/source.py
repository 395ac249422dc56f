"""One entry point that turns a config's mask source into a sampler."""
from typing import Optional, Tuple

import numpy as np

from .bank import MaskBank
from .ratio import RatioSpec, fit_ratio, parse_ratio
from .strokes import random_irregular_mask

SOURCES = ('bank', 'procedural', 'folder')


class ProceduralMasks:
    """Draws a fresh free-form mask per call (slow but unlimited)."""

    def __init__(self, ratio: RatioSpec = 'high'):
        self.ratio = parse_ratio(ratio)

    def sample(self,
               height: int,
               width: int,
               rng: np.random.Generator,
               size: Optional[Tuple[int, int]] = None) -> np.ndarray:
        """A ``(height, width)`` hole mask in the bin (at ``size`` if given,
        the ``(H, W)`` it is upsampled to, see :meth:`MaskBank.sample`)."""
        hole = random_irregular_mask(height, width, self.ratio, rng)
        if size is not None and tuple(size) != (height, width):
            hole = fit_ratio(hole, self.ratio, size)
        return hole


def build_mask_source(source: str = 'bank',
                      ratio: RatioSpec = 'high',
                      path: Optional[str] = None,
                      bank_size: int = 1000,
                      bank_res: int = 256,
                      bank_seed: int = 0,
                      invert: bool = False):
    """Build the sampler behind :class:`mmmsl.datasets.IrregularMask`.

    Args:
        source (str): ``'bank'`` (default; the bank file at ``path``, or when
            ``path`` is None a procedural bank of ``bank_size`` masks built
            once and cached, see :meth:`MaskBank.cached`), ``'procedural'``
            (a new free-form mask per call) or ``'folder'`` (the mask images
            under ``path``, e.g. the Irregular Mask dataset, white = hole).
        ratio (str | Sequence[float]): Hole-ratio bin, ``'high'``, ``'low'``
            or ``(lo, hi)``. A bank file keeps its own range; a different
            ``ratio`` is an error.
        path (str, optional): Bank file or mask folder.
        bank_size, bank_res, bank_seed: The cached procedural bank's number
            of masks, side and seed.
        invert (bool): For ``'folder'``: black = hole.

    Returns:
        An object with ``sample(height, width, rng, size=None) -> (height,
        width) uint8`` hole mask, whose hole ratio is in ``ratio`` at
        ``size`` (the size it is upsampled to; ``(height, width)`` if None).
    """
    bounds = parse_ratio(ratio)
    if source == 'procedural':
        return ProceduralMasks(bounds)
    if source == 'folder':
        if path is None:
            raise ValueError("source='folder' needs path=<mask folder>")
        return MaskBank.from_folder(path, bounds, bank_res, invert)
    if source == 'bank':
        if path is None:
            return MaskBank.cached(bank_size, bank_res, bounds, bank_seed)
        bank = MaskBank.load(path)
        if not np.allclose(bank.ratio, bounds):
            raise ValueError(f'Mask bank file {path} holds ratio range '
                             f'{bank.ratio}, but ratio={ratio!r} was asked')
        return bank
    raise ValueError(f'source={source!r}: expected one of {SOURCES}')
