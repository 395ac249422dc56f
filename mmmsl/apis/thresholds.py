"""Per-class thresholds; a file of them is JSON ``{"thresholds": {class:
thr, ...}, ...}`` for every class, from ``tools/analysis/tune_thresholds.py``
for ``tools/infer.py --thr-file``."""
from collections.abc import Mapping
from numbers import Number

import mmengine
import numpy as np

FALLBACK_THRESHOLD = 0.5  #: of a class without a positive (or valid) sample


def class_f1_curve(scores, labels):
    """One class's distinct scores, decreasing, and the F1 of ``score >=
    t`` at each: ``(N, )`` scores and 0/1 labels -> ``(K, )``, ``(K, )``."""
    order = np.argsort(-np.asarray(scores, np.float64), kind='stable')
    s, y = np.asarray(scores, np.float64)[order], np.asarray(labels)[order]
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True))  # tie ends
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + positives)
    return s[last], 2 * np.cumsum(y == 1)[last] / (last + 1 + (y == 1).sum())


def tune_class_thresholds(scores, labels, fallback=FALLBACK_THRESHOLD):
    """Per class of ``(N, C)`` scores and labels (1, 0, -1: left out) the
    distinct score with the best F1 of ``score >= thr``, the highest of
    ties; ``fallback`` for a class without positives."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(f'scores {scores.shape} and labels {labels.shape} '
                         'must both be (N, C)')
    if not np.isin(labels, (-1, 0, 1)).all():
        raise ValueError('labels must be 1 (positive), 0 (negative) or -1 '
                         '(ignored)')
    curves = [class_f1_curve(s[y >= 0], y[y >= 0]) if (y == 1).any() else
              None for s, y in zip(scores.T, labels.T)]
    return np.array([float(fallback) if c is None else c[0][np.argmax(c[1])]
                     for c in curves])  # the first best: the highest thr


def resolve_thresholds(thr, classes):
    """``(C, )`` thresholds of one for all, one per class, or ``{class:
    thr}`` naming every class (a ValueError names unknown and missing)."""
    classes = [str(c) for c in classes]
    if isinstance(thr, Number):
        return np.full(len(classes), float(thr))
    if isinstance(thr, Mapping):
        thr = {str(k): float(v) for k, v in thr.items()}
        unknown = [k for k in thr if k not in classes]
        missing = [c for c in classes if c not in thr]
        if unknown or missing:
            raise ValueError(f'Per-class thresholds: unknown classes {unknown}'
                             f', no threshold for classes {missing} (the '
                             f'model has {len(classes)}: {classes})')
        return np.array([thr[c] for c in classes])
    values = np.asarray(thr, dtype=np.float64).reshape(-1)
    if values.size != len(classes):
        raise ValueError(f'Per-class thresholds: got {values.size} values '
                         f'for {len(classes)} classes')
    return values


def load_thresholds(path, classes):
    """The ``(C, )`` thresholds of a threshold file for ``classes``."""
    data = mmengine.load(path, file_format='json')
    if not isinstance(data, dict) or not isinstance(data.get('thresholds'),
                                                    dict):
        raise ValueError(f'{path}: expected a JSON object with a '
                         '"thresholds" object {class_name: threshold}')
    try:
        return resolve_thresholds(data['thresholds'], classes)
    except ValueError as e:
        raise ValueError(f'{path}: {e}') from None


def save_thresholds(path, thresholds, classes, extra=None):
    """Write (and return) a threshold file, ``extra``'s fields after."""
    if len(thresholds) != len(classes):
        raise ValueError(f'{len(thresholds)} thresholds, {len(classes)} '
                         'classes')
    data = {'thresholds': dict(zip(map(str, classes), map(float, thresholds))),
            **(extra or {})}
    mmengine.dump(data, path, file_format='json', indent=2)
    return data
