"""Bad values are refused where they enter, with the argument named; odd but valid input
gives a sensible result."""

from __future__ import annotations

import numpy as np
import pytest

from napari_medseg import (
    BoxSession,
    livewire_path,
    load_model,
    nuclei_2d,
    nuclei_3d,
    path_to_mask,
    propagate_mask,
    segment_box,
    train_model,
)


@pytest.fixture(scope="module")
def model():
    return load_model("nuclei-2d", device="cpu")


@pytest.mark.parametrize("fill", [0.0, 7.5, np.nan])
def test_a_box_on_a_constant_or_non_finite_image_is_empty(fill):
    image = np.full((64, 64), fill)
    assert not segment_box(image, (10, 10, 40, 40)).any()
    session = BoxSession(image, (10, 10, 40, 40))
    assert not session.add_click((25, 25)).any()


@pytest.mark.parametrize("fill", [3.0, np.nan])
def test_a_3d_box_on_a_constant_volume_ends_empty(fill):
    volume = np.full((12, 40, 40), fill)
    assert not segment_box(volume, (0, 5, 5, 12, 30, 30)).any()


def test_float64_beyond_float32s_range_segments_as_the_scaled_image():
    image, labels = nuclei_2d((96, 96), n_nuclei=6, seed=5)
    label = int(labels[labels > 0][0])
    ys, xs = np.nonzero(labels == label)
    box = (ys.min() - 2, xs.min() - 2, ys.max() + 3, xs.max() + 3)
    plain = segment_box(image.astype(np.float64), box)
    huge = segment_box(image.astype(np.float64) * 1e300, box)
    assert plain.any() and np.array_equal(plain, huge)
    anchors = [(ys.min(), xs.min()), (ys.max(), xs.max()), (ys.min(), xs.max())]
    np.testing.assert_array_equal(livewire_path(image.astype(np.float64) * 1e300, anchors),
                                  livewire_path(image.astype(np.float64), anchors))


def test_propagation_refuses_bad_slices_and_offsets():
    volume, labels, _ = nuclei_3d((8, 48, 48), n_nuclei=3, seed=0)
    mask = labels[4] > 0
    with pytest.raises(ValueError, match="index must be a whole number"):
        propagate_mask(volume, 1.5, mask)
    with pytest.raises(ValueError, match="lies outside"):
        propagate_mask(volume, 4, mask, offset=(100, 0))
    with pytest.raises(ValueError, match="2D boolean"):
        propagate_mask(volume, 4, mask.astype(np.uint8))


def test_boxes_paths_and_shapes_of_the_wrong_form_are_refused():
    image = np.zeros((32, 32))
    with pytest.raises(ValueError, match="box must be four finite numbers"):
        BoxSession(image, (1, 2, 3))
    with pytest.raises(ValueError, match=r"path must be \(N, 2\) integer"):
        path_to_mask(np.array([1, 2, 3]), (10, 10))
    with pytest.raises((ValueError, TypeError), match="shape"):
        path_to_mask(np.array([[1, 2], [3, 4], [5, 1]]), (10,))


def test_the_runner_refuses_empty_images_and_odd_probability_maps(model):
    with pytest.raises(ValueError, match="empty"):
        model.segment(np.zeros((0, 0)))
    with pytest.raises(ValueError, match="the model's 3 maps"):
        model.labels_from_probabilities(np.zeros((2, 8, 8), np.float32))


def test_a_thin_stack_with_three_columns_is_a_stack_not_colour(model):
    stack = np.random.default_rng(0).random((10, 64, 3)).astype(np.float32)
    assert model.segment(stack).shape == (10, 64, 3)
    colour = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    assert model.segment(colour).shape == (64, 64)


def test_uint64_ids_beyond_int64_are_refused_in_training():
    image, labels = nuclei_2d((64, 64), n_nuclei=3, seed=0)
    big = labels.astype(np.uint64)
    big[big > 0] += np.uint64(2**63)
    with pytest.raises(ValueError, match="above 2\\*\\*63"):
        train_model(image, big, epochs=1)


def test_nothing_is_coerced_silently_a_bool_click_or_a_fractional_block(model, tmp_path):
    """Issue 30.10 and 30.18: True is not a coordinate, 256.7 is not a block size, and a
    block larger than the image is the image (not a 37 GiB chunk)."""
    import zarr

    from napari_medseg import segment_blockwise, segment_point

    image = nuclei_2d((160, 160), n_nuclei=6, seed=1)[0]
    with pytest.raises(ValueError, match=r"finite \(y, x\) point, got \(True, 108\)"):
        segment_point(image, (True, 108))
    with pytest.raises(ValueError, match=r"block_shape\[0\] must be a whole number, got 256.7"):
        segment_blockwise(model, image, tmp_path / "a.zarr", block_shape=(256.7, 256),
                          progress=False)
    labels = segment_blockwise(model, image, tmp_path / "b.zarr", block_shape=(10**6, 10**6),
                               halo=(32, 32), progress=False)
    assert labels.shape == (160, 160) and labels.chunks == (160, 160)
    assert isinstance(labels, zarr.Array) and labels[:].max() > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.zarr"]


@pytest.mark.parametrize("method", ["intensity", "network"])
def test_propagation_through_a_constant_volume_stays_on_its_slice(method):
    """Issue 30.17: nothing stands out, so nothing spreads (it went through 13 slices)."""
    from napari_medseg.box_segmentation import propagate_mask_with_report

    volume = np.full((30, 64, 64), 7.0, np.float32)
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    stack, corner, report = propagate_mask_with_report(volume, 15, mask, (20, 20),
                                                       method=method)
    assert stack.shape == (1, 20, 20) and corner == (15, 20, 20)
    assert set(report.stopped_at.values()) == {14, 16}
