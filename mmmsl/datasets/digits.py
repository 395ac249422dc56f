"""``DigitsMultiLabel``: the offline multi-label demo dataset.

The canvases come from :mod:`mmmsl.datasets.digits_canvas` (pure numpy /
cv2, seeded); this module caches one split of them as PNG files plus an
OpenMMLab 2.0 ``ann.json`` and serves them as a :class:`MultiLabelDataset`.
"""
import hashlib
import os
import os.path as osp
import shutil
import tempfile
from typing import List, Optional, Sequence

import cv2
import mmengine
import numpy as np
import mmengine.dist as dist
from mmpretrain.datasets import MultiLabelDataset
from mmpretrain.registry import DATASETS

from .digits_canvas import (GENERATOR_VERSION, INK_THRESHOLD, MAX_TRIES,
                            SPLIT_SEED, SPLIT_STREAMS, TRAIN_FRACTION,
                            compose_split, load_digit_sources,
                            visible_fractions)
from .digits_style import STYLE_VERSION, apply_style, check_style
from .instances import instance_arrays

DEFAULT_NUM_SAMPLES = {'train': 4000, 'test': 1000}


@DATASETS.register_module()
class DigitsMultiLabel(MultiLabelDataset):
    """Multi-label handwritten digits: the offline MSL demo and benchmark.

    Canvases are composed by :func:`.digits_canvas.compose_split` from the
    real 8x8 handwritten digits shipped with scikit-learn (no download); the
    labels of a canvas are the classes ``'0'..'9'`` of the digits on it.
    Train and test canvases draw from disjoint source digits (a fixed
    2/3 : 1/3 split, independent of ``seed``). Test canvases use a random
    stream derived from ``seed`` different from the train one.

    The split is generated once and cached as PNG files plus an OpenMMLab 2.0
    style ``ann.json`` (which records the generation parameters under
    ``metainfo.params``) in ``{data_root}/{split}-s{seed}-n{num_samples}-
    {hash}/``, where ``hash`` covers all parameters: equal parameters reuse
    the cache, different ones generate a new folder. A folder is written
    under a temporary name and renamed when complete, so an interrupted
    generation is never trusted. In distributed runs the main process
    generates while the others wait.

    Each data info has ``img_path``, ``gt_label``, ``src_idx`` (indices into
    ``sklearn.datasets.load_digits()`` of the digits on the canvas) and
    ``boxes`` (their ``[x1, y1, x2, y2]``), so the usual pipeline
    ``LoadImageFromFile -> ... -> PackInputs`` applies as for VOC. It also
    has the instance arrays of the digits, in paste order
    (:mod:`mmmsl.datasets.instances`): ``gt_bboxes`` (``boxes``),
    ``gt_bboxes_labels`` (their classes), ``gt_areas`` (the box area,
    side squared) and ``gt_visible``, the exact share of each digit's ink
    pixels not covered by the ink of digits pasted later
    (:func:`.digits_canvas.visible_fractions`, replayed from the cached
    ``src_idx`` and ``boxes`` when the split is loaded, so caches written
    before need no regeneration).

    Args:
        data_root (str): Cache folder. Defaults to ``'data/digits'``.
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        num_samples (int, optional): Number of canvases. Defaults to None,
            meaning 4000 for train and 1000 for test.
        seed (int): Seed of the canvas composition. Defaults to 0.
        canvas_size (int): Canvas side in pixels. Defaults to 64.
        num_digits (Sequence[int]): Inclusive range of digits drawn per
            canvas. Defaults to (2, 4).
        digit_size (Sequence[int]): Inclusive range of the digit side in
            pixels. Defaults to (16, 32).
        min_visible (float): Minimum visible fraction of each digit's ink;
            digits that cannot be placed so are dropped. Defaults to 0.4.
        style (str): ``'gray'`` (white ink on black, the demo) or
            ``'clutter'`` (one colour per digit over a smooth colour field
            crossed by thin lines, the second benchmark;
            :mod:`.digits_style`). The style only repaints: labels, boxes
            and visible shares are those of the gray canvas. Defaults to
            ``'gray'``.
        **kwargs: Other keyword arguments of :class:`MultiLabelDataset`
            (``pipeline``, ``test_mode``, ``lazy_init``, ...).

    Examples:
        >>> from mmpretrain.registry import DATASETS
        >>> import mmmsl.datasets.digits  # noqa: F401
        >>> ds = DATASETS.build(dict(type='DigitsMultiLabel', split='test'))
        >>> len(ds), ds.get_cat_ids(0)
        (1000, [...])
    """

    METAINFO = {'classes': tuple(str(i) for i in range(10))}

    def __init__(self,
                 data_root: str = 'data/digits',
                 split: str = 'train',
                 num_samples: Optional[int] = None,
                 seed: int = 0,
                 canvas_size: int = 64,
                 num_digits: Sequence[int] = (2, 4),
                 digit_size: Sequence[int] = (16, 32),
                 min_visible: float = 0.4,
                 style: str = 'gray',
                 **kwargs):
        assert split in SPLIT_STREAMS, \
            f"split must be one of {list(SPLIT_STREAMS)}, got '{split}'"
        check_style(style)
        if num_samples is None:
            num_samples = DEFAULT_NUM_SAMPLES[split]
        self.split = split
        self.params = dict(
            version=GENERATOR_VERSION,
            split=split,
            num_samples=int(num_samples),
            seed=int(seed),
            canvas_size=int(canvas_size),
            num_digits=[int(v) for v in num_digits],
            digit_size=[int(v) for v in digit_size],
            min_visible=float(min_visible),
            split_seed=SPLIT_SEED,
            train_fraction=TRAIN_FRACTION,
            ink_threshold=INK_THRESHOLD,
            max_tries=MAX_TRIES)
        if style != 'gray':  # so that the gray caches written before stay
            self.params.update(style=style, style_version=STYLE_VERSION)
        digest = hashlib.sha1(
            mmengine.dump(self.params, file_format='json',
                          sort_keys=True).encode()).hexdigest()
        self.cache_name = f'{split}-s{seed}-n{num_samples}-{digest[:10]}'
        super().__init__(
            ann_file=osp.join(self.cache_name, 'ann.json'),
            data_root=osp.expanduser(data_root),
            data_prefix=dict(img_path=self.cache_name),
            **kwargs)

    @property
    def cache_dir(self) -> str:
        """The folder holding this split's PNG files and ``ann.json``."""
        return osp.join(self.data_root, self.cache_name)

    def _cache_valid(self) -> bool:
        """Whether a complete cache with equal parameters exists."""
        ann_file = osp.join(self.cache_dir, 'ann.json')
        if not osp.isfile(ann_file):
            return False
        try:
            ann = mmengine.load(ann_file, file_format='json')
        except (OSError, ValueError):
            return False
        if not isinstance(ann, dict):  # valid json, but not an ann file
            return False
        num = len(ann.get('data_list', ()))
        return (ann.get('metainfo', {}).get('params') == self.params
                and num == self.params['num_samples'])

    def generate(self) -> None:
        """Generate this split into :attr:`cache_dir` (atomically)."""
        p = self.params
        canvases, label_sets, srcs, boxes = compose_split(
            self.split, p['num_samples'], p['seed'],
            canvas_size=p['canvas_size'],
            num_digits=p['num_digits'],
            digit_size=p['digit_size'],
            min_visible=p['min_visible'])
        canvases = apply_style(p.get('style', 'gray'), self.split, p['seed'],
                               canvases, srcs, boxes)

        os.makedirs(self.data_root, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f'.{self.cache_name}.tmp-',
                               dir=self.data_root)
        try:
            data_list = []
            for i, canvas in enumerate(canvases):
                name = f'{i:06d}.png'
                if not cv2.imwrite(osp.join(tmp, name), canvas):
                    raise OSError(f'cannot write {osp.join(tmp, name)}')
                data_list.append(
                    dict(img_path=name, gt_label=label_sets[i],
                         src_idx=srcs[i], boxes=boxes[i]))
            metainfo = dict(classes=list(self.METAINFO['classes']), params=p)
            mmengine.dump(dict(metainfo=metainfo, data_list=data_list),
                          osp.join(tmp, 'ann.json'))
            if osp.exists(self.cache_dir) and not self._cache_valid():
                shutil.rmtree(self.cache_dir)  # stale or foreign content
            try:
                os.rename(tmp, self.cache_dir)
            except OSError:
                if not self._cache_valid():  # else: a concurrent writer won
                    raise
        finally:
            if osp.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)

    def load_data_list(self) -> List[dict]:
        """Generate the cache if needed, then load ``ann.json``."""
        if dist.is_main_process() and not self._cache_valid():
            self.generate()
        dist.barrier()
        if not self._cache_valid():  # e.g. data_root not shared across nodes
            self.generate()
        data_list = super().load_data_list()
        images, labels = load_digit_sources()
        size = self.params['canvas_size']
        for info in data_list:
            srcs, boxes = info['src_idx'], info['boxes']
            sides = [x2 - x1 for x1, _, x2, _ in boxes]
            info.update(
                instance_arrays(
                    boxes, labels[srcs], np.square(sides),
                    visible_fractions(images, srcs, boxes, size)))
        return data_list

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        p = self.params
        return [
            f'Split: \t{self.split}',
            f'Cache folder: \t{self.cache_dir}',
            f'Seed: \t{p["seed"]}',
            f'Canvas size: \t{p["canvas_size"]}',
            f'Digits per canvas: \t{p["num_digits"]}',
            f'Digit size: \t{p["digit_size"]}',
            f'Min visible ink: \t{p["min_visible"]}',
            f'Style: \t{p.get("style", "gray")}',
        ]
