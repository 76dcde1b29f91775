"""Hostile input for every public function: arbitrary shapes, dtypes and values give a
clear exception (ValueError / TypeError, or ImageReadError for files) or a valid result,
and never change the caller's arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import napari_medseg as ms
from napari_medseg.evaluation import match_instances, next_click
from napari_medseg.instances import instances_from_boundary
from napari_medseg.io import ImageReadError

CLEAR = (ValueError, TypeError)
DTYPES = st.sampled_from([np.bool_, np.uint8, np.int16, np.uint16, np.int32, np.int64,
                          np.float32, np.float64])
FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def any_arrays(max_dims=4, max_side=12):
    return DTYPES.flatmap(lambda dtype: arrays(
        dtype, array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side),
        elements=_elements(dtype)))


def _elements(dtype):
    if np.dtype(dtype).kind == "f":
        return st.floats(allow_nan=True, allow_infinity=True, width=np.dtype(dtype).itemsize * 8)
    return None


def _unchanged(before, after):
    assert before.dtype == after.dtype and before.shape == after.shape
    assert np.array_equal(before, after, equal_nan=before.dtype.kind == "f")


def _call(fn, *arrays_, **kwargs):
    """fn(*arrays_) must raise a clear error or return; the arrays stay as they were."""
    checked = [a for a in arrays_ if isinstance(a, np.ndarray)]
    copies = [a.copy() for a in checked]
    try:
        result = fn(*arrays_, **kwargs)
    except CLEAR:
        result = None
    for before, after in zip(copies, checked, strict=True):
        _unchanged(before, after)
    return result


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    torch.set_num_threads(1)


@FAST
@given(labels=any_arrays(), mask=any_arrays(), label=st.one_of(
    st.none(), st.integers(-3, 300), st.floats(allow_nan=True), st.text(max_size=2)))
def test_commit_mask(labels, mask, label):
    before = labels.copy()
    try:
        edit = ms.commit_mask(labels, mask, label)
    except CLEAR:
        _unchanged(before, labels)
        return
    assert mask.dtype == bool and labels.dtype.kind in "iu"
    changed = labels != before
    assert (labels[changed] == edit.label).all()
    assert (before[changed] == 0).all()  # preserve mode: only background was written


@FAST
@given(labels=any_arrays())
def test_next_free_label(labels):
    new = _call(ms.next_free_label, labels)
    if new is not None:
        assert new >= 1 and not (labels == new).any()


@FAST
@given(labels=any_arrays(max_dims=4, max_side=8), axis=st.integers(-5, 5),
       ids=st.one_of(st.none(), st.lists(st.integers(-2, 5), max_size=3), st.text(max_size=3)))
def test_interpolate_labels(labels, axis, ids):
    out = _call(ms.interpolate_labels, labels, axis=axis, label_ids=ids)
    if out is not None:
        assert out.shape == labels.shape and out.dtype == labels.dtype
        kept = labels != 0
        assert np.array_equal(out[kept], labels[kept])  # preserve mode


POINTS = st.lists(st.lists(st.one_of(st.integers(-3, 14), st.floats(allow_nan=True)),
                           min_size=1, max_size=4), max_size=4)


@FAST
@given(labels=any_arrays(max_dims=3, max_side=12), points=POINTS, line=st.booleans())
def test_proofreading(labels, points, line):
    """Delete, merge and split give a change or a clear error; applied, a change touches only
    the clicked objects' voxels; undone, it restores the labels."""
    edits = [lambda: ms.delete_object(labels, points[0] if points else ()),
             lambda: ms.merge_objects(labels, points),
             lambda: ms.split_object(labels, points, line=line)]
    for edit in edits:
        change = _call(edit)
        if change is None or not change.n_changed:
            continue
        clicked = set(change.old_values.tolist())
        before = labels.copy()
        ms.apply_change(labels, change)
        changed = labels != before
        assert set(before[changed].tolist()) <= clicked
        labels[change.indices] = change.old_values
        _unchanged(before, labels)


@FAST
@given(image=any_arrays(max_dims=3, max_side=40),
       box=st.lists(st.one_of(st.integers(-10, 50), st.floats(allow_nan=True)), max_size=7))
def test_segment_box(image, box):
    mask = _call(ms.segment_box, image, box)
    if mask is not None:
        assert mask.dtype == bool and mask.shape == image.shape[:mask.ndim]


@FAST
@given(volume=any_arrays(max_dims=3, max_side=24), index=st.one_of(
    st.integers(-2, 30), st.floats(allow_nan=True)), mask=any_arrays(max_dims=3, max_side=8),
    offset=st.tuples(st.integers(-30, 30), st.integers(-30, 30)))
def test_propagate_mask(volume, index, mask, offset):
    result = _call(ms.propagate_mask, volume, index, mask, offset=offset)
    if result is not None:
        stack, corner = result
        assert stack.dtype == bool and len(corner) == 3


@FAST
@given(image=any_arrays(max_dims=3, max_side=30),
       anchors=st.lists(st.tuples(st.integers(-5, 35), st.integers(-5, 35)), max_size=5),
       closed=st.booleans())
def test_livewire_path(image, anchors, closed):
    path = _call(ms.livewire_path, image, anchors, closed=closed)
    if path is not None:
        assert path.ndim == 2 and path.shape[1] == 2
        assert (path >= 0).all() and (path < np.asarray(image.shape[:2])).all()


@FAST
@given(path=any_arrays(max_dims=3, max_side=6),
       shape=st.lists(st.integers(-2, 20), max_size=3))
def test_path_to_mask(path, shape):
    mask = _call(ms.path_to_mask, path, shape)
    if mask is not None:
        assert mask.dtype == bool and mask.shape == tuple(shape)


@FAST
@given(image=any_arrays(max_dims=4, max_side=40))
def test_segment(image):
    model = _model()
    labels = _call(model.segment, image)
    if labels is not None:
        assert labels.dtype.kind in "iu" and labels.ndim in (2, 3)


@FAST
@given(interior=any_arrays(max_dims=3, max_side=12), boundary=any_arrays(max_dims=3,
                                                                           max_side=12))
def test_instances_from_boundary(interior, boundary):
    labels = _call(instances_from_boundary, interior, boundary)
    if labels is not None:
        assert labels.shape == interior.shape


@FAST
@given(pred=any_arrays(max_dims=2), truth=any_arrays(max_dims=2))
def test_match_instances_and_next_click(pred, truth):
    counts = _call(match_instances, pred, truth)
    if counts is not None:
        assert all(c >= 0 for c in counts)
    click = _call(next_click, pred, truth)
    if click is not None:
        assert len(click[0]) == pred.ndim


@FAST
@given(labels=any_arrays(max_dims=4, max_side=6),
       suffix=st.sampled_from([".tif", ".nii.gz", ".png", ".txt"]))
def test_write_labels_and_read_image(tmp_path_factory, labels, suffix):
    path = tmp_path_factory.mktemp("w") / f"x{suffix}"
    written = _call(ms.write_labels, path, labels)
    if written is not None:
        [back] = ms.read_image(written)
        assert np.asarray(back.data).size == labels.size


@FAST
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".tif", ".nii", ".nii.gz",
                                                              ".png", ".jpg"]))
def test_read_image_of_arbitrary_bytes(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("r") / f"x{suffix}"
    path.write_bytes(data)
    try:
        ms.read_image(path)
    except ImageReadError:
        pass


_MODEL = []


def _model():
    if not _MODEL:
        _MODEL.append(ms.load_model("nuclei-2d", device="cpu"))
    return _MODEL[0]


@FAST
@given(arrays(np.bool_, array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=12)),
       st.lists(st.floats(0.1, 5.0), min_size=3, max_size=3), st.booleans())
def test_distance_to_edge_equals_scipy(mask, spacing, anisotropic):
    """Each fast path of the distance transform (OpenCV in 2D, edt in 3D and with a spacing)
    gives scipy's distances."""
    from scipy import ndimage as ndi

    from napari_medseg._image import distance_to_edge

    sampling = tuple(spacing[:mask.ndim]) if anisotropic else None
    expected = ndi.distance_transform_edt(mask, sampling=sampling)
    got = distance_to_edge(mask, sampling)
    assert got.dtype == np.float64 and got.shape == mask.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@FAST
@given(arrays(np.float32, array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9),
              elements=st.floats(-100, 100, width=32)),
       st.lists(st.sampled_from([0.5, 1.0, 1.5, 2.2, 3.0]), min_size=3, max_size=3))
def test_to_isotropic_equals_scipy_zoom(volume, zoom):
    """The planes path's axis-by-axis resampling is scipy's linear zoom (grid mode, edges
    held), which it replaced for speed."""
    from scipy import ndimage as ndi

    from napari_medseg.planes import to_isotropic

    assume(all(round(n * z) >= 1 for n, z in zip(volume.shape, zoom, strict=True)))
    got = to_isotropic(volume, zoom)
    expected = ndi.zoom(volume, zoom, order=1, mode="nearest", grid_mode=True)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


@FAST
@given(st.integers(2, 9), st.integers(1, 3), st.sampled_from([2, 3]), st.integers(0, 2))
def test_strided_plane_interpolation_equals_the_general_one(k, stride, axis, extra):
    """The planes path's every-other-plane shortcut adds what the general interpolation
    adds, the planes beyond the last computed one included."""
    from napari_medseg.planes import add_interpolated, add_strided

    size = (k - 1) * stride + 1 + min(extra, stride - 1)
    rng = np.random.default_rng(k * 7 + stride)
    shape = [2, 3, 5, 5]
    shape[axis] = k
    values = rng.random(shape).astype(np.float32)
    at = np.arange(k) * stride
    fast, plain = (np.zeros([*shape[:axis], size, *shape[axis + 1:]], np.float32)
                   for _ in range(2))
    add_strided(fast, values, axis, stride, 1 / 3)
    add_interpolated(plain, values, axis, np.interp(np.arange(size), at, np.arange(k)), 1 / 3)
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-6)
