"""Multi-label demo dataset composed from scikit-learn's handwritten digits.

``sklearn.datasets.load_digits()`` ships 1,797 real 8x8 handwritten digits
(values 0..16) with scikit-learn itself, so this dataset needs no download.
Each sample is a canvas holding a few upscaled digits that may occlude each
other; its labels are the set of digit classes on it.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import mmengine.dist as dist
import numpy as np
from mmpretrain.datasets import MultiLabelDataset
from mmpretrain.registry import DATASETS

#: Bump whenever the generator's output changes: old caches then regenerate.
GENERATOR_VERSION = 1
#: The source split is fixed (independent of ``seed``), so that train and
#: test datasets built from different configs can never share source digits.
SPLIT_SEED = 0
TRAIN_FRACTION = 2 / 3
#: A pixel of an upscaled digit (0..255) is "ink" from this value on.
INK_THRESHOLD = 64
#: Positions tried per digit before it is dropped.
MAX_TRIES = 20
DEFAULT_NUM_SAMPLES = {'train': 4000, 'test': 1000}
_SPLIT_STREAM = {'train': 1, 'test': 2}


def load_digit_sources() -> Tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's handwritten digits.

    Returns:
        tuple: ``images`` of shape (1797, 8, 8), float values in 0..16, and
        ``labels`` of shape (1797, ), int64 classes 0..9.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover
        raise ImportError('DigitsMultiLabel needs scikit-learn: '
                          '`pip install scikit-learn`.') from e
    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64)


def split_source_indices(num_total: int = 1797) -> Dict[str, np.ndarray]:
    """Split the source digits into disjoint train and test pools.

    A permutation seeded by :data:`SPLIT_SEED` is cut at
    :data:`TRAIN_FRACTION`; the split does not depend on the canvas seed.

    Args:
        num_total (int): Number of source digits. Defaults to 1797.

    Returns:
        dict: ``{'train': indices, 'test': indices}``, each sorted.
    """
    perm = np.random.default_rng(SPLIT_SEED).permutation(num_total)
    cut = int(round(num_total * TRAIN_FRACTION))
    return dict(train=np.sort(perm[:cut]), test=np.sort(perm[cut:]))


def render_digit(image: np.ndarray, size: int) -> np.ndarray:
    """Upscale one 8x8 digit (values 0..16) to a ``size`` x ``size`` uint8
    image (values 0..255, white ink on black) with bicubic interpolation."""
    img = cv2.resize(image * (255. / 16.), (size, size),
                     interpolation=cv2.INTER_CUBIC)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def make_canvases(
    images: np.ndarray,
    labels: np.ndarray,
    n: int,
    rng: np.random.Generator,
    canvas_size: int = 64,
    num_digits: Tuple[int, int] = (2, 4),
    digit_size: Tuple[int, int] = (16, 32),
    min_visible: float = 0.4,
    return_boxes: bool = False,
) -> tuple:
    """Compose multi-label canvases from single digits (pure, no files).

    For each canvas, ``k ~ U{num_digits}`` distinct source digits are drawn
    from ``images`` (duplicate *classes* are allowed; the label set dedups
    them). Each is upscaled to a random square size in ``digit_size`` and
    pasted, fully inside the canvas, at a random position, in order. A later
    digit overwrites the earlier pixels where its own ink (value >=
    :data:`INK_THRESHOLD`) is, elsewhere the maximum is kept (so anti-aliased
    edges blend without hiding ink). A position is accepted only if every
    digit already pasted keeps at least ``min_visible`` of its ink pixels
    uncovered; after :data:`MAX_TRIES` rejected positions the digit is
    dropped, leaves no pixel and adds no label. The first digit is never
    dropped, so each canvas holds at least one digit.

    Args:
        images (np.ndarray): Source digits, shape (M, 8, 8), values 0..16.
        labels (np.ndarray): Classes of ``images``, shape (M, ).
        n (int): Number of canvases.
        rng (np.random.Generator): Random generator, the only randomness.
        canvas_size (int): Canvas height and width. Defaults to 64.
        num_digits (tuple[int, int]): Inclusive range of digits drawn per
            canvas. Defaults to (2, 4).
        digit_size (tuple[int, int]): Inclusive range of the digit side in
            pixels. Defaults to (16, 32).
        min_visible (float): Minimum visible fraction of each digit's ink.
            Defaults to 0.4.
        return_boxes (bool): Also return the ``[x1, y1, x2, y2]`` box of each
            kept digit. Defaults to False.

    Returns:
        tuple: ``canvases`` uint8 array (n, canvas_size, canvas_size, 3)
        (gray, replicated to 3 BGR channels), ``label_sets`` (list of sorted
        class lists), ``src_indices`` (list of lists: indices into ``images``
        of the kept digits, in paste order) and, with ``return_boxes``,
        ``boxes`` (list of lists of boxes, aligned with ``src_indices``).
    """
    lo, hi = num_digits
    smin, smax = digit_size
    assert 1 <= lo <= hi <= len(images), f'bad num_digits {num_digits}'
    assert 1 <= smin <= smax <= canvas_size, f'bad digit_size {digit_size}'
    assert 0 <= min_visible <= 1, f'bad min_visible {min_visible}'

    canvases = np.zeros((n, canvas_size, canvas_size), np.uint8)
    label_sets, src_indices, all_boxes = [], [], []
    owner = np.empty((canvas_size, canvas_size), np.int16)
    for i in range(n):
        canvas = canvases[i]
        owner.fill(-1)  # index (in paste order) of the digit owning the ink
        srcs = rng.choice(len(images), rng.integers(lo, hi + 1), False)
        kept, boxes, visible, needed = [], [], [], []
        for src in srcs:
            size = int(rng.integers(smin, smax + 1))
            digit = render_digit(images[src], size)
            ink = digit >= INK_THRESHOLD
            for _ in range(MAX_TRIES):
                y, x = rng.integers(0, canvas_size - size + 1, 2)
                own = owner[y:y + size, x:x + size]
                lost = np.bincount(own[ink & (own >= 0)],
                                   minlength=len(kept))
                if np.all(np.subtract(visible, lost) >= needed):
                    break
            else:
                continue  # never reached for the first digit: nothing to hide
            region = canvas[y:y + size, x:x + size]
            region[...] = np.where(ink, digit, np.maximum(region, digit))
            own[ink] = len(kept)
            visible = list(np.subtract(visible, lost)) + [int(ink.sum())]
            needed.append(min_visible * visible[-1])
            kept.append(int(src))
            boxes.append([int(x), int(y), int(x) + size, int(y) + size])
        label_sets.append(sorted({int(labels[s]) for s in kept}))
        src_indices.append(kept)
        all_boxes.append(boxes)
    canvases = np.repeat(canvases[..., None], 3, axis=-1)
    if return_boxes:
        return canvases, label_sets, src_indices, all_boxes
    return canvases, label_sets, src_indices


@DATASETS.register_module()
class DigitsMultiLabel(MultiLabelDataset):
    """Multi-label handwritten digits: the offline MSL demo and benchmark.

    Canvases are composed by :func:`make_canvases` from the real 8x8
    handwritten digits shipped with scikit-learn (no download); the labels of
    a canvas are the classes ``'0'..'9'`` of the digits on it. Train and test
    canvases draw from disjoint source digits (:func:`split_source_indices`:
    a fixed 2/3 : 1/3 split, independent of ``seed``). Test canvases use a
    random stream derived from ``seed`` different from the train one.

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
    ``LoadImageFromFile -> ... -> PackInputs`` applies as for VOC.

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
                 **kwargs):
        assert split in _SPLIT_STREAM, \
            f"split must be one of {list(_SPLIT_STREAM)}, got '{split}'"
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
        digest = hashlib.sha1(
            json.dumps(self.params, sort_keys=True).encode()).hexdigest()
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
            with open(ann_file) as f:
                ann = json.load(f)
        except (OSError, ValueError):
            return False
        num = len(ann.get('data_list', ()))
        return (ann.get('metainfo', {}).get('params') == self.params
                and num == self.params['num_samples'])

    def generate(self) -> None:
        """Generate this split into :attr:`cache_dir` (atomically)."""
        p = self.params
        images, labels = load_digit_sources()
        pool = split_source_indices(len(images))[self.split]
        rng = np.random.default_rng(
            np.random.SeedSequence([p['seed'], _SPLIT_STREAM[self.split]]))
        canvases, label_sets, srcs, boxes = make_canvases(
            images[pool], labels[pool], p['num_samples'], rng,
            canvas_size=p['canvas_size'],
            num_digits=tuple(p['num_digits']),
            digit_size=tuple(p['digit_size']),
            min_visible=p['min_visible'],
            return_boxes=True)

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
                         src_idx=[int(pool[s]) for s in srcs[i]],
                         boxes=boxes[i]))
            metainfo = dict(classes=list(self.METAINFO['classes']), params=p)
            with open(osp.join(tmp, 'ann.json'), 'w') as f:
                json.dump(dict(metainfo=metainfo, data_list=data_list), f)
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
        return super().load_data_list()

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
        ]
