"""Commit boolean masks into integer label arrays.

Every interactive tool of the plugin ends the same way: a boolean mask of one
object is written into a label image with a chosen (or the next free) id. This
module holds that step for plain numpy arrays; :mod:`napari_medseg.plugin.layer_edit`
applies the same plan to a napari ``Labels`` layer as one undo step.

The work is restricted to the bounding box of the mask, so committing a small
object into a large volume costs time proportional to the object, not the volume.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from napari_medseg.validation import as_integer, as_integers, as_label_array, is_zarr_array

__all__ = ["MaskEdit", "commit_mask", "label_maximum", "next_free_label", "plan_mask_edit",
           "record_label_maximum"]

# where a zarr label array notes its largest id: napari-medseg's record in its attributes
RECORD_KEY, MAX_LABEL_KEY = "napari-medseg", "max_label"

CommitMode = Literal["preserve", "overwrite"]
_MODES = ("preserve", "overwrite")


@dataclass(frozen=True)
class MaskEdit:
    """The voxels a mask commit changes.

    Attributes
    ----------
    indices : tuple of ndarray of intp
        Fancy index into the label array, one ``(K,)`` array per dimension.
    old_values : ndarray, shape (K,)
        The label values at ``indices`` before the edit.
    label : int
        The id written at ``indices``.
    """

    indices: tuple[np.ndarray, ...]
    old_values: np.ndarray
    label: int

    @property
    def n_changed(self) -> int:
        """Number of voxels the edit changes."""
        return int(self.old_values.size)


def label_maximum(labels) -> int:
    """The largest id in ``labels``: a numpy array, or a zarr array without reading it where
    it records its largest id (see :func:`record_label_maximum`), else read chunk by chunk.

    Examples
    --------
    >>> label_maximum(np.array([0, 3, 1], np.uint8))
    3
    """
    labels = as_label_array(labels, nonnegative=False, chunked=True)
    if not is_zarr_array(labels):
        return int(labels.max()) if labels.size else 0
    recorded = _record(labels).get(MAX_LABEL_KEY)
    if _valid_maximum(recorded, labels.dtype):
        return recorded
    if recorded is not None:  # handing it out would reuse an id in use: repaired, not kept
        return _reread_maximum(labels, f"is not an id of its {labels.dtype}")
    import dask.array as da

    return int(da.from_zarr(labels).max().compute()) if labels.size else 0


def _reread_maximum(labels, problem: str) -> int:
    """A zarr array's largest id read from its chunks, and its record repaired (where it
    can be written), with a warning saying the recorded one's ``problem``."""
    import dask.array as da

    top = int(da.from_zarr(labels).max().compute()) if labels.size else 0
    repaired = "" if labels.read_only else " and repaired"
    warnings.warn(f"{labels.store}/{labels.path}: its recorded largest id "
                  f"{_record(labels).get(MAX_LABEL_KEY)!r} {problem} (it holds up to {top}); "
                  f"the record was read again{repaired}.", UserWarning, stacklevel=3)
    if not labels.read_only:
        labels.attrs[RECORD_KEY] = {**_record(labels), MAX_LABEL_KEY: top}
    return top


def _record(labels) -> dict:
    """napari-medseg's record in a zarr array's attributes ({} if none, or not a mapping)."""
    record = labels.attrs.get(RECORD_KEY, {})
    return record if isinstance(record, dict) else {}


def _valid_maximum(value, dtype: np.dtype) -> bool:
    """Whether a recorded largest id can be one: an integer (not a bool) of ``dtype``,
    >= 0."""
    return (isinstance(value, int) and not isinstance(value, bool)
            and 0 <= value <= np.iinfo(dtype).max)


def record_label_maximum(labels, value: int) -> None:
    """Note in a zarr array's attributes that its largest id is at least ``value``, so
    :func:`label_maximum` need not read it; numpy arrays need no note. Ids written by
    other programs after the note are not seen: write them through napari-medseg."""
    if not is_zarr_array(labels) or labels.read_only:
        return
    recorded = _record(labels).get(MAX_LABEL_KEY)
    if not _valid_maximum(recorded, labels.dtype) or value > recorded:
        top = max(int(value), label_maximum(labels))  # read once, then kept in the record
        labels.attrs[RECORD_KEY] = {**_record(labels), MAX_LABEL_KEY: top}


def next_free_label(labels: np.ndarray) -> int:
    """Return the smallest id larger than every id in ``labels``.

    Parameters
    ----------
    labels : ndarray of int or zarr.Array
        Label image of any shape; 0 is background. A zarr array is not read where it
        records its largest id (:func:`label_maximum`).

    Returns
    -------
    int
        ``labels.max() + 1`` (1 for an empty image); when that does not fit the
        dtype, the smallest id not in use.

    Raises
    ------
    ValueError
        If every id of the array's dtype is in use.

    Examples
    --------
    >>> next_free_label(np.array([0, 1, 5], np.uint8))
    6
    >>> next_free_label(np.array([0, 1, 255], np.uint8))
    2
    """
    labels = as_label_array(labels, nonnegative=False, chunked=True)
    new = max(label_maximum(labels), 0) + 1
    largest = np.iinfo(labels.dtype).max
    if new <= largest:
        return new
    if is_zarr_array(labels):
        import dask.array as da

        used = da.unique(da.from_zarr(labels)).compute()
    else:
        used = np.unique(labels)
    gaps = np.setdiff1d(np.arange(1, min(largest, used.size + 1) + 1), used)
    if not gaps.size:
        raise ValueError(f"No free label id left in a {labels.dtype} label image (all "
                         f"{largest} ids are in use).")
    return int(gaps[0])


def plan_mask_edit(
    labels: np.ndarray,
    mask: np.ndarray,
    label: int | None = None,
    *,
    mode: CommitMode = "preserve",
    offset: tuple[int, ...] | None = None,
) -> MaskEdit:
    """Work out which voxels writing ``mask`` into ``labels`` would change.

    Parameters
    ----------
    labels : ndarray of int or zarr.Array, shape (...)
        Label image. Not modified; only the region under the mask is read.
    mask : ndarray of bool
        Object mask, either of ``labels.shape`` or a crop placed at ``offset``.
        Parts of a crop that fall outside ``labels`` are ignored.
    label : int, optional
        Id to write; the next free id (see :func:`next_free_label`) if None.
    mode : {"preserve", "overwrite"}
        "preserve" writes only into background (0) and voxels already holding
        ``label``, leaving every other object intact; "overwrite" writes the
        whole mask.
    offset : tuple of int, optional
        Position of ``mask[0, ..., 0]`` in ``labels`` when ``mask`` is a crop.

    Returns
    -------
    MaskEdit
        The changed voxel indices, their old values and the id written.

    Examples
    --------
    >>> labels = np.zeros((4, 4), np.uint8)
    >>> edit = plan_mask_edit(labels, np.eye(4, dtype=bool))
    >>> edit.n_changed, edit.label, int(labels.sum())  # nothing written yet
    (4, 1, 0)
    """
    labels = as_label_array(labels, nonnegative=False, chunked=True)
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise ValueError(f"mask must be a boolean array, got dtype {mask.dtype}.")
    if mask.ndim != labels.ndim:
        raise ValueError(
            f"mask has {mask.ndim} dimensions but the labels have {labels.ndim}."
        )
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}.")
    if offset is None:
        if mask.shape != labels.shape:
            raise ValueError(
                f"mask shape {mask.shape} differs from labels shape {labels.shape}; "
                "pass `offset` to place a cropped mask."
            )
        offset = (0,) * labels.ndim
    offset = as_integers(offset, "offset", length=labels.ndim)
    info = np.iinfo(labels.dtype)
    chosen = label is None
    label = next_free_label(labels) if chosen else as_integer(label, "label", 1, info.max)

    empty = MaskEdit(tuple(np.empty(0, np.intp) for _ in range(labels.ndim)),
                     np.empty(0, labels.dtype), label)
    box = _bounding_box(mask)
    if box is None:
        return empty
    # Clip the mask's bounding box (in label coordinates) to the label array.
    lo = [max(int(o) + b.start, 0) for o, b in zip(offset, box, strict=True)]
    hi = [min(int(o) + b.stop, s) for o, b, s in zip(offset, box, labels.shape, strict=True)]
    if any(a >= b for a, b in zip(lo, hi, strict=True)):
        return empty
    dst = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    src = tuple(slice(a - int(o), b - int(o)) for a, b, o in zip(lo, hi, offset, strict=True))

    region = np.asarray(labels[dst])
    if chosen and is_zarr_array(labels) and (region == label).any():
        # a stale record handed out an id in use
        top = _reread_maximum(labels, "is below ids it holds (written by another program?)")
        label = as_integer(top + 1, "the next free label", 1, info.max)
    write = mask[src] & (region != label)
    if mode == "preserve":
        write &= region == 0
    local = np.nonzero(write)
    indices = tuple(ix + a for ix, a in zip(local, lo, strict=True))
    return MaskEdit(indices, region[local].copy(), label)


def commit_mask(
    labels: np.ndarray,
    mask: np.ndarray,
    label: int | None = None,
    *,
    mode: CommitMode = "preserve",
    offset: tuple[int, ...] | None = None,
) -> MaskEdit:
    """Write ``mask`` into ``labels`` in place (a zarr array: only the chunks under the
    mask are read and written, and the array records its largest id).

    Parameters are those of :func:`plan_mask_edit`.

    Returns
    -------
    MaskEdit
        What was changed; ``labels[edit.indices] = edit.old_values`` undoes it.

    Examples
    --------
    >>> labels = np.zeros((4, 4), np.uint16)
    >>> mask = np.zeros((4, 4), bool); mask[1:3, 1:3] = True
    >>> commit_mask(labels, mask).label
    1
    """
    edit = plan_mask_edit(labels, mask, label, mode=mode, offset=offset)
    if labels.read_only if is_zarr_array(labels) else not labels.flags.writeable:
        raise ValueError("labels array is read-only.")
    if edit.n_changed:
        labels[edit.indices] = edit.label
        record_label_maximum(labels, edit.label)
    return edit


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Tight bounding box of the True voxels, or None if there are none."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other) if other else mask)
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)
