"""Shape-based slice interpolation of label images."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi
from skimage.draw import disk
from skimage.io import imread

from napari_medseg import interpolate_labels, interpolate_labels_with_report, object_from_outline


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def _disk_stack(n: int, centres, radii, shape=(80, 80)) -> np.ndarray:
    out = np.zeros((n, *shape), bool)
    for k in range(n):
        out[k][disk(centres[k], radii[k], shape=shape)] = True
    return out


def test_shifted_disk_is_not_eroded():
    """A disk moving by more than its radius: plain blending would lose most of it."""
    truth = _disk_stack(9, [(20 + 3 * k, 20 + 4 * k) for k in range(9)], [9] * 9)
    sparse = np.zeros(truth.shape, np.uint8)
    sparse[[0, 8]] = truth[[0, 8]]
    out = interpolate_labels(sparse)
    for k in range(1, 8):
        assert _dice(out[k] == 1, truth[k]) > 0.95


def test_split_keeps_both_branches_and_holes_survive():
    yy, xx = np.indices((60, 60))
    split = np.zeros((7, 60, 60), np.uint8)
    split[0] = np.hypot(yy - 30, xx - 30) <= 8
    split[6] = (np.hypot(yy - 30, xx - 15) <= 6) | (np.hypot(yy - 30, xx - 45) <= 6)
    out = interpolate_labels(split)
    assert ndi.label(out[5])[1] == 2  # near the end both branches exist
    ring = np.zeros((5, 60, 60), np.uint8)
    ring[[0, 4]] = (np.hypot(yy - 30, xx - 30) <= 20) & (np.hypot(yy - 30, xx - 30) > 8)
    out = interpolate_labels(ring)
    assert out[2, 30, 30] == 0 and out[2, 30, 45] == 1


def test_other_axis_and_4d():
    truth = _disk_stack(9, [(30, 30)] * 9, [4 + k for k in range(9)])
    vol = np.zeros((9, 80, 80), np.uint16)
    vol[[0, 4, 8]] = truth[[0, 4, 8]] * 3
    along_x = np.moveaxis(vol, 0, 2)  # interpolate along the last axis
    out = interpolate_labels(along_x, axis=2)
    assert _dice(np.moveaxis(out, 2, 0) == 3, truth) > 0.97
    four = np.stack([vol, vol * 0, vol])  # (t, z, y, x)
    out4 = interpolate_labels(four, axis=1)
    assert _dice(out4[0] == 3, truth) > 0.97 and not out4[1].any()


def test_report_and_selected_ids():
    vol = np.zeros((6, 40, 40), np.uint8)
    vol[0, 5:15, 5:15] = vol[5, 5:15, 5:15] = 1
    vol[0, 25:35, 25:35] = vol[5, 25:35, 25:35] = 2
    vol[2, 20, 20] = 3  # single slice: nothing to fill
    out, report = interpolate_labels_with_report(vol, label_ids=[2, 3, 9])
    assert report.filled == {2: [1, 2, 3, 4]}
    assert report.skipped == {3: "no gap between annotated slices", 9: "not present"}
    assert not (out[1:5] == 1).any()


def test_preserve_and_overwrite_other_ids():
    vol = np.zeros((5, 30, 30), np.uint8)
    vol[0, 5:25, 5:25] = vol[4, 5:25, 5:25] = 1
    vol[2, 10:20, 10:20] = 2
    kept = interpolate_labels(vol)
    assert (kept[2, 10:20, 10:20] == 2).all() and (kept[2, 5:10, 5:25] == 1).all()
    over = interpolate_labels(vol, overwrite=True)
    assert (over[2, 10:20, 10:20] == 1).all()


@pytest.mark.parametrize(
    ("labels", "kwargs", "message"),
    [
        (np.zeros((3, 4, 4), float), {}, "integer"),
        (np.full((3, 4, 4), -1, np.int16), {}, "negative"),
        (np.zeros((4, 4), np.uint8), {}, "3D or 4D"),
        (np.zeros((3, 4, 4), np.uint8), {"axis": 3}, "out of range"),
        (np.zeros((3, 4, 4), np.uint8), {"label_ids": [0]}, "positive"),
        (np.zeros((3, 4, 4), np.uint8), {"label_ids": "12"}, "sequence of integers"),
        (np.zeros((3, 4, 4), np.uint8), {"label_ids": [1.7]}, "whole number"),
    ],
)
def test_bad_input(labels, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        interpolate_labels(labels, **kwargs)


def test_empty_input_is_a_no_op():
    empty = np.zeros((0, 5, 5), np.uint8)
    assert interpolate_labels(empty).shape == (0, 5, 5)
    blank = np.zeros((3, 5, 5), np.uint8)
    assert not interpolate_labels(blank).any()


def test_real_nuclei_outlines_stacked_in_3d(dsb_dir):
    """Real DSB2018 outlines stacked with drift/rotation: Dice on filled slices per gap."""
    rng = np.random.default_rng(0)
    ids = sorted(p.name[: -len("_labels.tif")] for p in dsb_dir.glob("*_labels.tif"))
    objects = []
    for image_id in ids[:3]:
        labels = imread(dsb_dir / f"{image_id}_labels.tif")
        for label, box in enumerate(ndi.find_objects(labels), start=1):
            if box is not None and (labels[box] == label).sum() >= 60 and len(objects) < 30:
                mask = np.pad(labels[box] == label, 12)
                radius = np.sqrt(mask.sum() / np.pi)
                objects.append(object_from_outline(mask, int(rng.integers(9, 18)),
                                                   rng.uniform(-0.8, 0.8, 2) * radius,
                                                   rng.uniform(-0.5, 0.5)))
    assert len(objects) == 30
    for gap, floor in ((2, 0.93), (3, 0.90), (4, 0.86)):
        scores = []
        for obj in objects:
            kept = np.arange(0, obj.shape[0], gap)
            sparse = np.zeros(obj.shape, np.uint8)
            sparse[kept] = obj[kept]
            out = interpolate_labels(sparse)
            filled = np.setdiff1d(np.arange(kept[-1] + 1), kept)
            scores.append(_dice(out[filled] == 1, obj[filled]))
        assert np.mean(scores) >= floor, (gap, np.mean(scores))


@st.composite
def sparse_volumes(draw):
    """Random blobs for a few ids, annotated on random slices."""
    n = draw(st.integers(3, 9))
    vol = np.zeros((n, 24, 24), np.uint8)
    n_ids = draw(st.integers(1, 3))
    for label in range(1, n_ids + 1):
        for k in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True)):
            cy, cx = draw(st.integers(2, 21)), draw(st.integers(2, 21))
            r = draw(st.integers(1, 6))
            vol[k][disk((cy, cx), r, shape=(24, 24))] = label
    return vol


@settings(max_examples=60, deadline=None)
@given(vol=sparse_volumes(), overwrite=st.booleans())
def test_properties(vol, overwrite):
    before = vol.copy()
    out = interpolate_labels(vol, overwrite=overwrite)
    np.testing.assert_array_equal(vol, before)  # input untouched
    assert out.dtype == vol.dtype and out.shape == vol.shape
    for label in np.unique(vol)[1:]:
        present = np.flatnonzero((vol == label).any(axis=(1, 2)))
        # Slices annotated for an id keep that id's voxels (with overwrite, another id's
        # interpolation may take them, but nothing is erased); nothing outside its range changes.
        for k in present:
            kept = out[k][vol[k] == label]
            assert (kept != 0).all() if overwrite else (kept == label).all()
        outside = np.ones(vol.shape[0], bool)
        outside[present[0]:present[-1] + 1] = False
        assert not (out[outside] == label).any() or (vol[outside] == label).any()
    if not overwrite:
        np.testing.assert_array_equal(out[vol > 0], vol[vol > 0])  # other objects preserved


@settings(max_examples=60, deadline=None)
@given(vol=sparse_volumes())
def test_idempotent_for_one_id(vol):
    single = (vol == 1).astype(np.uint8)
    once = interpolate_labels(single)
    np.testing.assert_array_equal(interpolate_labels(once), once)


def _sparse_gonuclear(gonuclear_dir, every=5):
    """The real GoNuclear crop 1135's labels annotated on every ``every``-th slice."""
    labels = imread(gonuclear_dir / "1135_labels.tif")
    sparse = np.zeros_like(labels)
    sparse[::every] = labels[::every]
    return sparse


@pytest.mark.parametrize("axis, overwrite", [(0, False), (1, True)])
def test_zarr_labels_are_interpolated_in_place_as_in_memory(tmp_path, gonuclear_dir, axis,
                                                            overwrite):
    import zarr

    sparse = np.moveaxis(_sparse_gonuclear(gonuclear_dir), 0, axis).copy()
    expected, report = interpolate_labels_with_report(sparse, axis=axis, overwrite=overwrite,
                                                      progress=False)
    store = zarr.create_array(str(tmp_path / "l.zarr"), shape=sparse.shape,
                              chunks=(25, 50, 50), dtype=sparse.dtype)
    store[:] = sparse
    out, got = interpolate_labels_with_report(store, axis=axis, overwrite=overwrite,
                                              progress=False)
    assert out is store and got.filled == report.filled and got.skipped == report.skipped
    np.testing.assert_array_equal(store[:], expected)


def test_zarr_interpolation_touches_only_the_chunks_of_the_objects_gaps(tmp_path):
    import zarr

    from napari_medseg.runtime import run_steps
    from napari_medseg.slice_interpolation import interpolation_steps

    store = zarr.create_array(str(tmp_path / "l.zarr"), shape=(40, 256, 256),
                              chunks=(8, 64, 64), dtype="uint16")
    disk_mask = np.zeros((20, 20), bool)
    disk_mask[disk((10, 10), 8)] = True
    for k in (4, 12):  # one object in chunk column (1, 1), annotated on slices 4 and 12
        store[k, 70:90, 70:90] = disk_mask * 3
    store[30, 200:220, 200:220] = disk_mask * 4  # an object on one slice: nothing to fill
    steps = interpolation_steps(store)
    next(steps)
    steps.close()  # cancelled: nothing written
    assert not store[5:12].any()
    edits, report = run_steps(interpolation_steps(store), progress=None)
    assert edits.n_chunks == 2 and report.filled == {3: list(range(5, 12))}
    indices, old, new = edits.changes()
    assert (old == 0).all() and (new == 3).all() and set(np.unique(indices[0])) == set(
        range(5, 12))
    assert edits.write() == 2 and (store[8, 80, 80] == 3)
    with pytest.raises(ValueError, match="read-only"):
        interpolate_labels(zarr.open_array(str(tmp_path / "l.zarr"), mode="r"))


def test_bounding_boxes_of_huge_ids_are_find_objects_boxes(gonuclear_dir):
    from napari_medseg.slice_interpolation import _bounding_boxes

    labels = imread(gonuclear_dir / "1135_labels.tif")
    expected = {i + 1: box for i, box in enumerate(ndi.find_objects(labels)) if box is not None}
    assert _bounding_boxes(labels, int(labels.max())) == expected  # find_objects itself
    huge = labels.astype(np.uint32) * 100_003  # ids past 2**20: per-id minima and maxima
    assert _bounding_boxes(huge, int(huge.max())) == {
        label * 100_003: box for label, box in expected.items()}


def test_negative_ids_are_refused_in_zarr_labels_as_in_numpy_ones(tmp_path):
    """Issue 30.14: refused for numpy labels, silently skipped for zarr."""
    import zarr

    labels = np.zeros((6, 16, 16), np.int32)
    labels[0, 2:8, 2:8] = labels[5, 3:9, 3:9] = 2
    labels[3, 10:12, 10:12] = -4
    stored = zarr.create_array(str(tmp_path / "l.zarr"), shape=labels.shape, chunks=(2, 8, 8),
                               dtype=labels.dtype)
    stored[:] = labels
    for array in (labels, stored):
        with pytest.raises(ValueError, match="must not contain negative ids"):
            interpolate_labels(array, progress=False)
    np.testing.assert_array_equal(stored[:], labels)
