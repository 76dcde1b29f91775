"""Commands of the plugin that napari's command palette offers (no widget needed first)."""

from __future__ import annotations

import napari
from napari.layers import Labels
from napari.utils.notifications import show_info, show_warning

__all__ = ["interpolate_selected_labels", "open_files_with_medseg"]


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


def open_files_with_medseg() -> None:
    """File menu: open NIfTI, TIFF and zarr files with MedSeg from now on (drag-and-drop and
    File > Open), instead of napari asking each time which reader to use."""
    from napari_medseg.plugin.readers import prefer_this_reader

    changed = prefer_this_reader()
    if changed:
        show_info(f"MedSeg now opens {', '.join(changed)} files (drag-and-drop, File > Open). "
                  "napari's Preferences > Plugins lists the choice per extension.")
    else:
        show_info("You already chose a reader for each of these file types; change them in "
                  "napari's Preferences > Plugins.")
