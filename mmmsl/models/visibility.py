"""Which labelled objects a keep mask hides: the masked branch's targets."""
from typing import Sequence

import torch


def box_keep_shares(keep: torch.Tensor, bboxes: torch.Tensor) -> torch.Tensor:
    """The share of each box's pixels that a keep mask keeps.

    Exact pixel counts from an integral image (one cumulative sum, then
    four look-ups a box). A box covers the pixels ``floor(x1) .. ceil(x2)``
    (and so on for y), clipped to the mask; a box with no pixel left
    counts as fully kept (nothing of it can be hidden).

    Args:
        keep (Tensor): ``(H, W)`` keep mask, 1 (or True) keep / 0 hole.
        bboxes (Tensor): ``(K, 4)`` boxes ``x1, y1, x2, y2`` in the mask's
            pixels.

    Returns:
        Tensor: ``(K, )`` float32 shares in ``[0, 1]``, on ``keep``'s device.
    """
    h, w = keep.shape
    integral = torch.nn.functional.pad(
        keep.to(torch.int32).cumsum(0).cumsum(1), (1, 0, 1, 0))
    bboxes = bboxes.to(keep.device, torch.float32).reshape(-1, 4)
    x1 = bboxes[:, 0].floor().clamp(0, w).long()
    y1 = bboxes[:, 1].floor().clamp(0, h).long()
    x2 = bboxes[:, 2].ceil().clamp(0, w).long()
    y2 = bboxes[:, 3].ceil().clamp(0, h).long()
    area = ((x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)).float()
    kept = (integral[y2, x2] - integral[y1, x2] - integral[y2, x1] +
            integral[y1, x1]).float()
    return torch.where(area > 0, kept / area.clamp(min=1),
                       torch.ones_like(area))


def hidden_classes(keep: torch.Tensor, bboxes: Sequence[torch.Tensor],
                   labels: Sequence[torch.Tensor], num_classes: int,
                   min_visible: float) -> torch.Tensor:
    """The classes whose every labelled object a mask hides.

    A class is hidden in an image when it has at least one box there and
    each of its boxes keeps less than ``min_visible`` of its pixels
    (:func:`box_keep_shares`). A class without boxes is never hidden.

    Args:
        keep (Tensor): ``(N, 1, H, W)`` or ``(N, H, W)`` keep masks.
        bboxes (Sequence[Tensor]): per image, ``(K_i, 4)`` boxes in the
            mask's pixels.
        labels (Sequence[Tensor]): per image, ``(K_i, )`` class indices.
        num_classes (int): C.
        min_visible (float): Share of a box that must stay visible.

    Returns:
        Tensor: ``(N, C)`` bool, True where the class is hidden.
    """
    keep = keep.reshape(keep.shape[0], *keep.shape[-2:])
    hidden = torch.zeros(keep.shape[0], num_classes, dtype=torch.bool,
                         device=keep.device)
    for i, (mask, boxes, cls) in enumerate(zip(keep, bboxes, labels)):
        cls = torch.as_tensor(cls).to(keep.device, torch.long).reshape(-1)
        shares = box_keep_shares(mask, torch.as_tensor(boxes))
        best = torch.full((num_classes, ), float('inf'), device=keep.device)
        best = best.scatter_reduce(0, cls, shares, 'amax', include_self=False)
        hidden[i] = best < min_visible
    return hidden
