"""One entry point that turns a config's mask source into a sampler."""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .bank import MaskBank
from .families import (FAMILIES, IMAGE_FAMILIES, FamilySpec, draw_family,
                       parse_family)
from .ratio import RatioSpec, fit_ratio, parse_ratio

SOURCES = ('bank', 'procedural', 'folder')
#: ``family='mixture'``: every image-independent family, equal weights.
MIXTURE = tuple(FAMILIES)


class ProceduralMasks:
    """Draws a fresh mask of one family per call (slower than a bank, but
    unlimited).

    Args:
        ratio (str | Sequence[float]): The hole-ratio bin.
        family (str | dict): The family, see :func:`parse_family`.
            Defaults to the free-form strokes.
    """

    def __init__(self, ratio: RatioSpec = 'high',
                 family: FamilySpec = 'strokes'):
        self.ratio = parse_ratio(ratio)
        self.family, self.params = parse_family(family)

    def sample(self,
               height: int,
               width: int,
               rng: np.random.Generator,
               size: Optional[Tuple[int, int]] = None) -> np.ndarray:
        """A ``(height, width)`` hole mask in the bin (at ``size`` if given,
        the ``(H, W)`` it is upsampled to, see :meth:`MaskBank.sample`)."""
        hole = draw_family(self.family, self.params, height, width,
                           self.ratio, rng)
        if size is not None and tuple(size) != (height, width):
            hole = fit_ratio(hole, self.ratio, size)
        return hole


class ObjectMasks(ProceduralMasks):
    """Draws an image-dependent mask (``family='objects'``) per call from
    the image's boxes; no bank can hold these.

    Args:
        ratio (str | Sequence[float]): The hole-ratio bin.
        family (str | dict): ``'objects'`` or ``dict(type='objects',
            inside=..., ...)``.
        size (int, optional): Like a bank's mask side: an image larger
            than this gets a reduced mask (boxes scaled), which the model
            upsamples, at a fraction of the cost (see
            :meth:`mmmsl.datasets.IrregularMask.mask_size`). None: always
            the image size.
    """

    #: :class:`~mmmsl.datasets.IrregularMask` passes ``results['gt_bboxes']``.
    needs_boxes = True

    def __init__(self, ratio: RatioSpec = 'high',
                 family: FamilySpec = 'objects',
                 size: Optional[int] = None):
        super().__init__(ratio, family)
        self.size = size

    def sample(self,
               height: int,
               width: int,
               rng: np.random.Generator,
               size: Optional[Tuple[int, int]] = None,
               boxes: Optional[np.ndarray] = None) -> np.ndarray:
        """A ``(height, width)`` hole mask in the bin.

        Args:
            boxes (np.ndarray): ``(N, 4)`` float ``x1, y1, x2, y2`` in
                pixels of the image (of ``size`` when given: they are
                scaled to the reduced mask).
        """
        if boxes is None:
            raise ValueError(
                f'mask family {self.family!r} needs the image\'s boxes '
                "(results['gt_bboxes']); it works in IrregularMask, not in "
                "a model's mask_source")
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if size is not None and tuple(size) != (height, width):
            boxes = boxes * np.array([width / size[1], height / size[0]] * 2)
        hole = draw_family(self.family, self.params, height, width,
                           self.ratio, rng, boxes)
        if size is not None and tuple(size) != (height, width):
            hole = fit_ratio(hole, self.ratio, size)
        return hole


class MixtureMasks:
    """One source of several, drawn per mask with probabilities
    ``weights``.

    Args:
        sources (Sequence): Mask sources (:func:`build_mask_source`).
        weights (Sequence[float], optional): One non-negative weight per
            source, normalised to sum 1; equal if None.
        names (Sequence[str], optional): The sources' family names.
    """

    def __init__(self,
                 sources: Sequence,
                 weights: Optional[Sequence[float]] = None,
                 names: Optional[Sequence[str]] = None):
        self.sources = list(sources)
        self.names = list(names or range(len(self.sources)))
        self.weights = [1.0] * len(self.sources) if weights is None \
            else weights
        self.needs_boxes = any(
            getattr(s, 'needs_boxes', False) for s in self.sources)
        sizes = [getattr(s, 'size', None) for s in self.sources]
        sizes = [s for s in sizes if s]
        #: The banks' mask side (they share ``bank_res``), None if none.
        self.size = min(sizes) if sizes else None

    @property
    def weights(self) -> np.ndarray:
        """The normalised probabilities, one per source; settable (any
        non-negative weights with a positive sum, normalised on set), e.g.
        by a masking schedule during training."""
        return self._weights

    @weights.setter
    def weights(self, weights: Sequence[float]) -> None:
        w = np.asarray(weights, np.float64).ravel()
        if (w.size != len(self.sources) or not np.isfinite(w).all()
                or (w < 0).any() or w.sum() <= 0):
            raise ValueError(
                f'mask family weights {list(weights)!r}: need '
                f'{len(self.sources)} non-negative numbers with a positive '
                f'sum, one per family {self.names}')
        self._weights = w / w.sum()
        self._cum = np.cumsum(self._weights)

    def sample(self,
               height: int,
               width: int,
               rng: np.random.Generator,
               size: Optional[Tuple[int, int]] = None,
               boxes: Optional[np.ndarray] = None) -> np.ndarray:
        """A mask of one source, chosen with :attr:`weights` (one uniform
        draw of ``rng``), see :meth:`MaskBank.sample`."""
        i = min(int(np.searchsorted(self._cum, rng.random(), side='right')),
                len(self.sources) - 1)
        src = self.sources[i]
        if getattr(src, 'needs_boxes', False):
            return src.sample(height, width, rng, size, boxes=boxes)
        return src.sample(height, width, rng, size)

    def __repr__(self) -> str:
        return (f'MixtureMasks({", ".join(map(str, self.names))}; weights '
                f'{np.round(self.weights, 3).tolist()})')


def _family_list(family) -> Optional[List[FamilySpec]]:
    """The members of a mixture spec, or None for one family."""
    if isinstance(family, str) and family == 'mixture':
        return list(MIXTURE)
    if isinstance(family, (list, tuple)):
        if not family:
            raise ValueError('family=[]: a mixture needs at least one family')
        return list(family)
    return None


def build_mask_source(source: str = 'bank',
                      ratio: RatioSpec = 'high',
                      path: Optional[str] = None,
                      bank_size: int = 1000,
                      bank_res: int = 256,
                      bank_seed: int = 0,
                      invert: bool = False,
                      family: Union[FamilySpec, Sequence[FamilySpec]] = (
                          'strokes'),
                      family_weights: Optional[Sequence[float]] = None):
    """Build the sampler behind :class:`mmmsl.datasets.IrregularMask` and
    the model's ``mask_source``.

    Args:
        source (str): ``'bank'`` (default; the bank file at ``path``, or when
            ``path`` is None a procedural bank of ``bank_size`` masks of
            ``family`` built once and cached, see :meth:`MaskBank.cached`),
            ``'procedural'`` (a new mask of ``family`` per call) or
            ``'folder'`` (the mask images under ``path``, e.g. the
            Irregular Mask dataset, white = hole; no family).
        ratio (str | Sequence[float]): Hole-ratio bin, ``'high'``, ``'low'``
            or ``(lo, hi)``. A bank file keeps its own range; a different
            ``ratio`` is an error.
        path (str, optional): Bank file or mask folder.
        bank_size, bank_res, bank_seed: The cached procedural bank's number
            of masks, side and seed.
        invert (bool): For ``'folder'``: black = hole.
        family (str | dict | list): The mask family (``mmmsl.masks.
            families``): ``'strokes'`` (default), ``'perlin'``,
            ``'fourier'``, ``'grid'``, ``'boxes'``, ``'patches'``,
            ``'objects'`` (from the image's boxes; always drawn per image,
            whatever ``source``), a dict ``dict(type=name, **params)``, or
            a mixture: a list of those, one drawn per mask, or
            ``'mixture'`` (every family but ``objects``).
        family_weights (Sequence[float], optional): A mixture's weights,
            one per family (normalised); equal if None.

    Returns:
        An object with ``sample(height, width, rng, size=None) -> (height,
        width) uint8`` hole mask, whose hole ratio is in ``ratio`` at
        ``size`` (the size it is upsampled to; ``(height, width)`` if None).
        A source with ``needs_boxes`` also takes ``boxes=`` (``(N, 4)``);
        a mixture is a :class:`MixtureMasks` (settable ``weights``).
    """
    bounds = parse_ratio(ratio)
    if source not in SOURCES:
        raise ValueError(f'source={source!r}: expected one of {SOURCES}')
    members = _family_list(family)
    if members is None and family_weights is not None:
        raise ValueError(f'family_weights={family_weights!r} needs a '
                         'mixture: a list of families or '
                         "family='mixture'")
    if members is not None or family != 'strokes':
        if source == 'folder' or path is not None:
            raise ValueError(
                f'family={family!r}: source={source!r} with path={path!r} '
                'takes its masks from the file or folder, which has no '
                "family; leave family='strokes' or drop path")
    if members is not None:
        sources = [
            build_mask_source(source, bounds, None, bank_size, bank_res,
                              bank_seed, invert, m) for m in members
        ]
        names = [parse_family(m)[0] for m in members]
        return MixtureMasks(sources, family_weights, names)
    name, _ = parse_family(family)
    if name in IMAGE_FAMILIES:
        return ObjectMasks(bounds, family, size=bank_res)
    if source == 'procedural':
        return ProceduralMasks(bounds, family)
    if source == 'folder':
        if path is None:
            raise ValueError("source='folder' needs path=<mask folder>")
        return MaskBank.from_folder(path, bounds, bank_res, invert)
    if path is None:
        return MaskBank.cached(bank_size, bank_res, bounds, bank_seed,
                               family=family)
    bank = MaskBank.load(path)
    if not np.allclose(bank.ratio, bounds):
        raise ValueError(f'Mask bank file {path} holds ratio range '
                         f'{bank.ratio}, but ratio={ratio!r} was asked')
    return bank
