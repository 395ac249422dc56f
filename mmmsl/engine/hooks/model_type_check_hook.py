"""Refuse to resume a run from a checkpoint of another model type."""
from typing import Optional

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def saved_model_type(checkpoint: dict) -> Optional[str]:
    """The class name of the model that saved an mmengine ``checkpoint``:
    ``meta['model_type']`` (written by :class:`ModelTypeCheckHook`), else
    ``model.type`` of the config text mmengine stores in ``meta['cfg']``;
    None if neither is there."""
    meta = checkpoint.get('meta') or {}
    if meta.get('model_type'):
        return str(meta['model_type'])
    try:
        model = Config.fromstring(meta['cfg'], file_format='.py').model
        return str(model.type).split('.')[-1]
    except Exception:  # no or unreadable config text: nothing to compare
        return None


@HOOKS.register_module()
class ModelTypeCheckHook(Hook):
    """Refuse to resume a run from a checkpoint of another model type.

    An MSL config and its baseline twin have the same state-dict keys, so
    ``--resume`` of the baseline from an MSL checkpoint (or back) loads
    strictly and silently continues the other model's training. This hook
    writes the model's class name into every checkpoint's
    ``meta['model_type']`` and, when the run *resumes*, raises a
    ``RuntimeError`` naming both types if they differ (checkpoints without
    that key are checked against the config text mmengine stores with
    them). Nothing has been trained or written at that point.

    Loading weights with ``load_from`` (fine-tuning, ``tools/test.py``,
    inference) is not resuming and stays allowed across the two types: an
    MSL checkpoint is a plain ``ImageClassifier`` checkpoint.
    """

    priority = 'VERY_HIGH'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['model_type'] = type(
            _unwrap(runner.model)).__name__

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return
        saved = saved_model_type(checkpoint)
        current = type(_unwrap(runner.model)).__name__
        if saved is None or saved == current:
            return
        raise RuntimeError(
            f'ModelTypeCheckHook: refusing to resume a {current} from a '
            f'checkpoint saved by a {saved} run (work_dir {runner.work_dir}). '
            'The state dicts match, so it would silently continue the other '
            "model's training. Use a separate --work-dir for each model, or "
            'start from those weights without resuming '
            '(--cfg-options load_from=CKPT, no --resume).')
