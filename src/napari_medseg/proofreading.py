"""Correct a segmentation object by object: delete, merge and split, reading only the
objects' regions.

A model's labels are corrected faster than drawn: a click deletes an object, clicks on
several merge them, a click in each part (or a line across it) splits one. Each function
finds the object under a point by growing a window around it until the object's
connected piece lies inside (so a click on a 64 x 1024 x 1024 stack reads a few
thousand voxels, and a zarr array only the chunks under the object), and returns a
:class:`LabelChange`: the voxels to write, their values before and after. Nothing is
written until :func:`apply_change` (or, in napari, one undo step). A click that finds
nothing to do (background, outside the image) returns an empty change whose
``message`` says why.

An object is the connected piece (face connectivity) of one id under the click: what the
user sees as one object. In a stack, edits are 3D.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy import ndimage as ndi

from napari_medseg._image import luminance
from napari_medseg.label_edit import label_maximum, record_label_maximum
from napari_medseg.validation import as_label_array, is_zarr_array

__all__ = ["CHECKED_BACKGROUND", "CHECKED_OBJECT", "LabelChange", "accept_object",
           "add_object", "apply_change", "checked_annotations", "delete_object",
           "merge_objects", "redo_object", "split_object"]

# values of a "checked" array beside the labels: what the user has confirmed
CHECKED_OBJECT, CHECKED_BACKGROUND = 1, 2

_START = 16  # half-width of the first window around a click, in voxels
# watershed compactness times the object's radius: 0.3 split 90-93% of 48 touching real
# nucleus pairs (DSB2018 training split) back at IoU > 0.75 (0.1-3 tried)
_COMPACTNESS = 0.3


@dataclass(frozen=True)
class LabelChange:
    """What an edit writes.

    Attributes
    ----------
    indices : tuple of ndarray of intp
        Fancy index into the label array, one ``(K,)`` array per dimension.
    old_values, new_values : ndarray, shape (K,)
        Values before and after.
    message : str
        What the edit does, or why it does nothing; for a status bar.
    """

    indices: tuple[np.ndarray, ...]
    old_values: np.ndarray
    new_values: np.ndarray
    message: str

    @property
    def n_changed(self) -> int:
        """Number of voxels the edit changes."""
        return int(self.old_values.size)


def delete_object(labels, point: Sequence[float]) -> LabelChange:
    """The object under ``point``, made background.

    Parameters
    ----------
    labels : ndarray of int or zarr.Array, shape (Y, X) or (Z, Y, X)
        Not modified.
    point : sequence of float
        A position in ``labels``' pixel coordinates (rounded).

    Returns
    -------
    LabelChange

    Examples
    --------
    >>> labels = np.zeros((8, 8), np.uint8); labels[1:4, 1:4] = 5
    >>> change = delete_object(labels, (2, 2))
    >>> change.n_changed, change.message
    (9, 'deleted object 5 (9 pixels)')
    >>> delete_object(labels, (6, 6)).message
    'no object at (6, 6): background'
    """
    labels = _checked(labels)
    found = _object(labels, point)
    if isinstance(found, str):
        return _nothing(labels, found)
    label, window, piece = found
    return _change(labels, window, piece, 0,
                   f"deleted object {label} ({int(piece.sum())} {_unit(labels)})", old=label)


def merge_objects(labels, points: Sequence[Sequence[float]]) -> LabelChange:
    """The objects under ``points`` made one, with the id of the first.

    Parameters
    ----------
    labels : ndarray of int or zarr.Array, shape (Y, X) or (Z, Y, X)
        Not modified.
    points : sequence of points
        Positions on the objects, the one to keep its id first; points on background
        or on the same object twice are passed over.

    Returns
    -------
    LabelChange
        Empty (with the reason) unless at least two objects are found.

    Examples
    --------
    >>> labels = np.zeros((6, 8), np.uint8); labels[1:5, 1:4] = 2; labels[1:5, 4:7] = 7
    >>> change = merge_objects(labels, [(2, 5), (2, 2)])
    >>> change.message, set(change.new_values.tolist())
    ('merged objects 7, 2 into 7', {7})
    """
    labels = _checked(labels)
    pieces, skipped = [], []
    for point in points:
        found = _object(labels, point)
        if isinstance(found, str):
            skipped.append(found)
        elif not any(_same(found, other) for other in pieces):
            pieces.append(found)
    if len(pieces) < 2:
        why = "; ".join(skipped) or "all points are on one object"
        return _nothing(labels, f"nothing to merge: {len(pieces)} object found ({why})")
    keep = pieces[0][0]
    parts = [_change(labels, window, piece, keep, "", old=label)
             for label, window, piece in pieces[1:]]
    ids = ", ".join(str(label) for label, _, _ in pieces)
    return LabelChange(tuple(np.concatenate([p.indices[d] for p in parts])
                             for d in range(labels.ndim)),
                       np.concatenate([p.old_values for p in parts]),
                       np.concatenate([p.new_values for p in parts]),
                       f"merged objects {ids} into {keep}")


def split_object(labels, seeds: Sequence[Sequence[float]], image=None, *,
                 line: bool = False) -> LabelChange:
    """The object under the seeds split into one part per seed (or, with ``line``, cut
    along the polyline through them), by a seeded watershed inside the object.

    Parameters
    ----------
    labels : ndarray of int or zarr.Array, shape (Y, X) or (Z, Y, X)
        Not modified.
    seeds : sequence of points
        With ``line=False``: a point in each part (at least two, on one object). With
        ``line=True``: the vertices of a line drawn across the object (at least two);
        in a stack the line lies in the (y, x) plane of its points and cuts the object
        through all its slices (a cut along z).
    image : ndarray, optional
        The image (or the model's foreground probability) of ``labels``' shape, or its
        colour image (``labels.shape + (3|4,)``, used as grey): the
        parts meet on its edges between the seeds (the gap between touching nuclei).
        Without it, they meet where the object is narrowest (distance transform).
    line : bool

    Returns
    -------
    LabelChange
        The first part keeps the object's id, the others get new ids after the array's
        largest. Empty (with the reason) if the seeds are not on one object or fewer than
        two parts result.

    Examples
    --------
    >>> labels = np.zeros((8, 15), np.uint8); labels[2:6, 1:14] = 1
    >>> change = split_object(labels, [(3, 2), (3, 12)])
    >>> change.message
    'split object 1 into 1, 2'
    """
    labels = _checked(labels)
    if image is not None:
        image = np.asarray(image) if not is_zarr_array(image) else image
        colour = image.shape[:-1] == labels.shape and image.shape[-1] in (3, 4)
        if image.shape != labels.shape and not colour:
            raise ValueError(f"image must have the labels' shape {labels.shape} (or be its "
                             f"colour image), got {image.shape}.")
    if len(seeds) < 2:
        return _nothing(labels, "a split needs at least two points"
                        + (" on a line across the object" if line else ", one in each part"))
    if line:
        found = _crossed(labels, seeds)
        if isinstance(found, str):
            return _nothing(labels, f"nothing to split: {found}")
        label, window, piece = found
        lo = np.array([s.start for s in window])
        cut = _line_mask(piece.shape, [np.asarray(p, float) - lo for p in seeds])
        markers, _ = ndi.label(piece & ~cut)
        # slivers the line shaves off a corner are not parts: the others flood them
        sizes = np.bincount(markers.ravel())
        small = np.flatnonzero(sizes < max(4, 0.02 * piece.sum()))
        markers[np.isin(markers, small[small > 0])] = 0
        if len(np.unique(markers[markers > 0])) < 2:
            return _nothing(labels, f"the line does not cut object {label} in two")
    else:
        found = [_object(labels, p) for p in seeds]
        if any(isinstance(f, str) for f in found):
            why = "; ".join(f for f in found if isinstance(f, str))
            return _nothing(labels, f"nothing to split: {why}")
        label, window, piece = found[0]
        if any(not _same(f, found[0]) for f in found[1:]):
            return _nothing(labels, "nothing to split: the points are on different objects")
        lo = np.array([s.start for s in window])
        markers = np.zeros(piece.shape, np.int32)
        for k, p in enumerate(seeds, start=1):
            markers[tuple(np.rint(np.asarray(p, float) - lo).astype(int))] = k
        if len(np.unique(markers[markers > 0])) < 2:
            return _nothing(labels, "a split needs two points in different places")
    region = None if image is None else np.asarray(image[window])
    if region is not None and region.ndim > labels.ndim:  # colour: only the window made grey
        region = luminance(region)
    parts = _watershed(piece, markers, region)
    # the part of the first click keeps the id (of a line's parts, the largest)
    first = (int(np.bincount(parts[piece]).argmax()) if line else
             int(parts[tuple(np.rint(np.asarray(seeds[0], float) - lo).astype(int))]))
    ids = [first] + [k for k in range(1, int(parts.max()) + 1) if k != first]
    top = label_maximum(labels)
    new_ids = {k: (label if n == 0 else top + n) for n, k in enumerate(ids)}
    if max(new_ids.values()) > np.iinfo(labels.dtype).max:
        return _nothing(labels, f"no free label ids left in a {labels.dtype} layer")
    lookup = np.zeros(int(parts.max()) + 1, labels.dtype)
    for k, v in new_ids.items():
        lookup[k] = v
    local = np.nonzero(piece & (lookup[parts] != label))
    indices = tuple(ix + a for ix, a in zip(local, lo, strict=True))
    return LabelChange(indices, np.full(local[0].size, label, labels.dtype),
                       lookup[parts][local],
                       f"split object {label} into {', '.join(map(str, new_ids.values()))}")


def redo_object(labels, image, point: Sequence[float],
                positive: Sequence[Sequence[float]] = (),
                negative: Sequence[Sequence[float]] = ()) -> LabelChange:
    """The object under ``point`` drawn again by box + click, its current mask the
    starting prior (not from scratch), refined by positive and negative clicks.

    The object keeps its id; what it loses becomes background and what it gains is
    taken from background only (other objects are never painted over).

    Parameters
    ----------
    labels : ndarray of int or zarr.Array, shape (Y, X)
        A 2D label image (a stack's displayed slice). Not modified.
    image : ndarray, shape (Y, X) or (Y, X, 3|4)
        The image on the same grid.
    point : (y, x)
        A click on the object.
    positive, negative : sequence of (y, x)
        Clicks on what belongs to it / what does not (a positive click beyond its box
        grows the box).

    Returns
    -------
    LabelChange

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, truth = nuclei_2d()
    >>> rough = np.where(truth == 1, 1, 0).astype(np.uint16)
    >>> rough[np.nonzero(truth == 1)[0].max()] = 0  # the model cut its bottom row off
    >>> change = redo_object(rough, image, (242, 108))
    >>> change.message.startswith("redrew object 1")
    True
    """
    from napari_medseg.box_segmentation import BoxSession, prior_box

    labels = _checked_2d(labels, "redo")
    found = _object(labels, point)
    if isinstance(found, str):
        return _nothing(labels, found)
    label, window, piece = found
    corner = tuple(s.start for s in window)
    session = _refined(BoxSession(image, prior_box(piece, corner), prior=piece,
                                  prior_offset=corner), positive, negative)
    region, old, new = _joined(labels, window, piece, session)
    values = np.asarray(labels[region])
    after = np.where(old & ~new, 0, values)
    after[new & ((values == 0) | old)] = label
    return _region_change(labels, region, values, after,
                          f"redrew object {label} ({int((after == label).sum())} "
                          f"{_unit(labels)}, was {int(piece.sum())})")


def add_object(labels, image, point: Sequence[float],
               positive: Sequence[Sequence[float]] = (),
               negative: Sequence[Sequence[float]] = (), label: int | None = None
               ) -> LabelChange:
    """A missed object added with one click (box + click's one-click mode: the nuclei model
    finds its extent), on background only, with the next free id unless ``label``.

    Parameters
    ----------
    labels : ndarray of int or zarr.Array, shape (Y, X)
        A 2D label image (a stack's displayed slice). Not modified.
    image : ndarray, shape (Y, X) or (Y, X, 3|4)
    point : (y, x)
        A click on the missed object (on background of ``labels``).
    positive, negative : sequence of (y, x)
        Correction clicks.
    label : int, optional
        Its id (default: larger than every id of ``labels``).

    Returns
    -------
    LabelChange
        Empty, saying why, for a click on an object or where the model finds none.

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, truth = nuclei_2d()
    >>> missed = np.where(truth == 1, 0, truth).astype(np.uint16)
    >>> change = add_object(missed, image, (242, 108))
    >>> change.message.startswith(f"added object {int(missed.max()) + 1}")
    True
    """
    from napari_medseg.point_segmentation import point_session

    labels = _checked_2d(labels, "add")
    p = np.asarray(point, float)
    if p.shape != (2,) or not np.isfinite(p).all():
        raise ValueError(f"a point must be 2 finite coordinates, got {point!r}.")
    at = tuple(int(v) for v in np.rint(p))
    if not all(0 <= v < n for v, n in zip(at, labels.shape, strict=True)):
        return _nothing(labels, f"{at} is outside the labels ({labels.shape})")
    if labels[at]:
        return _nothing(labels, f"object {int(labels[at])} is there already: redo it to "
                                "change it")
    try:
        session = _refined(point_session(image, at), positive, negative)
    except ValueError as err:  # no object under the click
        return _nothing(labels, str(err).rstrip("."))
    label = int(label) if label is not None else int(label_maximum(labels)) + 1
    region = tuple(slice(o, o + n) for o, n in zip(session.offset, session.mask.shape,
                                                    strict=True))
    values = np.asarray(labels[region])
    after = np.where(session.mask & (values == 0), label, values)
    return _region_change(labels, region, values, after,
                          f"added object {label} ({int((after == label).sum())} "
                          f"{_unit(labels)})")


def accept_object(labels, checked, point: Sequence[float]) -> LabelChange:
    """Mark the object under ``point`` as checked: a change to ``checked`` (the array beside
    the labels that records what the user confirmed), :data:`CHECKED_OBJECT` on the object's
    voxels. Checked objects and checked background (:data:`CHECKED_BACKGROUND`, painted)
    are what :func:`checked_annotations` trains on.

    Parameters
    ----------
    labels : ndarray of int or zarr.Array, shape (Y, X) or (Z, Y, X)
    checked : ndarray of int or zarr.Array, ``labels``' shape
        Not modified.
    point : sequence of float

    Returns
    -------
    LabelChange
        Indices into ``checked``.

    Examples
    --------
    >>> labels = np.zeros((6, 6), np.uint16); labels[1:3, 1:4] = 4
    >>> checked = np.zeros_like(labels, np.uint8)
    >>> change = accept_object(labels, checked, (1, 1))
    >>> change.n_changed, change.message
    (6, 'checked object 4')
    """
    labels, checked = _checked(labels), _checked(checked)
    if checked.shape != labels.shape:
        raise ValueError(f"checked must have the labels' shape {labels.shape}, got "
                         f"{checked.shape}.")
    found = _object(labels, point)
    if isinstance(found, str):
        return _nothing(checked, found)
    label, window, piece = found
    change = _change(checked, window, piece, CHECKED_OBJECT, f"checked object {label}")
    if not change.n_changed:
        return _nothing(checked, f"object {label} is checked already")
    return change


def checked_annotations(labels: np.ndarray, checked: np.ndarray, ring: int = 2
                        ) -> tuple[np.ndarray, int, int]:
    """Sparse training labels from a proofread layer: the checked objects (every object with
    a voxel marked :data:`CHECKED_OBJECT`, whole), the background within ``ring`` pixels of
    them (accepting an object accepts its outline, so what lies just outside it and belongs
    to no object is background) and the checked background; the rest not annotated. For
    ``train_model(sparse=True, background_label=...)``.

    Parameters
    ----------
    labels, checked : ndarray of int, same shape
    ring : int
        Width of the background ring around checked objects (0: none).

    Returns
    -------
    annotations : ndarray of int64
        Checked objects with their ids, checked background as ``background_label``, 0
        elsewhere (background painted over an object wins: the user says it is not one).
    background_label : int
        Larger than every id.
    objects : int
        The number of checked objects.

    Examples
    --------
    >>> labels = np.array([[1, 1, 0, 0, 0, 2, 2, 0]])
    >>> checked = np.array([[0, 1, 0, 0, 0, 0, 0, 2]])
    >>> annotations, background, n = checked_annotations(labels, checked)
    >>> annotations.tolist(), background, n
    ([[1, 1, 3, 3, 0, 0, 0, 3]], 3, 1)
    """
    labels = as_label_array(labels, "labels")
    checked = as_label_array(checked, "checked")
    if checked.shape != labels.shape:
        raise ValueError(f"checked must have the labels' shape {labels.shape}, got "
                         f"{checked.shape}.")
    ids = np.unique(labels[(checked == CHECKED_OBJECT) & (labels > 0)])
    background = int(labels.max(initial=0)) + 1
    accepted = np.isin(labels, ids)
    annotations = np.where(accepted, labels, 0).astype(np.int64)
    if ring > 0 and ids.size:
        around = ndi.binary_dilation(accepted, iterations=ring) & (labels == 0)
        annotations[around] = background
    annotations[checked == CHECKED_BACKGROUND] = background
    return annotations, background, int(ids.size)


def apply_change(labels, change: LabelChange) -> None:
    """Write ``change`` into ``labels`` in place (a zarr array: only the chunks under it,
    and its recorded largest id kept true). ``labels[change.indices] = change.old_values``
    undoes it.

    Examples
    --------
    >>> labels = np.zeros((4, 4), np.uint8); labels[:2] = 3
    >>> apply_change(labels, delete_object(labels, (0, 0))); int(labels.max())
    0
    """
    labels = _checked(labels)
    if labels.read_only if is_zarr_array(labels) else not labels.flags.writeable:
        raise ValueError("labels array is read-only.")
    if change.n_changed:
        labels[change.indices] = change.new_values
        record_label_maximum(labels, int(change.new_values.max()))


# -- internals -------------------------------------------------------------------------------
def _checked(labels):
    return as_label_array(labels, ndims=(2, 3), nonnegative=False, chunked=True)


def _checked_2d(labels, edit: str):
    labels = _checked(labels)
    if labels.ndim != 2:
        raise ValueError(f"{edit} works on a 2D label image (a stack's slice), got shape "
                         f"{labels.shape}.")
    return labels


def _refined(session, positive, negative):
    """A box + click session with the correction clicks added."""
    for clicks, sign in ((positive, True), (negative, False)):
        for point in clicks:
            session.add_click(point, positive=sign)
    return session


def _unit(labels) -> str:
    return "pixels" if labels.ndim == 2 else "voxels"


def _nothing(labels, message: str) -> LabelChange:
    empty = np.empty(0, labels.dtype)
    return LabelChange(tuple(np.empty(0, np.intp) for _ in range(labels.ndim)), empty, empty,
                       message)


def _object(labels, point) -> tuple[int, tuple[slice, ...], np.ndarray] | str:
    """``(id, window, piece)``: the id under ``point``, a window holding its connected piece
    and the piece's mask in it; or why there is none."""
    p = np.asarray(point, float)
    if p.shape != (labels.ndim,) or not np.isfinite(p).all():
        raise ValueError(f"a point must be {labels.ndim} finite coordinates, got {point!r}.")
    at = tuple(int(v) for v in np.rint(p))
    if not all(0 <= v < n for v, n in zip(at, labels.shape, strict=True)):
        return f"{at} is outside the labels ({labels.shape})"
    label = int(labels[at])
    if label == 0:
        return f"no object at {at}: background"
    half = _START
    while True:
        window = tuple(slice(max(v - half, 0), min(v + half + 1, n))
                       for v, n in zip(at, labels.shape, strict=True))
        same = np.asarray(labels[window]) == label
        pieces, _ = ndi.label(same)
        local = tuple(v - s.start for v, s in zip(at, window, strict=True))
        piece = pieces == pieces[local]
        if not _touches_cut(piece, window, labels.shape):
            return label, window, piece
        half *= 2


def _crossed(labels, vertices) -> tuple[int, tuple[slice, ...], np.ndarray] | str:
    """:func:`_object` for the object a polyline crosses most (in the (y, x) plane of its
    first vertex), or why there is none."""
    v = [np.asarray(p, float) for p in vertices]
    if any(p.shape != (labels.ndim,) or not np.isfinite(p).all() for p in v):
        raise ValueError(f"line vertices must be {labels.ndim} finite coordinates each, got "
                         f"{vertices!r}.")
    lo = np.floor(np.min(v, axis=0)).astype(int)
    hi = np.ceil(np.max(v, axis=0)).astype(int) + 1
    lo[:-2], hi[:-2] = np.rint(v[0][:-2]).astype(int), np.rint(v[0][:-2]).astype(int) + 1
    box = tuple(slice(max(a, 0), min(b, n)) for a, b, n in zip(lo, hi, labels.shape,
                                                              strict=True))
    if any(s.start >= s.stop for s in box):
        return "the line is outside the labels"
    start = np.array([s.start for s in box])
    drawn = _line_mask(tuple(s.stop - s.start for s in box), [p - start for p in v])
    region = np.asarray(labels[box])
    crossed = region[drawn]
    crossed = crossed[crossed > 0]
    if not crossed.size:
        return "the line crosses no object"
    label = np.bincount(crossed).argmax()
    at = np.argwhere(drawn & (region == label))[0] + start
    return _object(labels, at)


def _touches_cut(piece: np.ndarray, window, shape) -> bool:
    """Whether ``piece`` reaches a face of ``window`` that is not the array's edge."""
    for axis, (s, n) in enumerate(zip(window, shape, strict=True)):
        if s.start > 0 and np.take(piece, 0, axis=axis).any():
            return True
        if s.stop < n and np.take(piece, -1, axis=axis).any():
            return True
    return False


def _same(a, b) -> bool:
    """Whether two found objects are one (same id, overlapping pieces)."""
    if a[0] != b[0]:
        return False
    inter = tuple(slice(max(x.start, y.start), min(x.stop, y.stop)) for x, y in
                  zip(a[1], b[1], strict=True))
    if any(s.start >= s.stop for s in inter):
        return False
    ca = a[2][tuple(slice(s.start - w.start, s.stop - w.start) for s, w in
                    zip(inter, a[1], strict=True))]
    cb = b[2][tuple(slice(s.start - w.start, s.stop - w.start) for s, w in
                    zip(inter, b[1], strict=True))]
    return bool((ca & cb).any())


def _change(array, window, piece: np.ndarray, value: int, message: str,
            old: int | None = None) -> LabelChange:
    """``value`` written on ``piece`` (a mask in ``window``) of ``array``, where it is not
    already; ``old``: the piece's value when known (an object's own id: not read again)."""
    local = np.nonzero(piece)
    indices = tuple(ix + s.start for ix, s in zip(local, window, strict=True))
    old = (np.asarray(array[window])[local] if old is None
           else np.full(local[0].size, old, array.dtype))
    keep = old != value
    return LabelChange(tuple(ix[keep] for ix in indices), old[keep],
                       np.full(int(keep.sum()), value, array.dtype), message)


def _joined(labels, window, piece, session):
    """The region holding both an object's window and a box session's box, with the old
    piece and the session's mask placed in it."""
    box = (session.box[:2], session.box[2:])
    region = tuple(slice(min(w.start, lo), max(w.stop, hi)) for w, lo, hi in
                   zip(window, *box, strict=True))
    shape = tuple(r.stop - r.start for r in region)
    old, new = np.zeros(shape, bool), np.zeros(shape, bool)
    old[tuple(slice(w.start - r.start, w.stop - r.start) for w, r in
              zip(window, region, strict=True))] = piece
    new[tuple(slice(lo - r.start, hi - r.start) for lo, hi, r in
              zip(*box, region, strict=True))] = session.mask
    return region, old, new


def _region_change(labels, region, before: np.ndarray, after: np.ndarray, message: str
                   ) -> LabelChange:
    """The voxels of ``region`` whose value goes from ``before`` to ``after``."""
    local = np.nonzero(before != after)
    if not local[0].size:
        return _nothing(labels, message.split(" (")[0] + ": nothing changed")
    indices = tuple(ix + r.start for ix, r in zip(local, region, strict=True))
    return LabelChange(indices, before[local], after[local].astype(labels.dtype), message)


def _line_mask(shape, vertices: list[np.ndarray]) -> np.ndarray:
    """The polyline through ``vertices`` drawn in the (y, x) plane, 4-connected (no
    diagonal step an object could leak through), extruded along the other axes."""
    from skimage.draw import line

    plane = np.zeros(shape[-2:], bool)
    for a, b in pairwise(vertices):
        rr, cc = line(*np.rint(a[-2:]).astype(int), *np.rint(b[-2:]).astype(int))
        rr2, cc2 = np.r_[rr, rr[1:]], np.r_[cc, cc[:-1]]  # 4-connected: no diagonal gaps
        keep = (rr2 >= 0) & (rr2 < shape[-2]) & (cc2 >= 0) & (cc2 < shape[-1])
        plane[rr2[keep], cc2[keep]] = True
    return np.broadcast_to(plane, shape)


def _watershed(piece: np.ndarray, markers: np.ndarray, image: np.ndarray | None
               ) -> np.ndarray:
    """Seeded compact watershed of ``piece`` from ``markers``, on the image's edges or,
    without one, on the object's shape (its distance transform). Both are scaled to 0-1
    and the compactness to the object's radius: from single clicks a plain watershed lets
    one seed flood most of the object (a fifth of the real touching pairs tried), a compact
    one keeps each part near its click."""
    from skimage.filters import sobel
    from skimage.segmentation import watershed

    depth = ndi.distance_transform_edt(np.pad(piece, 1))[(slice(1, -1),) * piece.ndim]
    radius = max(float(depth.max()), 1.0)
    if image is None:
        elevation = -depth / radius
    else:
        edges = sobel(ndi.gaussian_filter(image.astype(np.float32), 1.0))
        elevation = edges / max(float(np.percentile(edges[piece], 98)), 1e-6)
    return watershed(elevation, markers, mask=piece, compactness=_COMPACTNESS / radius)
