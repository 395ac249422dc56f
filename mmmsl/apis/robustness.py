"""Evaluate on masked inputs (the paper's Fig. 3)."""
from typing import Optional, Sequence, Union

from mmengine.config import Config

#: Seed of the held-out evaluation masks; training masks never use it.
EVAL_MASK_SEED = 20240104


def hole_fill_pixels(cfg: Config) -> Optional[list]:
    """The pixel value (BGR, as images are loaded) that the model's data
    preprocessor maps to the MSL ``fill`` (0 = the dataset mean by
    default), so evaluation holes look like training holes. None if the
    preprocessor does not normalise."""
    pre = cfg.model.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {}
    mean, std = pre.get('mean'), pre.get('std')
    if mean is None:
        return None
    fill = cfg.model.get('fill', 0.0)
    fills = fill if isinstance(fill, (list, tuple)) else [fill] * len(mean)
    std = std or [1.0] * len(mean)
    pix = [m + f * s for m, f, s in zip(mean, fills, std)]
    return pix[::-1] if pre.get('to_rgb') else pix


def add_test_masks(cfg: Config,
                   ratio: Union[str, Sequence[float]],
                   seed: int = EVAL_MASK_SEED,
                   loader: str = 'test_dataloader') -> Config:
    """Insert ``IrregularMask(apply=True)`` before packing in a test pipeline.

    Each test image gets a fixed procedural mask determined by
    ``(seed, sample_idx)``: the same masks for every checkpoint compared,
    and never one of the training bank's.
    """
    pipeline = cfg[loader].dataset.pipeline
    step = dict(type='IrregularMask', ratio=ratio, source='procedural',
                seed=seed, apply=True, fill=hole_fill_pixels(cfg) or 0)
    pack = next((i for i, t in enumerate(pipeline)
                 if t['type'] in ('PackInputs', 'mmpretrain.PackInputs')),
                len(pipeline))
    pipeline.insert(pack, step)
    return cfg
