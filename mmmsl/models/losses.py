"""Losses of MSL."""
from typing import Optional

import torch
import torch.nn as nn
from mmpretrain.models.losses.utils import weight_reduce_loss
from mmpretrain.registry import MODELS


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
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f'LabelConsistencyLoss: reduction={reduction!r}'
                             " not in ('none', 'mean', 'sum')")
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
