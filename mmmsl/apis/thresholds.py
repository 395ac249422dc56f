"""Per-class decision thresholds of a multi-label classifier.

A threshold file is JSON::

    {"thresholds": {"cat": 0.41, "dog": 0.63, ...},   # one per class, required
     "f1": {...}, "num_positives": {...}, ...}          # information only

written by ``tools/analysis/tune_thresholds.py`` (:func:`save_thresholds`)
and read by ``tools/infer.py --thr-file`` (:func:`load_thresholds`).
"""
import json
from numbers import Number
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np

#: Threshold of a class that has no positive (or no valid) sample.
FALLBACK_THRESHOLD = 0.5

ThresholdType = Union[float, Sequence[float], Mapping[str, float]]


def class_f1_curve(scores: np.ndarray, labels: np.ndarray):
    """F1 of one class at each of its distinct scores used as threshold.

    A sample is predicted positive when ``score >= threshold``.

    Args:
        scores (np.ndarray): Scores of the valid samples, shape (N, ).
        labels (np.ndarray): Their labels in {0, 1}, shape (N, ).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``thresholds`` (the distinct scores,
        in decreasing order) and ``f1`` at each of them, both of shape
        (K, ).
    """
    order = np.argsort(-scores, kind='stable')
    s, y = scores[order], labels[order].astype(np.float64)
    tp = np.cumsum(y)
    # The last position of each group of equal scores: a threshold equal to
    # that score predicts the whole group positive.
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    tp = tp[last]
    num_pred = last + 1.0
    num_pos = y.sum()
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + positives)
    f1 = 2 * tp / np.maximum(num_pred + num_pos, 1e-12)
    return s[last], f1


def tune_class_thresholds(scores: np.ndarray,
                          labels: np.ndarray,
                          fallback: float = FALLBACK_THRESHOLD) -> np.ndarray:
    """For every class, the threshold that maximises that class's F1.

    Candidates are the distinct scores of the class (a sample is positive
    when ``score >= thr``). Among candidates with the same best F1 the
    **highest** threshold is chosen (fewest false positives). A class
    without any positive sample (its F1 is 0 at every threshold), or whose
    labels are all ignored, gets ``fallback``.

    Args:
        scores (np.ndarray): Sigmoid scores, shape (N, C).
        labels (np.ndarray): Ground truth, shape (N, C): 1 positive,
            0 negative; -1 (e.g. VOC "difficult") excludes that sample from
            that class's F1.

    Returns:
        np.ndarray: Thresholds, shape (C, ), float64.

    Examples:
        >>> tune_class_thresholds(np.array([[.9], [.8], [.3], [.2]]),
        ...                       np.array([[1], [0], [1], [0]]))
        array([0.3])
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(f'scores {scores.shape} and labels {labels.shape} '
                         'must both be (N, C)')
    if not np.isin(labels, (-1, 0, 1)).all():
        raise ValueError('labels must be 1 (positive), 0 (negative) or -1 '
                         '(ignored)')
    thresholds = np.full(scores.shape[1], float(fallback))
    for c in range(scores.shape[1]):
        valid = labels[:, c] >= 0
        y = labels[valid, c]
        if not (y == 1).any():
            continue
        cand, f1 = class_f1_curve(scores[valid, c], y)
        thresholds[c] = cand[int(np.argmax(f1))]  # first = highest thr
    return thresholds


def class_f1(scores: np.ndarray, labels: np.ndarray,
             thresholds: np.ndarray) -> np.ndarray:
    """Per-class F1 of ``score >= thr`` (0 for a class without positives or
    predictions; labels -1 ignored). Shapes (N, C), (N, C), (C, ) -> (C, ).
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    valid = labels >= 0
    pred = (scores >= np.asarray(thresholds)[None]) & valid
    pos = (labels == 1)
    tp = (pred & pos).sum(0)
    denom = pred.sum(0) + pos.sum(0)
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def resolve_thresholds(thr: ThresholdType,
                       classes: Sequence[str]) -> np.ndarray:
    """One threshold per class from a scalar, a sequence or a mapping.

    Args:
        thr (float | Sequence[float] | Mapping[str, float]): The same
            threshold for every class, one per class in class order, or
            ``{class_name: thr}`` covering every class exactly.
        classes (Sequence[str]): Class names, in score order.

    Returns:
        np.ndarray: Thresholds, shape (C, ).

    Raises:
        ValueError: A sequence of the wrong length, or a mapping with
            unknown or missing class names (all of them are named).
    """
    classes = [str(c) for c in classes]
    if isinstance(thr, Number):
        return np.full(len(classes), float(thr))
    if isinstance(thr, Mapping):
        keys = [str(k) for k in thr]
        unknown = [k for k in keys if k not in classes]
        missing = [c for c in classes if c not in keys]
        if unknown or missing:
            msg = []
            if unknown:
                msg.append(f'unknown classes {unknown}')
            if missing:
                msg.append(f'no threshold for classes {missing}')
            raise ValueError('Per-class thresholds: ' + '; '.join(msg) +
                             f' (the model has {len(classes)} classes: '
                             f'{classes})')
        by_name = {str(k): float(v) for k, v in thr.items()}
        return np.array([by_name[c] for c in classes])
    values = np.asarray(thr, dtype=np.float64).reshape(-1)
    if values.size != len(classes):
        raise ValueError(f'Per-class thresholds: got {values.size} values '
                         f'for {len(classes)} classes')
    return values


def load_thresholds(path: str, classes: Sequence[str]) -> np.ndarray:
    """Read a threshold file (see the module doc) for ``classes``.

    Returns:
        np.ndarray: Thresholds in class order, shape (C, ).
    """
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(
            data.get('thresholds'), dict):
        raise ValueError(f'{path}: expected a JSON object with a '
                         '"thresholds" object {class_name: threshold}')
    try:
        return resolve_thresholds(data['thresholds'], classes)
    except ValueError as e:
        raise ValueError(f'{path}: {e}') from None


def save_thresholds(path: str,
                    thresholds: Sequence[float],
                    classes: Sequence[str],
                    extra: Optional[Dict] = None) -> dict:
    """Write a threshold file that :func:`load_thresholds` reads.

    Args:
        path (str): Output ``.json``.
        thresholds (Sequence[float]): One per class, shape (C, ).
        classes (Sequence[str]): Class names, in score order.
        extra (dict, optional): More top-level fields (``f1``, sources...).

    Returns:
        dict: What was written.
    """
    if len(thresholds) != len(classes):
        raise ValueError(f'{len(thresholds)} thresholds for '
                         f'{len(classes)} classes')
    data = dict(thresholds={
        str(c): float(t)
        for c, t in zip(classes, thresholds)
    })
    data.update(extra or {})
    with open(path, 'w') as f:
        json.dump(data, f, indent=2)
    return data
