"""Commit boolean masks into integer label arrays.

Every interactive tool of the plugin ends the same way: a boolean mask of one
object is written into a label image with a chosen (or the next free) id. This
module holds that step for plain numpy arrays; :mod:`napari_medseg.plugin.layer_edit`
applies the same plan to a napari ``Labels`` layer as one undo step.

The work is restricted to the bounding box of the mask, so committing a small
object into a large volume costs time proportional to the object, not the volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["MaskEdit", "commit_mask", "next_free_label", "plan_mask_edit"]

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


def next_free_label(labels: np.ndarray) -> int:
    """Return the smallest id larger than every id in ``labels``.

    Parameters
    ----------
    labels : ndarray of int
        Label image of any shape; 0 is background.

    Returns
    -------
    int
        ``labels.max() + 1`` (1 for an empty image).

    Raises
    ------
    ValueError
        If the next id does not fit the array's dtype.
    """
    labels = _check_labels(labels)
    top = int(labels.max()) if labels.size else 0
    new = max(top, 0) + 1
    if new > np.iinfo(labels.dtype).max:
        raise ValueError(
            f"No free label id left in a {labels.dtype} label image (largest id is {top})."
        )
    return new


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
    labels : ndarray of int, shape (...)
        Label image. Not modified.
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
    """
    labels = _check_labels(labels)
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
    if len(offset) != labels.ndim:
        raise ValueError(f"offset {tuple(offset)} needs {labels.ndim} entries.")
    if label is None:
        label = next_free_label(labels)
    label = int(label)
    info = np.iinfo(labels.dtype)
    if label <= 0 or label > info.max:
        raise ValueError(f"label must be in 1..{info.max} for {labels.dtype} labels, got {label}.")

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

    region = labels[dst]
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
    """Write ``mask`` into ``labels`` in place.

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
    if not labels.flags.writeable:
        raise ValueError("labels array is read-only.")
    labels[edit.indices] = edit.label
    return edit


def _check_labels(labels: np.ndarray) -> np.ndarray:
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels must be a numpy array, got {type(labels).__name__}.")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must have an integer dtype, got {labels.dtype}.")
    return labels


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
