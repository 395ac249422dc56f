"""Hooks that turn silent failures into early, named errors."""
import math
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Check the model's class count against the datasets' before running.

    A head built for another number of classes than the dataset has fails
    only inside the first iteration, with a shape error (or, worse, trains on
    one-hot labels cut or padded to the wrong length). This hook compares
    ``model.head.num_classes`` (or the config's ``model.head.num_classes``
    for heads that do not store it, such as ``CSRAClsHead``) and the data
    preprocessor's ``num_classes`` with ``len(dataset.metainfo['classes'])``
    of the train and val datasets before training (and of the val/test
    dataset before a standalone ``val``/``test``), and raises a
    ``ValueError`` naming both numbers and the dataset.

    Datasets without ``metainfo['classes']`` and models without a head are
    skipped.

    mmdet's ``NumClassCheckHook`` does the same for detection heads (it
    walks every module with a ``num_classes`` and asserts, before each
    train / val epoch); this one also checks the preprocessor's one-hot
    size, runs once before the loop, and raises a ``ValueError`` that names
    the key to change.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _model_counts(runner) -> dict:
        model = _unwrap(runner.model)
        counts = {}
        head = getattr(model, 'head', None)
        n = getattr(head, 'num_classes', None)
        if n is None and head is not None:
            n = ((runner.cfg.get('model') or {}).get('head') or {}).get(
                'num_classes')
        if isinstance(n, int):
            counts['model.head.num_classes'] = n
        pre = getattr(model, 'data_preprocessor', None)
        n = getattr(pre, 'num_classes', None)
        if isinstance(n, int):
            counts['model.data_preprocessor.num_classes'] = n
        return counts

    def _check(self, runner, loop, name: str) -> None:
        dataloader = getattr(loop, 'dataloader', None)
        dataset = getattr(dataloader, 'dataset', None)
        metainfo = getattr(dataset, 'metainfo', None) or {}
        classes = metainfo.get('classes')
        if classes is None:
            return
        for key, n in self._model_counts(runner).items():
            if n != len(classes):
                root = getattr(dataset, 'data_root', None)
                where = f', data_root={root!r}' if root else ''
                shown = ', '.join(map(str, list(classes)[:5]))
                more = ', ...' if len(classes) > 5 else ''
                raise ValueError(
                    f'NumClassesCheckHook: {key}={n}, but the {name} '
                    f'dataset ({type(dataset).__name__}{where}) has '
                    f'{len(classes)} classes ({shown}{more}). Set {key}='
                    f'{len(classes)} (and every other num_classes of the '
                    'model) or use a dataset with that many classes.')

    def before_train(self, runner) -> None:
        self._check(runner, runner.train_loop, 'train')
        if runner.val_loop is not None:  # built by Runner.train already
            self._check(runner, runner.val_loop, 'val')

    def before_val(self, runner) -> None:
        self._check(runner, runner.val_loop, 'val')

    def before_test(self, runner) -> None:
        self._check(runner, runner.test_loop, 'test')


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training at the first non-finite loss, before it is saved.

    After every training iteration the model's log variables (``loss`` and
    its terms, e.g. ``loss_clean``, ``loss_masked``, ``loss_consistency``)
    are checked; the first NaN or Inf raises ``FloatingPointError`` naming
    the iteration, the epoch and the non-finite terms, and the batch's first
    image paths. The hook runs right after mmengine's ``RuntimeInfoHook``
    (priority ``'HIGH'``), which has already turned the values into Python
    floats in the message hub (so the check costs no device sync), and
    before ``LoggerHook``, ``EMAHook`` and ``CheckpointHook``: the weights
    the bad step produced are never written.

    Each process checks its own losses. With DDP a NaN on one rank reaches
    the others' weights through the gradient all-reduce before their losses
    show it; ``check_weights`` therefore also refuses to save a checkpoint
    whose weights are not finite.

    mmdet's ``CheckInvalidLossHook`` asserts that the total ``loss`` is
    finite every ``interval`` (50) iterations; this one checks every
    iteration and every term (free: the values are already floats), names
    them, and also guards the checkpoint.

    Args:
        check_weights (bool): Refuse (``FloatingPointError``) to save a
            checkpoint with a non-finite floating-point tensor in its
            ``state_dict``. One pass over the weights per checkpoint.
            Defaults to True.
        max_paths (int): Image paths of the batch quoted in the error.
            Defaults to 4.
    """

    priority = 'HIGH'

    def __init__(self, check_weights: bool = True, max_paths: int = 4):
        self.check_weights = check_weights
        self.max_paths = max_paths

    @staticmethod
    def _value(runner, key, value) -> Optional[float]:
        buf = runner.message_hub.log_scalars.get(f'train/{key}')
        if buf is not None:
            return float(buf.current())
        if isinstance(value, torch.Tensor):
            return float(value.detach().float().mean()) if value.numel() \
                else None
        try:
            return float(value)
        except (TypeError, ValueError):
            return None

    def _batch_paths(self, data_batch) -> str:
        samples = (data_batch or {}).get('data_samples') if isinstance(
            data_batch, dict) else None
        paths = [s.get('img_path') for s in samples or []
                 if hasattr(s, 'get') and s.get('img_path')]
        if not paths:
            return ''
        more = ', ...' if len(paths) > self.max_paths else ''
        return (f' Batch images: {", ".join(paths[:self.max_paths])}'
                f'{more}.')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs:
            return
        values = {k: self._value(runner, k, v) for k, v in outputs.items()}
        # The terms first, their sum ('loss') last.
        keys = sorted(values, key=lambda k: k == 'loss')
        bad = {k: values[k] for k in keys
               if values[k] is not None and not math.isfinite(values[k])}
        if not bad:
            return
        where = f'iteration {runner.iter + 1}'
        loop = runner.train_loop
        if isinstance(loop, EpochBasedTrainLoop):
            where += (f' (epoch {runner.epoch + 1}, iteration '
                      f'{batch_idx + 1}/{len(loop.dataloader)} of the epoch)')
        finite = {k: values[k] for k in keys
                  if values[k] is not None and k not in bad}
        raise FloatingPointError(
            f'FiniteLossHook: non-finite loss at {where}: ' +
            ', '.join(f'{k}={v}' for k, v in bad.items()) +
            (' (finite: ' + ', '.join(f'{k}={v:.4g}'
                                      for k, v in finite.items()) + ')'
             if finite else '') +
            '. Training stopped; the weights of this step were not saved.' +
            self._batch_paths(data_batch) +
            ' Try a lower learning rate or gradient clipping '
            '(optim_wrapper.clip_grad), check these images, and resume from '
            'the last checkpoint.')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.check_weights:
            return
        meta = checkpoint.get('meta') or {}
        for key, value in (checkpoint.get('state_dict') or {}).items():
            if isinstance(value, torch.Tensor) and value.is_floating_point() \
                    and not bool(torch.isfinite(value).all()):
                raise FloatingPointError(
                    'FiniteLossHook: refusing to save the checkpoint of '
                    f"epoch {meta.get('epoch', runner.epoch)}, iteration "
                    f"{meta.get('iter', runner.iter)}: weight "
                    f'{key!r} is not finite (a non-finite loss, possibly on '
                    'another rank). Resume from the last checkpoint with a '
                    'lower learning rate or gradient clipping.')


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
