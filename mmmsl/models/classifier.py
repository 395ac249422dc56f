"""The MSL classifier: an ImageClassifier trained as a Siamese pair."""
import inspect
import math
from functools import partial
from numbers import Number
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample, label_to_onehot

from ..datasets.transforms.mask_boxes import outside_image
from ..masks import build_mask_source
from ..masks.scheduled import ScheduledSource
from ..utils import ProcessRNG
from .losses import IgnoreAwareBCELoss
from .visibility import hidden_classes

FORWARD_MODES = ('two_pass', 'concat')
CLASS_REDUCTIONS = ('sum', 'mean')
HIDDEN_LABELS = ('absent', 'ignore')
#: Data-sample fields ``hidden_labels`` reads (mmdet's keys, written by the
#: multi-label datasets of mmmsl; see ``mmmsl.datasets.instances``).
BOX_KEYS = ('gt_bboxes', 'gt_bboxes_labels')


@MODELS.register_module()
class MaskedSupervisedClassifier(ImageClassifier):
    """Masked Supervised Learning (Zunair & Ben Hamza, WACV 2024).

    One network with shared weights sees each training image twice: clean,
    and with an irregular binary mask applied on the device to the
    normalised batch (``x_m = x * M + fill * (1 - M)``). The training loss
    is::

        L = a1 * BCE(clean) + a2 * BCE(masked) + a3 * L2(p_clean, p_masked)

    where both BCE terms are the head's own ``loss_module`` (so any
    multi-label head or loss works: ``CSRAClsHead``,
    ``MultiLabelLinearClsHead``, ``AsymmetricLoss`` ...) and the last term
    is ``consistency`` on the branches' sigmoid probabilities.
    :meth:`extract_feat` and :meth:`predict` are ImageClassifier's, on the
    clean image only, and the state dict has the same keys, so a trained
    model loads into a plain ``ImageClassifier``.

    Loss scale: mmpretrain's multi-label losses sum over the C classes and
    average over the batch, C times the authors' mean BCE. With
    ``class_reduction='sum'`` (default) the consistency term is reduced the
    same way, so ``alpha`` balances the terms exactly as in the paper and
    mmpretrain configs keep their learning rates; the total is C times the
    paper's. ``class_reduction='mean'`` divides by C instead: the authors'
    exact numbers, for their learning rate (SGD 0.01).

    Args:
        backbone, neck, head, pretrained, train_cfg, data_preprocessor,
            init_cfg: As :class:`mmpretrain.models.ImageClassifier`.
        alpha (Sequence[float]): ``(a1, a2, a3)``, weights of the clean BCE,
            the masked BCE and the consistency term; non-negative, not all
            zero. Defaults to the paper's best ``(0.3, 0.2, 0.5)``.
        consistency (dict): Config of the consistency loss. Defaults to
            ``dict(type='LabelConsistencyLoss')``.
        mask_key (str): Data-sample field holding each image's keep mask
            ``(H, W)``, 1 keep / 0 hole, as written by
            :class:`mmmsl.datasets.IrregularMask` and packed by
            ``PackInputs(algorithm_keys=('msl_mask', ))``.
        fill (Number | Sequence[Number]): Value of holes in the normalised
            batch, per channel if a sequence. 0 (default) is the dataset
            mean when the preprocessor subtracts it (Hide-and-Seek's
            argument); with ``mean=0`` (mmpretrain's CSRA config, the
            authors' code) it is black.
        forward_mode (str): ``'two_pass'`` (default: a clean then a masked
            forward, as the authors' code; BatchNorm normalises each batch
            on its own) or ``'concat'`` (one forward of the 2N batch).
        class_reduction (str): ``'sum'`` or ``'mean'``, see "Loss scale".
        mask_source (dict, optional): Draw masks in the model, for samples
            that carry none (so an existing config becomes MSL by changing
            ``model.type`` only): keyword arguments of
            :func:`mmmsl.masks.build_mask_source`, e.g.
            ``dict(ratio='high')``. Without it a sample without a mask is an
            error.
        hidden_labels (str, optional): What the masked branch learns of a
            labelled class whose every object (box) the mask hides, i.e.
            keeps less than ``min_visible`` of: ``None`` (default: the
            image's labels, as the paper), ``'absent'`` (target 0) or
            ``'ignore'`` (no BCE; needs ``IgnoreAwareBCELoss``). Either way
            such an entry adds nothing to the consistency term, which would
            otherwise pull the masked branch to see what is not there. The
            samples must carry ``gt_bboxes`` and ``gt_bboxes_labels`` in
            the input's pixels: ``PackInputs(algorithm_keys=('msl_mask',
            'gt_bboxes', 'gt_bboxes_labels'))`` with mmmsl's datasets.
            The share of positives hidden is logged as ``hidden_share``.
        min_visible (float): Share of a box's pixels that must stay for its
            object to count as visible. Defaults to 0.1.

    Shapes:
        - inputs: ``(N, C, H, W)``; masks: ``(H, W)`` each (other sizes are
          resized nearest-neighbour, or padded if they match the sample's
          ``img_shape`` inside a padded batch).
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 alpha: Sequence[float] = (0.3, 0.2, 0.5),
                 consistency: dict = dict(type='LabelConsistencyLoss'),
                 mask_key: str = 'msl_mask',
                 fill: Union[Number, Sequence[Number]] = 0.0,
                 forward_mode: str = 'two_pass',
                 class_reduction: str = 'sum',
                 mask_source: Optional[dict] = None,
                 hidden_labels: Optional[str] = None,
                 min_visible: float = 0.1,
                 **kwargs):
        given = alpha
        try:
            alpha = tuple(float(a) for a in alpha)
        except (TypeError, ValueError):
            alpha = ()
        if len(alpha) != 3 or not all(
                math.isfinite(a) and a >= 0 for a in alpha) or not any(alpha):
            raise ValueError(f'MaskedSupervisedClassifier: alpha={given!r} '
                             'must be three finite non-negative weights (a1, '
                             'a2, a3), not all zero')
        if forward_mode not in FORWARD_MODES:
            raise ValueError(f'MaskedSupervisedClassifier: forward_mode='
                             f'{forward_mode!r} not in {FORWARD_MODES}')
        if class_reduction not in CLASS_REDUCTIONS:
            raise ValueError(f'MaskedSupervisedClassifier: class_reduction='
                             f'{class_reduction!r} not in {CLASS_REDUCTIONS}')
        if hidden_labels not in (None, ) + HIDDEN_LABELS:
            raise ValueError(f'MaskedSupervisedClassifier: hidden_labels='
                             f'{hidden_labels!r} not in {HIDDEN_LABELS} or '
                             'None')
        if not 0 < min_visible <= 1:
            raise ValueError(f'MaskedSupervisedClassifier: min_visible='
                             f'{min_visible!r} must be in (0, 1]')
        if head is None:
            raise ValueError('MaskedSupervisedClassifier needs a head')
        super().__init__(backbone, neck, head, **kwargs)
        if not hasattr(self.head, 'loss_module'):
            raise TypeError(f'MaskedSupervisedClassifier: head '
                            f'{type(self.head).__name__} has no loss_module')
        if hidden_labels == 'ignore' and not isinstance(
                self.head.loss_module, IgnoreAwareBCELoss):
            raise ValueError(
                "MaskedSupervisedClassifier: hidden_labels='ignore' needs "
                "head.loss=dict(type='IgnoreAwareBCELoss'), not "
                f'{type(self.head.loss_module).__name__}')
        self.hidden_labels = hidden_labels
        self.min_visible = min_visible
        self.alpha = alpha
        self.consistency = MODELS.build(consistency)
        self.mask_key = mask_key
        self.fill = fill
        # The hole value(s) on the model's device, so masking copies nothing
        # from the host (not in the state dict: keys stay ImageClassifier's).
        self.register_buffer(
            '_fill', torch.tensor(fill, dtype=torch.float32).view(
                1, -1, 1, 1) if not isinstance(fill, Number) else
            torch.tensor(float(fill)), persistent=False)
        self.forward_mode = forward_mode
        self.class_reduction = class_reduction
        self.mask_source = (None if mask_source is None else
                            build_mask_source(**mask_source))
        self._mask_source_cfg = mask_source
        self._rng = ProcessRNG()

    def set_mask_level(self, ratio=None, prob=None, weights=None) -> None:
        """Change ``mask_source``'s ratio bin, probability or mixture
        weights while training (``MaskScheduleHook``), as
        :meth:`mmmsl.datasets.IrregularMask.set_level` does."""
        if self.mask_source is None:
            raise ValueError('MaskedSupervisedClassifier: no mask_source')
        if not isinstance(self.mask_source, ScheduledSource):
            cfg = dict(self._mask_source_cfg)
            given = cfg.pop('ratio', None)
            self.mask_source = ScheduledSource(
                partial(build_mask_source, **cfg), self.mask_source, given)
        self.mask_source.set(ratio, prob, weights)

    def keep_masks(self, inputs: torch.Tensor,
                   data_samples: List[DataSample]) -> torch.Tensor:
        """The batch's keep masks as a ``(N, 1, H, W)`` bool tensor.

        A sample's mask covers its image (``img_shape``; the whole batch
        when absent) at any resolution, e.g. the reduced one ``IrregularMask``
        emits by default: it is resized nearest-neighbour on the device and,
        when the image was padded bottom-right into the batch, padded with
        "keep". Same-size masks of full-batch images take one transfer and
        one resize.
        """
        n, _, h, w = inputs.shape
        masks = [self._sample_keep(i, s, h, w)
                 for i, s in enumerate(data_samples)]
        regions = [tuple(s.get('img_shape', (h, w))[:2]) for s in data_samples]
        if len({m.shape for m in masks}) == 1 and all(
                r == (h, w) for r in regions):
            return self._to_device(np.stack(masks), inputs, (h, w))
        keep = inputs.new_ones((n, 1, h, w), dtype=torch.bool)
        for i, (mask, (rh, rw)) in enumerate(zip(masks, regions)):
            rh, rw = min(rh, h), min(rw, w)
            keep[i, :, :rh, :rw] = self._to_device(mask[None], inputs,
                                                   (rh, rw))[0]
        return keep

    def _sample_keep(self, i: int, sample: DataSample, h: int,
                     w: int) -> np.ndarray:
        mask = sample.get(self.mask_key)
        if mask is not None:
            return np.asarray(mask, np.uint8)
        if self.mask_source is None:
            raise KeyError(
                f'MaskedSupervisedClassifier: sample {i} '
                f"({sample.get('img_path', 'no img_path')}) has no "
                f"'{self.mask_key}'. Add dict(type='IrregularMask') "
                'to the train pipeline and pack it with '
                f"PackInputs(algorithm_keys=('{self.mask_key}', )), "
                'or set model.mask_source=dict(ratio=...) to draw '
                'masks in the model.')
        return 1 - self.mask_source.sample(h, w, self._rng())

    @staticmethod
    def _to_device(masks: np.ndarray, inputs: torch.Tensor,
                   size: Sequence[int]) -> torch.Tensor:
        """``(N, h, w)`` uint8 masks -> ``(N, 1, *size)`` bool on the
        inputs' device."""
        keep = torch.from_numpy(masks)
        if inputs.is_cuda:  # an asynchronous copy needs page-locked memory
            keep = keep.pin_memory()
        keep = keep.to(inputs.device, non_blocking=True).unsqueeze(1)
        if keep.shape[-2:] != tuple(size):
            keep = F.interpolate(keep, size=tuple(size), mode='nearest')
        return keep.bool()

    def mask_inputs(self, inputs: torch.Tensor,
                    keep: torch.Tensor) -> torch.Tensor:
        """``inputs`` with holes (``keep == 0``) set to ``fill``."""
        return torch.where(keep, inputs,
                           self._fill.to(inputs.device, inputs.dtype))

    def _branch_logits(self, inputs: torch.Tensor, masked: torch.Tensor):
        if self.forward_mode == 'concat':
            logits = self.head(self.extract_feat(torch.cat([inputs, masked])))
            return logits.chunk(2)
        return (self.head(self.extract_feat(inputs)),
                self.head(self.extract_feat(masked)))

    def _head_loss(self, logits: torch.Tensor,
                   data_samples: List[DataSample]) -> torch.Tensor:
        loss = self.head._get_loss(logits, data_samples)['loss']
        if self.class_reduction == 'mean':
            loss = loss / logits.size(-1)
        return loss

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """The three weighted MSL terms; their sum is the training loss.

        Returns:
            dict[str, Tensor]: ``loss_clean`` (a1 * BCE on clean images),
            ``loss_masked`` (a2 * BCE on masked images) and
            ``loss_consistency`` (a3 * L2 between the probabilities).
        """
        a1, a2, a3 = self.alpha
        keep = self.keep_masks(inputs, data_samples)
        masked = self.mask_inputs(inputs, keep)
        logits_c, logits_m = self._branch_logits(inputs, masked)
        n, c = logits_c.shape
        avg = n if self.class_reduction == 'sum' else n * c
        masked_samples, weight, extra = data_samples, None, {}
        if self.hidden_labels is not None:
            masked_samples, weight, extra = self._hide_labels(
                keep, data_samples, c)
        return dict(
            loss_clean=a1 * self._head_loss(logits_c, data_samples),
            loss_masked=a2 * self._head_loss(logits_m, masked_samples),
            loss_consistency=a3 * self.consistency(
                logits_c, logits_m, weight=weight, avg_factor=avg),
            **extra)

    def _hide_labels(self, keep: torch.Tensor,
                     data_samples: List[DataSample], num_classes: int):
        """The masked branch's samples (targets of hidden classes set to 0
        or -1), the consistency weight and the logged ``hidden_share``."""
        for i, sample in enumerate(data_samples):
            missing = [k for k in BOX_KEYS if k not in sample]
            if missing:
                raise KeyError(
                    f'MaskedSupervisedClassifier: hidden_labels='
                    f"'{self.hidden_labels}' but sample {i} "
                    f"({sample.get('img_path', 'no img_path')}) has no "
                    f'{missing}: pack them with PackInputs(algorithm_keys='
                    f"('{self.mask_key}', 'gt_bboxes', 'gt_bboxes_labels'))")
            h, w = sample.get('img_shape', keep.shape[-2:])[:2]
            if outside_image(sample.gt_bboxes, h, w).any():
                raise ValueError(
                    f'MaskedSupervisedClassifier: sample {i} '
                    f"({sample.get('img_path', 'no img_path')}) has "
                    f'gt_bboxes past its {w}x{h} image: a transform '
                    'changed the image but not the boxes (mmpretrain\'s '
                    "RandomResizedCrop, RandomCrop ...); use mmcv's "
                    'Resize / RandomFlip / CenterCrop, which update them')
        hidden = hidden_classes(
            keep, [s.gt_bboxes for s in data_samples],
            [s.gt_bboxes_labels for s in data_samples], num_classes,
            self.min_visible)
        target = torch.stack([
            s.gt_score.float() if 'gt_score' in s else label_to_onehot(
                s.gt_label, num_classes).float() for s in data_samples
        ]).to(keep.device)
        positive = target > 0
        hidden &= positive
        share = hidden.sum() / positive.sum().clamp(min=1)
        target = target.masked_fill(
            hidden, 0. if self.hidden_labels == 'absent' else -1.)
        samples = [DataSample().set_gt_score(t) for t in target]
        return samples, (~hidden).float(), dict(hidden_share=share.detach())


def plain_classifier_cfg(model_cfg: dict) -> dict:
    """The ``ImageClassifier`` config of a ``MaskedSupervisedClassifier``
    config: the same backbone, neck, head and preprocessor (so the same
    state-dict keys and ``predict``), without the MSL-only arguments
    (``alpha``, ``fill``, ``mask_source`` ...). Any other model config is
    returned as a shallow copy.

    Args:
        model_cfg (dict): A model config (``type`` with or without the
            ``mmpretrain.`` scope).

    Returns:
        dict: A new config dict.
    """
    cfg = dict(model_cfg)
    if str(cfg.get('type', '')).split('.')[-1] != \
            MaskedSupervisedClassifier.__name__:
        return cfg
    msl_only = set(inspect.signature(
        MaskedSupervisedClassifier.__init__).parameters) - set(
            inspect.signature(ImageClassifier.__init__).parameters)
    for key in msl_only:
        cfg.pop(key, None)
    cfg['type'] = 'ImageClassifier'
    return cfg
