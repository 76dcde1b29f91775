"""Proofreading in a real viewer on real nuclei: clicks, keys and a drag on the canvas."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from conftest import canvas_of, drag, dsb_fluorescence, screen_point
from napari_medseg.evaluation import innermost_point, touching_pairs
from napari_medseg.plugin.proofread_widget import ProofreadWidget
from test_proofreading import _iou


@pytest.fixture
def nuclei(dsb_train_dir):
    """A real fluorescence image with touching nuclei, and its labels."""
    for image, labels in dsb_fluorescence(dsb_train_dir, 40):
        if len(touching_pairs(labels, 2)) == 2:
            return image, labels
    pytest.skip("no image with touching nuclei")


def _setup(viewer, qtbot, image, labels, **layer_kw):
    image_layer = viewer.add_image(image, **layer_kw)
    layer = viewer.add_labels(labels.copy(), **layer_kw)
    widget = ProofreadWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._source.value = image_layer
    widget._target.value = layer
    widget._active.value = True
    viewer.reset_view()
    qtbot.wait(50)
    return widget, layer


def _click(qtbot, viewer, layer, point):
    canvas = canvas_of(viewer)
    pos = screen_point(viewer, layer, point)
    qtbot.mouseMove(canvas, pos)
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.wait(10)


def _key(qtbot, viewer, key, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(canvas_of(viewer), key, modifier)
    qtbot.wait(10)


def test_delete_merge_and_split_real_nuclei_each_one_undo_step(viewer, qtbot, nuclei):
    image, labels = nuclei
    # scaled and moved, as a calibrated image is: clicks must land on the right pixels
    widget, layer = _setup(viewer, qtbot, image, labels, scale=(0.5, 0.5), translate=(10, 20))
    (u, v), (a, _) = touching_pairs(labels, 2)
    pu, pv = innermost_point(labels == u), innermost_point(labels == v)

    _click(qtbot, viewer, layer, innermost_point(labels == a))  # delete mode: a click deletes
    assert not (layer.data == a).any() and "Deleted object" in widget._status.value
    _key(qtbot, viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(layer.data, labels)

    _click(qtbot, viewer, layer, (0, 0) if labels[0, 0] == 0 else (labels == 0).nonzero())
    assert "background" in widget._status.value  # nothing to delete there, and it says so
    np.testing.assert_array_equal(layer.data, labels)

    _key(qtbot, viewer, Qt.Key.Key_M)
    assert widget._mode.value == "merge"
    _click(qtbot, viewer, layer, pu)
    _click(qtbot, viewer, layer, pv)
    assert len(viewer.layers["proofreading clicks"].data) == 2
    _key(qtbot, viewer, Qt.Key.Key_Return)
    merged = layer.data.copy()
    assert (merged == u).sum() == ((labels == u) | (labels == v)).sum() and not (merged == v).any()
    assert len(viewer.layers["proofreading clicks"].data) == 0

    _key(qtbot, viewer, Qt.Key.Key_S)
    _click(qtbot, viewer, layer, pu)
    _click(qtbot, viewer, layer, pv)
    _key(qtbot, viewer, Qt.Key.Key_Return)
    new = labels.max() + 1
    assert _iou(layer.data == u, labels == u) > 0.75
    assert _iou(layer.data == new, labels == v) > 0.75
    _key(qtbot, viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # one step back
    np.testing.assert_array_equal(layer.data, merged)


def test_a_drag_across_an_object_cuts_it(viewer, qtbot):
    yy, xx = np.mgrid[:80, :120]
    labels = np.zeros((80, 120), np.uint16)
    left = (yy - 40) ** 2 + (xx - 40) ** 2 < 24 ** 2
    right = (yy - 40) ** 2 + (xx - 80) ** 2 < 22 ** 2
    labels[left | right] = 2
    image = (labels > 0).astype(np.float32)
    widget, layer = _setup(viewer, qtbot, image, labels)
    widget.set_mode("split")
    drag(qtbot, viewer, layer, (8, 60), (72, 60))
    assert set(np.unique(layer.data)) == {0, 2, 3}
    assert _iou(layer.data == 3, (left | right) & (xx >= 60)) > 0.9
    assert len(viewer.layers["proofreading cut"].data) == 0


def test_a_stack_is_proofread_in_3d_on_the_displayed_slice(viewer, qtbot, gonuclear_dir):
    import tifffile

    labels = tifffile.imread(gonuclear_dir / "1136_labels.tif")
    image = tifffile.imread(gonuclear_dir / "1136_image.tif")
    _, layer = _setup(viewer, qtbot, image, labels, scale=(0.284, 0.127, 0.127))
    target = int(np.bincount(labels.ravel())[1:].argmax() + 1)
    z, y, x = innermost_point(labels == target)
    viewer.dims.set_point(0, z * 0.284)
    qtbot.wait(20)
    _click(qtbot, viewer, layer, (z, y, x))
    # the whole nucleus went, through all its slices, and nothing else
    assert not (layer.data == target).any()
    np.testing.assert_array_equal(layer.data[labels != target], labels[labels != target])


def test_accepted_objects_and_painted_background_are_the_training_annotations(
        viewer, qtbot, nuclei):
    from napari_medseg.proofreading import checked_annotations

    image, labels = nuclei
    widget, layer = _setup(viewer, qtbot, image, labels)
    (u, v), _ = touching_pairs(labels, 2)
    _key(qtbot, viewer, Qt.Key.Key_A)
    assert widget._mode.value == "accept"
    for label in (u, v):
        _click(qtbot, viewer, layer, innermost_point(labels == label))
    assert "Checked object" in widget._status.value
    checked = viewer.layers[f"{layer.name} checked"]
    assert set(np.unique(labels[checked.data == 1])) == {u, v}
    np.testing.assert_array_equal(layer.data, labels)  # accepting changes no label
    _click(qtbot, viewer, layer, innermost_point(labels == u))  # twice: said, not redone
    assert "checked already" in widget._status.value

    widget._paint_background.native.click()
    assert viewer.layers.selection.active is checked and checked.mode == "paint"
    assert checked.selected_label == 2 and not widget._active.value
    checked.data[:8, :8] = 2  # as the brush paints
    annotations, background, objects = checked_annotations(layer.data, checked.data)
    assert objects == 2 and background == labels.max() + 1
    assert set(np.unique(annotations)) == {0, u, v, background}


def test_fine_tune_on_my_corrections_segments_again_keeping_the_checked_objects(
        viewer, qtbot, nuclei):
    from napari_medseg.plugin.proofread_widget import checked_layer_of

    image, labels = nuclei
    widget, layer = _setup(viewer, qtbot, image, labels)
    assert widget.fine_tune() is None and "Nothing is checked" in widget._status.value
    checked = checked_layer_of(viewer, layer)
    checked.data = np.where(labels > 0, 1, 0).astype(np.uint8)  # every object accepted
    widget._minutes.value = 0.5
    worker = widget.fine_tune()
    assert worker is not None
    qtbot.waitUntil(lambda: "Segmented again" in widget._status.value, timeout=300_000)
    assert "held-out objects" in widget._status.value
    np.testing.assert_array_equal(layer.data[labels > 0], labels[labels > 0])
    assert widget._model.value == "fine-tuned here" and widget._tuned is not None
    layer.undo()  # one step
    np.testing.assert_array_equal(layer.data, labels)


def test_redo_with_a_click_and_add_with_one_click_in_a_stack_slice(viewer, qtbot,
                                                                    dsb_train_dir):
    """Real nuclei as the middle slice of a 3-slice stack (a calibrated one): R, a click
    on a nucleus the model cut short, a click on its missing part, Enter: whole again; N,
    a click on a missed nucleus: added with the layer's next free id; each one undo step,
    other slices untouched."""
    from test_proofreading import _cut_nuclei

    image, truth, cut, label = next(_cut_nuclei(dsb_train_dir, 1))
    missed = int(truth.max())  # a second nucleus the model missed
    if missed == label:
        missed -= 1
    labels = np.stack([np.zeros_like(cut), np.where(truth == missed, 0, cut),
                       np.full_like(cut, 0)])
    labels[2, :3, :3] = 99  # the layer's largest id lives on another slice
    stack = np.stack([image] * 3)
    widget, layer = _setup(viewer, qtbot, stack, labels, scale=(2.0, 0.5, 0.5))
    viewer.dims.set_point(0, 2.0)  # slice 1
    qtbot.wait(20)
    _key(qtbot, viewer, Qt.Key.Key_R)
    assert widget._mode.value == "redo"
    _click(qtbot, viewer, layer, (1, *innermost_point(cut == label)))
    _click(qtbot, viewer, layer, (1, *innermost_point((truth == label) & (cut != label))))
    _key(qtbot, viewer, Qt.Key.Key_Return)
    assert "Redrew object" in widget._status.value
    assert _iou(layer.data[1] == label, truth == label) > _iou(cut == label,
                                                               truth == label) + 0.1
    _key(qtbot, viewer, Qt.Key.Key_N)
    _click(qtbot, viewer, layer, (1, *innermost_point(truth == missed)))
    assert "Added object 100" in widget._status.value
    assert _iou(layer.data[1] == 100, truth == missed) > 0.7
    np.testing.assert_array_equal(layer.data[[0, 2]], labels[[0, 2]])
    _key(qtbot, viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not (layer.data == 100).any()
