"""The multi-label numbers reported by ML-GCN / CSRA / MSL papers."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.evaluation.metrics.multi_label import (AveragePrecision,
                                                       MultiLabelMetric)
from mmpretrain.evaluation.metrics.voc_multi_label import VOCMetricMixin
from mmpretrain.registry import METRICS


@METRICS.register_module()
class MultiLabelPaperMetric(VOCMetricMixin, BaseMetric):
    r"""mAP, CP, CR, CF1, OP, OR and OF1 as reported in multi-label papers.

    One metric that reports the numbers of the ML-GCN / CSRA / MSL tables,
    all in percent:

    - ``mAP``: mean over classes of the non-interpolated average precision
      (exactly mmpretrain's :class:`AveragePrecision`).
    - ``CP`` / ``CR``: per-class precision / recall averaged over classes
      (macro), and ``CF1 = 2 * CP * CR / (CP + CR)``. Note that ``CF1`` is
      the harmonic mean of the averaged CP and CR, **not** the mean of the
      per-class F1 scores (which is what ``MultiLabelMetric``'s macro
      ``f1-score`` gives).
    - ``OP`` / ``OR``: overall (micro) precision / recall computed from the
      TP / prediction / ground-truth counts summed over all classes, and
      ``OF1 = 2 * OP * OR / (OP + OR)``.

    A score is predicted positive if ``score >= thr`` (``pred_score`` are the
    sigmoid scores, so ``thr=0.5`` equals ``logit >= 0``), or, if ``topk`` is
    given, if it is among the ``topk`` highest scores of its sample. (The
    top-3 rule of ML-GCN and of the MSL authors' ``json_metric_top3`` also
    requires ``score >= 0.5``; ``topk`` here does not.)

    Conventions (the ones of the ML-GCN / CSRA evaluation code, which set
    ``Np[Np == 0] = 1``, and of mmpretrain's ``MultiLabelMetric``):

    - The precision of a class with no positive prediction is **0** (it
      still counts in the mean over classes for ``CP``).
    - The recall of a class with no (non-ignored) positive ground truth is
      0, and so is its AP, as in mmpretrain. (ML-GCN gives NaN there.)
    - ``CF1`` / ``OF1`` are 0 when the precision and recall are both 0.
    - ``OP`` divides by the actual number of positive predictions. The
      ML-GCN / MSL code divides by the sum of ``Np`` *after*
      ``Np[Np == 0] = 1``, i.e. one more per class without any positive
      prediction, so their ``OP`` (and ``OF1``) is lower when such a class
      exists; otherwise the numbers are the same.

    Difficult / unspecified labels (``gt_label_difficult`` of the data
    samples, e.g. VOC difficult objects or WIDER-Attribute unspecified
    attributes): a label that only appears among the difficult ones is set
    to -1 in the target if ``difficult_as_positive`` is None (as in
    mmpretrain's ``VOCMultiLabelMetric``); it is a positive / negative
    target in every number if it is True / False. A -1 entry is always left
    out of ``mAP``. In CP, CR, CF1, OP, OR and OF1 it is

    - ``difficult_in_thresholded='ignore'``: left out too (VOC07 protocol of
      the MSL / CSRA code, ``types='voc07'`` of their ``cal_PR.py``). With
      ``topk``, an ignored entry among the top-k is simply not counted (it
      is not replaced by the next score).
    - ``difficult_in_thresholded='negative'``: a negative target whose
      score is kept, so a positive prediction there is a false positive
      (WIDER-Attribute protocol, ``types='wider'`` of ``cal_PR.py``, while
      their ``cal_mAP.py`` drops the entry from mAP).

    Samples without ``gt_label_difficult`` have no -1 entries, unless their
    ``gt_score`` has some.

    Args:
        thr (float): Predictions with scores under the threshold are
            considered as negative. Defaults to 0.5.
        topk (int, optional): If given, the ``topk`` highest scores of each
            sample are the positive predictions and ``thr`` is not used.
            The keys of the results do not change. Defaults to None.
        difficult_as_positive (bool, optional): Whether to map the difficult
            labels to positive (True) or negative (False) targets. Defaults
            to None, the difficult labels are -1 (ignored, see above).
        difficult_in_thresholded (str): How the -1 (ignored) entries count
            in CP, CR, CF1, OP, OR and OF1: ``'ignore'`` (left out, VOC) or
            ``'negative'`` (negative targets, WIDER-Attribute). ``mAP``
            always leaves them out. ``'negative'`` needs
            ``difficult_as_positive=None``. Defaults to ``'ignore'``.
        collect_device (str): Device name used for collecting results from
            different ranks during distributed training. Must be 'cpu' or
            'gpu'. Defaults to 'cpu'.
        prefix (str, optional): The prefix that will be added in the metric
            names to disambiguate homonymous metrics of different evaluators.
            If not given, ``default_prefix`` ('multi-label') is used.
            Defaults to None.

    Examples:
        >>> import torch
        >>> from mmpretrain.structures import DataSample
        >>> from mmmsl.evaluation.metrics import MultiLabelPaperMetric
        >>> y_pred = torch.Tensor([[0.9, 0.8, 0.3, 0.2],
        ...                        [0.1, 0.2, 0.2, 0.1],
        ...                        [0.7, 0.5, 0.9, 0.3],
        ...                        [0.8, 0.1, 0.1, 0.2]])
        >>> y_true = torch.Tensor([[1, 1, 0, 0],
        ...                        [0, 1, 0, 0],
        ...                        [0, 0, 1, 0],
        ...                        [1, 0, 0, 0]])
        >>> data_samples = [
        ...     DataSample().set_pred_score(i).set_gt_score(j).to_dict()
        ...     for i, j in zip(y_pred, y_true)
        ... ]
        >>> metric = MultiLabelPaperMetric()
        >>> metric.process(None, data_samples)
        >>> results = metric.evaluate(4)
        >>> {k: round(v, 2) for k, v in results.items()}
        {'multi-label/mAP': 70.83, 'multi-label/CP': 54.17, 'multi-label/CR': 62.5, 'multi-label/CF1': 58.04, 'multi-label/OP': 66.67, 'multi-label/OR': 80.0, 'multi-label/OF1': 72.73}
        >>> # In a config
        >>> val_evaluator = dict(type='MultiLabelPaperMetric')
        >>> # WIDER-Attribute: unspecified attributes are negatives in CP..OF1
        >>> val_evaluator = dict(type='MultiLabelPaperMetric',
        ...                      difficult_in_thresholded='negative')
    """  # noqa: E501
    default_prefix: Optional[str] = 'multi-label'
    DIFFICULT_IN_THRESHOLDED = ('ignore', 'negative')

    def __init__(self,
                 thr: float = 0.5,
                 topk: Optional[int] = None,
                 difficult_as_positive: Optional[bool] = None,
                 difficult_in_thresholded: str = 'ignore',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        if difficult_in_thresholded not in self.DIFFICULT_IN_THRESHOLDED:
            raise ValueError(
                f'MultiLabelPaperMetric: difficult_in_thresholded='
                f'{difficult_in_thresholded!r} is not one of '
                f'{self.DIFFICULT_IN_THRESHOLDED}')
        if difficult_in_thresholded != 'ignore' and \
                difficult_as_positive is not None:
            raise ValueError(
                f'MultiLabelPaperMetric: difficult_in_thresholded='
                f'{difficult_in_thresholded!r} needs '
                f'difficult_as_positive=None, got {difficult_as_positive!r}')
        self.difficult_in_thresholded = difficult_in_thresholded
        super().__init__(
            difficult_as_positive=difficult_as_positive,
            collect_device=collect_device,
            prefix=prefix)
        self.thr = thr
        self.topk = topk

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store the CPU scores and the targets (-1 for ignored entries).

        Args:
            data_batch: A batch of data from the dataloader (unused).
            data_samples (Sequence[dict]): A batch of outputs from the model,
                with ``pred_score`` and ``gt_score`` or ``gt_label`` (and
                optionally ``gt_label_difficult``).
        """
        for data_sample in data_samples:
            sample = dict(data_sample)
            for key in ('pred_score', 'gt_score', 'gt_label'):
                if isinstance(sample.get(key), torch.Tensor):
                    sample[key] = sample[key].detach().cpu()
            difficult = sample.get('gt_label_difficult')
            sample['gt_label_difficult'] = [] if difficult is None else \
                torch.as_tensor(difficult).flatten().long().tolist()
            if 'gt_label' not in sample:
                # only used to tell difficult labels from positive ones
                sample['gt_label'] = torch.nonzero(
                    sample['gt_score'] > 0).flatten()
            # VOCMetricMixin builds the one-hot target and marks difficult.
            super().process(data_batch, [sample])

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the metrics from processed results.

        Args:
            results (list): The processed results of all samples.

        Returns:
            dict: ``mAP``, ``CP``, ``CR``, ``CF1``, ``OP``, ``OR``, ``OF1``.
        """
        pred = torch.stack([res['pred_score'] for res in results]).float()
        target = torch.stack([res['gt_score'] for res in results]).float()
        eps = torch.finfo(torch.float32).eps

        mAP = AveragePrecision.calculate(pred, target)

        thr = None if self.topk is not None else self.thr
        if self.difficult_in_thresholded == 'negative':
            target = target.clamp(min=0)  # -1 -> a negative target
        # `calculate` zeroes ignored (-1) entries of its target in place,
        # hence the clones.
        precision, recall, _, _ = MultiLabelMetric.calculate(
            pred, target.clone(), average=None, thr=thr, topk=self.topk)
        CP, CR = precision.mean(), recall.mean()
        CF1 = 2 * CP * CR / torch.clamp(CP + CR, min=eps)
        OP, OR, OF1, _ = MultiLabelMetric.calculate(
            pred, target.clone(), average='micro', thr=thr, topk=self.topk)

        metrics = dict(mAP=mAP, CP=CP, CR=CR, CF1=CF1, OP=OP, OR=OR, OF1=OF1)
        return {k: float(v) for k, v in metrics.items()}
