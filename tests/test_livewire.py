"""Live-wire core: paths follow real and synthetic edges; bad input is refused clearly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.io import imread

from conftest import blob, outline_anchors
from napari_medseg import LiveWire, livewire_path, path_to_mask
from napari_medseg.evaluation import iou


def _assert_connected(path: np.ndarray) -> None:
    steps = np.abs(np.diff(path, axis=0))
    assert steps.max() <= 1 and (steps.sum(1) > 0).all()


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_closed_path_through_four_anchors_recovers_a_16bit_blob(dtype):
    image, truth = blob(dtype=dtype)
    before = image.copy()
    path = livewire_path(image, outline_anchors(truth, 4))
    _assert_connected(np.vstack([path, path[:1]]))
    assert iou(path_to_mask(path, truth.shape), truth) > 0.9
    np.testing.assert_array_equal(image, before)


def test_negative_ct_values_and_nan_are_fine():
    image, truth = blob(dtype=np.float32)
    ct = image - 3000.0  # Hounsfield-like: the background is far below zero
    ct[5, 5] = np.nan
    ct[6, 6] = np.inf
    path = livewire_path(ct, outline_anchors(truth, 5))
    assert iou(path_to_mask(path, truth.shape), truth) > 0.9


def test_interactive_path_ends_at_the_mouse_and_follows_the_edge():
    image, truth = blob()
    a, b = outline_anchors(truth, 4)[:2]
    wire = LiveWire(image)
    wire.anchor(a)
    path = wire.path_to(b)
    assert tuple(path[0]) == tuple(a) and tuple(path[-1]) == tuple(b)
    _assert_connected(path)
    ring = cv2.dilate(truth.astype(np.uint8), np.ones((5, 5))) & ~cv2.erode(
        truth.astype(np.uint8), np.ones((5, 5))).astype(bool)
    assert ring[path[:, 0], path[:, 1]].mean() > 0.95  # on the object's outline, not a chord


def test_search_window_grows_to_reach_far_targets_and_undo_anchor():
    image, _truth = blob(shape=(300, 300), center=(150, 150), radii=(120, 130))
    wire = LiveWire(image, radius=8)
    wire.anchor((30, 150))
    path = wire.path_to((270, 150))
    assert tuple(path[-1]) == (270, 150)
    wire.anchor((270, 150))
    wire.undo_anchor()
    assert wire.current_anchor == (30, 150)
    assert tuple(wire.path_to((150, 20))[0]) == (30, 150)


def test_anisotropic_spacing_is_respected():
    # A circle in physical space, sampled with rows twice as far apart as columns.
    image, truth = blob(shape=(60, 120), center=(30, 60), radii=(20, 40))
    path = livewire_path(image, outline_anchors(truth, 4), spacing=(2.0, 1.0))
    assert iou(path_to_mask(path, truth.shape), truth) > 0.85


def test_rgb_images_are_accepted():
    image, truth = blob(dtype=np.float32)
    rgb = np.stack([image / 20, image / 30, image / 40], axis=-1).astype(np.uint8)
    path = livewire_path(rgb, outline_anchors(truth, 4))
    assert iou(path_to_mask(path, truth.shape), truth) > 0.85


def test_constant_image_gives_a_sensible_path():
    path = livewire_path(np.zeros((40, 40)), [(10, 10), (10, 30), (30, 20)])
    mask = path_to_mask(path, (40, 40))
    assert mask[10, 10] and mask[20, 20] and not mask[35, 5]


@pytest.mark.parametrize(
    ("anchors", "closed", "match"),
    [
        ([(5, 5), (5, 5), (5, 5)], True, "at least 3 distinct"),
        ([(5, 5), (9, 9)], True, "at least 3 distinct"),
        ([(5, 5)], False, "at least 2 distinct"),
        ([(5, 5), (50, 9), (9, 20)], True, "outside the 40x40 image"),
        ([(5, 5), (np.nan, 9), (9, 20)], True, "finite"),
        ([5, 5, 9], True, "pairs"),
    ],
)
def test_bad_anchors_raise_clear_errors(anchors, closed, match):
    with pytest.raises(ValueError, match=match):
        livewire_path(np.zeros((40, 40)), anchors, closed=closed)


def test_bad_images_raise_clear_errors():
    with pytest.raises(ValueError, match="2D image"):
        LiveWire(np.zeros((4, 40, 40)))
    with pytest.raises(ValueError, match="real-valued"):
        LiveWire(np.zeros((40, 40), complex))
    with pytest.raises(RuntimeError, match="anchor"):
        LiveWire(np.zeros((40, 40))).path_to((3, 3))
    with pytest.raises(ValueError, match="spacing"):
        LiveWire(np.zeros((40, 40)), spacing=(0, 1))


def test_repeated_clicks_are_dropped():
    image, truth = blob()
    a = outline_anchors(truth, 4)
    doubled = np.repeat(a, 2, axis=0)  # every anchor clicked twice
    np.testing.assert_array_equal(livewire_path(image, doubled), livewire_path(image, a))


@settings(max_examples=25, deadline=None)
@given(
    points=st.lists(st.tuples(st.integers(0, 47), st.integers(0, 47)), min_size=2, max_size=6,
                    unique=True),
    closed=st.booleans(),
)
def test_paths_pass_through_every_anchor_in_order(points, closed):
    image, _ = blob(shape=(48, 48), center=(24, 24), radii=(12, 16))
    if closed and len(points) < 3:
        closed = False
    path = livewire_path(image, points, closed=closed)
    _assert_connected(np.vstack([path, path[:1]]) if closed else path)
    assert tuple(path[0]) == tuple(points[0])
    position = 0
    for p in points[1:]:  # each anchor is reached after the one before it
        later = np.flatnonzero((path[position + 1:] == p).all(1))
        assert later.size, f"anchor {p} not on the path after index {position}"
        position += 1 + int(later[0])
    if not closed:
        assert tuple(path[-1]) == tuple(points[-1])


def test_real_nuclei_with_six_anchors(dsb_dir):
    """On real DSB2018 fluorescence nuclei the traced outlines match the annotations."""
    ids = sorted(p.name[: -len("_image.png")] for p in dsb_dir.glob("*_image.png"))[:12]
    scores = []
    for image_id in ids:
        image = imread(dsb_dir / f"{image_id}_image.png")[..., :3]
        if np.ptp(image.astype(int), axis=-1).any():
            continue  # colour (H&E, brightfield) image
        labels = imread(dsb_dir / f"{image_id}_labels.tif")
        for label in range(1, labels.max() + 1, max(labels.max() // 4, 1)):
            mask = labels == label
            ys, xs = np.nonzero(mask)
            if len(ys) < 80 or ys.min() == 0 or xs.min() == 0 or ys.max() == mask.shape[0] - 1 \
                    or xs.max() == mask.shape[1] - 1:
                continue
            path = livewire_path(image[..., 0], outline_anchors(mask, 6))
            scores.append(iou(path_to_mask(path, mask.shape), mask))
    assert len(scores) >= 15
    assert np.mean(scores) > 0.85


def test_a_network_outline_map_joins_the_cost_and_is_computed_once_per_tile():
    from napari_medseg import nuclei_2d
    from napari_medseg.livewire import NetworkBoundary

    image, labels = nuclei_2d()
    truth = labels == 1
    boundary = NetworkBoundary(image)
    calls = []
    original = boundary.model.predict
    boundary.model.predict = lambda *a, **k: calls.append(1) or original(*a, **k)
    anchors = outline_anchors(truth, 5)
    path = livewire_path(image, anchors, boundary=boundary)
    assert iou(path_to_mask(path, image.shape), truth) > 0.8
    first = len(calls)
    assert 1 <= first <= 4  # the 256-px tiles the windows touch
    livewire_path(image, anchors, boundary=boundary)
    assert len(calls) == first  # and they are kept
    with pytest.raises(ValueError, match="no 2D boundary output"):
        NetworkBoundary(image, model=_semantic_model())


def _semantic_model():
    from napari_medseg.model_info import ModelInfo
    from napari_medseg.model_runner import SegmentationModel
    from napari_medseg.networks import build_network

    info = ModelInfo("unet", 2, 1, ["background", "object"],
                     kwargs={"channels": (4, 8), "strides": (2,), "num_res_units": 0})
    return SegmentationModel(build_network("unet", 2, 1, 2, **info.kwargs), info, "cpu")
