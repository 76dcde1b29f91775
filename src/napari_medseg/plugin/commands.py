"""Commands of the plugin that napari's command palette offers (no widget needed first)."""

from __future__ import annotations

import napari
from napari.layers import Labels
from napari.utils.notifications import show_warning

__all__ = ["interpolate_selected_labels"]


def interpolate_selected_labels(viewer: napari.Viewer) -> None:
    """Interpolate the selected Labels layer along the slider axis: the Interpolate widget
    is docked (if it is not yet) and run on the layer; Shift+I works from then on."""
    from napari_medseg.plugin.interpolation_widget import InterpolationWidget

    layer = viewer.layers.selection.active
    if not isinstance(layer, Labels):
        show_warning("Select the Labels layer to interpolate.")
        return
    _, widget = viewer.window.add_plugin_dock_widget("napari-medseg", "Interpolate")
    if isinstance(widget, InterpolationWidget):
        widget.run(layer)
