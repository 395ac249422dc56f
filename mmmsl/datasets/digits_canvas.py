"""Canvases of overlapping handwritten digits (pure numpy / cv2, seeded).

``sklearn.datasets.load_digits()`` ships 1,797 real 8x8 handwritten digits
(values 0..16) with scikit-learn itself, so nothing is downloaded. A canvas
holds a few upscaled digits that may occlude each other; its labels are the
set of digit classes on it. Nothing here knows about datasets, registries or
files: :class:`mmmsl.datasets.DigitsMultiLabel` caches what
:func:`compose_split` returns.
"""
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

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
#: Each split draws its canvases from its own random stream of the seed.
SPLIT_STREAMS = {'train': 1, 'test': 2}


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


def visible_fractions(images: np.ndarray, src_indices: Sequence[int],
                      boxes: Sequence[Sequence[int]],
                      canvas_size: int) -> np.ndarray:
    """The visible fraction of each digit of one canvas, by replaying its
    paste order.

    A digit's ink pixels (value >= :data:`INK_THRESHOLD` after
    :func:`render_digit` at its box size) are visible unless the ink of a
    digit pasted later covers them: exactly the count
    :func:`make_canvases` checks against ``min_visible``. The replay needs
    only what a cache keeps (source indices and boxes), so it gives the
    fractions of any cached canvas without regenerating it.

    Args:
        images (np.ndarray): Source digits, shape (M, 8, 8), indexed by
            ``src_indices``.
        src_indices (Sequence[int]): The canvas's digits, in paste order.
        boxes (Sequence[Sequence[int]]): Their ``[x1, y1, x2, y2]`` boxes.
        canvas_size (int): The canvas side.

    Returns:
        np.ndarray: float64 (K, ) fractions in (0, 1]; the last digit's is 1.
    """
    owner = np.full((canvas_size, canvas_size), -1, np.int16)
    ink_pixels = []
    for k, (src, (x1, y1, x2, y2)) in enumerate(zip(src_indices, boxes)):
        ink = render_digit(images[src], x2 - x1) >= INK_THRESHOLD
        owner[y1:y2, x1:x2][ink] = k
        ink_pixels.append(int(ink.sum()))
    shown = np.bincount(owner[owner >= 0], minlength=len(ink_pixels))
    return shown / np.maximum(ink_pixels, 1)


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


def compose_split(split: str,
                  num_samples: int,
                  seed: int = 0,
                  canvas_size: int = 64,
                  num_digits: Sequence[int] = (2, 4),
                  digit_size: Sequence[int] = (16, 32),
                  min_visible: float = 0.4) -> tuple:
    """Compose the canvases of one split (what ``DigitsMultiLabel`` caches).

    The split's source digits come from :func:`split_source_indices`, its
    random stream from ``SeedSequence([seed, SPLIT_STREAMS[split]])``, so
    equal arguments give equal canvases and the two splits never share a
    source digit.

    Args:
        split (str): ``'train'`` or ``'test'``.
        num_samples (int): Number of canvases.
        seed (int): Seed of the canvas composition. Defaults to 0.
        canvas_size, num_digits, digit_size, min_visible: As in
            :func:`make_canvases`.

    Returns:
        tuple: ``canvases`` uint8 array (num_samples, canvas_size,
        canvas_size, 3), ``label_sets`` (sorted class lists), ``src_idx``
        (lists of indices into ``load_digit_sources()``, in paste order) and
        ``boxes`` (lists of ``[x1, y1, x2, y2]``, aligned with ``src_idx``).
    """
    assert split in SPLIT_STREAMS, \
        f"split must be one of {list(SPLIT_STREAMS)}, got '{split}'"
    images, labels = load_digit_sources()
    pool = split_source_indices(len(images))[split]
    rng = np.random.default_rng(
        np.random.SeedSequence([int(seed), SPLIT_STREAMS[split]]))
    canvases, label_sets, srcs, boxes = make_canvases(
        images[pool], labels[pool], int(num_samples), rng,
        canvas_size=int(canvas_size),
        num_digits=tuple(int(v) for v in num_digits),
        digit_size=tuple(int(v) for v in digit_size),
        min_visible=float(min_visible),
        return_boxes=True)
    src_idx: List[List[int]] = [[int(pool[s]) for s in kept]
                                for kept in srcs]
    return canvases, label_sets, src_idx, boxes
