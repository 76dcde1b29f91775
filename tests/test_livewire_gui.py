"""Live-wire in a real viewer, driven by simulated mouse and keyboard events on the canvas."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt

from conftest import blob, canvas_of, outline_anchors, screen_point
from napari_medseg.evaluation import iou
from napari_medseg.plugin.livewire_widget import LiveWireWidget
from napari_medseg.plugin.slice_plane import SlicePlane


def _setup(viewer, qtbot, image, labels, **layer_kw):
    image_layer = viewer.add_image(image, **layer_kw)
    labels_layer = viewer.add_labels(labels, **layer_kw)
    widget = LiveWireWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._source.value = image_layer
    widget._target.value = labels_layer
    widget._active.value = True
    viewer.reset_view()
    qtbot.wait(50)
    return widget, labels_layer


def _click(qtbot, viewer, layer, point, double=False):
    canvas = canvas_of(viewer)
    pos = screen_point(viewer, layer, point)
    qtbot.mouseMove(canvas, pos)
    if double:
        qtbot.mouseDClick(canvas, Qt.MouseButton.LeftButton, pos=pos)
    else:
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.wait(10)


def test_click_anchors_move_close_fill_and_undo(viewer, qtbot):
    image, truth = blob(shape=(96, 96), center=(48, 48), radii=(22, 30))
    labels = np.zeros(truth.shape, np.uint16)
    labels[:6, :6] = 3  # an existing object
    widget, layer = _setup(viewer, qtbot, image, labels.copy())
    anchors = outline_anchors(truth, 6)
    for a in anchors:
        _click(qtbot, viewer, layer, a)
    assert len(widget._wire.anchors) == 6
    assert np.allclose(viewer.layers["live-wire anchors"].data, anchors, atol=1)

    # Moving the mouse shows the live path from the last anchor to the pointer.
    qtbot.mouseMove(canvas_of(viewer), screen_point(viewer, layer, anchors[0] + (0, 3)))
    qtbot.wait(20)
    live = widget._live
    assert len(live) > 3 and tuple(live[0]) == tuple(anchors[-1])

    _click(qtbot, viewer, layer, anchors[0])  # clicking the first anchor closes the contour
    filled = layer.data == 4  # next free id
    assert iou(filled, truth) > 0.9
    assert (layer.data[:6, :6] == 3).all()
    assert widget._wire is None and len(viewer.layers["live-wire path"].data) == 0

    canvas = canvas_of(viewer)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(layer.data, labels)  # one undo step


def test_double_click_closes_backspace_and_escape(viewer, qtbot):
    image, truth = blob()
    widget, layer = _setup(viewer, qtbot, image, np.zeros(truth.shape, np.uint8))
    canvas = canvas_of(viewer)
    a = outline_anchors(truth, 5)
    for p in a[:4]:
        _click(qtbot, viewer, layer, p)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Backspace)
    assert [tuple(p) for p in widget._wire.anchors] == [tuple(p) for p in a[:3]]
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert widget._wire is None and not layer.data.any()

    for p in a[:4]:
        _click(qtbot, viewer, layer, p)
    _click(qtbot, viewer, layer, a[4], double=True)
    assert iou(layer.data == 1, truth) > 0.85


def test_volume_slice_on_a_transposed_axis_with_scale(viewer, qtbot):
    image2d, truth2d = blob(shape=(64, 80), center=(32, 40), radii=(18, 26))
    # A volume whose displayed plane, after transposing, is (z, x) with z spacing 2.
    volume = np.repeat(image2d[:, None, :], 5, axis=1)  # (z=64, y=5, x=80)
    widget, layer = _setup(viewer, qtbot, volume, np.zeros(volume.shape, np.uint16),
                           scale=(2.0, 1.0, 1.0))
    viewer.dims.order = (1, 0, 2)  # slider on y; the canvas shows (z, x)
    viewer.dims.set_point(1, 2)
    viewer.reset_view()
    qtbot.wait(50)
    plane = SlicePlane(viewer, layer)
    assert plane.axes == (0, 2) and plane.index[1] == 2 and plane.spacing == (2.0, 1.0)
    for p in outline_anchors(truth2d, 6):
        _click(qtbot, viewer, layer, (p[0], 2, p[1]))
    widget.close_contour()
    assert iou(layer.data[:, 2, :] == 1, truth2d) > 0.85
    assert not layer.data[:, [0, 1, 3, 4], :].any()  # only the displayed slice


def test_clicks_outside_the_image_warn_and_change_nothing(viewer, qtbot):
    image, truth = blob()
    widget, layer = _setup(viewer, qtbot, image, np.zeros(truth.shape, np.uint8))
    widget._click(layer, (-20.0, 10.0))
    assert widget._wire is None
    viewer.layers.remove("image")  # nothing to trace on
    widget._click(layer, (10.0, 10.0))
    assert widget._wire is None and not layer.data.any()
