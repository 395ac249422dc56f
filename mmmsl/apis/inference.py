"""Multi-label inference: an image gets every class ``c`` with ``score[c]
>= thr[c]``, best first (ties by class index); ``topk=K`` keeps at most the
K best of those (``thr=0`` for a plain top-K)."""
import glob
import os
import os.path as osp
import warnings
from itertools import count

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.fileio import list_dir_or_file
from mmengine.runner import load_checkpoint
from mmpretrain.apis import ImageClassificationInferencer, get_model
from mmpretrain.datasets import remove_transform
from mmpretrain.registry import TRANSFORMS

from ..masks.folder import IMG_EXTENSIONS
from ..models import plain_classifier_cfg
from .robustness import EVAL_MASK_SEED, insert_test_mask, pack_index
from .thresholds import resolve_thresholds

KEEP_KEY = 'msl_test_keep'  # the held-out mask's keep mask (1 keep, 0 hole)


def expand_inputs(inputs):
    """Image files of paths, folders (recursive) and globs, in order, once:
    a file as given, others sorted, those not ``IMG_EXTENSIONS`` warned."""
    out = []
    for item in [inputs] if isinstance(inputs, (str, os.PathLike)) else inputs:
        item = str(item)
        found = [item] if osp.exists(item) else sorted(
            glob.glob(item, recursive=True)) if set('*?[') & set(item) else []
        if not found:
            raise FileNotFoundError(f'No such file, folder or match: {item!r}')
        for p in found:
            files = [osp.join(p, n) for n in sorted(list_dir_or_file(
                p, list_dir=False, recursive=True))] if osp.isdir(p) else [p]
            for path in files:
                if path == item or path.lower().endswith(IMG_EXTENSIONS):
                    out.append(path)
                else:
                    warnings.warn(f'Skipping {path}: not an image file '
                                  f'(expected one of {IMG_EXTENSIONS})')
    return list(dict.fromkeys(out))


def init_model(config, checkpoint=None, device='cpu', cfg_options=None,
               strict=True):
    """mmpretrain's ``get_model`` of :func:`plain_classifier_cfg` (an MSL
    model: its ``ImageClassifier``), the checkpoint loaded ``strict``; class
    names its, else the test dataset's ``METAINFO``, else ``class_i``."""
    cfg = Config.fromfile(config) if isinstance(config, str) else Config(
        config.to_dict() if isinstance(config, Config) else config)
    cfg.merge_from_dict(cfg_options or {})
    model = get_model(Config(dict(cfg.to_dict(), model=plain_classifier_cfg(
        cfg.model))), device=device)
    model._config = cfg  # as given: an MSL model's fill sets the hole pixel
    if checkpoint is None:
        warnings.warn('init_model: no checkpoint, the weights are random')
    else:
        meta = load_checkpoint(model, checkpoint, map_location='cpu',
                               strict=strict).get('meta', {})
        model._dataset_meta = meta.get('dataset_meta') or model._dataset_meta
    n = getattr(model.head, 'num_classes', None)  # CSRAClsHead has none
    classes = [str(c) for c in model._dataset_meta.get('classes') or [
        f'class_{i}' for i in range(n or 0)]]
    if not classes or n not in (None, len(classes)):
        raise ValueError(f'model.head has {n} classes, names: {classes}')
    model._dataset_meta = dict(model._dataset_meta, classes=classes)
    return model


def decode_scores(scores, classes, thresholds, topk=None):
    """The labels ``{'label', 'index', 'score'}`` of one image's scores."""
    scores = np.asarray(scores, dtype=np.float64)
    hits = np.flatnonzero(scores >= thresholds)
    hits = hits[np.argsort(-scores[hits], kind='stable')][:topk]
    return [dict(label=classes[i], index=int(i), score=float(scores[i]))
            for i in hits]


class MultiLabelInferencer(ImageClassificationInferencer):
    """mmpretrain's inferencer with per-class thresholds, JSON-able records,
    a held-out test mask and streaming; ``model``: for :func:`init_model`."""

    def __init__(self, model, checkpoint=None, device='cpu',
                 cfg_options=None):
        if not isinstance(model, torch.nn.Module):
            model = init_model(model, checkpoint, device, cfg_options)
        super().__init__(model, pretrained=False)

    def _init_pipeline(self, cfg, mask=None, mask_seed=EVAL_MASK_SEED):
        """The test pipeline after loading (masked as ``test.py --mask``)."""
        steps = remove_transform(cfg.test_dataloader.dataset.pipeline,
                                 'LoadImageFromFile')
        if mask is not None:
            steps = insert_test_mask(steps, cfg, mask, mask_seed, KEEP_KEY)
        pack = steps[pack_index(steps)]
        pack['algorithm_keys'] = tuple(pack.get('algorithm_keys', ())) + (
            'img', 'loaded_img', KEEP_KEY)
        return Compose([TRANSFORMS.build(t) for t in steps])

    def preprocess(self, inputs, batch_size=1, pipelines=None):
        """Batches of the inputs, read as the base does, via each pipeline."""
        def prepare(i, item):
            img = mmcv.imread(item)  # BGR; an array as it is
            if img is None:
                raise ValueError(f'Cannot read image {item}')
            img = mmcv.gray2bgr(img) if img.ndim == 2 else img
            res = dict(img=img, img_shape=img.shape[:2], loaded_img=img,
                       ori_shape=img.shape[:2], sample_idx=i, img_path=None
                       if isinstance(item, np.ndarray) else str(item))
            return [p(dict(res)) for p in pipelines or [self.pipeline]]

        for chunk in self._get_chunk_data(map(prepare, count(), inputs),
                                          batch_size):
            yield pseudo_collate(sum(chunk, []))

    def postprocess(self, preds, visualization=None, thr=0.5, topk=None):
        """Records ``{'image', 'labels': [{'label', 'index', 'score'}...],
        'scores'}``; a masked pass's sample adds ``'masked'`` to the last."""
        thr, records = resolve_thresholds(thr, self.classes), []
        for s in preds:
            scores = s.pred_score.float().cpu().numpy()
            res = dict(labels=decode_scores(scores, self.classes, thr, topk),
                       scores=scores.tolist())
            if KEEP_KEY in s:
                records[-1]['masked'] = dict(
                    removed=float(1 - s.get(KEEP_KEY).mean()), **res)
            else:
                records.append(dict(
                    image=s.img_path or f'array_{s.sample_idx}', **res))
        return records

    def iter_predictions(self, inputs, thr=0.5, topk=None, batch_size=8,
                         mask=None, mask_seed=EVAL_MASK_SEED):
        """``(record, images)`` per image, streamed: ``'clean'`` (as loaded),
        the model's ``'input'``, with a mask ``'masked'`` and ``'keep'``."""
        items, thr = self._inputs_to_list(inputs), resolve_thresholds(
            thr, self.classes)
        if topk is not None and topk < 1:
            raise ValueError(f'topk={topk} must be >= 1')
        pipes = [self.pipeline] + ([] if mask is None else [
            self._init_pipeline(self.config, mask, mask_seed)])
        preds = (s for data in self.preprocess(items, batch_size, pipes)
                 for s in self.forward(data))
        for group in zip(*[preds] * len(pipes)):
            images = dict(clean=group[0].loaded_img, input=group[0].img)
            if mask is not None:
                images.update(masked=group[1].img, keep=group[1].get(KEEP_KEY))
            yield self.postprocess(group, thr=thr, topk=topk)[0], images

    def __call__(self, inputs, *args, **kwargs):
        """The records of :meth:`iter_predictions` (same arguments)."""
        return [r for r, _ in self.iter_predictions(inputs, *args, **kwargs)]


def inference_multilabel(model, inputs, *args, **kwargs):
    """``MultiLabelInferencer(model)(inputs, *args, **kwargs)``."""
    return MultiLabelInferencer(model)(inputs, *args, **kwargs)
