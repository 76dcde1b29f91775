"""Slice interpolation in a real viewer: shortcut, button, undo, cancel; and the CLI."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from qtpy.QtCore import Qt
from skimage.draw import disk

from napari_medseg.cli import main
from napari_medseg.plugin.interpolation_widget import InterpolationWidget
from napari_medseg.plugin.slice_plane import SlicePlane, slider_axis


def _annotated(shape=(9, 64, 64)) -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros(shape, np.uint16)
    for k in range(shape[0]):
        truth[k][disk((20 + 2 * k, 20 + 2 * k), 8 + k / 2, shape=shape[1:])] = 5
    sparse = np.zeros_like(truth)
    sparse[[0, 4, 8]] = truth[[0, 4, 8]]
    return truth, sparse


@pytest.fixture
def viewer_and_widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    widget = InterpolationWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, widget


def _wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget._work.running, timeout=30_000)


def test_shortcut_interpolates_displayed_axis_and_ctrl_z_undoes(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    truth, sparse = _annotated()
    other = sparse.copy()
    other[2, 50:60, 50:60] = 9  # another object the fill must not touch
    layer = viewer.add_labels(other.copy(), scale=(2.0, 0.5, 0.5))
    layer.selected_label = 5
    viewer.layers.selection.active = layer
    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_I, Qt.KeyboardModifier.ShiftModifier)
    _wait(qtbot, widget)

    filled = layer.data == 5
    dice = 2 * (filled & (truth == 5)).sum() / (filled.sum() + (truth == 5).sum())
    assert dice > 0.95
    assert (layer.data[2, 50:60, 50:60] == 9).all()
    assert "label 5: 6 slices" in widget._status.value

    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(layer.data, other)  # one undo step reverts it all


def test_button_uses_the_slider_axis_after_transposing(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    truth, sparse = _annotated()
    layer = viewer.add_labels(np.ascontiguousarray(np.moveaxis(sparse, 0, 2)))  # z is now last
    viewer.dims.order = (2, 0, 1)  # now the slider steps through axis 2 (the old z)
    assert slider_axis(viewer, layer) == 2
    widget._layer.value = layer
    widget._which.value = "all labels"
    widget._run_button.native.click()
    _wait(qtbot, widget)
    result = np.moveaxis(layer.data, 2, 0) == 5
    assert 2 * (result & (truth == 5)).sum() / (result.sum() + (truth == 5).sum()) > 0.95


@pytest.mark.parametrize("overwrite", [False, True])
def test_voxels_painted_while_the_worker_runs_are_kept(viewer_and_widget, qtbot, overwrite):
    viewer, widget = viewer_and_widget
    truth, sparse = _annotated()
    layer = viewer.add_labels(sparse.copy())
    layer.selected_label = 5
    widget._layer.value = layer
    widget._overwrite.value = overwrite
    widget.run()
    # the user paints id 2 into slice 2, where the fill will go, before the result arrives
    painted = np.zeros(layer.data.shape, bool)
    painted[2] = truth[2] == 5
    layer.data_setitem(np.nonzero(painted), 2)
    _wait(qtbot, widget)
    assert (layer.data[painted] == 2).all()
    assert (layer.data[3][truth[3] == 5] == 5).mean() > 0.9  # the rest was filled
    assert "painted meanwhile were kept" in widget._status.value


def test_one_slider_axis_rule_for_tools_and_interpolation_on_reordered_4d(viewer_and_widget):
    viewer, _ = viewer_and_widget
    layer = viewer.add_labels(np.zeros((3, 5, 16, 16), np.uint8))
    for order in [(0, 1, 2, 3), (1, 0, 2, 3), (2, 3, 0, 1), (0, 3, 1, 2)]:
        viewer.dims.order = order
        axis = slider_axis(viewer, layer)
        assert axis == order[1]  # the last non-displayed dimension
        assert SlicePlane(viewer, layer).sliced_axis == axis


def test_cancel_leaves_the_layer_untouched(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    rng = np.random.default_rng(0)
    data = np.zeros((40, 256, 256), np.uint16)
    for label in range(1, 301):
        cy, cx = rng.integers(10, 246, 2)
        for k in (0, 39):
            data[k][disk((cy, cx), 6, shape=(256, 256))] = label
    layer = viewer.add_labels(data.copy())
    widget._layer.value = layer
    widget._which.value = "all labels"
    worker = widget.run()
    widget._cancel_button.native.click()
    _wait(qtbot, widget)
    assert worker.abort_requested
    np.testing.assert_array_equal(layer.data, data)
    assert "Cancelled" in widget._status.value


def test_cli_interpolates_a_nifti_file_and_keeps_its_affine(tmp_path, capsys):
    truth, sparse = _annotated((9, 40, 40))
    # Voxel axes i, j swapped relative to x, y (i runs posterior, j towards the left); k is z.
    affine = np.array([[0, -0.8, 0, 10], [-0.8, 0, 0, -5], [0, 0, 3.0, 2], [0, 0, 0, 1]])
    src, dst = tmp_path / "sparse_seg.nii.gz", tmp_path / "filled_seg.nii.gz"
    nib.save(nib.Nifti1Image(sparse.transpose(2, 1, 0).copy(), affine), src)
    assert main(["interpolate", str(src), str(dst)]) == 0
    assert "label 5: filled" in capsys.readouterr().out
    out = nib.load(dst)
    np.testing.assert_allclose(out.affine, affine)
    stored = np.asanyarray(out.dataobj).transpose(2, 1, 0) == 5  # back to (z, y, x)
    assert 2 * (stored & (truth == 5)).sum() / (stored.sum() + (truth == 5).sum()) > 0.95

    with pytest.raises(SystemExit) as info:  # never replaces a file without --force
        main(["interpolate", str(src), str(dst)])
    assert info.value.code == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["interpolate", str(src), str(dst), "--force", "--labels", "5"]) == 0


def test_the_palette_command_interpolates_without_opening_the_widget_first(
        make_napari_viewer, qtbot):
    from napari_medseg.plugin.commands import interpolate_selected_labels

    viewer = make_napari_viewer(show=True)
    truth, sparse = _annotated()
    layer = viewer.add_labels(sparse.copy())
    layer.selected_label = 5
    viewer.layers.selection.active = layer
    interpolate_selected_labels(viewer)
    widget = next(w for w in viewer.window.dock_widgets.values()
                  if isinstance(w, InterpolationWidget))
    _wait(qtbot, widget)
    filled = layer.data == 5
    assert 2 * (filled & (truth == 5)).sum() / (filled.sum() + (truth == 5).sum()) > 0.95
