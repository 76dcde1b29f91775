"""The interactive tools on zarr-backed layers in a real viewer: a lazy image, a Labels
layer whose zarr array lives on disk; commits write only the chunks they touch, as one
undo step, with the next free id from the array's record (the volume is never read)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from qtpy.QtCore import Qt

from conftest import canvas_of, drag
from napari_medseg.evaluation import iou
from napari_medseg.plugin.box_click_widget import BoxClickWidget
from napari_medseg.plugin.interpolation_widget import InterpolationWidget

CHUNKS = (16, 32, 32)


def _chunk_times(folder) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for p in (folder / "c").rglob("*") if p.is_file()}


@pytest.fixture
def real_zarr(tmp_path, gonuclear_dir):
    """GoNuclear crop 1135 as a lazy image (dask over zarr) and an empty zarr label volume
    on disk recording 41 as its largest id (as segment_blockwise writes it)."""
    import dask.array as da
    import zarr

    image = tifffile.imread(gonuclear_dir / "1135_image.tif")
    truth = tifffile.imread(gonuclear_dir / "1135_labels.tif")
    source = zarr.create_array(str(tmp_path / "image.zarr"), shape=image.shape,
                               chunks=CHUNKS, dtype=image.dtype)
    source[:] = image
    folder = tmp_path / "labels.zarr"
    labels = zarr.create_array(str(folder), shape=truth.shape, chunks=CHUNKS, dtype="uint32")
    labels.attrs["napari-medseg"] = {"max_label": 41}
    return da.from_zarr(source), labels, folder, truth


def test_box_commit_into_a_zarr_layer_writes_its_chunks_as_one_undo_step(
        make_napari_viewer, qtbot, real_zarr):
    image, labels, folder, truth = real_zarr
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(900, 700)
    viewer.add_image(image, name="nuclei")
    layer = viewer.add_labels(labels, name="zarr labels")
    widget = BoxClickWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._source.value, widget._target.value = viewer.layers["nuclei"], layer
    widget._active.value = True
    viewer.reset_view()
    nucleus = truth == np.bincount(truth.ravel())[1:].argmax() + 1
    z = int(np.median(np.nonzero(nucleus)[0]))
    viewer.dims.set_point(0, z)
    qtbot.wait(50)
    ys, xs = np.nonzero(nucleus[z])
    drag(qtbot, viewer, layer, (z, ys.min() - 2, xs.min() - 2), (z, ys.max() + 2, xs.max() + 2))
    qtbot.waitUntil(lambda: widget._session is not None, timeout=30_000)
    before = _chunk_times(folder)
    canvas = canvas_of(viewer)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_C)

    assert layer.data is labels  # still the zarr array, not a copy
    assert iou(labels[z] == 42, nucleus[z]) > 0.7  # the next id after the recorded 41
    assert labels.attrs["napari-medseg"]["max_label"] == 42
    written = {name for name, t in _chunk_times(folder).items() if before.get(name) != t}
    covered = {f"c/{z // 16}/{y}/{x}" for y in range(ys.min() // 32, ys.max() // 32 + 1)
               for x in range(xs.min() // 32, xs.max() // 32 + 1)}
    assert written and written <= covered  # only chunks under the object
    assert not viewer.layers["mask preview"].data[:].any()  # an in-memory zarr, emptied
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not labels[:].any()  # one undo step


def test_interpolation_widget_fills_a_zarr_layer_and_undoes(make_napari_viewer, qtbot,
                                                            real_zarr):
    _, labels, _, truth = real_zarr
    sparse = np.zeros_like(truth, dtype=np.uint32)
    sparse[::5] = truth[::5]
    labels[:] = sparse
    viewer = make_napari_viewer(show=True)
    layer = viewer.add_labels(labels, name="zarr labels")
    widget = InterpolationWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._layer.value = layer
    widget._which.value = "all labels"
    widget.run()
    painted = (7, 50, 50)  # the user paints meanwhile: kept
    layer.data_setitem(tuple(np.array([c]) for c in painted), 200)
    qtbot.waitUntil(lambda: not widget._work.running, timeout=60_000)

    from napari_medseg import interpolate_labels

    expected = interpolate_labels(sparse, progress=False)
    expected[painted] = 200
    np.testing.assert_array_equal(labels[:], expected)
    assert "Filled" in widget._status.value
    assert labels.attrs["napari-medseg"]["max_label"] == 200  # napari's paint is recorded
    layer.undo()  # the interpolation, in one step
    assert labels[painted] == 200 and not labels[1:5].any()
