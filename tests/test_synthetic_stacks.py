"""Synthetic 3D stacks made from real 2D nuclei: their labels are the bodies the image
shows, sliced as the image is."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import dsb_fluorescence
from napari_medseg import nuclei_2d
from napari_medseg.planes import isotropic_zoom, to_isotropic
from napari_medseg.training.synthetic_stacks import synthetic_stack


@pytest.fixture(scope="module")
def real_nuclei(dsb_train_dir):
    return dsb_fluorescence(dsb_train_dir, 12)


def test_a_stack_of_real_nuclei_is_packed_sliced_and_labelled_where_they_shine(real_nuclei):
    image, labels, spacing = synthetic_stack(real_nuclei, (48, 96, 96), z_step=2.5,
                                             density=0.3, seed=3)
    assert spacing == (2.5, 1.0, 1.0)
    assert image.shape == labels.shape == (19, 96, 96) and image.dtype == np.float32
    ids = np.unique(labels[labels > 0])
    assert ids.size >= 15  # packed: many nuclei in a small volume
    assert 0.15 < (labels > 0).mean() < 0.4
    # every nucleus is one body (one connected piece in 3D) ...
    for i in ids:
        assert ndi.label(labels == i)[1] == 1, i
    # ... and the image is bright where the labels are, after the axial blur
    inside, outside = image[labels > 0].mean(), image[labels == 0].mean()
    assert inside > 2 * outside
    # touching, as in tissue: many nuclei share a face with a neighbour
    touching = labels[:, 1:] != labels[:, :-1]
    both = (labels[:, 1:] > 0) & (labels[:, :-1] > 0)
    assert (touching & both).sum() > 50


def test_nuclei_are_real_outlines_as_bodies_of_their_size(real_nuclei):
    _, labels, _ = synthetic_stack(real_nuclei, (64, 96, 96), z_step=1, seed=0)
    areas = np.concatenate([np.bincount(lab.ravel())[1:] for _, lab in real_nuclei])
    areas = areas[areas > 0]
    widest = [np.bincount(labels[z].ravel(), minlength=labels.max() + 1)[1:]
              for z in range(labels.shape[0])]
    widest = np.max(widest, axis=0)
    whole = widest[widest > 0]
    # the widest cross-sections are of the real nuclei's sizes (some cut by the volume's
    # edges or pressed by neighbours, so a little smaller)
    assert 0.6 < np.median(whole) / np.median(areas) < 1.3
    # as deep as they are wide, within the drawn 0.7-1.3 aspect (the equivalent radius)
    heights = [s[0].stop - s[0].start for s in ndi.find_objects(labels) if s is not None]
    assert 0.8 < np.median(heights) / (2 * np.sqrt(np.median(areas) / np.pi)) < 1.4


def test_slices_lie_where_the_isotropic_resampling_puts_them_back():
    image, labels, spacing = synthetic_stack([nuclei_2d()], (40, 96, 96), z_step=4,
                                             density=0.2, seed=1)
    assert labels.shape[0] == 10
    iso = to_isotropic(labels, isotropic_zoom(spacing), labels=True)
    assert iso.shape == (40, 96, 96)
    # the same seed gives the same stack
    again = synthetic_stack([nuclei_2d()], (40, 96, 96), z_step=4, density=0.2, seed=1)
    np.testing.assert_array_equal(again[0], image)


@pytest.mark.parametrize("pairs, options, message", [
    ([(np.zeros((64, 64)), np.zeros((64, 64), int))], {}, "no nucleus"),
    ([(np.zeros((64, 64, 3)), np.zeros((64, 64), int))], {}, "grey 2D images"),
    ([nuclei_2d()], {"shape": (4, 64, 64)}, "shape must be"),
    ([nuclei_2d()], {"z_step": 0.5}, "z_step must be"),
    ([nuclei_2d()], {"density": 1.0}, "density must be"),
])
def test_bad_input_is_refused(pairs, options, message):
    with pytest.raises(ValueError, match=message):
        synthetic_stack(pairs, **options)
