"""Object measurements: the table of a Labels layer, with physical volume, after edits, CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_medseg.measurements import measure_labels
from napari_medseg.plugin.measure_widget import MeasureWidget


def test_measurements_of_the_real_ct_liver_in_millilitres(real_ct):
    ct, organs = real_ct
    table = measure_labels(np.asarray(organs.data), np.asarray(ct.data), organs.scale)
    row = list(table["label"]).index(5)  # the liver
    voxels = int((np.asarray(organs.data) == 5).sum())
    assert table["voxels"][row] == voxels
    assert table["size"][row] == pytest.approx(voxels * 27.0)  # 3 mm voxels: mm^3
    assert 0 < table["mean_intensity"][row] < 200  # soft tissue in HU


def test_the_table_follows_edits_and_saves_csv(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    labels = np.zeros((4, 20, 20), np.uint16)
    labels[1:3, 2:6, 2:6] = 1
    layer = viewer.add_labels(labels, scale=(2.0, 0.5, 0.5))
    widget = MeasureWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._target.value = layer
    assert widget.table.data.to_list()  # one row
    assert widget._rows["size"][0] == pytest.approx(32 * 0.5)
    layer.data_setitem(np.nonzero(np.pad(np.ones((1, 3, 3), bool), ((2, 1), (10, 7), (10, 7)))),
                       2)
    qtbot.waitUntil(lambda: len(widget._rows["label"]) == 2, timeout=5000)
    widget._output.value = tmp_path / "objects.csv"
    path = widget.save()
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == ["1", "2"] and rows[1]["voxels"] == "9"
    assert widget.save() is None  # never over the file it wrote


def test_ct_windows_and_the_full_range_on_the_slider(make_napari_viewer):
    from napari_medseg import ct_volume
    from napari_medseg.plugin.display_widget import DisplayWidget

    viewer = make_napari_viewer()
    hu, _, spacing = ct_volume()
    layer = viewer.add_image(hu, scale=spacing, contrast_limits=(-100, 100))
    widget = DisplayWidget(viewer)
    widget._source.value = layer
    widget._preset.value = "lung"
    assert tuple(layer.contrast_limits) == (-1350.0, 150.0)
    assert layer.contrast_limits_range[0] <= hu.min() and layer.contrast_limits_range[1] >= hu.max()
    widget._preset.value = "soft tissue"
    assert tuple(layer.contrast_limits) == (-160.0, 240.0)


def test_the_table_shows_every_column_by_name_and_follows_an_undo(make_napari_viewer, qtbot,
                                                                 dsb_train_dir):
    """A real fluorescence PNG opened by napari as RGBA: the table's columns are the
    measurements' own (the size column named for the unit), the mean intensity leaves
    alpha out, and Ctrl+Z's undo refreshes the table."""
    from napari_medseg.datasets import dsb_split, read_dsb

    split = dsb_split(dsb_train_dir)
    image_id = split.of_kind(split.train, "fluorescence")[0]
    [(grey, truth)] = read_dsb(dsb_train_dir, [image_id])
    viewer = make_napari_viewer()
    [picture] = viewer.open(dsb_train_dir / f"{image_id}_image.png", plugin="napari")
    assert picture.rgb and picture.data.shape[-1] == 4
    layer = viewer.add_labels(truth.astype(np.uint16))
    widget = MeasureWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._target.value, widget._source.value = layer, picture
    columns = list(widget.table.column_headers)
    assert columns[:2] == ["label", "voxels"] and "area" in columns and "mean_intensity" in \
        columns and len(set(columns)) == len(columns) == len(widget._rows)
    row = list(widget._rows["label"]).index(1)
    assert widget._rows["mean_intensity"][row] == pytest.approx(float(grey[truth == 1].mean()),
                                                               rel=1e-6)
    n = len(widget._rows["label"])
    layer.fill(np.argwhere(truth == 1)[0], 0)  # delete object 1, one undo step
    qtbot.waitUntil(lambda: len(widget._rows["label"]) == n - 1, timeout=5000)
    layer.undo()
    qtbot.waitUntil(lambda: len(widget._rows["label"]) == n, timeout=5000)


def test_the_table_lists_whether_proofreading_checked_each_object(make_napari_viewer, qtbot):
    from napari_medseg.plugin.proofread_widget import ProofreadWidget

    viewer = make_napari_viewer()
    labels = np.zeros((40, 40), np.uint16)
    labels[2:8, 2:8], labels[20:30, 20:30] = 1, 2
    layer = viewer.add_labels(labels, name="cells")
    viewer.add_image(np.zeros((40, 40)), name="image")
    table = MeasureWidget(viewer)
    viewer.window.add_dock_widget(table)
    table._target.value = layer
    assert "checked" not in table._rows  # nothing checked yet
    proofread = ProofreadWidget(viewer)
    viewer.window.add_dock_widget(proofread)
    proofread._target.value = layer
    proofread._active.value = True
    proofread.set_mode("accept")
    proofread.click((25, 25))
    qtbot.waitUntil(lambda: "checked" in table._rows, timeout=5000)
    assert dict(zip(table._rows["label"], table._rows["checked"], strict=True)) == {1: 0, 2: 1}
    assert "checked" in list(table.table.column_headers)
