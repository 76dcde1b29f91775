"""Dock widget: a table of a Labels layer's objects (size, physical volume, extent,
intensity, and whether proofreading checked them), refreshed after edits, saved as CSV."""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    Container,
    FileEdit,
    Label,
    PushButton,
    Table,
    create_widget,
)
from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QTimer

from napari_medseg.measurements import measure_labels, write_table
from napari_medseg.plugin.labels_target import ImageAsLabelsButton
from napari_medseg.plugin.layer_edit import undo_depth
from napari_medseg.proofreading import CHECKED_OBJECT

__all__ = ["MeasureWidget"]

_REFRESH_MS = 400  # edits arrive stroke by stroke: measure once they pause


class MeasureWidget(Container):
    """Measure the objects of a Labels layer; the table follows the layer's edits."""

    def __init__(self, napari_viewer: napari.Viewer):
        self._viewer = napari_viewer
        self._target = create_widget(annotation=Labels, label="labels")
        self._as_labels = ImageAsLabelsButton(napari_viewer, self._target)
        self._source = create_widget(annotation=Image | None, label="intensities of",
                                    options={"nullable": True})
        self._follow = CheckBox(value=True, text="refresh after edits")
        self._measure_button = PushButton(text="Measure")
        self._output = FileEdit(mode="w", filter="*.csv", label="CSV file")
        self._save_button = PushButton(text="Save table")
        self._status = Label(value="Choose a Labels layer.")
        self._status.native.setWordWrap(True)
        self.table = Table(value={"label": []})
        super().__init__(widgets=[self._target, self._as_labels, self._source, self._follow,
                                  self._measure_button, self.table, self._output,
                                  self._save_button, self._status])
        self._rows: dict[str, np.ndarray] = {}
        self._history = (0, 0)
        self._watched: Labels | None = None
        self._timer = QTimer(self.native)  # stops with the widget: no measuring after close
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.measure)
        self._measure_button.changed.connect(self.measure)
        self._save_button.changed.connect(self.save)
        self._target.changed.connect(self._watch)
        napari_viewer.layers.events.inserted.connect(lambda e: self._watch_checked(e.value))
        self._source.changed.connect(lambda _: self.measure())
        self._watch(self._target.value)

    def measure(self) -> dict[str, np.ndarray]:
        """Measure the chosen layer now; returns the table's columns."""
        layer, image = self._target.value, self._source.value
        if layer is None:
            return {}
        data = np.asarray(layer.data[0] if layer.multiscale else layer.data)
        intensities = None
        if image is not None:
            intensities = np.asarray(image.data[0] if image.multiscale else image.data)
            if image.rgb and intensities.shape[-1] == 4:
                intensities = intensities[..., :3]  # alpha is no intensity
        try:
            rows = measure_labels(data, intensities, tuple(layer.scale))
        except ValueError as err:
            self._status.value = str(err)
            return {}
        checked = self._checked_of(layer, data)
        if checked is not None:  # proofreading's accepted objects (the Proofread widget)
            rows["checked"] = np.isin(rows["label"], checked).astype(np.uint8)
        self._rows, self._history = rows, undo_depth(layer)
        unit = (layer.metadata.get("units") or ("",))[-1]
        size_name = f"{'area' if data.ndim == 2 else 'volume'}"
        if unit and unit != "pixel":
            size_name += f" ({unit}^{data.ndim})"
        shown = {(size_name if k == "size" else k): v for k, v in rows.items()}
        shown = {k: [round(float(x), 3) for x in v] for k, v in shown.items()}
        self.table.value = shown
        self._status.value = f"{len(rows['label'])} objects in {layer.name!r}."
        return rows

    def _checked_of(self, layer: Labels, data: np.ndarray) -> np.ndarray | None:
        """The ids proofreading marked checked in ``layer`` (None: nothing was checked)."""
        name = f"{layer.name} checked"
        if name not in self._viewer.layers:
            return None
        checked = np.asarray(self._viewer.layers[name].data)
        if checked.shape != data.shape:
            return None
        return np.unique(data[(checked == CHECKED_OBJECT) & (data > 0)])

    def save(self):
        """Write the table to the chosen CSV file (never silently over another file)."""
        if not self._rows:
            self.measure()
        try:
            path = write_table(self._output.value, self._rows)
        except (ValueError, FileExistsError) as err:
            show_warning(str(err))
            return None
        show_info(f"Saved {path}")
        self._status.value = f"Saved {path}."
        return path

    def _watch(self, layer: Labels | None) -> None:
        if self._watched is not None:
            self._watched.events.paint.disconnect(self._edited)
            self._watched.events.data.disconnect(self._edited)
            self._watched.events.set_data.disconnect(self._maybe_undone)
        self._watched = layer
        if layer is not None:
            layer.events.paint.connect(self._edited)
            layer.events.data.connect(self._edited)
            layer.events.set_data.connect(self._maybe_undone)
            if f"{layer.name} checked" in self._viewer.layers:
                self._watch_checked(self._viewer.layers[f"{layer.name} checked"])
            self.measure()

    def _watch_checked(self, checked) -> None:
        # accepting an object edits the "NAME checked" layer beside it: the table's column
        if self._watched is not None and checked.name == f"{self._watched.name} checked":
            checked.events.paint.connect(self._edited)
            checked.events.data.connect(self._edited)
            self._edited()

    def _edited(self, event=None) -> None:
        if self._follow.value:
            self._timer.start(_REFRESH_MS)

    def _maybe_undone(self, event=None) -> None:
        # an undo or redo moves the history; a new slice does not
        if undo_depth(self._watched) != self._history:
            self._edited()

