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


HINT = ("Drag a box around a nucleus (or click one), click to correct it, C to commit it "
        "into 'annotations'; Ctrl+Z undoes.")
HINT_CT = ("Drag a box around an organ on a slice, Propagate through slices, C to commit it "
           "into 'annotations'; the Display tab sets the CT window.")


def open_demo(sample: str | None = "dsb2018-nuclei", viewer: napari.Viewer | None = None
              ) -> napari.Viewer:
    """Open (or fill) a viewer with a sample (None: the layers it has) and dock all plugin
    widgets (as tabs). With a sample: an empty 'annotations' Labels layer over its image,
    the Box + click tool switched on for it (Display shown first for a CT), and a one-line
    hint of what to do."""
    from napari_medseg.plugin.labels_target import new_labels_for_image

    viewer = viewer or napari.Viewer(title="napari-medseg demo")
    image = viewer.open_sample(PLUGIN, sample)[0] if sample is not None else None
    docks = {}
    for k, name in enumerate(plugin_widget_names()):
        # tabbed together: six docked widgets stacked would each get a sliver of height
        docks[name] = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=k > 0)
    if image is None:
        return viewer
    ct = sample.endswith("ct")
    annotations = new_labels_for_image(viewer, image, name="annotations")
    box_click = docks["Box + click"][1]
    box_click._source.value, box_click._target.value = image, annotations
    box_click._active.value = True
    docks["Display" if ct else "Box + click"][0].raise_()
    viewer.text_overlay.text = HINT_CT if ct else HINT
    viewer.text_overlay.visible = True
    return viewer
