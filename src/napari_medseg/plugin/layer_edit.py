"""Commit masks into napari ``Labels`` layers as single undo steps.

A layer may hold a numpy array or a writable zarr array; on zarr, a commit reads and
writes only the chunks under its mask (napari's ``data_setitem`` writes through zarr's
coordinate indexing) and the array records its largest id, so the next free id is known
without reading the volume.
"""

from __future__ import annotations

import weakref

import numpy as np
from napari.layers import Labels

from napari_medseg.label_edit import (
    CommitMode,
    MaskEdit,
    next_free_label,
    plan_mask_edit,
    record_label_maximum,
)
from napari_medseg.validation import is_zarr_array

__all__ = ["commit_mask_to_layer", "merge_changes_into_layer", "merge_into_layer",
           "next_free_label_of_layer", "undo_depth", "watch_label_maximum"]

_WATCHED: weakref.WeakSet = weakref.WeakSet()


def next_free_label_of_layer(layer: Labels) -> int:
    """Next free id of a Labels layer (see :func:`napari_medseg.next_free_label`)."""
    return next_free_label(_layer_array(layer))


def undo_depth(layer: Labels) -> tuple[int, int]:
    """How many steps a Labels layer can undo and redo. napari's undo and redo only
    refresh the layer (no paint or data event): a refresh that changes these is one."""
    return (len(getattr(layer, "_undo_history", ())), len(getattr(layer, "_redo_history", ())))


def watch_label_maximum(layer: Labels) -> None:
    """Keep a zarr-backed layer's recorded largest id true under napari's own brushes and
    fill, which write ids the plugin did not choose (done once per layer)."""
    if layer in _WATCHED:
        return
    _WATCHED.add(layer)

    def painted(event) -> None:
        if is_zarr_array(layer.data) and not layer.data.read_only:
            top = max(int(np.max(new, initial=0)) for _, _, new in event.value)
            record_label_maximum(layer.data, top)

    layer.events.paint.connect(painted)


def commit_mask_to_layer(
    layer: Labels,
    mask: np.ndarray,
    label: int | None = None,
    *,
    mode: CommitMode = "preserve",
    offset: tuple[int, ...] | None = None,
    select: bool = True,
) -> MaskEdit:
    """Write ``mask`` into a Labels layer as one undo step.

    Parameters
    ----------
    layer : napari.layers.Labels
        Target layer; its data must be a writable numpy or zarr array.
    mask : ndarray of bool
        Object mask in the layer's data coordinates, full-size or a crop at ``offset``.
    label : int, optional
        Id to write; the layer's next free id if None.
    mode : {"preserve", "overwrite"}
        Whether other objects are kept ("preserve", default) or painted over.
    offset : tuple of int, optional
        Position of a cropped ``mask`` in the layer's data.
    select : bool
        Make the written id the layer's selected label, so the user sees and
        can keep painting the object just committed.

    Returns
    -------
    MaskEdit
        The voxels changed. ``layer.undo()`` reverts the whole commit at once.
    """
    data = _layer_array(layer)
    edit = plan_mask_edit(data, mask, label, mode=mode, offset=offset)
    if edit.n_changed:
        with layer.block_history():
            layer.data_setitem(edit.indices, edit.label)
        record_label_maximum(data, edit.label)
    if select:
        layer.selected_label = edit.label
    return edit


def merge_into_layer(layer: Labels, before: np.ndarray, after: np.ndarray) -> tuple[int, int]:
    """Apply a computed change to a Labels layer's current data, as one undo step.

    ``before`` is the data the computation started from (a snapshot) and ``after`` its
    result; voxels where they differ are written, except those the user has changed
    since ``before`` (painted while a worker ran): newer edits win.

    Returns
    -------
    (written, kept) : (int, int)
        Voxels written, and voxels left as the user changed them.
    """
    data = _layer_array(layer)
    if before.shape != data.shape or after.shape != data.shape:
        raise ValueError(f"Labels layer {layer.name!r} changed shape while the work ran "
                         f"({before.shape} -> {data.shape}); nothing was written.")
    changed = np.nonzero(after != before)
    return merge_changes_into_layer(layer, changed, before[changed], after[changed])


def merge_changes_into_layer(layer: Labels, indices: tuple[np.ndarray, ...],
                             old: np.ndarray, new: np.ndarray) -> tuple[int, int]:
    """:func:`merge_into_layer` for a change given voxel by voxel: the fancy ``indices``
    and their values before (``old``) and after (``new``) the computation; for zarr-backed
    layers, whose volume is not copied."""
    data = _layer_array(layer)
    untouched = np.asarray(data[indices]) == old if old.size else np.zeros(0, bool)
    where = tuple(index[untouched] for index in indices)
    if where[0].size:
        with layer.block_history():
            layer.data_setitem(where, new[untouched])
        record_label_maximum(data, int(new.max()))
    return int(where[0].size), int(untouched.size - where[0].size)


def _layer_array(layer: Labels) -> np.ndarray:
    if not isinstance(layer, Labels):
        raise TypeError(f"Expected a napari Labels layer, got {type(layer).__name__}.")
    if layer.multiscale:
        raise ValueError(f"Labels layer {layer.name!r} is multiscale; edit a single-scale copy.")
    data = layer.data
    if is_zarr_array(data):
        if data.read_only:
            raise ValueError(f"Labels layer {layer.name!r} holds a zarr array opened "
                             "read-only; open it with mode='r+' to edit it.")
        return data
    if not isinstance(data, np.ndarray):
        raise ValueError(
            f"Labels layer {layer.name!r} holds a {type(data).__name__}, not a numpy or zarr "
            "array; load it into memory (or save it to zarr) to edit it."
        )
    if not data.flags.writeable:
        raise ValueError(f"Labels layer {layer.name!r} is read-only.")
    return data
