"""Stop training at the first non-finite loss, before it is saved."""
import math
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS


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
