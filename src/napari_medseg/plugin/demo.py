"""The demo viewer: sample data with every widget of the plugin docked."""

from __future__ import annotations

import napari
from npe2 import PluginManager

__all__ = ["open_demo", "plugin_widget_names"]

PLUGIN = "napari-medseg"


def plugin_widget_names() -> list[str]:
    """Display names of the widgets the manifest declares, in manifest order."""
    manifest = PluginManager.instance().get_manifest(PLUGIN)
    return [w.display_name for w in manifest.contributions.widgets or []]


HINT = "Drag a box around a nucleus or click one; click to correct; C commits."
HINT_CT = "Drag a box around an organ, Propagate through slices, C commits."


def open_demo(sample: str | None = "dsb2018-nuclei", viewer: napari.Viewer | None = None
              ) -> napari.Viewer:
    """Open (or fill) a viewer with a sample (None: the layers it has) and the MedSeg panel
    (every tool by name; each is also in the Plugins menu on its own). With a sample: an
    empty 'annotations' Labels layer over its image, the Box + click tool switched on for
    it (for a CT the Display tool shown first), and a one-line hint of what to do."""
    from napari_medseg.plugin.labels_target import new_labels_for_image

    viewer = viewer or napari.Viewer(title="napari-medseg demo")
    image = viewer.open_sample(PLUGIN, sample)[0] if sample is not None else None
    annotations = new_labels_for_image(viewer, image, name="annotations") if image else None
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "MedSeg")
    if image is None:
        return viewer
    panel.reset_choices()
    panel._image_picker.value, panel._labels_picker.value = image, annotations
    panel.tools["Box + click"]._active.value = True
    ct = sample.endswith("ct")
    panel.show_tool("Display" if ct else "Box + click")
    viewer.text_overlay.text = HINT_CT if ct else HINT
    viewer.text_overlay.font_size = 10
    viewer.text_overlay.visible = True
    return viewer
