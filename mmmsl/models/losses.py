"""Losses of MSL."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.losses.utils import weight_reduce_loss
from mmpretrain.registry import MODELS

REDUCTIONS = ('none', 'mean', 'sum')


def _check_reduction(owner: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f'{owner}: reduction={reduction!r} not in {REDUCTIONS}')


@MODELS.register_module()
class LabelConsistencyLoss(nn.Module):
    """Label consistency (the paper's LaCo): L2 between the multi-label
    probabilities of the clean and the masked branch.

    ``loss = loss_weight * reduce((sigmoid(a) - sigmoid(b)) ** 2)``, which
    with ``reduction='mean'`` and no ``avg_factor`` is the authors'
    ``nn.MSELoss`` on probabilities. Like mmpretrain's losses it takes an
    ``avg_factor``: ``avg_factor=N`` sums over classes and averages over the
    batch, the scale of mmpretrain's multi-label BCE.

    Args:
        use_sigmoid (bool): The inputs are logits (apply a sigmoid). False
            when they already are probabilities. Defaults to True.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.

    Shapes:
        - pred_a, pred_b: ``(N, C)``.
        - weight (optional): ``(N, C)`` or broadcastable.
        - output: scalar, or ``(N, C)`` with ``reduction='none'``.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0):
        super().__init__()
        _check_reduction('LabelConsistencyLoss', reduction)
        self.use_sigmoid = use_sigmoid
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                pred_a: torch.Tensor,
                pred_b: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> torch.Tensor:
        if pred_a.shape != pred_b.shape:
            raise ValueError('LabelConsistencyLoss: branch predictions differ '
                             f'in shape, {tuple(pred_a.shape)} vs '
                             f'{tuple(pred_b.shape)}')
        if self.use_sigmoid:
            pred_a, pred_b = pred_a.sigmoid(), pred_b.sigmoid()
        loss = (pred_a - pred_b).pow(2)
        if weight is not None:
            weight = weight.float()
        loss = weight_reduce_loss(loss, weight,
                                  reduction_override or self.reduction,
                                  avg_factor)
        return self.loss_weight * loss


@MODELS.register_module()
class IgnoreAwareBCELoss(nn.Module):
    """Sigmoid binary cross-entropy that ignores entries whose target is
    negative (-1): they add nothing to the loss and get zero gradient.

    A drop-in for ``CrossEntropyLoss(use_sigmoid=True)`` in any
    ``MultiLabelClsHead``: same call ``loss(cls_score, target, weight=None,
    avg_factor=None, reduction_override=None)`` and, for targets in
    ``[0, 1]``, the same value. The -1 entries arrive in the target itself
    (``gt_score``, e.g. from ``WIDERAttribute(unspecified='ignore')``),
    because the target is the one per-sample tensor the stock heads pass
    to their loss; no custom head is needed.

    Reduction with ``reduction='mean'``:

    - with ``avg_factor`` (the heads pass the batch size N): the sum over
      the kept entries divided by ``avg_factor``, mmpretrain's scale (sum
      over classes, mean over samples) with ignored entries counting 0;
    - without: the mean over the kept entries (0 if there is none).

    Args:
        use_sigmoid (bool): Must be True; accepted so that a config can
            change the ``type`` of an existing
            ``CrossEntropyLoss(use_sigmoid=True)`` only. Defaults to True.
        reduction (str): ``'none'`` (ignored entries are 0), ``'mean'`` or
            ``'sum'``. Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.

    Shapes:
        - cls_score: ``(N, C)`` logits.
        - target: ``(N, C)``, values in ``[0, 1]`` or -1 (ignored; any
          negative value is).
        - weight (optional): ``(N, )`` per sample or ``(N, C)`` per entry.
        - output: scalar, or ``(N, C)`` with ``reduction='none'``.
    """

    def __init__(self, use_sigmoid: bool = True, reduction: str = 'mean',
                 loss_weight: float = 1.0):
        super().__init__()
        if not use_sigmoid:
            raise ValueError('IgnoreAwareBCELoss is a sigmoid loss: '
                             'use_sigmoid must be True')
        _check_reduction('IgnoreAwareBCELoss', reduction)
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, cls_score: torch.Tensor, target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> torch.Tensor:
        if cls_score.shape != target.shape:
            raise ValueError('IgnoreAwareBCELoss: cls_score and target '
                             f'differ in shape, {tuple(cls_score.shape)} vs '
                             f'{tuple(target.shape)}')
        reduction = reduction_override or self.reduction
        keep = (target >= 0).to(cls_score.dtype)
        loss = F.binary_cross_entropy_with_logits(
            cls_score, target.clamp(min=0).to(cls_score.dtype),
            reduction='none') * keep
        if weight is not None:
            weight = weight.to(cls_score.dtype)
            loss = loss * (weight.reshape(-1, 1) if weight.dim() == 1
                           and loss.dim() > 1 else weight)
        if reduction == 'mean' and avg_factor is None:
            loss = loss.sum() / keep.sum().clamp(min=1)
        else:
            loss = weight_reduce_loss(loss, None, reduction, avg_factor)
        return self.loss_weight * loss
