"""A mask bank: N square masks made once, stored compactly, sampled fast."""
import os
import os.path as osp
import tempfile
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from .families import (UNCROPPED, FamilySpec, family_key, family_masks,
                       parse_family)
from .folder import load_mask_folder
from .ratio import (RatioSpec, bin_counts, fit_ratio, hole_count, in_range,
                    parse_ratio)

#: cv2.flip codes: none, vertical, horizontal, both (a 180-degree turn).
_FLIP_CODES = (None, 0, 1, -1)


def default_cache_dir() -> str:
    """``$MMMSL_CACHE`` or ``~/.cache/mmmsl``."""
    return os.environ.get('MMMSL_CACHE',
                          osp.join(osp.expanduser('~'), '.cache', 'mmmsl'))


class MaskBank:
    """N binary hole masks of one square size, sampled at any image size.

    Sampling draws a mask and a random crop of it (kept only if the crop's
    hole ratio stays in the bank's range), applies one of the 8 square
    symmetries (90-degree turns and mirrors), and resizes it
    nearest-neighbour to the requested size, so a bank of 1,000 masks gives
    far more distinct masks than it stores. The sampled mask's own hole
    ratio is checked after the resize: every mask returned is in the range.

    Args:
        holes (np.ndarray): ``(N, S, S)`` hole masks, non-zero = hole.
        ratio (Sequence[float]): The ``(lo, hi]`` hole-ratio range the
            masks were chosen for (checked).
        crop_scale (float): Smallest crop side as a fraction of S.
        retries (int): Draws after the first before a mask that left the
            range is fixed instead (see :meth:`sample`).
    """

    def __init__(self,
                 holes: np.ndarray,
                 ratio: Sequence[float],
                 crop_scale: float = 0.8,
                 retries: int = 3):
        holes = np.asarray(holes)
        if holes.ndim != 3 or holes.shape[1] != holes.shape[2] or not len(
                holes):
            raise ValueError('MaskBank needs a non-empty (N, S, S) array, '
                             f'got shape {holes.shape}')
        self.holes = (holes != 0).astype(np.uint8)
        self.ratio = parse_ratio(ratio)
        self.ratios = self.holes.reshape(len(holes), -1).mean(1)
        bad = ~((self.ratios > self.ratio[0]) & (self.ratios <= self.ratio[1]))
        if bad.any():
            raise ValueError(
                f'{int(bad.sum())} bank masks have hole ratios outside '
                f'{self.ratio}, e.g. {self.ratios[bad][0]:.3f}')
        self.crop_scale = crop_scale
        self.retries = int(retries)
        self._bounds = {}  # (H, W) -> hole-pixel counts allowed there

    def __len__(self) -> int:
        return len(self.holes)

    @property
    def size(self) -> int:
        """Side S of the stored masks."""
        return self.holes.shape[1]

    @classmethod
    def procedural(cls,
                   num: int = 1000,
                   size: int = 256,
                   ratio: RatioSpec = 'high',
                   seed: int = 0,
                   family: FamilySpec = 'strokes') -> 'MaskBank':
        """A bank of ``num`` procedural masks of ``family`` (a name or
        ``dict(type=name, **params)``, see :mod:`mmmsl.masks.families`;
        default the free-form strokes). Grid-aligned families (``grid``,
        ``patches``) are sampled without crops."""
        name, _ = parse_family(family)
        return cls(family_masks(num, size, ratio, seed, family), ratio,
                   crop_scale=1.0 if name in UNCROPPED else 0.8)

    @classmethod
    def from_folder(cls,
                    folder: str,
                    ratio: RatioSpec = 'high',
                    size: int = 256,
                    invert: bool = False) -> 'MaskBank':
        """A bank of the masks of ``folder`` whose ratio is in ``ratio``
        (measured after resizing to ``size``)."""
        holes, _, _ = load_mask_folder(folder, ratio, size, invert)
        return cls(np.stack(holes), ratio)

    @classmethod
    def cached(cls,
               num: int = 1000,
               size: int = 256,
               ratio: RatioSpec = 'high',
               seed: int = 0,
               cache_dir: Optional[str] = None,
               family: FamilySpec = 'strokes') -> 'MaskBank':
        """The procedural bank for these arguments, built on first use and
        kept in ``cache_dir`` (default :func:`default_cache_dir`).

        The file name holds every argument: ``<family>_<lo>-<hi>_<num>x
        <size>_seed<seed>.npz``, ``<family>`` being ``irregular`` for the
        default strokes (the name before families existed) and
        ``<name>-<digest of its parameters>`` otherwise.
        """
        lo, hi = parse_ratio(ratio)
        name, params = parse_family(family)
        path = osp.join(
            cache_dir or default_cache_dir(),
            f'{family_key(name, params)}_{lo:g}-{hi:g}_{num}x{size}_'
            f'seed{seed}.npz')
        crop_scale = 1.0 if name in UNCROPPED else 0.8
        if osp.isfile(path):
            bank = cls.load(path)
            bank.crop_scale = crop_scale
            return bank
        bank = cls.procedural(num, size, ratio, seed, family)
        bank.save(path)
        return bank

    def save(self, path: str) -> None:
        """Write the bank as one compressed ``.npz`` of packed bits.

        The file is written next to ``path`` and renamed over it, so an
        interrupted save never leaves a truncated bank behind.
        """
        folder = osp.dirname(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix='.npz', dir=folder)
        try:
            with os.fdopen(fd, 'wb') as f:
                np.savez_compressed(
                    f,
                    bits=np.packbits(self.holes.astype(bool), axis=-1),
                    size=self.size,
                    ratio=np.asarray(self.ratio))
            os.replace(tmp, path)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise

    @classmethod
    def load(cls, path: str) -> 'MaskBank':
        """Read a bank written by :meth:`save`."""
        if not osp.isfile(path):
            raise FileNotFoundError(f'Mask bank file {path} does not exist')
        try:
            with np.load(path) as data:
                size = int(data['size'])
                holes = np.unpackbits(
                    data['bits'], axis=-1, count=size)
                ratio = tuple(float(v) for v in data['ratio'])
        except (KeyError, ValueError, OSError) as e:
            raise ValueError(
                f'Mask bank file {path} is not a valid bank: {e}') from e
        return cls(holes, ratio)

    def sample(self,
               height: int,
               width: int,
               rng: np.random.Generator,
               size: Optional[Tuple[int, int]] = None) -> np.ndarray:
        """One ``(height, width)`` uint8 hole mask (1 = removed pixel) whose
        hole ratio is in the bank's range.

        The crop, orientation and resize (see :meth:`draw`) can move a
        mask's ratio out of the range (1-5% of the draws at 64-448 px); such
        a draw is redrawn up to ``retries`` times, then the last one is
        fixed by :func:`~mmmsl.masks.ratio.fit_ratio` (the fewest boundary
        pixels flipped), so every mask lands in the range.

        Args:
            height (int): Mask height.
            width (int): Mask width.
            rng (np.random.Generator): The random source.
            size (tuple[int, int], optional): ``(H, W)`` the mask will be
                used at after the MSL model's nearest upsampling
                (:func:`~mmmsl.masks.ratio.upsample_nearest`), when it is
                recorded at a reduced size: the ratio is then guaranteed at
                ``(H, W)``. None: at ``(height, width)``.
        """
        if size is None or (size[0] == height and size[1] == width):
            at = None
            bounds = self._bounds.get((height, width))
        else:
            at = (int(size[0]), int(size[1]))
            bounds = self._bounds.get(at)
        if bounds is None:
            hw = at or (height, width)
            bounds = bin_counts(hw[0] * hw[1], *self.ratio)
            if bounds[0] > bounds[1]:
                raise ValueError(f'MaskBank: no {hw[0]}x{hw[1]} mask has a '
                                 f'hole ratio in (lo, hi] = {self.ratio}')
            if len(self._bounds) > 4096:  # many image sizes: stay small
                self._bounds.clear()
            self._bounds[hw] = bounds
        cmin, cmax = bounds
        for _ in range(self.retries + 1):
            hole = self.draw(height, width, rng)
            # cv2's count is ~2x numpy's; this check is all the overhead.
            count = cv2.countNonZero(hole) if at is None else hole_count(
                hole, at)
            if cmin <= count <= cmax:
                return hole
        return fit_ratio(hole, self.ratio, at)

    def draw(self, height: int, width: int,
             rng: np.random.Generator) -> np.ndarray:
        """One ``(height, width)`` uint8 hole mask, unchecked: a random bank
        mask, cropped, oriented and resized.

        The 8 orientations (an optional transpose, then one of 4 flips: the
        90-degree turns and mirrors) are applied to the crop before the one
        nearest-neighbour resize, so no full-size temporary is made.
        """
        # One draw for all six choices: a generator call costs as much as
        # the rest of the arithmetic here.
        u = rng.random(6)
        transpose = u[0] < 0.5
        flip = _FLIP_CODES[int(u[1] * 4)]
        hole = self.holes[int(u[2] * len(self))]
        # The crop is taken in the stored orientation: (th, tw) is the
        # requested shape before the transpose.
        th, tw = (width, height) if transpose else (height, width)
        s = self.size
        side = int(s * (self.crop_scale + (1.0 - self.crop_scale) * u[3]))
        if th >= tw:
            ch, cw = side, max(1, int(round(side * tw / th)))
        else:
            ch, cw = max(1, int(round(side * th / tw))), side
        y0, x0 = int(u[4] * (s - ch + 1)), int(u[5] * (s - cw + 1))
        crop = hole[y0:y0 + ch, x0:x0 + cw]
        if in_range(np.count_nonzero(crop) / crop.size, *self.ratio):
            hole = crop
        if transpose:
            hole = cv2.transpose(hole)
        if flip is not None:
            hole = cv2.flip(hole, flip)
        if hole.shape == (height, width):
            return np.ascontiguousarray(hole)
        return cv2.resize(hole, (width, height),
                          interpolation=cv2.INTER_NEAREST)
