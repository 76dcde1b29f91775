"""The plugin in a real napari viewer: reader, writer, samples, widgets, undoable commits."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_medseg.plugin.demo import PLUGIN, plugin_widget_names
from napari_medseg.plugin.labels_target import new_labels_for_image
from napari_medseg.plugin.layer_edit import commit_mask_to_layer, next_free_label_of_layer

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def test_nifti_opens_with_voxel_scale_and_saved_labels_keep_the_affine(viewer, tmp_path):
    src = NIBABEL_DATA / "anatomical.nii"
    [image] = viewer.open(src, plugin=PLUGIN)
    assert image.data.shape == (25, 41, 33)
    assert tuple(image.scale) == (2.0, 2.0, 2.0)
    assert "nifti" in image.metadata

    labels = new_labels_for_image(viewer, image)
    labels.data[10, 20, 15] = 5
    out = tmp_path / "seg.nii.gz"
    labels.save(str(out), plugin=PLUGIN)
    saved = nib.load(out)
    np.testing.assert_allclose(saved.affine, nib.load(src).affine)
    assert np.argwhere(np.asanyarray(saved.dataobj) == 5).tolist() == [[15, 41 - 1 - 20, 10]]


def test_shared_label_tiff_opens_as_labels(viewer, dsb_dir):
    path = sorted(dsb_dir.glob("*_labels.tif"))[0]
    [layer] = viewer.open(path, plugin=PLUGIN)
    assert layer.__class__.__name__ == "Labels"


def test_ome_zarr_opens_lazily_as_a_multiscale_image_with_its_labels(viewer, tmp_path):
    import zarr
    from ome_zarr.writer import write_image, write_labels

    image = np.random.default_rng(0).integers(0, 4000, (512, 512), dtype=np.uint16)
    root = zarr.open_group(str(tmp_path / "cells.ome.zarr"), mode="w")
    write_image(image, root, axes="yx", scale_factors=(2, 4), scale={"y": 0.4, "x": 0.4})
    write_labels((image > 3000).astype(np.uint8), root, name="bright", axes="yx",
                 scale_factors=(2,), scale={"y": 0.4, "x": 0.4})
    layers = viewer.open(tmp_path / "cells.ome.zarr", plugin=PLUGIN)
    assert [type(layer).__name__ for layer in layers] == ["Image", "Labels"]
    picture, labels = layers
    assert picture.multiscale and len(picture.data) == 3
    assert type(picture.data[0]).__name__ == "Array"  # dask: read where shown
    assert tuple(picture.scale) == (0.4, 0.4) and tuple(labels.scale) == (0.4, 0.4)
    assert labels.multiscale and labels.name == "bright"


def test_unreadable_file_raises_a_short_clear_error(viewer, tmp_path):
    bad = tmp_path / "scan.nii.gz"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(Exception, match=r"Cannot read 'scan.nii.gz'"):
        viewer.open(bad, plugin=PLUGIN)
    assert len(viewer.layers) == 0


@pytest.mark.parametrize(
    ("key", "ndim", "scale"),
    [("nuclei-2d", 2, (1.0, 1.0)), ("nuclei-3d", 3, (1.0, 0.5, 0.5)), ("ct", 3, (2.5, 1.0, 1.0))],
)
def test_samples_load(viewer, key, ndim, scale):
    layers = viewer.open_sample(PLUGIN, key)
    kinds = sorted(type(layer).__name__ for layer in layers)
    assert kinds == ["Image", "Labels"]
    for layer in layers:
        assert layer.ndim == ndim
        assert tuple(layer.scale) == scale
    labels = next(layer for layer in layers if type(layer).__name__ == "Labels")
    assert labels.data.max() >= 6


@pytest.mark.parametrize(
    ("key", "shape", "scale", "objects"),
    [("dsb2018-nuclei", (520, 696), (1.0, 1.0), 90),
     ("gonuclear-3d", (100, 100, 100), (0.2837, 0.1276, 0.1276), 32),
     ("totalseg-ct", (30, 101, 122), (3.0, 3.0, 3.0), 20)],
)
def test_shipped_real_samples_load_with_voxel_size_source_and_licence(viewer, key, shape,
                                                                      scale, objects):
    image, labels = viewer.open_sample(PLUGIN, key)
    assert type(image).__name__ == "Image" and type(labels).__name__ == "Labels"
    assert image.data.shape == labels.data.shape == shape and not image.rgb
    np.testing.assert_allclose(image.scale, scale, atol=1e-4)
    assert len(np.unique(labels.data)) - 1 >= objects
    assert not labels.visible  # the image does not look segmented before anything is done
    assert image.metadata["licence"] and image.metadata["source"]
    # the viewer names its axes from the start ("z (µm)", "I-S (mm)"), not -3 / -2 / -1
    expected = {"dsb2018-nuclei": ("y", "x"), "gonuclear-3d": ("z (µm)", "y (µm)", "x (µm)"),
                "totalseg-ct": ("I-S (mm)", "A-P (mm)", "R-L (mm)")}[key]
    assert tuple(viewer.dims.axis_labels) == expected


def test_the_demo_opens_real_nuclei_with_box_click_on_for_an_empty_annotations_layer(viewer):
    from napari_medseg.plugin.demo import open_demo

    open_demo("dsb2018-nuclei", viewer)
    names = [layer.name for layer in viewer.layers]
    assert names[:3] == ["dsb2018_b76ff33ae9da", "dsb2018_b76ff33ae9da ground truth",
                         "annotations"]
    annotations = viewer.layers["annotations"]
    assert not annotations.data.any() and annotations.data.shape == (520, 696)
    assert annotations.mouse_drag_callbacks  # the box + click tool is on for it
    assert viewer.text_overlay.visible and "box" in viewer.text_overlay.text


def test_every_widget_opens(viewer):
    names = plugin_widget_names()
    assert names
    for name in names:
        dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        assert dock.isVisible() or not viewer.window._qt_window.isVisible()
        assert widget is not None


def test_new_labels_widget_creates_an_aligned_layer(viewer):
    from napari_medseg.plugin.labels_target import new_labels_widget

    image = viewer.open_sample(PLUGIN, "nuclei-3d")[0]
    widget = new_labels_widget()
    viewer.window.add_dock_widget(widget)
    widget.image.value = image
    widget.dtype.value = "uint32"
    widget()
    layer = viewer.layers[-1]
    assert layer.data.shape == image.data.shape and layer.data.dtype == np.uint32
    assert tuple(layer.scale) == tuple(image.scale)
    assert viewer.layers.selection.active is layer


def test_commit_is_one_undo_step_and_preserves_other_objects(viewer):
    labels = viewer.add_labels(np.zeros((4, 64, 64), np.uint16), scale=(3, 1, 1))
    labels.data[1, 10:20, 10:20] = 1
    mask = np.zeros((3, 30, 30), bool)
    mask[:, 5:25, 5:25] = True  # overlaps object 1 on slice 1

    edit = commit_mask_to_layer(labels, mask, offset=(0, 8, 8))
    assert edit.label == 2 == labels.selected_label
    assert (labels.data[1, 10:20, 10:20] == 1).all()
    after = labels.data.copy()
    assert (after == 2).sum() == 3 * 400 - 7 * 7  # rows/cols 13..19 of slice 1 hold object 1

    labels.undo()
    assert (labels.data == 2).sum() == 0
    assert (labels.data[1, 10:20, 10:20] == 1).all()
    labels.redo()
    np.testing.assert_array_equal(labels.data, after)

    commit_mask_to_layer(labels, mask, label=1, mode="overwrite", offset=(0, 8, 8))
    assert (labels.data == 2).sum() == 0
    labels.undo()
    np.testing.assert_array_equal(labels.data, after)
    assert next_free_label_of_layer(labels) == 3


def test_commit_refuses_dask_and_read_only_zarr_layers(viewer, tmp_path):
    import dask.array as da
    import zarr

    layer = viewer.add_labels(da.zeros((8, 8), dtype=np.uint8, chunks=4))
    with pytest.raises(ValueError, match="not a numpy or zarr array"):
        commit_mask_to_layer(layer, np.ones((8, 8), bool))
    zarr.create_array(str(tmp_path / "l.zarr"), shape=(8, 8), chunks=(4, 4), dtype="uint8")
    layer = viewer.add_labels(zarr.open_array(str(tmp_path / "l.zarr"), mode="r"))
    with pytest.raises(ValueError, match="read-only"):
        commit_mask_to_layer(layer, np.ones((8, 8), bool))


def _drop(viewer, path: Path) -> list:
    """Drop ``path`` on the canvas as a file manager would; return the layers it added."""
    from qtpy.QtCore import QMimeData, QPointF, Qt, QUrl
    from qtpy.QtGui import QDropEvent

    before = list(viewer.layers)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    viewer.window._qt_viewer.dropEvent(event)
    return [layer for layer in viewer.layers if layer not in before]


@pytest.fixture
def reader_choices():
    """napari's remembered reader per extension, restored after the test."""
    from napari.settings import get_settings

    plugins = get_settings().plugins
    before = dict(plugins.extension2reader)
    plugins.extension2reader = {}
    yield plugins
    plugins.extension2reader = before


def _answer_reader_dialog(choice: str, remember: bool) -> list[str]:
    """Answer napari's "choose reader" dialog, once it shows, as a user would; return the
    readers it offered."""
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication, QDialogButtonBox

    offered: list[str] = []

    def answer():
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(50, answer)
            return
        buttons = dialog.reader_btn_group.buttons()
        offered.extend(b.text() for b in buttons)
        next(b for b in buttons if b.text() == choice).click()
        dialog.persist_checkbox.setChecked(remember)
        dialog.btn_box.button(QDialogButtonBox.StandardButton.Ok).click()

    QTimer.singleShot(50, answer)
    return offered


def test_a_dropped_nifti_asks_once_then_opens_with_our_reader_and_voxel_size(
        viewer, reader_choices):
    # napari's own reader claims NIfTI too, so napari asks; MedSeg, remembered:
    offered = _answer_reader_dialog("MedSeg", remember=True)
    [image] = _drop(viewer, NIBABEL_DATA / "anatomical.nii")
    assert "MedSeg" in offered and len(offered) > 1
    assert tuple(image.scale) == (2.0, 2.0, 2.0) and "nifti" in image.metadata
    [again] = _drop(viewer, NIBABEL_DATA / "anatomical.nii")  # no dialog this time
    assert tuple(again.scale) == (2.0, 2.0, 2.0)


def test_after_the_file_menu_command_dropped_tiffs_open_as_our_layers(
        viewer, reader_choices, dsb_dir, gonuclear_dir):
    from napari._app_model import get_app_model

    app = get_app_model()
    menu = [item.command.id for item in app.menus.get_menu("napari/file/io_utilities")
            if hasattr(item, "command")]
    assert "napari-medseg.open_files_with_medseg" in menu
    reader_choices.extension2reader = {"*.tiff": "napari"}  # a choice the user made stays
    app.commands.execute_command("napari-medseg.open_files_with_medseg").result()
    assert reader_choices.extension2reader["*.tiff"] == "napari"
    assert reader_choices.extension2reader["*.nii.gz"] == PLUGIN
    [labels] = _drop(viewer, sorted(dsb_dir.glob("*_labels.tif"))[0])
    [stack] = _drop(viewer, gonuclear_dir / "1135_image.tif")
    assert type(labels).__name__ == "Labels"
    assert type(stack).__name__ == "Image" and stack.ndim == 3
    assert tuple(np.round(stack.scale, 3)) != (1.0, 1.0, 1.0)  # the stack's voxel size


def test_a_label_file_napari_opened_as_an_image_becomes_labels_in_one_click(
        make_napari_viewer, dsb_dir):
    from qtpy.QtWidgets import QApplication

    from napari_medseg.plugin.box_click_widget import BoxClickWidget

    viewer = make_napari_viewer(show=True)
    path = sorted(dsb_dir.glob("*_labels.tif"))[0]
    [picture] = viewer.open(path)  # napari's own reader, as viewer.open does by default
    assert type(picture).__name__ == "Image"
    widget = BoxClickWidget(viewer)
    viewer.window.add_dock_widget(widget)
    QApplication.processEvents()
    button = widget._as_labels
    assert button.visible and picture.name in button.text
    data = picture.data
    button.native.click()
    [labels] = viewer.layers
    assert type(labels).__name__ == "Labels" and labels.data is data
    assert widget._target.value is labels and not button.visible


def test_intensity_images_are_not_offered_as_labels(viewer, dsb_dir):
    from napari_medseg.plugin.labels_target import image_as_labels, label_like_images

    viewer.open(sorted(dsb_dir.glob("*_image.png"))[0])
    viewer.add_image(np.random.default_rng(0).random((32, 32)), name="float_mask")
    assert label_like_images(viewer) == []
    with pytest.raises(ValueError, match="only integer images"):
        image_as_labels(viewer, viewer.layers["float_mask"])
    assert len(viewer.layers) == 2


def test_an_integer_image_is_judged_by_value_once_per_array(viewer, monkeypatch):
    """Docked widgets ask which images hold labels on every layer-list change: each
    in-memory array is read once, and again only when it or its name changes."""
    import napari_medseg.plugin.labels_target as target

    calls = []
    judge = target.looks_like_labels
    monkeypatch.setattr(target, "looks_like_labels", lambda *a: calls.append(1) or judge(*a))
    layer = viewer.add_image(np.zeros((64, 64), np.uint16), name="stack")
    for k in range(5):
        viewer.add_image(np.zeros((8, 8)), name=f"other {k}")  # a float image: not judged
        target.label_like_images(viewer)
    assert len(calls) == 1
    layer.name = "renamed"
    target.label_like_images(viewer)
    layer.data = np.ones((64, 64), np.uint16)
    target.label_like_images(viewer)
    assert len(calls) == 3
