"""The MedSeg panel in a real viewer: every tool by name, one image and labels picker, a
height that fits a screen, and a tool that works through it."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt

from conftest import blob_image, canvas_of, drag
from napari_medseg.evaluation import iou
from napari_medseg.plugin.panel import TOOLS


def _panel(viewer):
    _, panel = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    return panel


def test_every_tool_is_named_and_the_panel_fits_a_screen(viewer, qtbot):
    viewer.add_image(np.zeros((64, 64)))
    panel = _panel(viewer)
    qtbot.wait(50)
    buttons = panel._buttons.buttons()
    assert [b.text() for b in buttons] == [name for name, _, _ in TOOLS]
    assert all(b.isVisible() for b in buttons)
    for button in buttons:  # each tool is one click away, shown below the buttons
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert panel.tool == button.text() and button.isChecked()
    # nine tools docked one after another grew the window to 1,950 px; one panel stays small
    assert panel.native.minimumSizeHint().height() < 700


def test_the_panels_image_and_labels_are_every_tools_and_box_click_works_through_it(
        viewer, qtbot):
    image, truth = blob_image()
    picture = viewer.add_image(image, name="blob")
    viewer.add_image(np.zeros((8, 8)), name="other")
    layer = viewer.add_labels(np.zeros(truth.shape, np.uint16), name="mine")
    viewer.add_labels(np.zeros(truth.shape, np.uint16), name="theirs")
    panel = _panel(viewer)
    panel._image_picker.value, panel._labels_picker.value = picture, layer
    for name, tool in panel.tools.items():
        for role, attribute in dict(TOOLS_ROLES)[name].items():
            assert getattr(tool, attribute).value is {"image": picture, "labels": layer}[role]
            assert not getattr(tool, attribute).visible
    viewer.add_points(name="new layer")  # a layer-list change keeps the tools' choice
    assert panel.tools["Box + click"]._target.value is layer
    panel.tools["Box + click"]._active.value = True
    viewer.reset_view()
    qtbot.wait(50)
    ys, xs = np.nonzero(truth)
    drag(qtbot, viewer, layer, (ys.min() - 2, xs.min() - 2), (ys.max() + 2, xs.max() + 2))
    canvas = canvas_of(viewer)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_C)
    assert iou(layer.data == 1, truth) > 0.85
    assert not viewer.layers["theirs"].data.any()


def test_new_labels_from_the_panel_and_a_ct_shows_the_display_tool_first(viewer, real_ct):
    ct, _ = real_ct
    layer = viewer.add_image(np.asarray(ct.data), scale=ct.scale, metadata=ct.metadata)
    panel = _panel(viewer)
    panel._image_picker.value = layer
    assert panel.tool == "Display"
    panel._new_labels.native.click()
    labels = viewer.layers[-1]
    assert panel._labels_picker.value is labels and labels.data.shape == layer.data.shape
    assert panel.tools["Interpolate"]._layer.value is labels


TOOLS_ROLES = [(name, roles) for name, _, roles in TOOLS]


def test_the_panel_makes_medseg_the_nifti_reader_without_asking(viewer):
    from napari.settings import get_settings

    plugins = get_settings().plugins
    plugins.extension2reader = {k: v for k, v in plugins.extension2reader.items()
                                if k not in ("*.nii", "*.nii.gz")} | {"*.tif": "napari"}
    _panel(viewer)
    chosen = plugins.extension2reader
    assert chosen["*.nii"] == chosen["*.nii.gz"] == "napari-medseg"
    assert chosen["*.tif"] == "napari"  # a reader the user chose stays
