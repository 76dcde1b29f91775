"""Axial / coronal / sagittal planes on the real CT: orientation, axis names, the
three-plane layout, and a box + click object drawn and undone in the sagittal plane."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from conftest import canvas_of, drag
from napari_medseg.plugin.box_click_widget import BoxClickWidget
from napari_medseg.plugin.labels_target import new_labels_for_image
from napari_medseg.plugin.slice_plane import camera_of
from napari_medseg.plugin.view_planes import ViewPlanesWidget, axis_labels, show_plane

KIDNEY = 2  # TotalSegmentator's right kidney


@pytest.fixture
def ct(viewer, ct_dir):
    [image] = viewer.open(ct_dir / "example_ct_sm.nii.gz", plugin="napari-medseg")
    [organs] = viewer.open(ct_dir / "example_seg.nii.gz", plugin="napari-medseg")
    organs.visible = False
    return image, np.asarray(organs.data)


def test_planes_follow_the_radiological_convention_with_anatomical_names(viewer, ct):
    image, _ = ct
    assert axis_labels(image) == ("I-S (mm)", "A-P (mm)", "R-L (mm)")
    expected = {"axial": ((1, 2), "down"), "coronal": ((0, 2), "up"),
                "sagittal": ((0, 1), "up")}
    for plane, (displayed, vertical) in expected.items():
        show_plane(viewer, image, plane)
        assert tuple(viewer.dims.displayed) == displayed
        assert camera_of(viewer).orientation2d[0] == vertical  # superior at the top
    assert tuple(viewer.dims.axis_labels) == axis_labels(image)
    stack = viewer.add_image(np.zeros((4, 8, 8)), scale=(2.0, 0.5, 0.5),
                             metadata={"units": ("um", "um", "um"), "axes": "ZYX"})
    show_plane(viewer, stack, "coronal")  # microscopy: xz, z downwards as in Fiji
    assert axis_labels(stack) == ("z (um)", "y (um)", "x (um)")
    assert camera_of(viewer).orientation2d[0] == "down"
    with pytest.raises(ValueError, match="planes need a volume"):
        show_plane(viewer, viewer.add_image(np.zeros((8, 8))), "axial")


def _three_planes_with_box_tool(viewer, qtbot, image, size, plane="axial"):
    """Labels for ``image``, the three-plane layout with ``plane`` in the main view and
    box + click on it, networks loaded: (labels, planes widget, tool, side view widgets)."""
    pytest.importorskip("napari_orthogonal_views")
    from napari_orthogonal_views.ortho_view_manager import _get_manager

    viewer.window._qt_window.resize(*size)
    labels = new_labels_for_image(viewer, image, np.uint16, name="annotations")
    planes = ViewPlanesWidget(viewer)
    viewer.window.add_dock_widget(planes)
    planes._layer.value = image
    planes._three.value = True
    planes._buttons[plane].native.click()
    qtbot.wait(50)
    tool = BoxClickWidget(viewer)
    viewer.window.add_dock_widget(tool)
    tool._source.value, tool._target.value = image, labels
    assert tool._method.value == "intensity"  # a NIfTI volume propagates by intensity
    tool._active.value = True
    qtbot.waitUntil(lambda: "Loading" not in tool._status.value, timeout=60_000)
    manager = _get_manager(viewer)
    return labels, planes, tool, [w for w in (manager.right_widget, manager.bottom_widget)]


def _kidney_section(viewer, image, organs):
    """Show the sagittal slice x through the kidney's middle: (x, its rows zs, cols ys)."""
    x = int(np.median(np.nonzero(organs == KIDNEY)[2]))
    viewer.dims.set_point(2, image.data_to_world((0, 0, x))[2])
    zs, ys = np.nonzero(organs[:, :, x] == KIDNEY)
    return x, zs, ys


def _check_one_sagittal_kidney_object(labels, organs, x):
    written = np.argwhere(labels.data == 1)
    assert len(written) and set(written[:, 2]) == {x}  # one sagittal slice
    inside = (organs[tuple(written.T)] == KIDNEY).mean()
    assert inside > 0.5, f"only {inside:.0%} of the object lies in the kidney"


def test_a_box_drawn_in_the_sagittal_plane_of_three_commits_and_undoes(viewer, qtbot, ct):
    image, organs = ct
    labels, planes, tool, sides = _three_planes_with_box_tool(viewer, qtbot, image,
                                                               (1400, 1000), "sagittal")
    side = [w.vm_container.viewer_model for w in sides]
    assert {tuple(m.dims.displayed) for m in side} == {(0, 2), (1, 2)}  # coronal, axial
    assert [camera_of(m).orientation2d[0] for m in side if m.dims.displayed[0] == 0] == ["up"]

    x, zs, ys = _kidney_section(viewer, image, organs)
    camera_of(viewer).center = image.data_to_world((zs.mean(), ys.mean(), x))[:2]  # in view
    qtbot.wait(50)
    drag(qtbot, viewer, labels, (zs.min() - 1, ys.min() - 1, x), (zs.max() + 1, ys.max() + 1, x))
    assert tool._session is not None, "the drag in the sagittal plane drew no box"
    # the mouse lands where it should on the flipped plane (box clipped to the image;
    # a corner may round to the neighbouring voxel at this zoom)
    expected = (max(zs.min() - 1, 0), ys.min() - 1, zs.max() + 2, ys.max() + 2)
    assert np.abs(np.subtract(tool._session.box, expected)).max() <= 1
    canvas = canvas_of(viewer)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_C)
    _check_one_sagittal_kidney_object(labels, organs, x)
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not labels.data.any()  # one undo step
    planes._three.value = False


def test_box_click_works_in_a_side_view_and_commits_to_the_main_layer(viewer, qtbot, ct):
    image, organs = ct
    labels, planes, tool, sides = _three_planes_with_box_tool(viewer, qtbot, image,
                                                               (1600, 1100))
    [side] = [w for w in sides
              if tuple(w.vm_container.viewer_model.dims.displayed) == (0, 1)]  # sagittal
    model, canvas = side.vm_container.viewer_model, side.qt_viewer.canvas.native
    [copy] = [layer for layer in model.layers if layer.data is labels.data]
    x, zs, ys = _kidney_section(viewer, image, organs)
    qtbot.waitUntil(lambda: round(copy.world_to_data(model.dims.point)[2]) == x, timeout=5000)
    model.reset_view()  # the whole plane inside the (narrow) side canvas
    qtbot.wait(50)
    drag(qtbot, model, copy, (zs.min() - 1, ys.min() - 1, x), (zs.max() + 1, ys.max() + 1, x),
          canvas)
    assert tool._session is not None and tool._view is model
    tool.commit()
    _check_one_sagittal_kidney_object(labels, organs, x)  # the main layer: copies share data
    labels.undo()
    assert not labels.data.any()  # one undo step
    planes._three.value = False
