"""Dock widget and Shift+I shortcut: interpolate labels along the displayed slicing axis."""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton, create_widget
from napari.layers import Labels
from napari.utils.notifications import show_info, show_warning

from napari_medseg.chunk_edits import ChunkEdits
from napari_medseg.plugin.background import BackgroundWork
from napari_medseg.plugin.labels_target import ImageAsLabelsButton
from napari_medseg.plugin.layer_edit import (
    merge_changes_into_layer,
    merge_into_layer,
    watch_label_maximum,
)
from napari_medseg.plugin.recovery_watch import journal_layer
from napari_medseg.plugin.slice_plane import slider_axis
from napari_medseg.slice_interpolation import InterpolationReport, interpolation_steps
from napari_medseg.validation import is_zarr_array

__all__ = ["InterpolationWidget"]

SHORTCUT = "Shift-I"
_SELECTED, _ALL = "selected label", "all labels"


class InterpolationWidget(Container):
    """Fill the slices between annotated slices of a Labels layer, as one undo step."""

    def __init__(self, napari_viewer: napari.Viewer):
        # napari passes the viewer by this parameter name when it builds the dock widget.
        viewer = self._viewer = napari_viewer
        self._layer = create_widget(annotation=Labels, label="labels")
        self._as_labels = ImageAsLabelsButton(viewer, self._layer)
        self._which = ComboBox(choices=[_SELECTED, _ALL], value=_SELECTED, label="interpolate")
        self._overwrite = CheckBox(value=False, text="overwrite other labels")
        self._run_button = PushButton(text=f"Interpolate along slider axis ({SHORTCUT})")
        self._cancel_button = PushButton(text="Cancel")
        self._status = Label(value="Annotate an object on a few slices, then interpolate.")
        self._status.native.setWordWrap(True)
        super().__init__(widgets=[self._layer, self._as_labels, self._which, self._overwrite,
                                  self._run_button, self._cancel_button, self._status])
        self._work = BackgroundWork([self._run_button], self._cancel_button, self._status)
        self._run_button.changed.connect(self.run)
        for layer in viewer.layers:
            self._bind(layer)
        viewer.layers.events.inserted.connect(lambda e: self._bind(e.value))

    # -- actions -------------------------------------------------------------------------
    def run(self, layer: Labels | None = None):
        """Start interpolating ``layer`` (default: the chosen one) in a worker thread."""
        layer = layer if isinstance(layer, Labels) else self._layer.value
        if layer is None:
            show_warning("Choose a Labels layer to interpolate.")
            return None
        if layer.ndim not in (3, 4):
            show_warning(f"{layer.name!r} is {layer.ndim}D; interpolation fills the slices "
                         "between annotated slices of 3D or 4D labels.")
            return None
        try:
            axis = slider_axis(self._viewer, layer)
        except ValueError as err:
            show_warning(str(err))
            return None
        ids = [layer.selected_label] if self._which.value == _SELECTED else None
        journal_layer(layer)  # its edits survive a crash
        if is_zarr_array(layer.data):
            # not copied: the edits keep the chunks they read as they were, and the user's
            # painting meanwhile wins when they are merged
            snapshot = layer.data
        else:
            snapshot = np.asarray(layer.data).copy()  # the user may keep painting meanwhile
        return self._work.start(
            interpolation_steps, snapshot, axis, ids, self._overwrite.value,
            desc=f"Interpolating {layer.name!r} along axis {axis}",
            returned=lambda result: self._commit(layer, snapshot, axis, *result))

    def cancel(self):
        """Stop a running interpolation; the layer is left as it was."""
        self._work.cancel()

    # -- internals -----------------------------------------------------------------------
    def _commit(self, layer: Labels, snapshot, axis, result, report: InterpolationReport):
        try:
            if isinstance(result, ChunkEdits):
                _, kept = merge_changes_into_layer(layer, *result.changes())
            else:
                _, kept = merge_into_layer(layer, snapshot, result)
        except ValueError as err:
            self._status.value = str(err)
            show_warning(str(err))
            return
        if report.filled:
            parts = [f"label {i}: {len(s)} slice{'s' * (len(s) != 1)}"
                     for i, s in sorted(report.filled.items())]
            if len(parts) > 6:  # keep the dock narrow; the count says enough
                parts = [*parts[:5], f"... {len(parts) - 5} more labels"]
            message = (f"Filled {report.n_filled} slices along axis {axis}: "
                       + ", ".join(parts))
            if kept:
                message += f" ({kept} voxels painted meanwhile were kept)"
        else:
            reasons = "; ".join(f"label {i}: {why}" for i, why in sorted(report.skipped.items()))
            message = f"Nothing to fill ({reasons or 'no labels'})."
        self._status.value = message
        show_info(message)

    def _bind(self, layer):
        if isinstance(layer, Labels):
            watch_label_maximum(layer)
            layer.bind_key(SHORTCUT, lambda lyr: self.run(lyr), overwrite=True)
