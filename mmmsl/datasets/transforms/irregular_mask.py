"""IrregularMask: the binary hole mask of MSL for the current image."""
from functools import partial
from numbers import Number
from typing import Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

from ...masks import build_mask_source, parse_ratio, round_pixel
from ...masks.scheduled import ScheduledSource
from ...utils import ProcessRNG
from .mask_boxes import building_pipeline, check_box_pipeline, image_boxes


@TRANSFORMS.register_module()
class IrregularMask(BaseTransform):
    """Sample an irregular binary mask for the current image.

    The mask is a hole mask of one ``family``, by default free-form strokes
    as in the Irregular Mask dataset used for inpainting (see
    ``docs/components.md`` for all families), covering the image at this
    point of the pipeline (put
    the transform after the crop and flip so the masked image keeps the
    clean one's layout). By default it is only recorded, for
    :class:`mmmsl.models.MaskedSupervisedClassifier` to resize and apply on
    the device to the normalised batch; pack it with
    ``PackInputs(algorithm_keys=('msl_mask', ))``.

    The recorded mask is ``(H, W)`` uint8, 1 keep / 0 hole, except that a
    bank or folder mask for an image larger than the bank's masks (side S,
    ``bank_res``) is recorded at ``(ceil(H / f), ceil(W / f))`` with
    ``f = ceil(max(H, W) / S)``: the same mask, which the model upsamples
    (nearest) on the device, at a fraction of the loader's cost. Set
    ``full_size=True`` to always get ``(H, W)``. Either way the hole ratio
    is in ``ratio`` where the mask is used: at ``(H, W)``, after the
    model's upsampling (:func:`mmmsl.masks.upsample_nearest`).

    **Required Keys:** ``img``, ``sample_idx`` (only with ``seed``),
    ``gt_bboxes`` (only for ``family='objects'``: ``(N, 4)`` x1 y1 x2 y2 in
    pixels of the current image; only box-aware geometric transforms such
    as mmcv's ``Resize`` / ``RandomFlip`` / ``CenterCrop`` may come
    before, an mmpretrain crop before it is an error)

    **Added Keys:** ``msl_mask`` (or ``key``); **Modified Keys:** ``img``
    (only with ``apply=True``)

    Args:
        ratio (str | Sequence[float]): Fraction of pixels removed, ``'high'``
            (50-60%, the paper's best and the authors' mask bin), ``'low'``
            (up to 50%) or a ``(lo, hi)`` range. Defaults to ``'high'``.
        source (str): ``'bank'`` (default: masks sampled with random
            rotations, flips and crops from a bank, the bank file ``path`` or
            a procedural bank built once and cached), ``'procedural'`` (a new
            free-form mask per sample, slower) or ``'folder'`` (the mask
            images under ``path``, e.g. the Irregular Mask dataset, white =
            hole, binarised and filtered to ``ratio``).
        path (str, optional): Bank file or mask folder.
        prob (float): Probability of masking a sample; otherwise the mask
            keeps everything. Defaults to 1.0.
        seed (int, optional): None (default, for training): masks follow
            mmengine's ``randomness`` seed and differ across epochs, workers
            and ranks. An int: the mask of a sample depends only on
            ``(seed, sample_idx)``, the fixed held-out masks a robustness
            evaluation needs.
        apply (bool): Mask ``results['img']`` itself with ``fill`` instead of
            recording the mask (test-time robustness evaluation; put it
            after the geometric transforms, right before packing, as
            :func:`mmmsl.apis.robustness.insert_test_mask` does).
        fill (Number | Sequence[Number]): Pixel value of holes with
            ``apply=True``, per channel (BGR, as loaded) if a sequence;
            rounded half up and clipped to the image dtype's range for
            integer images (uint8: 0..255). The value that matches a
            model's ``fill`` is :func:`mmmsl.apis.robustness.hole_fill_pixels`
            (``tools/test.py --mask`` uses it). Defaults to 0 (black, as the
            authors' code).
        key (str): Result key of the mask. Defaults to ``'msl_mask'``.
        keep_key (str, optional): With ``apply=True``, also record the keep
            mask (image size) under this key, e.g. to show what was removed.
            Defaults to None (nothing recorded).
        bank_size (int): Masks in the cached procedural bank. Defaults to
            1000.
        bank_res (int): Side of the bank's masks. Defaults to 256.
        bank_seed (int): Seed of the cached procedural bank (use another for
            held-out evaluation masks). Defaults to 0.
        invert (bool): For ``source='folder'``: black = hole.
        full_size (bool): Always record the mask at the image size (see
            above). ``apply=True`` always works at the image size.
            Defaults to False.
        family (str | dict | list): The mask family: ``'strokes'``
            (default, the free-form strokes), ``'perlin'`` (fractal noise
            blobs), ``'fourier'`` (FMix), ``'grid'`` (Hide-and-Seek),
            ``'boxes'`` (Cutout / random erasing), ``'patches'`` (MAE),
            ``'objects'`` (holes on the labelled objects, from
            ``gt_bboxes``; drawn per image, never from a bank), or a dict
            ``dict(type='perlin', octaves=2)`` with parameters
            (:mod:`mmmsl.masks.families`). A list of those is a mixture,
            one family drawn per sample; ``'mixture'`` is every family but
            ``objects``. With ``source='bank'`` each family has its own
            cached bank. ``'folder'`` and a bank ``path`` have no family.
        family_weights (Sequence[float], optional): A mixture's family
            weights (normalised); equal if None. The built source's
            ``weights`` attribute can be set later (masking schedules).
    """

    def __init__(self,
                 ratio: Union[str, Sequence[float]] = 'high',
                 source: str = 'bank',
                 path: Optional[str] = None,
                 prob: float = 1.0,
                 seed: Optional[int] = None,
                 apply: bool = False,
                 fill: Union[Number, Sequence[Number]] = 0,
                 key: str = 'msl_mask',
                 bank_size: int = 1000,
                 bank_res: int = 256,
                 bank_seed: int = 0,
                 invert: bool = False,
                 full_size: bool = False,
                 keep_key: Optional[str] = None,
                 family: Union[str, dict, Sequence] = 'strokes',
                 family_weights: Optional[Sequence[float]] = None):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'IrregularMask: prob={prob!r} not in [0, 1]')
        self.ratio = parse_ratio(ratio)
        self.source_cfg = dict(
            source=source,
            path=path,
            bank_size=bank_size,
            bank_res=bank_res,
            bank_seed=bank_seed,
            invert=invert,
            family=family,
            family_weights=family_weights)
        # Built now so a bad path, ratio or family fails when the dataset is
        # built.
        self.source = build_mask_source(ratio=self.ratio, **self.source_cfg)
        self._dataset = None  # who builds us, for the messages (objects)
        if getattr(self.source, 'needs_boxes', False):
            self._dataset, before = building_pipeline()
            check_box_pipeline(before, family, self._dataset)
        self.prob = prob
        self.seed = seed
        self.apply = apply
        round_pixel(fill)  # a non-numeric or non-finite fill fails here
        self.fill = fill
        self.keep_key = keep_key
        self.key = key
        self.full_size = full_size
        self._rng = ProcessRNG(seed)
        self._level = None  # a ScheduledSource once set_level is called

    def mask_size(self, h: int, w: int) -> tuple:
        """Shape of the mask recorded for an ``h`` x ``w`` image."""
        side = getattr(self.source, 'size', None)  # a bank's mask side
        if self.apply or self.full_size or not side or max(h, w) <= side:
            return h, w
        f = -(-max(h, w) // side)
        return -(-h // f), -(-w // f)

    def _rng_for(self, results: dict) -> np.random.Generator:
        if self.seed is not None and results.get('sample_idx') is not None:
            return np.random.default_rng(
                [self.seed, int(results['sample_idx'])])
        return self._rng()

    def transform(self, results: dict) -> dict:
        img = results['img']
        height, width = img.shape[:2]
        h, w = self.mask_size(height, width)
        rng = self._rng_for(results)
        if self.prob < 1.0 and rng.random() >= self.prob:
            keep = np.ones((h, w), np.uint8)
        else:  # a reduced mask's ratio must hold once upsampled (size)
            size = None if (h, w) == (height, width) else (height, width)
            kw = {}
            if getattr(self.source, 'needs_boxes', False):
                kw['boxes'] = image_boxes(
                    results, self.source_cfg['family'], self._dataset)
            keep = 1 - self.source.sample(h, w, rng, size, **kw)
        if not self.apply:
            results[self.key] = keep
            return results
        if self.keep_key is not None:
            results[self.keep_key] = keep
        keep = keep.astype(bool)
        if img.ndim == 3:
            keep = keep[..., None]
        fill = round_pixel(self.fill, img.dtype)
        channels = img.shape[2] if img.ndim == 3 else 1
        if fill.size not in (1, channels):
            raise ValueError(
                f'IrregularMask: fill={self.fill} has {fill.size} values but '
                f"image {results.get('img_path', '')} has {channels} "
                'channel(s); load images with LoadImageFromFile\'s default '
                "color_type='color' (3 channels) or give one fill value")
        results['img'] = np.where(keep, img, fill).astype(img.dtype)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ratio={self.ratio}, '
                f"source={self.source_cfg['source']!r}, "
                f"family={self.source_cfg['family']!r}, "
                f"path={self.source_cfg['path']!r}, prob={self.prob}, "
                f'seed={self.seed}, apply={self.apply}, fill={self.fill})')

    def set_level(self,
                  ratio: Union[str, Sequence[float], None] = None,
                  prob: Optional[float] = None,
                  weights: Optional[Sequence[float]] = None) -> None:
        """Change the masking level while training (``MaskScheduleHook``).

        The first call wraps the source in a
        :class:`mmmsl.masks.scheduled.ScheduledSource`, whose level lives in
        shared memory: make it before the dataloader's workers start (the
        hook does, in ``before_train``); every later call then reaches the
        workers' copies, persistent ones included. The masking probability
        moves into that source (``self.prob`` becomes 1; the same draw).

        Args:
            ratio (str | Sequence[float], optional): New hole-ratio bin. A
                bank source builds one bank per bin, once per process (a
                bank file keeps its own bin: another one is an error).
            prob (float, optional): New probability of masking a sample.
            weights (Sequence[float], optional): New family weights of a
                mixture source.
        """
        if self._level is None:
            self._level = ScheduledSource(
                partial(build_mask_source, **self.source_cfg), self.source,
                self.ratio, self.prob)
            self.source, self.prob = self._level, 1.0
        self._level.set(ratio, prob, weights)
        self.ratio = self._level.ratio
