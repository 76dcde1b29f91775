"""Journal the edits of the Labels layers MedSeg's tools work on (napari_medseg.recovery),
and restore those of a viewer that did not close cleanly.

Every committed edit of such a layer (the tools' commits, napari's brush and fill, undo
and redo) marks the tiles it touched; a second after the edits pause, those tiles are
written to this process's journal, off the commit's path. Saving the layer through
MedSeg's writers or closing napari cleanly removes its journal.
"""

from __future__ import annotations

import weakref

import napari
import numpy as np
from napari.layers import Labels
from napari.utils.notifications import show_warning
from qtpy.QtCore import QTimer

from napari_medseg.plugin.layer_edit import undo_depth
from napari_medseg.recovery import EditJournal, discard, recoverable, restore, tiles_under
from napari_medseg.validation import is_zarr_array

__all__ = ["forget_saved", "journal_layer", "restore_into"]

_FLUSH_MS = 1000
_journal: EditJournal | None = None
_layers: dict[str, weakref.ref] = {}  # journal key -> the layer
_dirty: dict[str, set] = {}
_timer: QTimer | None = None


def journal_layer(layer: Labels) -> None:
    """Keep ``layer``'s edits in the journal from now on (once per layer). Zarr-backed
    and multiscale layers are left out: their edits are written to disk as they happen."""
    global _journal
    key = str(id(layer))
    if key in _layers or layer.multiscale or is_zarr_array(layer.data):
        return
    _journal = _journal or EditJournal()
    source = layer.source.path
    base = source if source and not str(source).endswith(".zarr") else (
        "snapshot" if np.any(layer.data) else "zeros")
    try:
        _journal.start(key, layer.data, name=layer.name, base=base, scale=layer.scale,
                       translate=layer.translate)
    except OSError as err:  # a full or read-only disk must not stop the editing
        show_warning(f"Edits of {layer.name!r} are not journaled for crash recovery: {err}")
        return
    _layers[key], _dirty[key] = weakref.ref(layer), set()
    depth = [undo_depth(layer)]

    def painted(event) -> None:
        _mark(key, layer, event.value)
        depth[0] = undo_depth(layer)

    def refreshed(event=None) -> None:
        # after an undo or redo, the step that moved between the histories is what changed
        now = undo_depth(layer)
        if now != depth[0]:
            moved = layer._redo_history if now[1] > depth[0][1] else layer._undo_history
            if moved:
                _mark(key, layer, moved[-1])
            depth[0] = now

    layer.events.paint.connect(painted)
    layer.events.set_data.connect(refreshed)


def forget_saved(name: str) -> None:
    """The layer ``name`` was saved: its journal is no longer needed."""
    for key, ref in list(_layers.items()):
        layer = ref()
        if layer is None or layer.name == name:
            _journal.forget(key)
            _layers.pop(key)
            _dirty.pop(key, None)


def restore_into(viewer: napari.Viewer) -> list[Labels]:
    """Add the label layers of every journal left by a viewer that did not close cleanly
    (named "NAME (recovered)"), then remove those journals."""
    added = []
    for folder in recoverable():
        for found in restore(folder):
            kwargs = {k: v for k, v in (("scale", found.scale), ("translate", found.translate))
                      if v is not None}
            layer = viewer.add_labels(found.data, name=f"{found.name} (recovered)", **kwargs)
            layer.metadata["recovered"] = found.note
            added.append(layer)
        discard(folder)
    return added


def _mark(key: str, layer: Labels, atoms) -> None:
    global _timer
    shape = layer.data.shape
    for atom in atoms:
        _dirty[key] |= tiles_under(_region(atom, shape), shape)
    if _timer is None:
        _timer = QTimer()
        _timer.setSingleShot(True)
        _timer.timeout.connect(_flush)
    _timer.start(_FLUSH_MS)


def _flush() -> None:
    for key, tiles in list(_dirty.items()):
        layer = _layers[key]()
        try:
            if layer is not None and tiles:
                _journal.write(key, layer.data, tiles)
        except OSError as err:
            show_warning(f"The crash journal could not be written: {err}")
        tiles.clear()


def _region(atom, shape) -> tuple[slice, ...]:
    """The box an undo atom of napari's Labels changed."""
    if hasattr(atom, "slice_key"):  # a masked paint atom
        return tuple(atom.slice_key)
    indices = atom[0]
    out = []
    for where in indices:
        if isinstance(where, slice):
            out.append(where)
        else:
            where = np.asarray(where)
            out.append(slice(int(where.min()), int(where.max()) + 1) if where.size
                       else slice(0, 0))
    return tuple(out) + tuple(slice(None) for _ in range(len(shape) - len(out)))

