"""Box + click in a real viewer: drag a box, click prompts, commit, undo, propagate, 3D box."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from scipy import ndimage as ndi
from skimage.transform import rescale

from conftest import blob_image, canvas_of, drag, screen_point
from napari_medseg.evaluation import iou
from napari_medseg.plugin.box_click_widget import BoxClickWidget


def _setup(viewer, qtbot, image, labels, **layer_kw):
    image_layer = viewer.add_image(image, **layer_kw)
    labels_layer = viewer.add_labels(labels, **layer_kw)
    widget = BoxClickWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._source.value = image_layer
    widget._target.value = labels_layer
    widget._active.value = True
    viewer.reset_view()
    qtbot.wait(50)
    return widget, labels_layer


def _box_on_slice(viewer, widget, truth, z, z_scale=1.0):
    """Show slice ``z`` and draw a box 2 px around the true object there."""
    viewer.dims.set_point(0, z * z_scale)
    ys, xs = np.nonzero(truth[z])
    widget.set_box((ys.min() - 2, xs.min() - 2), (ys.max() + 2, xs.max() + 2))


def _click(qtbot, viewer, layer, point, button=Qt.MouseButton.LeftButton):
    pos = screen_point(viewer, layer, point)
    qtbot.mouseClick(canvas_of(viewer), button, pos=pos)
    qtbot.wait(20)


def test_drag_box_click_commit_and_undo(viewer, qtbot):
    image, truth = blob_image()
    labels = np.zeros(truth.shape, np.uint16)
    labels[:5, :5] = 7
    widget, layer = _setup(viewer, qtbot, image, labels.copy())
    ys, xs = np.nonzero(truth)
    drag(qtbot, viewer, layer, (ys.min() - 2, xs.min() - 2), (ys.max() + 2, xs.max() + 2))
    assert widget._session is not None
    preview = viewer.layers["mask preview"].data.astype(bool)
    assert iou(preview, truth) > 0.85

    _click(qtbot, viewer, layer, (ys.mean(), xs.mean()))  # a positive click
    _click(qtbot, viewer, layer, (ys.min() - 1, xs.min() - 1), Qt.MouseButton.RightButton)
    assert [s for _, s in widget._prompts] == [True, False]
    canvas = canvas_of(viewer)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [s for _, s in widget._prompts] == [True]  # Ctrl+Z took back the last prompt

    qtbot.keyClick(canvas, Qt.Key.Key_C)
    assert iou(layer.data == 8, truth) > 0.85  # next free id
    assert (layer.data[:5, :5] == 7).all()
    assert widget._session is None and not viewer.layers["mask preview"].data.any()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(layer.data, labels)  # one undo step


def test_escape_clears_and_negative_click_without_box_warns(viewer, qtbot):
    image, truth = blob_image()
    widget, layer = _setup(viewer, qtbot, image, np.zeros(truth.shape, np.uint8))
    # no box and no object yet: a right click is a warning, nothing else
    _click(qtbot, viewer, layer, (40, 40), button=Qt.MouseButton.RightButton)
    assert widget._session is None
    drag(qtbot, viewer, layer, (10, 10), (80, 80))
    canvas = canvas_of(viewer)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert widget._session is None and not layer.data.any()
    assert len(viewer.layers["box prompt"].data) == 0


def _stack():
    image2d, truth2d = blob_image()
    profile = np.array([0.0, 0.5, 0.8, 1.0, 1.0, 1.0, 0.8, 0.5, 0.0])
    truth = np.zeros((9, *truth2d.shape), bool)
    image = np.zeros((9, *truth2d.shape), np.float32)
    ys, xs = np.nonzero(truth2d)
    cy, cx = int(ys.mean()), int(xs.mean())
    for z, s in enumerate(profile):
        if s == 0:
            image[z] = image2d.min()
            continue
        small = rescale(truth2d, s, order=0).astype(bool)
        sy, sx = np.nonzero(small)
        oy, ox = cy - int(sy.mean()), cx - int(sx.mean())
        truth[z, oy:oy + small.shape[0], ox:ox + small.shape[1]] |= small[
            : truth.shape[1] - oy, : truth.shape[2] - ox]
        image[z] = np.where(truth[z], image2d.max(), image2d.min())
    image = ndi.gaussian_filter(image, (0.5, 1.2, 1.2)) + np.random.default_rng(0).normal(
        0, 50, image.shape)
    return image.astype(np.float32), truth


def test_propagate_through_slices_and_cancel_free_commit(viewer, qtbot):
    image, truth = _stack()
    widget, layer = _setup(viewer, qtbot, image, np.zeros(truth.shape, np.uint16),
                           scale=(2.0, 1.0, 1.0))
    _box_on_slice(viewer, widget, truth, 4, z_scale=2.0)
    worker = widget.propagate()
    assert worker is not None
    qtbot.waitUntil(lambda: not widget._work.running, timeout=30_000)
    widget.commit()
    assert iou(layer.data == 1, truth) > 0.7
    assert not layer.data[[0, 8]].any()  # the object ends where it ends


def test_3d_box_on_a_transposed_view(viewer, qtbot):
    image, truth = _stack()
    image = np.ascontiguousarray(np.moveaxis(image, 0, 2))  # z is now the last axis
    truth = np.moveaxis(truth, 0, 2)
    widget, layer = _setup(viewer, qtbot, image, np.zeros(truth.shape, np.uint16))
    viewer.dims.order = (2, 0, 1)  # slider on the old z
    viewer.dims.set_point(2, 4)
    ys, xs = np.nonzero(truth[:, :, 4])
    widget._depth.value = 4
    widget.set_box((ys.min() - 2, xs.min() - 2), (ys.max() + 2, xs.max() + 2))
    qtbot.waitUntil(lambda: not widget._work.running, timeout=30_000)
    widget.commit()
    assert iou(layer.data == 1, truth) > 0.7


def test_voxels_painted_while_propagating_are_kept_at_commit(viewer, qtbot):
    image, truth = _stack()
    widget, layer = _setup(viewer, qtbot, image, np.zeros(truth.shape, np.uint16))
    _box_on_slice(viewer, widget, truth, 4)
    widget.propagate()
    painted = np.zeros(truth.shape, bool)
    painted[3] = truth[3]  # the user paints id 7 where the object continues, mid-run
    layer.data_setitem(np.nonzero(painted), 7)
    qtbot.waitUntil(lambda: not widget._work.running, timeout=30_000)
    label = widget.commit()
    assert label == 8  # the next free id after the painted 7
    assert (layer.data[painted] == 7).all()  # preserve mode: the newer paint stays
    assert (layer.data[5][truth[5]] == label).mean() > 0.8


def test_one_click_without_a_box_segments_the_nucleus_under_it(viewer, qtbot):
    from napari_medseg import nuclei_2d

    image, truth = nuclei_2d((160, 160), n_nuclei=10, seed=3)
    widget, layer = _setup(viewer, qtbot, image, np.zeros(truth.shape, np.uint16))
    label = np.bincount(truth.ravel())[1:].argmax() + 1  # the largest nucleus
    inner = ndi.distance_transform_edt(truth == label)
    point = np.unravel_index(int(np.argmax(inner)), truth.shape)
    _click(qtbot, viewer, layer, point)
    assert widget._session is not None and "Object under the click" in widget._status.value
    written = widget.commit()
    assert iou(layer.data == written, truth == label) > 0.7
    assert "right-click" in widget._status.value or written == 1


def test_switching_the_tool_off_removes_its_preview_layers(viewer, qtbot):
    image, truth = blob_image()
    widget, _ = _setup(viewer, qtbot, image, np.zeros(truth.shape, np.uint16))
    ys, xs = np.nonzero(truth)
    widget.set_box((ys.min() - 2, xs.min() - 2), (ys.max() + 2, xs.max() + 2))
    assert "mask preview" in viewer.layers and "Box drawn" in widget._status.value
    widget.commit()
    widget.set_box((ys.min() - 2, xs.min() - 2), (ys.max() + 2, xs.max() + 2))
    assert "Committed" not in widget._status.value  # the next object's own message
    widget._active.value = False
    assert not {"box prompt", "click prompts", "mask preview"} & {lyr.name for lyr in
                                                                   viewer.layers}


def test_propagation_stopping_at_a_leak_says_why_in_the_widget(viewer, qtbot):
    from conftest import leaking_stack

    volume, truth = leaking_stack()
    widget, layer = _setup(viewer, qtbot, volume, np.zeros(truth.shape, np.uint16))
    viewer.dims.set_point(0, 3)
    widget.set_box((34, 34), (62, 62))
    widget.propagate()
    qtbot.waitUntil(lambda: not widget._work.running, timeout=30_000)
    assert "above slice 7" in widget._status.value and "leak" in widget._status.value
    label = widget.commit()
    assert not (layer.data[7:] == label).any()  # nothing of the leak was committed


def test_in_the_3d_view_dragging_is_the_cameras(viewer, qtbot):
    image, truth = _stack()
    widget, layer = _setup(viewer, qtbot, image, np.zeros(truth.shape, np.uint16))
    assert layer.mouse_pan is False  # 2D: dragging draws boxes
    viewer.dims.ndisplay = 3
    assert layer.mouse_pan is True
    camera = viewer.camera.angles
    canvas = canvas_of(viewer)
    centre = canvas.rect().center()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=centre)
    for k in range(1, 6):
        qtbot.mouseMove(canvas, centre + type(centre)(15 * k, 8 * k))
        qtbot.wait(5)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=centre + type(centre)(75, 40))
    assert viewer.camera.angles != camera and widget._session is None
    viewer.dims.ndisplay = 2
    assert layer.mouse_pan is False


def test_a_commit_that_writes_nothing_is_a_warning_and_keeps_the_object(viewer, qtbot):
    image, truth = blob_image()
    # every pixel already belongs to object 4 (a region painted earlier)
    widget, layer = _setup(viewer, qtbot, image, np.full(truth.shape, 4, np.uint16))
    ys, xs = np.nonzero(truth)
    widget.set_box((ys.min() - 2, xs.min() - 2), (ys.max() + 2, xs.max() + 2))
    assert widget.commit() is None
    assert "Nothing was written" in widget._status.value and widget._session is not None
    assert (layer.data == 4).all()


def _widening_cone():
    """A bright disk growing 0.5 px in radius per slice (12 slices): propagated from its
    small end, the object is on average 1.8 times that slice's area."""
    from skimage.draw import disk

    rng = np.random.default_rng(0)
    volume = rng.normal(200, 20, (12, 96, 96))
    truth = np.zeros(volume.shape, bool)
    for z in range(12):
        truth[z][disk((48, 48), 8 + 0.5 * z, shape=(96, 96))] = True
    volume[truth] += 800
    return volume.astype(np.uint16), truth


def test_a_propagated_commit_far_larger_than_its_first_slice_asks_first(viewer, qtbot):
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication, QMessageBox

    volume, truth = _widening_cone()
    widget, layer = _setup(viewer, qtbot, volume, np.zeros(truth.shape, np.uint16))
    _box_on_slice(viewer, widget, truth, 0)
    widget.propagate()
    qtbot.waitUntil(lambda: not widget._work.running, timeout=30_000)
    asked = []

    def answer(button):
        def press():
            box = QApplication.activeModalWidget()
            if not isinstance(box, QMessageBox):
                QTimer.singleShot(50, press)
                return
            asked.append(box.text())
            box.button(button).click()
        QTimer.singleShot(50, press)

    answer(QMessageBox.StandardButton.No)
    assert widget.commit() is None and not layer.data.any()  # declined: nothing written
    assert "times the first slice's object" in asked[0]
    answer(QMessageBox.StandardButton.Yes)
    label = widget.commit()
    assert len(asked) == 2 and iou(layer.data == label, truth) > 0.7


def test_a_click_outside_the_drawn_box_grows_it_or_is_satisfied(viewer, qtbot):
    """A box over the object's left half, a click on its right half: the box takes it in
    and the preview covers the object; a right-click outside the box changes nothing and
    says so; Ctrl+Z gives the drawn box back."""
    image, truth = blob_image()
    widget, layer = _setup(viewer, qtbot, image, np.zeros(truth.shape, np.uint16))
    ys, xs = np.nonzero(truth)
    middle = int(xs.mean())
    drag(qtbot, viewer, layer, (ys.min() - 2, xs.min() - 2), (ys.max() + 2, middle))
    drawn = widget._session.box
    half = iou(viewer.layers["mask preview"].data.astype(bool), truth)
    right = np.nonzero(truth[:, middle + 8:])
    _click(qtbot, viewer, layer, (int(np.median(right[0])), middle + 8 + int(np.median(right[1]))))
    assert widget._session.box[3] > drawn[3] and "grew" in widget._status.value
    grown = iou(viewer.layers["mask preview"].data.astype(bool), truth)
    assert grown > max(half + 0.2, 0.8)
    _click(qtbot, viewer, layer, (2, 2), Qt.MouseButton.RightButton)
    assert "nothing to take away" in widget._status.value and len(widget._prompts) == 1
    canvas = canvas_of(viewer)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert widget._session.box == drawn


def test_one_click_on_background_says_no_object_and_esc_resets_the_status(viewer, qtbot):
    from napari_medseg import nuclei_2d

    image, truth = nuclei_2d((160, 160), n_nuclei=6, seed=3)
    widget, layer = _setup(viewer, qtbot, image, np.zeros(truth.shape, np.uint16))
    far = ndi.distance_transform_edt(truth == 0)
    _click(qtbot, viewer, layer, np.unravel_index(int(np.argmax(far)), truth.shape))
    assert widget._session is None and "No object here" in widget._status.value
    label = np.bincount(truth.ravel())[1:].argmax() + 1
    inner = ndi.distance_transform_edt(truth == label)
    _click(qtbot, viewer, layer, np.unravel_index(int(np.argmax(inner)), truth.shape))
    assert "Object under the click" in widget._status.value
    canvas = canvas_of(viewer)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert widget._session is None and "Object under the click" not in widget._status.value
    widget._active.value = False
    assert "off" in widget._status.value
