"""Dock widget: CT windows and auto-contrast, with the slider spanning all the data."""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton, create_widget
from napari.layers import Image

from napari_medseg.display import CT_WINDOWS, auto_contrast, ct_window, data_range

__all__ = ["DisplayWidget"]

_AUTO = "auto (0.5-99.8 %)"
_FULL = "full data range"


class DisplayWidget(Container):
    """Set an image layer's display range: a CT window (soft tissue, lung, bone, brain,
    liver), percentile auto-contrast, or the full range; the contrast slider always spans
    the whole data (napari caps it at the range a file opened with)."""

    def __init__(self, napari_viewer: napari.Viewer):
        self._viewer = napari_viewer
        self._source = create_widget(annotation=Image, label="image")
        self._preset = ComboBox(choices=[_AUTO, *CT_WINDOWS, _FULL], value=_AUTO,
                                label="window")
        self._apply_button = PushButton(text="Apply")
        self._status = Label(value="CT windows are in Hounsfield units.")
        self._status.native.setWordWrap(True)
        super().__init__(widgets=[self._source, self._preset, self._apply_button,
                                  self._status])
        self._apply_button.changed.connect(self.apply)
        self._preset.changed.connect(lambda _: self.apply())

    def apply(self) -> tuple[float, float] | None:
        """Apply the chosen window to the chosen layer; returns the limits set."""
        layer = self._source.value
        if layer is None or layer.rgb:
            self._status.value = "Choose a grey image layer."
            return None
        data = np.asarray(layer.data[-1] if layer.multiscale else layer.data)
        full = data_range(data)
        preset = self._preset.value
        limits = (auto_contrast(data) if preset == _AUTO else full if preset == _FULL
                  else ct_window(preset))
        layer.contrast_limits_range = (min(full[0], limits[0]), max(full[1], limits[1]))
        layer.contrast_limits = limits
        self._status.value = (f"{layer.name!r}: {limits[0]:g} to {limits[1]:g}; the slider "
                              f"spans {full[0]:g} to {full[1]:g}.")
        return limits
