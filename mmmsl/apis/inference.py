"""Multi-label inference with a trained (MSL or plain) classifier.

Unlike mmpretrain's ``ImageClassificationInferencer`` (an argmax, i.e. one
label per image), every class whose sigmoid score reaches its threshold is
returned::

    >>> from mmmsl.apis import MultiLabelInferencer
    >>> inferencer = MultiLabelInferencer('configs/msl/demo_digits.py',
    ...                                   'work_dirs/demo_msl_s0/epoch_20.pth')
    >>> inferencer('data/digits/test-s0-n1000-12648b0fab', thr=0.5)[0]
    {'image': '.../000000.png',
     'labels': [{'label': '3', 'index': 3, 'score': 0.98}, ...],
     'scores': [0.01, ..., 0.98, ...]}

Label semantics: with thresholds ``t`` (one per class) an image gets every
class ``c`` with ``score[c] >= t[c]``, sorted by score (decreasing; equal
scores by class index). ``topk=K`` then keeps at most the K best of those: it
never adds a class below its threshold (use ``thr=0`` for a plain top-K).
"""
import glob
import os
import os.path as osp
import sys
import warnings
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from mmengine.utils import ProgressBar

from ..models import plain_classifier_cfg
from .robustness import (EVAL_MASK_SEED, insert_test_mask, pack_index,
                         step_type)
from .thresholds import ThresholdType, resolve_thresholds

#: File name endings treated as images when a folder is expanded.
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')
#: Results key under which the held-out test mask's keep mask is recorded.
KEEP_KEY = 'msl_test_keep'

InputType = Union[str, np.ndarray]


def parse_mask_ratio(text: str) -> Union[str, Tuple[float, float]]:
    """A ``--mask`` argument: ``'high'`` / ``'low'`` or ``'LO,HI'``
    (fractions removed)."""
    if text in ('high', 'low'):
        return text
    try:
        lo, hi = (float(v) for v in text.split(','))
    except ValueError:
        raise ValueError(
            f'mask ratio {text!r}: expected high, low or LO,HI') from None
    return (lo, hi)


def to_bgr_uint8(img: np.ndarray) -> np.ndarray:
    """``img`` as a 3-channel uint8 BGR image (grey and BGRA converted,
    other dtypes clipped to 0..255), for drawing."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR) if img.shape[2] == 4 \
        else img


def is_image_file(path: str) -> bool:
    """Whether ``path`` ends with one of :data:`IMG_EXTENSIONS`."""
    return path.lower().endswith(IMG_EXTENSIONS)


def _scan_folder(folder: str) -> List[str]:
    """Image files under ``folder`` (recursive, sorted); others warned."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            path = osp.join(root, name)
            if is_image_file(name):
                found.append(path)
            else:
                warnings.warn(f'Skipping {path}: not an image file '
                              f'(expected one of {IMG_EXTENSIONS})')
    return found


def expand_inputs(inputs: Union[str, Sequence[str]]) -> List[str]:
    """Expand image paths, folders and glob patterns into image files.

    * A file is kept as given (whatever its extension; reading it fails
      later if it is not an image).
    * A folder is searched recursively; its image files
      (:data:`IMG_EXTENSIONS`, case-insensitive) are kept in sorted order,
      every other file is reported with a warning naming it and skipped.
    * A pattern with ``*``, ``?`` or ``[`` that is not an existing path is
      a glob (``**`` recursive); its matches are sorted and expanded as
      above.

    Duplicates are dropped (first occurrence kept).

    Args:
        inputs (str | Sequence[str]): Paths, folders or patterns.

    Returns:
        list[str]: Image files, in input order.

    Raises:
        FileNotFoundError: A path that does not exist or a pattern that
            matches nothing (named in the message).
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out = []
    for item in map(str, inputs):
        if osp.isdir(item):
            out += _scan_folder(item)
        elif osp.isfile(item):
            out.append(item)
        elif any(ch in item for ch in '*?['):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise FileNotFoundError(f'No file matches {item!r}')
            for path in matches:
                out += _scan_folder(path) if osp.isdir(path) else (
                    [path] if is_image_file(path) else [])
        else:
            raise FileNotFoundError(f'No such file or folder: {item!r}')
    return list(dict.fromkeys(out))


def inference_model_cfg(model_cfg: dict) -> dict:
    """The model config to build for inference: a
    ``MaskedSupervisedClassifier`` becomes the plain ``ImageClassifier`` it
    extends (same ``predict`` and state-dict keys; no mask source is
    built); any other model is kept as it is."""
    return plain_classifier_cfg(model_cfg)


def _config_classes(cfg: Config) -> Optional[List[str]]:
    """Class names of the config's test (else val, train) dataset."""
    from mmpretrain.registry import DATASETS
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset') or {}
        classes = (dataset.get('metainfo') or {}).get('classes')
        if classes is None and dataset.get('type'):
            with DefaultScope.overwrite_default_scope('mmpretrain'):
                dataset_cls = DATASETS.get(dataset['type'])
            metainfo = getattr(dataset_cls, 'METAINFO', None) or {}
            classes = metainfo.get('classes')
        if classes is not None:
            if isinstance(classes, str):  # a file with one name per line
                from mmengine.fileio import list_from_file
                classes = list_from_file(classes)
            return [str(c) for c in classes]
    return None


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None,
               strict: bool = True) -> torch.nn.Module:
    """Build a classifier from a config and load a checkpoint.

    The model is built as :func:`inference_model_cfg` says (an MSL model as
    its plain ``ImageClassifier``), in eval mode on ``device``, with the
    (merged) config as ``model.cfg`` and the class names as
    ``model.dataset_meta['classes']``: from the checkpoint's
    ``meta.dataset_meta`` (written by mmengine's Runner), else the config's
    dataset (``metainfo`` or the dataset type's ``METAINFO``), else
    ``class_0, class_1, ...``.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Checkpoint file or URL; None keeps the
            initial (random) weights.
        device (str): ``'cpu'``, ``'cuda'``, ``'cuda:1'`` ...
        cfg_options (dict, optional): Overrides merged into the config.
        strict (bool): Refuse a checkpoint whose keys or shapes do not match
            the model. Defaults to True.

    Returns:
        torch.nn.Module: The model.
    """
    import mmmsl  # noqa: F401  (registers MSL components)
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(config) if isinstance(config, str) else \
        Config(config.to_dict() if isinstance(config, Config) else config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model_cfg = inference_model_cfg(cfg.model)
    if model_cfg.get('data_preprocessor') is None and cfg.get(
            'data_preprocessor') is not None:
        model_cfg['data_preprocessor'] = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(model_cfg)
    dataset_meta = {}
    if checkpoint is not None:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu',
                               strict=strict)
        dataset_meta = dict(ckpt.get('meta', {}).get('dataset_meta') or {})
    else:
        warnings.warn('init_model: no checkpoint, the weights are random')
    classes = dataset_meta.get('classes') or _config_classes(cfg)
    num_classes = getattr(getattr(model, 'head', None), 'num_classes', None)
    if classes is None:
        if num_classes is None:
            raise ValueError('Cannot tell the number of classes: no class '
                             'names in the checkpoint or config and no '
                             'model.head.num_classes')
        classes = [f'class_{i}' for i in range(num_classes)]
    classes = [str(c) for c in classes]
    if num_classes is not None and num_classes != len(classes):
        raise ValueError(f'The model has {num_classes} classes but the class '
                         f'names ({"checkpoint" if dataset_meta else "config"})'
                         f' are {len(classes)}: {classes}')
    dataset_meta['classes'] = classes
    model.cfg = cfg
    model.dataset_meta = dataset_meta
    return model.to(device).eval()


def decode_scores(scores: Sequence[float],
                  classes: Sequence[str],
                  thresholds: np.ndarray,
                  topk: Optional[int] = None) -> List[dict]:
    """The labels of one image (see the module doc for the semantics).

    Args:
        scores (Sequence[float]): Sigmoid scores, shape (C, ).
        classes (Sequence[str]): Class names, shape (C, ).
        thresholds (np.ndarray): Per-class thresholds, shape (C, ).
        topk (int, optional): Keep at most this many labels.

    Returns:
        list[dict]: ``{'label', 'index', 'score'}`` per label, best first.
    """
    scores = np.asarray(scores, dtype=np.float64)
    hits = np.flatnonzero(scores >= thresholds)
    hits = hits[np.argsort(-scores[hits], kind='stable')]
    if topk is not None:
        hits = hits[:topk]
    return [
        dict(label=classes[i], index=int(i), score=float(scores[i]))
        for i in hits
    ]


class MultiLabelInferencer:
    """Run a multi-label classifier on images; one record per image.

    Images go through the config's test pipeline
    (``test_dataloader.dataset.pipeline``): its ``LoadImageFromFile`` step
    reads path inputs (numpy inputs, BGR as cv2 loads them, skip it), the
    rest runs unchanged; scores are the ``pred_score`` of ``model.predict``.

    Args:
        model (str | Config | torch.nn.Module): Config (file), or a model
            from :func:`init_model`.
        checkpoint (str, optional): Checkpoint, with a config.
        device (str): Device. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Config overrides.
    """

    def __init__(self,
                 model: Union[str, Config, torch.nn.Module],
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 cfg_options: Optional[dict] = None):
        if not isinstance(model, torch.nn.Module):
            model = init_model(model, checkpoint, device, cfg_options)
        self.model = model.eval()
        self.cfg = model.cfg
        self.classes = list(model.dataset_meta['classes'])
        self.load, self.pipeline = self._build_pipeline(self.cfg)
        # The test pipeline after loading, split at its packing step: the
        # image before packing is the model's input, where a test-time mask
        # goes (as tools/test.py --mask puts it).
        self._steps = self._test_steps(self.cfg)[1]
        self._stages = {}

    @staticmethod
    def _test_steps(cfg: Config) -> Tuple[dict, List[dict]]:
        """The test pipeline's ``LoadImageFromFile`` config (a default one
        if it has none) and its other steps."""
        steps = list(cfg.test_dataloader.dataset.pipeline)
        load_cfg = dict(type='LoadImageFromFile')
        for i, step in enumerate(steps):
            if step_type(step) == 'LoadImageFromFile':
                load_cfg = steps.pop(i)
                break
        return load_cfg, steps

    @classmethod
    def _build_pipeline(cls, cfg: Config) -> Tuple[Callable, Callable]:
        from mmpretrain.registry import TRANSFORMS
        load_cfg, steps = cls._test_steps(cfg)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            load = TRANSFORMS.build(load_cfg)
            rest = Compose([TRANSFORMS.build(t) for t in steps])
        return load, rest

    def _stage(self, mask: Union[None, str, Sequence[float]] = None,
               mask_seed: int = EVAL_MASK_SEED) -> Tuple[Callable, Callable]:
        """``(pre, pack)``: the test pipeline (after loading) up to its
        packing step, with the held-out mask step of
        :func:`~mmmsl.apis.robustness.insert_test_mask` at its end when
        ``mask`` is given, and the rest."""
        key = None if mask is None else (str(mask), int(mask_seed))
        if key not in self._stages:
            from mmpretrain.registry import TRANSFORMS
            steps = self._steps if mask is None else insert_test_mask(
                self._steps, self.cfg, mask, mask_seed, keep_key=KEEP_KEY)
            # With a mask the mask step is the last one before packing.
            i = pack_index(steps)
            with DefaultScope.overwrite_default_scope('mmpretrain'):
                self._stages[key] = (
                    Compose([TRANSFORMS.build(t) for t in steps[:i]]),
                    Compose([TRANSFORMS.build(t) for t in steps[i:]]))
        return self._stages[key]

    def read(self, item: InputType, index: int = 0) -> dict:
        """Load one input into a pipeline results dict (``img`` BGR)."""
        if isinstance(item, np.ndarray):
            img = item if item.ndim == 3 else np.stack([item] * 3, -1)
            return dict(img=img, img_shape=img.shape[:2],
                        ori_shape=img.shape[:2], sample_idx=index)
        try:
            results = self.load(dict(img_path=item, sample_idx=index))
        except Exception as e:  # cv2/mmcv raise various types
            raise ValueError(f'Cannot read image {item}: {e}') from e
        if results is None or results.get('img') is None:
            raise ValueError(f'Cannot read image {item}')
        return results

    def model_input(self,
                    results: dict,
                    mask: Union[None, str, Sequence[float]] = None,
                    mask_seed: int = EVAL_MASK_SEED) -> Tuple[dict, dict]:
        """Run the test pipeline on one loaded results dict.

        With ``mask``, the image is masked where ``tools/test.py --mask``
        masks it: after the pipeline's resize and crop, right before
        packing, with the fixed held-out mask of ``(mask_seed,
        results['sample_idx'])`` and holes of the pixel value the
        preprocessor maps to the model's ``fill``
        (:func:`~mmmsl.apis.robustness.hole_fill_pixels`). The same config,
        seed and index give the same masked model input in both tools.

        Returns:
            tuple[dict, dict]: The packed sample (``inputs``,
            ``data_samples``) and the results just before packing: its
            ``img`` is the model's input (BGR), masked with ``mask``, and
            then ``'msl_test_keep'`` is the keep mask ``(H, W)`` uint8 of
            that image, 1 keep / 0 hole.
        """
        pre, pack = self._stage(mask, mask_seed)
        staged = pre(dict(results))
        if staged is None:
            raise ValueError('The test pipeline dropped the image '
                             f"{results.get('img_path', '(array)')}")
        return pack(dict(staged)), staged

    @torch.no_grad()
    def predict_scores(self, results: Sequence[dict],
                       mask: Union[None, str, Sequence[float]] = None,
                       mask_seed: int = EVAL_MASK_SEED) -> np.ndarray:
        """Scores of a batch of loaded results dicts, shape (N, C) (of the
        masked inputs with ``mask``, see :meth:`model_input`)."""
        return self._forward(
            [self.model_input(r, mask, mask_seed)[0] for r in results])

    @torch.no_grad()
    def _forward(self, packed: Sequence[dict]) -> np.ndarray:
        samples = self.model.test_step(pseudo_collate(list(packed)))
        return torch.stack([s.pred_score.float().cpu()
                            for s in samples]).numpy()

    def iter_predictions(
        self,
        inputs: Union[InputType, Sequence[InputType]],
        thr: ThresholdType = 0.5,
        topk: Optional[int] = None,
        batch_size: int = 8,
        mask: Union[None, str, Sequence[float]] = None,
        mask_seed: int = EVAL_MASK_SEED,
        progress: bool = False,
    ) -> Iterator[Tuple[dict, Dict[str, np.ndarray]]]:
        """Like :meth:`__call__`, one image at a time, with its pixels.

        Yields:
            tuple[dict, dict]: The record and its pixels: ``'clean'`` (BGR,
            as loaded) and ``'input'`` (the model's input: the image after
            the test pipeline's resize and crop, before packing), plus with
            ``mask`` ``'masked'`` (that input masked, as the model saw it,
            see :meth:`model_input`) and ``'keep'`` (its keep mask, 1 keep
            / 0 hole).
        """
        if isinstance(inputs, (str, np.ndarray, os.PathLike)):
            inputs = [inputs]
        items = [x if isinstance(x, np.ndarray) else str(x) for x in inputs]
        thresholds = resolve_thresholds(thr, self.classes)
        if topk is not None and int(topk) < 1:
            raise ValueError(f'topk={topk} must be >= 1')
        bar = ProgressBar(len(items), file=sys.stderr) if progress else None
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            loaded = [self.read(x, start + i) for i, x in enumerate(chunk)]
            clean = [self.model_input(r) for r in loaded]
            scores = self._forward([c[0] for c in clean])
            if mask is not None:
                masked = [self.model_input(r, mask, mask_seed)
                          for r in loaded]
                masked_scores = self._forward([m[0] for m in masked])
            for i, (item, res) in enumerate(zip(chunk, loaded)):
                name = item if isinstance(item, str) else \
                    f'array_{start + i}'
                record = dict(
                    image=name,
                    labels=decode_scores(scores[i], self.classes, thresholds,
                                         topk),
                    scores=[float(s) for s in scores[i]])
                images = dict(clean=res['img'], input=clean[i][1]['img'])
                if mask is not None:
                    staged = masked[i][1]
                    keep = staged[KEEP_KEY]
                    record['masked'] = dict(
                        removed=float(1 - keep.mean()),
                        labels=decode_scores(masked_scores[i], self.classes,
                                             thresholds, topk),
                        scores=[float(s) for s in masked_scores[i]])
                    images.update(masked=staged['img'], keep=keep)
                if bar is not None:
                    bar.update()
                yield record, images
        if bar is not None:
            sys.stderr.write('\n')

    def __call__(self,
                 inputs: Union[InputType, Sequence[InputType]],
                 thr: ThresholdType = 0.5,
                 topk: Optional[int] = None,
                 batch_size: int = 8,
                 mask: Union[None, str, Sequence[float]] = None,
                 mask_seed: int = EVAL_MASK_SEED,
                 progress: bool = False) -> List[dict]:
        """Predict the labels of images.

        Args:
            inputs (str | np.ndarray | Sequence): Image paths or BGR arrays
                (expand folders and globs with :func:`expand_inputs` first).
            thr (float | Sequence[float] | dict): One threshold, one per
                class, or ``{class_name: thr}`` for every class (see
                :func:`mmmsl.apis.thresholds.resolve_thresholds`).
            topk (int, optional): At most this many labels per image (the
                best of those at or above their thresholds).
            batch_size (int): Images per forward. Defaults to 8.
            mask (str | tuple, optional): Also predict on the image masked
                with a fixed held-out mask (``'high'``, ``'low'`` or
                ``(lo, hi)`` removed), as ``record['masked']``: the model
                input masked as by ``tools/test.py --mask`` (see
                :meth:`model_input`).
            mask_seed (int): Seed of those masks (mask of image ``i`` fixed
                by ``(mask_seed, i)``).
            progress (bool): Show a progress bar on stderr.

        Returns:
            list[dict]: Per image ``{'image': path (or 'array_i'),
            'labels': [{'label', 'index', 'score'}, ...] (best first),
            'scores': [C floats]}``; with ``mask`` also ``'masked':
            {'removed', 'labels', 'scores'}``.
        """
        return [
            record for record, _ in self.iter_predictions(
                inputs, thr, topk, batch_size, mask, mask_seed, progress)
        ]


def inference_multilabel(model: torch.nn.Module,
                         inputs: Union[InputType, Sequence[InputType]],
                         thr: ThresholdType = 0.5,
                         topk: Optional[int] = None,
                         batch_size: int = 8) -> List[dict]:
    """Functional form: ``MultiLabelInferencer(model)(inputs, ...)`` for a
    model from :func:`init_model`."""
    return MultiLabelInferencer(model)(inputs, thr, topk, batch_size)
