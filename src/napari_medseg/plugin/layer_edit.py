"""Commit masks into napari ``Labels`` layers as single undo steps."""

from __future__ import annotations

import numpy as np
from napari.layers import Labels

from napari_medseg.label_edit import CommitMode, MaskEdit, next_free_label, plan_mask_edit

__all__ = ["commit_mask_to_layer", "merge_into_layer", "next_free_label_of_layer"]


def next_free_label_of_layer(layer: Labels) -> int:
    """Next free id of a Labels layer (see :func:`napari_medseg.next_free_label`)."""
    return next_free_label(_layer_array(layer))


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
        Target layer; its data must be a writable numpy array.
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
    untouched = data[changed] == before[changed]
    where = tuple(index[untouched] for index in changed)
    if where[0].size:
        with layer.block_history():
            layer.data_setitem(where, after[where])
    return int(where[0].size), int(untouched.size - where[0].size)


def _layer_array(layer: Labels) -> np.ndarray:
    if not isinstance(layer, Labels):
        raise TypeError(f"Expected a napari Labels layer, got {type(layer).__name__}.")
    if layer.multiscale:
        raise ValueError(f"Labels layer {layer.name!r} is multiscale; edit a single-scale copy.")
    data = layer.data
    if not isinstance(data, np.ndarray):
        raise ValueError(
            f"Labels layer {layer.name!r} holds a {type(data).__name__}, not an in-memory numpy "
            "array; load it into memory to edit it."
        )
    if not data.flags.writeable:
        raise ValueError(f"Labels layer {layer.name!r} is read-only.")
    return data
