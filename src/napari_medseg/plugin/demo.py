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


def open_demo(sample: str | None = "nuclei-2d", viewer: napari.Viewer | None = None
              ) -> napari.Viewer:
    """Open (or fill) a viewer with a sample (None: the layers it has) and dock all plugin
    widgets (as tabs)."""
    viewer = viewer or napari.Viewer(title="napari-medseg demo")
    if sample is not None:
        viewer.open_sample(PLUGIN, sample)
    for k, name in enumerate(plugin_widget_names()):
        # tabbed together: six docked widgets stacked would each get a sliver of height
        viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=k > 0)
    return viewer
