"""Dock widget and Shift+I shortcut: interpolate labels along the displayed slicing axis."""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton, create_widget
from napari.layers import Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_info, show_warning

from napari_medseg.slice_interpolation import InterpolationReport, interpolation_steps

__all__ = ["InterpolationWidget", "advance_progress", "slicing_axis"]

SHORTCUT = "Shift-I"
_SELECTED, _ALL = "selected label", "all labels"


def slicing_axis(viewer: napari.Viewer, layer: Labels) -> int:
    """The layer axis the viewer's slider currently steps through.

    That is the last non-displayed dimension in the viewer's axis order, mapped
    to the layer's own axes (napari aligns layers by their trailing axes).
    """
    offset = viewer.dims.ndim - layer.ndim
    displayed = set(viewer.dims.displayed)
    sliced = [d - offset for d in viewer.dims.order if d not in displayed and d >= offset]
    if not sliced:
        raise ValueError(
            f"{layer.name!r} has no sliced axis in this view; switch to 2D view to pick one."
        )
    return sliced[-1]


class InterpolationWidget(Container):
    """Fill the slices between annotated slices of a Labels layer, as one undo step."""

    def __init__(self, napari_viewer: napari.Viewer):
        # napari passes the viewer by this parameter name when it builds the dock widget.
        viewer = self._viewer = napari_viewer
        self._layer = create_widget(annotation=Labels, label="labels")
        self._which = ComboBox(choices=[_SELECTED, _ALL], value=_SELECTED, label="interpolate")
        self._overwrite = CheckBox(value=False, text="overwrite other labels")
        self._run = PushButton(text=f"Interpolate along slider axis ({SHORTCUT})")
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._status = Label(value="Annotate an object on a few slices, then interpolate.")
        self._status.native.setWordWrap(True)
        super().__init__(widgets=[self._layer, self._which, self._overwrite, self._run,
                                  self._cancel, self._status])
        self._worker = None
        self._run.changed.connect(self.run)
        self._cancel.changed.connect(self.cancel)
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
        if self._worker is not None:
            show_warning("An interpolation is already running.")
            return None
        try:
            axis = slicing_axis(self._viewer, layer)
        except ValueError as err:
            show_warning(str(err))
            return None
        if layer.ndim not in (3, 4):
            show_warning(f"{layer.name!r} is {layer.ndim}D; interpolation needs 3D or 4D labels.")
            return None
        ids = [layer.selected_label] if self._which.value == _SELECTED else None
        snapshot = np.asarray(layer.data).copy()  # the user may keep painting meanwhile
        worker = create_worker(
            interpolation_steps, snapshot, axis, ids, self._overwrite.value,
            _progress={"total": 0, "desc": f"Interpolating {layer.name}"},
            _connect={"errored": lambda err: show_warning(f"Interpolation failed: {err}")},
            _start_thread=False,
        )
        worker.yielded.connect(lambda step: advance_progress(worker.pbar, *step))
        worker.returned.connect(lambda result: self._commit(layer, snapshot, axis, *result))
        worker.finished.connect(self._finished)
        self._worker = worker
        self._run.enabled, self._cancel.enabled = False, True
        self._status.value = f"Interpolating {layer.name!r} along axis {axis}..."
        worker.start()
        return worker

    def cancel(self):
        """Stop a running interpolation; the layer is left as it was."""
        if self._worker is not None:
            self._worker.quit()
            self._status.value = "Cancelled; nothing was changed."

    # -- internals -----------------------------------------------------------------------
    def _commit(self, layer: Labels, snapshot, axis, result, report: InterpolationReport):
        if self._worker is not None and self._worker.abort_requested:
            return
        changed = np.nonzero(result != snapshot)
        if changed[0].size:
            with layer.block_history():
                layer.data_setitem(changed, result[changed])
        if report.filled:
            parts = [f"label {i}: {len(s)} slice{'s' * (len(s) != 1)}"
                     for i, s in sorted(report.filled.items())]
            if len(parts) > 6:  # keep the dock narrow; the count says enough
                parts = [*parts[:5], f"... {len(parts) - 5} more labels"]
            message = (f"Filled {report.n_filled} slices along axis {axis}: "
                       + ", ".join(parts))
        else:
            reasons = "; ".join(f"label {i}: {why}" for i, why in sorted(report.skipped.items()))
            message = f"Nothing to fill ({reasons or 'no labels'})."
        self._status.value = message
        show_info(message)

    def _finished(self):
        self._worker = None
        self._run.enabled, self._cancel.enabled = True, False

    def _bind(self, layer):
        if isinstance(layer, Labels):
            layer.bind_key(SHORTCUT, lambda lyr: self.run(lyr), overwrite=True)


def advance_progress(pbar, done: int, total: int) -> None:
    """Move napari's progress bar to ``done`` of ``total`` (known only once work starts)."""
    pbar.total = total
    pbar.update(done - pbar.n)
