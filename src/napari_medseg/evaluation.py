"""Measures for interactive segmentation: IoU and the standard click simulation.

The click simulation is the one interactive segmentation papers use (RITM,
SimpleClick): the next click goes to the innermost point of the largest error
region, positive where the object was missed, negative where background was
taken. Training and benchmarks share it so they measure the same thing.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["innermost_point", "iou", "match_annotated", "match_instances", "matches",
           "next_click", "overlaps", "seam_splits", "touching_pairs"]


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
    if pred.shape != truth.shape or pred.ndim == 0:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} must be masks of one "
                         "shape.")
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
    return innermost_point(region), positive


def innermost_point(mask: np.ndarray) -> tuple[int, ...]:
    """The point of ``mask`` farthest from its border (the image's edge counts as one):
    where a user clicks on an object or an error region.

    Examples
    --------
    >>> mask = np.zeros((5, 9), bool); mask[1:4, 2:7] = True
    >>> innermost_point(mask)
    (2, 3)
    """
    mask = np.asarray(mask, bool)
    distance = ndi.distance_transform_edt(np.pad(mask, 1))[(slice(1, -1),) * mask.ndim]
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(distance)), mask.shape))


def touching_pairs(labels: np.ndarray, limit: int | None = None) -> list[tuple[int, int]]:
    """Pairs of objects that share a face, the longest contact first: the merges a
    segmentation makes and the splits a proofreader undoes.

    Examples
    --------
    >>> labels = np.array([[1, 1, 2], [3, 0, 2]])
    >>> touching_pairs(labels)
    [(1, 2), (1, 3)]
    """
    labels = np.asarray(labels)
    contacts: dict[tuple[int, int], int] = {}
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)
        left, right = a[:-1].ravel(), a[1:].ravel()
        touch = (left > 0) & (right > 0) & (left != right)
        pairs, counts = np.unique(np.sort(np.stack([left[touch], right[touch]]), axis=0),
                                  axis=1, return_counts=True)
        for (u, v), n in zip(pairs.T.tolist(), counts.tolist(), strict=True):
            contacts[(u, v)] = contacts.get((u, v), 0) + n
    ranked = sorted(contacts, key=lambda pair: (-contacts[pair], pair))
    return ranked if limit is None else ranked[:limit]


def overlaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of overlapping objects of two label maps of one shape, with its IoU.

    Parameters
    ----------
    a, b : ndarray of int, same shape
        Label maps (0 = background).

    Returns
    -------
    ids_a, ids_b : ndarray of int64, shape (K,)
        The ids of each overlapping pair.
    iou : ndarray of float64, shape (K,)

    Examples
    --------
    >>> overlaps(np.array([1, 1, 2, 0]), np.array([3, 3, 3, 3]))
    (array([1, 2]), array([3, 3]), array([0.5 , 0.25]))
    """
    a, b = _label_map(a, "a"), _label_map(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"label maps of shapes {a.shape} and {b.shape} cannot be compared.")
    a, b = a.ravel(), b.ravel()
    top = max(int(a.max(initial=0)), int(b.max(initial=0)))
    if top < _DENSE_IDS:  # ids small enough to index by: counting is fastest
        a, b = a.astype(np.int64), b.astype(np.int64)
        both = (a > 0) & (b > 0)
        width = top + 1
        keys, inter = np.unique(a[both] * width + b[both], return_counts=True)
        ids_a, ids_b = keys // width, keys % width
        area_a, area_b = np.bincount(a, minlength=width), np.bincount(b, minlength=width)
        return ids_a, ids_b, inter / (area_a[ids_a] + area_b[ids_b] - inter)
    # dense codes of the ids: any id values (uint64 too) and no id-sized allocations
    values_a, code_a = np.unique(a, return_inverse=True)
    values_b, code_b = np.unique(b, return_inverse=True)
    both = (a > 0) & (b > 0)
    width = values_b.size
    keys, inter = np.unique(code_a[both].astype(np.int64) * width + code_b[both],
                            return_counts=True)
    pair_a, pair_b = keys // width, keys % width
    area_a, area_b = np.bincount(code_a.ravel()), np.bincount(code_b.ravel())
    iou = inter / (area_a[pair_a] + area_b[pair_b] - inter)
    return (values_a[pair_a].astype(np.int64), values_b[pair_b].astype(np.int64), iou)


_DENSE_IDS = 1 << 24


def _label_map(labels, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype.kind not in "biu":
        raise ValueError(f"{name} must be a label map of integers, got dtype {labels.dtype}.")
    return labels


def matches(a: np.ndarray, b: np.ndarray, threshold: float,
            inclusive: bool = False) -> dict[int, int]:
    """One-to-one pairs of objects of ``a`` and ``b`` with IoU above ``threshold`` (or
    at it, ``inclusive``), best pairs first: ``{id in a: id in b}``.

    For thresholds of 0.5 and above a match is unique (two objects cannot both
    overlap a third by more than half); below, the best-first order decides.
    """
    ids_a, ids_b, scores = overlaps(a, b)
    taken_a, taken_b = {}, set()
    for k in np.argsort(-scores, kind="stable"):
        if scores[k] < threshold or (scores[k] == threshold and not inclusive):
            break
        p, t = int(ids_a[k]), int(ids_b[k])
        if p not in taken_a and t not in taken_b:
            taken_a[p] = t
            taken_b.add(t)
    return taken_a


def match_instances(pred: np.ndarray, truth: np.ndarray,
                    threshold: float = 0.5) -> tuple[int, int, int]:
    """Match predicted to true instances at IoU > ``threshold``: (TP, FP, FN).

    F1 = 2 TP / (2 TP + FP + FN); AP as in the DSB2018 / StarDist papers is
    TP / (TP + FP + FN).

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2]])
    >>> match_instances(np.array([[5, 5, 0, 0, 7]]), truth)
    (1, 1, 1)
    """
    pred, truth = _label_map(pred, "pred"), _label_map(truth, "truth")
    n_pred, n_true = len(np.unique(pred[pred > 0])), len(np.unique(truth[truth > 0]))
    tp = len(matches(pred, truth, threshold))
    return tp, n_pred - tp, n_true - tp


def match_annotated(pred: np.ndarray, truth: np.ndarray, background_label: int | None = None,
                    threshold: float = 0.5) -> tuple[int, int, int]:
    """:func:`match_instances` against sparse annotations: ``truth`` 0 is *not annotated*,
    ``background_label`` is checked background, other ids are checked objects.

    A checked object is found (TP) when a predicted object matches it at IoU >
    ``threshold``, else missed (FN); a predicted object that matches none counts as false
    (FP) only where the annotations judge it: more than half of it on checked background or
    objects. Predicted objects in unannotated parts are left out. Without
    ``background_label`` every pixel is annotated (:func:`match_instances`).

    Examples
    --------
    >>> truth = np.array([[1, 1, 9, 9, 0, 0]])  # object 1, checked background 9
    >>> match_annotated(np.array([[3, 3, 4, 0, 5, 5]]), truth, background_label=9)
    (1, 1, 0)
    """
    if background_label is None:
        return match_instances(pred, truth, threshold)
    pred, truth = _label_map(pred, "pred"), _label_map(truth, "truth")
    objects = np.where(truth == background_label, 0, truth)
    tp = len(matches(pred, objects, threshold))
    ids, area = np.unique(pred[pred > 0], return_counts=True)
    on = np.unique(pred[(pred > 0) & (truth > 0)], return_counts=True)
    judged = np.isin(ids, on[0][on[1] * 2 > area[np.searchsorted(ids, on[0])]])
    return tp, int(judged.sum()) - tp, len(np.unique(objects[objects > 0])) - tp


def seam_splits(reference: np.ndarray, labels: np.ndarray, block_shape: tuple[int, ...]
                ) -> int:
    """How many objects of ``reference`` that cross a block seam ``labels`` splits there:
    no object of ``labels`` matches one at IoU above 0.5, and two or more, on different
    sides of the seam, each hold at least a fifth of it.

    Measures blockwise segmentation against the whole image's: objects segmented
    differently (a watershed line moved) match at IoU above 0.5 or are not covered by
    parts on both sides of a seam, so they are not counted.

    Parameters
    ----------
    reference, labels : ndarray of int, same shape
    block_shape : tuple of int
        The blocks' shape; seams lie at its multiples.

    Examples
    --------
    >>> whole = np.zeros((4, 8), int); whole[1:3, 2:6] = 1
    >>> cut = whole.copy(); cut[:, 4:] *= 2
    >>> seam_splits(whole, cut, (4, 4)), seam_splits(whole, whole, (4, 4))
    (1, 0)
    """
    from scipy import ndimage as ndi

    reference, labels = _label_map(reference, "reference"), _label_map(labels, "labels")
    ids_r, _, iou = overlaps(reference, labels)
    matched = set(ids_r[iou > 0.5].tolist())
    areas = np.bincount(reference.ravel().astype(np.int64))
    splits = 0
    for index, box in enumerate(ndi.find_objects(reference), start=1):
        if box is None or index in matched:
            continue
        crossing = [a for a, s, b in zip(range(len(box)), box, block_shape, strict=True)
                    if s.start // b != (s.stop - 1) // b]
        if not crossing:
            continue
        inside = reference[box] == index
        parts, counts = np.unique(labels[box][inside], return_counts=True)
        big = [p for p, c in zip(parts, counts, strict=True) if p and c >= areas[index] / 5]
        sides = {tuple(int(np.median(np.nonzero((labels[box] == p) & inside)[a])
                           + box[a].start) // block_shape[a] for a in crossing) for p in big}
        splits += len(big) >= 2 and len(sides) >= 2
    return splits
