"""Masked evaluation (Fig. 3): one test-time hole pixel and place for all
tools (:func:`hole_fill_pixels` before packing, :func:`insert_test_mask`)."""
from mmengine.registry import Registry

from ..masks import hole_pixel

EVAL_MASK_SEED = 20240104  #: of the held-out test masks, never of training


def hole_fill_pixels(cfg):
    """The uint8 BGR pixel that the model's data preprocessor maps to its
    ``fill`` (0: the dataset mean), :func:`mmmsl.masks.hole_pixel`."""
    model = cfg.get('model') or {}
    pre = model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    return hole_pixel(pre.get('mean'), pre.get('std'), model.get('fill', 0.0),
                      bool(pre.get('to_rgb', pre.get('bgr_to_rgb', False))))


def pack_index(pipeline):
    """Index of the first ``PackInputs`` (of any scope), else the length."""
    names = [getattr(t['type'], '__name__', None)
             or Registry.split_scope_key(t['type'])[1] for t in pipeline]
    return names.index('PackInputs') if 'PackInputs' in names else len(names)


def insert_test_mask(pipeline, cfg, ratio, seed=EVAL_MASK_SEED,
                     keep_key=None, family='strokes'):
    """``pipeline`` + ``IrregularMask(apply=True)`` before packing: a fixed
    ``family`` mask per ``(seed, sample_idx)``, keep mask in ``keep_key``."""
    step = dict(type='IrregularMask', ratio=ratio, source='procedural',
                seed=seed, apply=True, fill=list(hole_fill_pixels(cfg)))
    step.update({k: v for k, v in (('keep_key', keep_key), ('family', family))
                 if v not in (None, 'strokes')})
    i = pack_index(pipeline)
    return [*pipeline[:i], step, *pipeline[i:]]


def add_test_masks(cfg, ratio, seed=EVAL_MASK_SEED, loader='test_dataloader',
                   family='strokes'):
    """:func:`insert_test_mask` into ``cfg[loader]``'s pipeline, in place."""
    pipe = cfg[loader].dataset.pipeline
    pipe[:] = insert_test_mask(pipe, cfg, ratio, seed, family=family)
    return cfg
