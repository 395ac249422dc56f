"""mAP per object-size and per occlusion bucket (docs/objects.md)."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.evaluation.metrics.multi_label import AveragePrecision
from mmpretrain.registry import METRICS

#: The per-sample keys read, besides ``pred_score``, ``gt_label`` and
#: ``gt_label_difficult`` (``mmmsl.datasets.instances.OBJECT_META_KEYS``).
OBJECT_META_KEYS = ('gt_bboxes_labels', 'gt_areas', 'gt_visible',
                    'gt_ignore_flags')
#: COCO's small / medium thresholds as a share of a 640 x 480 image.
RELATIVE_COCO_THRS = (32**2 / (640 * 480), 96**2 / (640 * 480))


def _pct(v: float) -> str:
    return f'{100 * v:g}'


def _name(sample: dict) -> str:
    """The image path of a data sample, else its index."""
    return str(sample.get('img_path', f"#{sample.get('sample_idx')}"))


@METRICS.register_module()
class ObjectSizeMetric(BaseMetric):
    r"""mAP per object-size bucket and per occlusion bucket, with counts.

    Per class ``c`` and bucket ``b``, an image is

    - a **positive** if it has class ``c`` (``gt_label``) and its largest
      instance of ``c`` falls in size bucket ``b`` (for occlusion buckets:
      its most visible instance of ``c`` falls in visibility bucket ``b``);
    - a **negative** if it does not have class ``c`` (and ``c`` is not
      among its ``gt_label_difficult``);
    - **left out** otherwise: ``c`` is there but in another bucket, or only
      as difficult (``gt_ignore_flags``) instances, or (occlusion) an
      instance of ``c`` has unknown (NaN) visibility.

    The AP of ``c`` in ``b`` is mmpretrain's non-interpolated AP over its
    positives and negatives; ``mAP_<b>`` averages it over the classes with
    at least one positive in ``b``; the others are skipped and counted.
    Instances flagged in ``gt_ignore_flags`` (VOC difficult) never decide a
    bucket. The size of an instance is its ``gt_areas`` (original pixels),
    or with ``relative=True`` that area divided by the original image area
    (``ori_shape``). Buckets are ``[0, t_1), [t_1, t_2), ..., [t_k, inf)``
    for the thresholds ``t``, the same for visibility in [0, 1].

    Results, for every bucket ``<b>`` (``small``, ``medium``, ``large`` and
    ``visible0-50``, ``visible50-75``, ``visible75-100`` by default):
    ``mAP_<b>`` (%, NaN if no class has a positive), ``num_pos_<b>`` (the
    positive image-class pairs), ``num_classes_<b>`` (classes evaluated)
    and ``skipped_<b>`` (classes without a positive). Occlusion buckets are
    reported only if some sample has ``gt_visible``.

    Pack the instance keys in the test pipeline, e.g.
    ``PackInputs(meta_keys=(<mmpretrain's defaults>, 'gt_label_difficult',
    'gt_bboxes_labels', 'gt_areas', 'gt_visible', 'gt_ignore_flags'))``;
    :class:`VOCMultiLabel`, :class:`COCOMultiLabel` and
    :class:`DigitsMultiLabel` give them.

    Args:
        size_thrs (Sequence[float], optional): Increasing size thresholds.
            Defaults to None: COCO's ``(32**2, 96**2)`` pixels, or
            :data:`RELATIVE_COCO_THRS` with ``relative=True``.
        size_names (Sequence[str], optional): One name per size bucket.
            Defaults to ``('small', 'medium', 'large')`` for two thresholds,
            else ``size0``, ``size1``, ...
        relative (bool): Whether sizes are shares of the image area.
            Defaults to False.
        visible_thrs (Sequence[float], optional): Increasing visibility
            thresholds in (0, 1); None for no occlusion buckets. Defaults to
            ``(0.5, 0.75)``: buckets ``visible0-50`` (< 50 % visible),
            ``visible50-75`` and ``visible75-100`` (>= 75 %).
        collect_device (str): Device for collecting results across ranks,
            'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the result names. Defaults to
            None, meaning ``default_prefix`` ('objects').

    Examples:
        >>> val_evaluator = [dict(type='MultiLabelPaperMetric'),
        ...                  dict(type='ObjectSizeMetric')]
        >>> # digits of 16-32 px: buckets by side < 22, < 28, >= 28
        >>> dict(type='ObjectSizeMetric', size_thrs=(22**2, 28**2))
    """
    default_prefix: Optional[str] = 'objects'

    def __init__(self,
                 size_thrs: Optional[Sequence[float]] = None,
                 size_names: Optional[Sequence[str]] = None,
                 relative: bool = False,
                 visible_thrs: Optional[Sequence[float]] = (0.5, 0.75),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if size_thrs is None:
            size_thrs = RELATIVE_COCO_THRS if relative else (32**2, 96**2)
        self.size_thrs = self._check_thrs(size_thrs, 'size_thrs')
        if size_names is None:
            size_names = ('small', 'medium', 'large') if len(
                self.size_thrs) == 2 else [
                    f'size{i}' for i in range(len(self.size_thrs) + 1)]
        if len(size_names) != len(self.size_thrs) + 1:
            raise ValueError(
                f'ObjectSizeMetric: {len(size_names)} size_names for '
                f'{len(self.size_thrs)} size_thrs (need one more name)')
        self.size_names = tuple(size_names)
        self.relative = relative
        self.visible_thrs = None if visible_thrs is None else \
            self._check_thrs(visible_thrs, 'visible_thrs', upper=1.)
        if self.visible_thrs is not None:
            edges = (0., *self.visible_thrs, 1.)
            self.visible_names = tuple(
                f'visible{_pct(lo)}-{_pct(hi)}'
                for lo, hi in zip(edges[:-1], edges[1:]))

    @staticmethod
    def _check_thrs(thrs, name, upper=None) -> np.ndarray:
        thrs = np.asarray(thrs, np.float64).reshape(-1)
        if (len(thrs) == 0 or (np.diff(thrs) <= 0).any() or thrs[0] <= 0
                or (upper is not None and thrs[-1] >= upper)):
            bound = '' if upper is None else f' and < {upper}'
            raise ValueError(f'ObjectSizeMetric: {name} must be increasing '
                             f'values > 0{bound}, got {thrs.tolist()}')
        return thrs

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store per sample the scores and, per class, its role: positive
        size / visibility bucket, negative or left out.

        Args:
            data_batch: A batch of data from the dataloader (unused).
            data_samples (Sequence[dict]): The model outputs, with
                ``pred_score``, ``gt_label`` (or ``gt_score``) and the
                instance keys of :data:`OBJECT_META_KEYS`.
        """
        for sample in data_samples:
            missing = [k for k in ('gt_bboxes_labels', 'gt_areas')
                       if k not in sample]
            if self.relative and 'ori_shape' not in sample:
                missing.append('ori_shape')
            if missing:
                keys = OBJECT_META_KEYS + (('ori_shape', ) if self.relative
                                           else ())
                raise KeyError(
                    f'ObjectSizeMetric: the data sample {_name(sample)} has '
                    f'no {missing}. Use a dataset that records instances '
                    '(VOCMultiLabel, COCOMultiLabel, DigitsMultiLabel) and '
                    'pack them in the test pipeline: PackInputs(meta_keys=('
                    f"<the defaults>, {', '.join(map(repr, keys))}))")
            self.results.append(self._sample_roles(sample))

    def _sample_roles(self, sample: dict) -> dict:
        """Scores, and per class: 1 positive / 0 negative / -1 left out,
        with the positive's size and visibility bucket (-1 if none)."""
        score = torch.as_tensor(sample['pred_score']).detach().cpu().float()
        num_classes = len(score)
        if 'gt_label' in sample:
            pos = torch.as_tensor(sample['gt_label'])
        else:
            pos = torch.nonzero(torch.as_tensor(sample['gt_score']) > 0)
        difficult = sample.get('gt_label_difficult')
        role = np.zeros(num_classes, np.int8)  # 1 pos, 0 neg, -1 left out
        if difficult is not None:
            role[torch.as_tensor(difficult).long().flatten().numpy()] = -1
        role[pos.long().flatten().numpy()] = 1

        labels = np.asarray(sample['gt_bboxes_labels'], np.int64).ravel()
        areas = np.asarray(sample['gt_areas'], np.float64).ravel()
        n = len(labels)
        visible = np.asarray(sample.get('gt_visible', np.full(n, np.nan)),
                             np.float64).ravel()
        ignore = np.asarray(sample.get('gt_ignore_flags', np.zeros(n, bool)),
                            bool).ravel()
        if self.relative:
            h, w = sample['ori_shape'][:2]
            areas = areas / (h * w)
        size_bucket = np.full(num_classes, -1, np.int8)
        vis_bucket = np.full(num_classes, -1, np.int8)
        for c in np.flatnonzero(role == 1):
            mine = (labels == c) & ~ignore
            if not mine.any():
                raise ValueError(
                    f'ObjectSizeMetric: the data sample {_name(sample)} has '
                    f'class {c} in gt_label but no (non-ignored) instance '
                    'of it in gt_bboxes_labels')
            size_bucket[c] = np.searchsorted(
                self.size_thrs, areas[mine].max(), side='right')
            if self.visible_thrs is not None:
                best = visible[mine].max()  # NaN if any is unknown
                if not np.isnan(best):
                    vis_bucket[c] = np.searchsorted(
                        self.visible_thrs, best, side='right')
        return dict(pred=score, role=role, size=size_bucket, vis=vis_bucket,
                    has_visible='gt_visible' in sample)

    @staticmethod
    def _bucket_ap(pred, role, bucket, b) -> Dict[str, float]:
        """mAP and counts of one bucket ``b`` (see the class doc)."""
        target = torch.full(role.shape, -1.)
        target[role == 0] = 0.
        target[(role == 1) & (bucket == b)] = 1.
        evaluated = (target == 1).any(0)
        num = int(evaluated.sum())
        mAP = AveragePrecision.calculate(
            pred[:, evaluated], target[:, evaluated]) if num else np.nan
        return dict(
            mAP=float(mAP),
            num_pos=int((target == 1).sum()), num_classes=num,
            skipped=int(len(evaluated) - num))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the per-bucket mAP and counts.

        Args:
            results (list): The processed results of all samples.

        Returns:
            dict: ``mAP_<b>``, ``num_pos_<b>``, ``num_classes_<b>`` and
            ``skipped_<b>`` for every bucket ``<b>``.
        """
        pred = torch.stack([r['pred'] for r in results])
        role = torch.from_numpy(np.stack([r['role'] for r in results]))
        groups = [('size', self.size_names)]
        if self.visible_thrs is not None and any(r['has_visible']
                                                 for r in results):
            groups.append(('vis', self.visible_names))
        metrics = {}
        for key, names in groups:
            bucket = torch.from_numpy(np.stack([r[key] for r in results]))
            for b, name in enumerate(names):
                for k, v in self._bucket_ap(pred, role, bucket, b).items():
                    metrics[f'{k}_{name}'] = v
        return metrics
