"""Evaluate on masked inputs (the paper's Fig. 3).

One definition of a test-time hole, shared by ``tools/test.py --mask``,
``tools/analysis/mask_sweep.py``, ``tools/infer.py --mask`` and
``tools/visualize_masks.py``: :func:`hole_fill_pixels` gives its pixel
value and :func:`insert_test_mask` puts the masking step at one place of
the test pipeline (after the geometric transforms, right before packing:
the image the model sees), so a config, seed and sample index give the
same masked model input in every tool.
"""
from typing import List, Optional, Sequence, Tuple, Union

from mmengine.config import Config

from ..masks import hole_pixel

#: Seed of the held-out evaluation masks; training masks never use it.
EVAL_MASK_SEED = 20240104

RatioArg = Union[str, Sequence[float]]


def preprocessor_cfg(cfg: Config) -> dict:
    """The model's data preprocessor settings (``model.data_preprocessor``,
    else the top-level ``data_preprocessor``; ``{}`` if neither)."""
    model = cfg.get('model') or {}
    return dict(model.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {})


def hole_fill_pixels(cfg: Config) -> Tuple[int, ...]:
    """The uint8 pixel value (BGR, as images are loaded) of a test-time
    hole: the pixel the model's data preprocessor maps to the model's
    ``fill`` (:func:`mmmsl.masks.hole_pixel`: ``mean + fill * std`` per
    channel, BGR when ``to_rgb``, rounded half up, clipped to 0..255), so
    evaluation holes look like training holes.

    ``fill`` is the MSL model's (0, the dataset mean, by default; 0 for a
    model without one). A preprocessor without ``mean`` does not normalise:
    the pixel is ``fill`` itself, 0 (black) by default.
    """
    pre = preprocessor_cfg(cfg)
    model = cfg.get('model') or {}
    return hole_pixel(pre.get('mean'), pre.get('std'),
                      model.get('fill', 0.0),
                      bool(pre.get('to_rgb', pre.get('bgr_to_rgb', False))))


def eval_mask_step(cfg: Config,
                   ratio: RatioArg,
                   seed: int = EVAL_MASK_SEED,
                   keep_key: Optional[str] = None) -> dict:
    """The ``IrregularMask(apply=True)`` step of a masked evaluation: a
    fixed procedural mask per ``(seed, sample_idx)`` (never one of the
    training bank's), holes filled with :func:`hole_fill_pixels`."""
    step = dict(type='IrregularMask', ratio=ratio, source='procedural',
                seed=seed, apply=True, fill=list(hole_fill_pixels(cfg)))
    if keep_key is not None:
        step['keep_key'] = keep_key
    return step


def step_type(step: dict) -> str:
    """A pipeline step's type name without its scope (``'mmpretrain.Resize'``
    -> ``'Resize'``; a class gives its name)."""
    kind = step['type']
    return getattr(kind, '__name__', str(kind)).split('.')[-1]


def pack_index(pipeline: Sequence[dict]) -> int:
    """Index of the first packing step (``PackInputs``) of a pipeline, or
    its length if there is none."""
    return next((i for i, t in enumerate(pipeline)
                 if step_type(t) == 'PackInputs'), len(pipeline))


def insert_test_mask(pipeline: Sequence[dict],
                     cfg: Config,
                     ratio: RatioArg,
                     seed: int = EVAL_MASK_SEED,
                     keep_key: Optional[str] = None) -> List[dict]:
    """A copy of ``pipeline`` with :func:`eval_mask_step` right before its
    packing step (after the resize and crop: the image the model sees)."""
    steps = list(pipeline)
    steps.insert(pack_index(steps), eval_mask_step(cfg, ratio, seed,
                                                   keep_key))
    return steps


def add_test_masks(cfg: Config,
                   ratio: RatioArg,
                   seed: int = EVAL_MASK_SEED,
                   loader: str = 'test_dataloader') -> Config:
    """Insert ``IrregularMask(apply=True)`` before packing in a test pipeline
    (:func:`insert_test_mask`, in place).

    Each test image gets a fixed procedural mask determined by
    ``(seed, sample_idx)``: the same masks for every checkpoint compared,
    and never one of the training bank's.
    """
    pipeline = cfg[loader].dataset.pipeline
    pipeline[:] = insert_test_mask(pipeline, cfg, ratio, seed)
    return cfg
