"""Shape-based interpolation of label maps between annotated slices.

An annotator outlines an object on some slices; the slices in between are filled
by blending signed distance maps of the two nearest annotated slices. Plain
blending erodes shapes that move between slices (a disk shifted by its own
radius blends into a thin lens), so each matched pair of connected components is
first moved along the straight line between their centroids and blended where
they coincide. Components without a partner (an object that splits, merges,
starts or ends) shrink to, or grow from, their centroid.

All work happens in the bounding box of one object at a time, so the cost
follows the annotated objects, not the volume.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from napari_medseg._image import distance_to_edge
from napari_medseg.chunk_edits import ChunkEdits
from napari_medseg.runtime import run_steps
from napari_medseg.validation import as_axis, as_integers, as_label_array, is_zarr_array

__all__ = [
    "InterpolationReport",
    "interpolate_labels",
    "interpolate_labels_with_report",
    "interpolation_steps",
]

# Margin (pixels) around an object's bounding box, so distance maps see background.
_PAD = 2
_EIGHT_CONNECTED = np.ones((3, 3), bool)


@dataclass
class InterpolationReport:
    """What :func:`interpolate_labels_with_report` filled.

    Attributes
    ----------
    filled : dict of int to list of int
        For each label id, the indices (along the interpolation axis) of the
        slices it was written into.
    skipped : dict of int to str
        Requested ids that were not interpolated, with the reason.
    """

    filled: dict[int, list[int]] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)

    @property
    def n_filled(self) -> int:
        """Total number of (label, slice) pairs filled."""
        return sum(len(v) for v in self.filled.values())


def interpolate_labels(
    labels: np.ndarray,
    axis: int = 0,
    label_ids: Iterable[int] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> np.ndarray:
    """Fill the slices between annotated slices of each label by shape interpolation.

    Parameters
    ----------
    labels : ndarray of int or zarr.Array, shape (..., Z, Y, X)
        3D label image, or 4D with ``axis`` choosing the interpolation axis (the
        other leading axis, e.g. time, is processed volume by volume). 0 is background.
        A zarr array (labels that may not fit in memory) is edited in place: one pass
        over its chunks finds every object's bounding box, then each object reads and
        writes only the chunks its slices span; nothing is written until all objects
        are done (the chunks changed are held in memory until then).
    axis : int
        Axis along which slices are interpolated; the last two other axes form the slice plane.
    label_ids : iterable of int, optional
        Ids to interpolate; all ids present if None.
    overwrite : bool
        If False (default), filled voxels only replace background. If True they
        also replace other ids (never the slices annotated for the id itself).
    progress : bool
        Show a progress bar (objects done) in a terminal or notebook.

    Returns
    -------
    ndarray or zarr.Array
        A new array of the same shape and dtype, ``labels`` not modified; for zarr
        labels, ``labels`` itself, filled.
        For every id, each slice strictly between two slices containing the id
        is filled; slices outside the id's first and last annotated slice stay as they were.

    Raises
    ------
    ValueError
        For non-integer or negative labels, fewer than 3 dimensions, an out-of-range
        axis, or a zarr array opened read-only (refused before any work).

    Examples
    --------
    >>> sparse = np.zeros((9, 32, 32), np.uint8)
    >>> sparse[0, 8:20, 8:20] = 1  # an object annotated on slices 0 and 8
    >>> sparse[8, 12:24, 12:24] = 1
    >>> filled = interpolate_labels(sparse, axis=0)
    >>> int(filled[4].sum()), int(filled[4, 16, 16])
    (144, 1)
    """
    return interpolate_labels_with_report(labels, axis, label_ids, overwrite, progress)[0]


def interpolate_labels_with_report(
    labels: np.ndarray,
    axis: int = 0,
    label_ids: Iterable[int] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[np.ndarray, InterpolationReport]:
    """Like :func:`interpolate_labels`, also returning which slices were filled per id.

    Examples
    --------
    >>> sparse = np.zeros((9, 32, 32), np.uint8)
    >>> sparse[[0, 8], 8:20, 8:20] = 1
    >>> filled, report = interpolate_labels_with_report(sparse)
    >>> report.filled, report.n_filled
    ({1: [1, 2, 3, 4, 5, 6, 7]}, 7)
    """
    if is_zarr_array(labels) and labels.read_only:
        raise ValueError("labels is a zarr array opened read-only; open it with mode='r+' "
                         "to interpolate it in place.")
    out, report = run_steps(interpolation_steps(labels, axis, label_ids, overwrite),
                            progress="Interpolating" if progress else None)
    if isinstance(out, ChunkEdits):  # zarr labels: written once everything is computed
        out.write()
        return labels, report
    return out, report


def interpolation_steps(
    labels: np.ndarray,
    axis: int = 0,
    label_ids: Iterable[int] | None = None,
    overwrite: bool = False,
) -> Generator[tuple[int, int], None, tuple[np.ndarray, InterpolationReport]]:
    """Generator form of :func:`interpolate_labels_with_report` for progress and cancelling.

    Yields ``(done, total)`` object counts as it goes and returns ``(labels, report)``;
    closing it early stops the work with ``labels`` untouched. For zarr labels the first
    item is a :class:`~napari_medseg.chunk_edits.ChunkEdits` of them, not yet written.
    """
    labels = as_label_array(labels, ndims=(3, 4), chunked=True)
    axis = as_axis(axis, labels.ndim)
    requested = None if label_ids is None else sorted(set(as_integers(
        list(label_ids) if isinstance(label_ids, set | frozenset) else label_ids,
        "label_ids", minimum=1)))
    chunked = is_zarr_array(labels)
    report = InterpolationReport()
    # Work in a frame with the interpolation axis first and the slice plane last:
    # (K, batch..., Y, X); at most one batch axis (4D).
    plane = [a for a in range(labels.ndim) if a != axis][-2:]
    batch = [a for a in range(labels.ndim) if a != axis and a not in plane]
    order = [axis, *batch, *plane]
    if chunked:
        out = ChunkEdits(labels)
        n_batch = labels.shape[batch[0]] if batch else 1
        src = [_Frame(labels, order, b if batch else None) for b in range(n_batch)]
        dst = [_Frame(out, order, b if batch else None) for b in range(n_batch)]
        boxes = _chunked_boxes(labels, order, n_batch)
    else:
        out = labels.copy()
        if labels.size == 0 or not labels.any():
            return out, report
        whole = labels.transpose(order).reshape(labels.shape[axis], -1,
                                                *(labels.shape[a] for a in plane))
        target = out.transpose(order).reshape(whole.shape)
        if not np.shares_memory(target, out):  # reshape had to copy: write back below
            target = target.copy()
        src = [whole[:, b] for b in range(whole.shape[1])]
        dst = [target[:, b] for b in range(whole.shape[1])]
        # boxes of every id per volume: one pass each; an id is present if it has one
        boxes = [_bounding_boxes(v, int(v.max())) for v in src]
    present = sorted(set().union(*boxes))
    if requested is None:
        wanted = present
    else:
        wanted = sorted(set(requested) & set(present))
        report.skipped.update({i: "not present" for i in requested if i not in wanted})
    jobs = [(b, label, boxes[b][label]) for b in range(len(boxes)) for label in wanted
            if label in boxes[b]]
    total = len(jobs)

    def shapes(job):
        b, label, box = job
        return _object_shapes(src[b], label, box)

    # shapes are computed on both cores (scipy's transforms release the GIL) from the
    # labels as given and written in id order, so the result is the serial one
    for done, ((b, label, _), found) in enumerate(_in_parallel(shapes, jobs), start=1):
        slices = _write_shapes(dst[b], label, found, overwrite)
        if slices:
            report.filled.setdefault(label, []).extend(slices)
        yield done, total

    if not chunked and not np.shares_memory(target, out):
        out[...] = target.reshape([labels.shape[a] for a in order]).transpose(np.argsort(order))
    for label in list(report.filled):
        report.filled[label] = sorted({int(s) for s in report.filled[label]})
    for label in wanted:
        if label not in report.filled and label not in report.skipped:
            report.skipped[label] = "no gap between annotated slices"
    return out, report


def _in_parallel(fn, jobs: list) -> Generator:
    """``(job, fn(job))`` in the order of ``jobs``, computed by a pool of threads (one per
    core) a few jobs ahead; closing the generator waits for at most those few."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    workers = min(os.cpu_count() or 1, max(len(jobs), 1))
    if workers == 1:
        yield from ((job, fn(job)) for job in jobs)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending = [(job, pool.submit(fn, job)) for job in jobs[:2 * workers]]
        queued = len(pending)
        try:
            while pending:
                job, future = pending.pop(0)
                if queued < len(jobs):
                    pending.append((jobs[queued], pool.submit(fn, jobs[queued])))
                    queued += 1
                yield job, future.result()
        finally:
            for _, future in pending:
                future.cancel()


def _bounding_boxes(volume: np.ndarray, top: int) -> dict[int, tuple[slice, ...]]:
    """Bounding box of every id up to ``top`` in a (K, Y, X) volume."""
    if top == 0:
        return {}
    if top < min(1 << 20, volume.size // 16):  # find_objects lists every id up to top
        found = ndi.find_objects(volume, max_label=top)
        return {i + 1: box for i, box in enumerate(found) if box is not None}
    # Few voxels for many (or huge) ids: per id minima and maxima of the sorted voxels.
    flat = np.flatnonzero(volume)
    values = volume.ravel()[flat]
    by_id = np.argsort(values, kind="stable")
    values, coords = values[by_id], np.unravel_index(flat[by_id], volume.shape)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    lows = [np.minimum.reduceat(c, starts) for c in coords]
    highs = [np.maximum.reduceat(c, starts) for c in coords]
    return {int(values[i]): tuple(slice(int(lo[n]), int(hi[n]) + 1)
                                  for lo, hi in zip(lows, highs, strict=True))
            for n, i in enumerate(starts)}


def _chunked_boxes(labels, order: list[int], n_batch: int) -> list[dict[int, tuple[slice, ...]]]:
    """Per batch index, the (K, Y, X) bounding box of every id of a zarr label array:
    one pass over its chunks (on dask's threads), each read once and dropped."""
    import dask
    import dask.array as da

    blocks = da.from_zarr(labels)
    starts = [np.cumsum((0, *c[:-1])) for c in blocks.chunks]

    def boxes_of(block: np.ndarray, corner: tuple[int, ...]) -> list[tuple]:
        if block.dtype.kind == "i" and block.size and block.min() < 0:  # as numpy labels are
            raise ValueError(f"labels must not contain negative ids ({int(block.min())} in "
                             f"the chunk at {corner}).")
        block = block.transpose(order)
        frame = [corner[a] for a in order]
        if block.ndim == 3:
            block, frame = block[:, None], [frame[0], 0, *frame[1:]]
        found = []
        for j in range(block.shape[1]):
            local = block[:, j]
            for label, box in _bounding_boxes(local, int(local.max())).items():
                found.append((frame[1] + j, label, tuple(
                    slice(b.start + o, b.stop + o)
                    for b, o in zip(box, (frame[0], *frame[2:]), strict=True))))
        return found

    tasks = [dask.delayed(boxes_of)(block, tuple(int(s[i]) for s, i in zip(starts, key,
                                                                           strict=True)))
             for key, block in np.ndenumerate(blocks.to_delayed())]
    boxes: list[dict[int, tuple[slice, ...]]] = [{} for _ in range(n_batch)]
    for found in dask.compute(*tasks, scheduler="threads"):
        for b, label, box in found:
            old = boxes[b].get(label)
            boxes[b][label] = box if old is None else tuple(
                slice(min(p.start, q.start), max(p.stop, q.stop))
                for p, q in zip(old, box, strict=True))
    return boxes


class _Frame:
    """A (K, Y, X) volume of a zarr array (or its :class:`ChunkEdits`) in the
    interpolation's frame: axes in ``order`` (interpolation axis, batch, plane), the
    batch axis fixed at ``b``. Reads and writes regions ``[k or ks, ys, xs]``."""

    def __init__(self, array, order: list[int], b: int | None):
        self.array, self.order, self.b = array, order, b
        self.shape = tuple(array.shape[a] for a in order if b is None or a != order[1])

    def _placed(self, index) -> tuple[tuple, list[int]]:
        """``index`` in the array's axes, and the order that turns what it reads (the axes
        its slices keep, in the array's order) into the frame's."""
        frame = list(index) if self.b is None else [index[0], self.b, *index[1:]]
        where = [None] * len(self.order)
        for a, ix in zip(self.order, frame, strict=True):
            where[a] = ix
        kept = [a for a, ix in enumerate(where) if isinstance(ix, slice)]
        return tuple(where), [kept.index(a) for a in self.order if a in kept]

    def __getitem__(self, index) -> np.ndarray:
        where, to_frame = self._placed(index)
        return np.asarray(self.array[where]).transpose(to_frame)

    def __setitem__(self, index, values: np.ndarray) -> None:
        where, to_frame = self._placed(index)
        self.array[where] = np.asarray(values).transpose(np.argsort(to_frame))


def _object_shapes(volume, label, box) -> tuple[tuple[slice, slice], list]:
    """Interpolate one id inside its bounding box: the crop's ``(ys, xs)`` and a list of
    ``(slice index, mask)`` for the slices between its annotated ones."""
    kz, ky, kx = box
    ys = slice(max(ky.start - _PAD, 0), min(ky.stop + _PAD, volume.shape[1]))
    xs = slice(max(kx.start - _PAD, 0), min(kx.stop + _PAD, volume.shape[2]))
    crop = volume[kz, ys, xs] == label
    annotated = np.flatnonzero(crop.any(axis=(1, 2)))
    simple = {int(k): ndi.label(crop[k], _EIGHT_CONNECTED)[1] == 1 for k in annotated}
    found = []
    for i in range(len(annotated) - 1):
        a, b = annotated[i], annotated[i + 1]
        if b - a < 2:
            continue
        ks = np.arange(a + 1, b)
        # Four single-component slices around the gap: follow the object's curved
        # profile with a cubic; otherwise blend the matched components of the pair.
        around = [annotated[j] for j in (i - 1, i, i + 1, i + 2) if 0 <= j < len(annotated)]
        if all(simple[int(k)] for k in around):
            p = annotated[i - 1] if i > 0 else None
            n = annotated[i + 2] if i + 2 < len(annotated) else None
            shapes = interpolate_cubic(crop, p, a, b, n, ks)
        else:
            shapes = interpolate_pair(crop[a], crop[b], (ks - a) / (b - a))
        found.extend((kz.start + int(k), shape) for k, shape in zip(ks, shapes, strict=True))
    return (ys, xs), found


def _write_shapes(target, label, found, overwrite) -> list[int]:
    """Write :func:`_object_shapes`' masks; returns the slice indices written."""
    (ys, xs), shapes = found
    written = []
    for k, shape in shapes:
        region = target[k, ys, xs]
        allowed = shape & (region != label)
        if not overwrite:
            allowed &= region == 0
        if allowed.any():
            region[allowed] = label
            target[k, ys, xs] = region  # a view of numpy labels; a copy from zarr edits
            written.append(k)
    return written


def interpolate_pair(first: np.ndarray, last: np.ndarray, ts: np.ndarray) -> list[np.ndarray]:
    """Shapes between two 2D masks at fractions ``ts`` of the way from ``first`` to ``last``.

    Parameters
    ----------
    first, last : ndarray of bool, shape (Y, X)
        The annotated masks on either side (at least one non-empty).
    ts : ndarray of float, shape (T,)
        Positions in (0, 1).

    Returns
    -------
    list of ndarray of bool, shape (Y, X)
        One mask per entry of ``ts``; never empty when either input is non-empty.
    """
    blended = [np.full(first.shape, np.inf, np.float32) for _ in ts]
    for part_a, part_b in _match_components(first, last):
        for i, t in enumerate(ts):
            np.minimum(blended[i], _blend(part_a, part_b, float(t)), out=blended[i])
    shapes = []
    for field_ in blended:
        shape = field_ < 0
        if not shape.any() and np.isfinite(field_).any():
            shape = field_ <= field_.min()  # keep the most interior pixel(s)
        shapes.append(shape)
    return shapes


def interpolate_cubic(
    stack: np.ndarray, p: int | None, a: int, b: int, n: int | None, ks: np.ndarray
) -> list[np.ndarray]:
    """Shapes at slices ``ks`` between single-component slices ``a`` and ``b`` of ``stack``.

    Centroid positions and centroid-aligned signed distances follow a cubic Hermite
    curve whose tangents come from the neighbouring annotated slices ``p`` and ``n``
    (a secant where there is none), so growing-then-shrinking objects such as nuclei
    keep their rounded profile instead of the straight one of linear blending.
    """
    keys = [k for k in (p, a, b, n) if k is not None]
    centre = {k: _centroid(stack[k]) for k in keys}
    sdf = {k: _signed_distance(stack[k]) for k in keys}
    shapes = []
    for k in ks:
        weights = _hermite_weights(p, a, b, n, float(k))
        target = sum(w * centre[j] for j, w in weights.items())
        field_ = sum(
            w * ndi.shift(sdf[j], target - centre[j], order=1, mode="nearest")
            for j, w in weights.items()
        )
        shape = field_ < 0
        if not shape.any():
            shape = field_ <= field_.min()
        shapes.append(shape)
    return shapes


def _hermite_weights(p, a, b, n, x) -> dict[int, float]:
    """Weights of the slices in a cubic Hermite interpolant at position ``x`` in (a, b).

    Tangents are central differences over the neighbours (p, b) at ``a`` and (a, n)
    at ``b``; a missing neighbour gives the secant (b - a).
    """
    h = b - a
    t = (x - a) / h
    h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
    h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
    w: dict[int, float] = {a: h00, b: h01}
    # m_a = (S_b - S_p) / (b - p), m_b = (S_n - S_a) / (n - a); the curve adds h * h10 * m_a ...
    lo, hi = (p, b) if p is not None else (a, b)
    for j, c in ((hi, h * h10 / (hi - lo)), (lo, -h * h10 / (hi - lo))):
        w[j] = w.get(j, 0.0) + c
    lo, hi = (a, n) if n is not None else (a, b)
    for j, c in ((hi, h * h11 / (hi - lo)), (lo, -h * h11 / (hi - lo))):
        w[j] = w.get(j, 0.0) + c
    return w


def _blend(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Signed distance of the shape a fraction ``t`` from mask ``a`` to mask ``b``."""
    if a.any() and b.any():
        shift = _centroid(b) - _centroid(a)
        sa = ndi.shift(_signed_distance(a), t * shift, order=1, mode="nearest")
        sb = ndi.shift(_signed_distance(b), -(1 - t) * shift, order=1, mode="nearest")
        return (1 - t) * sa + t * sb
    # A component without a partner shrinks to (or grows from) its centroid.
    only, weight = (a, 1 - t) if a.any() else (b, t)
    yy, xx = np.indices(only.shape, dtype=np.float32)
    cy, cx = _centroid(only)
    cone = np.hypot(yy - cy, xx - cx)
    return weight * _signed_distance(only) + (1 - weight) * cone


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """Distance to the boundary, negative inside; the boundary sits half a pixel outside."""
    inside, outside = distance_to_edge(mask), distance_to_edge(~mask)
    return np.where(mask, 0.5 - inside, outside - 0.5).astype(np.float32)


def _centroid(mask: np.ndarray) -> np.ndarray:
    return np.array(np.nonzero(mask), dtype=np.float64).mean(axis=1)


def _match_components(a: np.ndarray, b: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pair up the connected components of two slices.

    Components are linked when they overlap once the whole of ``a`` is moved onto
    the whole of ``b`` (centroid to centroid); linked groups are blended as one
    shape, so splits and merges become one-to-many blends. Components overlapping
    nothing are matched to the nearest component of the other slice if it is
    closer than their size, otherwise they start or end between the slices.
    """
    la, na = ndi.label(a, _EIGHT_CONNECTED)
    lb, nb = ndi.label(b, _EIGHT_CONNECTED)
    if na == 0 or nb == 0:
        return [(a, np.zeros_like(b))] if na else [(np.zeros_like(a), b)]
    if na == 1 and nb == 1:
        return [(a, b)]
    dy, dx = np.rint(_centroid(b) - _centroid(a)).astype(int)
    moved = np.zeros_like(la)
    h, w = a.shape
    moved[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        la[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    both = (moved > 0) & (lb > 0)
    links = set(zip(moved[both].tolist(), lb[both].tolist(), strict=True))

    centres_a = ndi.center_of_mass(a, la, range(1, na + 1))
    centres_b = ndi.center_of_mass(b, lb, range(1, nb + 1))
    sizes_a = ndi.sum_labels(a, la, range(1, na + 1))
    sizes_b = ndi.sum_labels(b, lb, range(1, nb + 1))
    offset = np.array([dy, dx])
    for i in set(range(1, na + 1)) - {i for i, _ in links}:
        dist = [np.hypot(*(np.add(centres_a[i - 1], offset) - c)) for c in centres_b]
        j = int(np.argmin(dist))
        if dist[j] < 2 * np.sqrt(max(sizes_a[i - 1], sizes_b[j]) / np.pi):
            links.add((i, j + 1))
    for j in set(range(1, nb + 1)) - {j for _, j in links}:
        dist = [np.hypot(*(c - np.subtract(centres_b[j - 1], offset))) for c in centres_a]
        i = int(np.argmin(dist))
        if dist[i] < 2 * np.sqrt(max(sizes_a[i], sizes_b[j - 1]) / np.pi):
            links.add((i + 1, j))

    # Union-find over the bipartite links: a-components are 1..na, b-components na+1..na+nb.
    parent = list(range(na + nb + 1))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in links:
        parent[find(i)] = find(na + j)
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for i in range(1, na + 1):
        groups.setdefault(find(i), ([], []))[0].append(i)
    for j in range(1, nb + 1):
        groups.setdefault(find(na + j), ([], []))[1].append(j)
    return [(np.isin(la, ia), np.isin(lb, jb)) for ia, jb in groups.values()]
