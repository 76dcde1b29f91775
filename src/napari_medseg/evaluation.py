"""Measures for interactive segmentation: IoU and the standard click simulation.

The click simulation is the one interactive segmentation papers use (RITM,
SimpleClick): the next click goes to the innermost point of the largest error
region, positive where the object was missed, negative where background was
taken. Training and benchmarks share it so they measure the same thing.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["iou", "match_instances", "next_click"]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def next_click(pred: np.ndarray, truth: np.ndarray) -> tuple[tuple[int, ...], bool] | None:
    """Where a user would click next to correct ``pred`` towards ``truth``.

    Parameters
    ----------
    pred, truth : ndarray of bool, same shape (2D or 3D)

    Returns
    -------
    (point, positive) or None
        The innermost point (farthest from the region's border) of the largest
        error region, and whether it is a missed object pixel (a positive
        click). None when there is no error.
    """
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    best = None
    for positive, error in ((True, truth & ~pred), (False, pred & ~truth)):
        components, n = ndi.label(error)
        if not n:
            continue
        sizes = np.bincount(components.ravel())[1:]
        k = int(np.argmax(sizes)) + 1
        if best is None or sizes[k - 1] > best[0]:
            best = (sizes[k - 1], components == k, positive)
    if best is None:
        return None
    _, region, positive = best
    # The image border counts as a border of the region, hence the padding.
    distance = ndi.distance_transform_edt(np.pad(region, 1))[(slice(1, -1),) * region.ndim]
    point = np.unravel_index(int(np.argmax(distance)), region.shape)
    return tuple(int(v) for v in point), positive


def match_instances(pred: np.ndarray, truth: np.ndarray,
                    threshold: float = 0.5) -> tuple[int, int, int]:
    """Match predicted to true instances at IoU > ``threshold``: (TP, FP, FN).

    For thresholds of 0.5 and above a match is unique (two objects cannot both
    overlap a third by more than half), so no assignment problem arises; below
    0.5 pairs are taken best first, one-to-one.

    F1 = 2 TP / (2 TP + FP + FN); AP as in the DSB2018 / StarDist papers is
    TP / (TP + FP + FN).
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    n_pred, n_true = len(np.unique(pred[pred > 0])), len(np.unique(truth[truth > 0]))
    both = (pred > 0) & (truth > 0)
    pairs, inter = np.unique(np.stack([pred[both], truth[both]]), axis=1, return_counts=True)
    area_p = dict(zip(*np.unique(pred[pred > 0], return_counts=True), strict=True))
    area_t = dict(zip(*np.unique(truth[truth > 0], return_counts=True), strict=True))
    scores = [i / (area_p[p] + area_t[t] - i) for (p, t), i in zip(pairs.T, inter, strict=True)]
    used_p, used_t, tp = set(), set(), 0
    for k in np.argsort(scores)[::-1]:
        p, t = pairs[:, k]
        if scores[k] <= threshold:
            break
        if p not in used_p and t not in used_t:
            used_p.add(p)
            used_t.add(t)
            tp += 1
    return tp, n_pred - tp, n_true - tp
