"""Fine-tuning on a user's corrections of real nuclei: checked objects stay as the user left
them, and the model kept never does worse on the held-out checked ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import dsb_fluorescence
from napari_medseg.proofreading import CHECKED_BACKGROUND, CHECKED_OBJECT
from napari_medseg.training import TrainingProgress
from napari_medseg.training.corrections import MIN_CHECKED, fine_tune_on_corrections


@pytest.fixture(scope="module")
def corrected(dsb_train_dir):
    """A real image whose nuclei the user corrected and accepted (the true ones), with
    background checked in one corner: (image, labels, checked)."""
    torch.set_num_threads(2)
    for image, truth in dsb_fluorescence(dsb_train_dir, 30):
        if 40 <= truth.max() <= 150 and min(truth.shape) >= 256:
            checked = np.where(truth > 0, CHECKED_OBJECT, 0).astype(np.uint8)
            corner = np.zeros(truth.shape, bool)
            corner[:40, :40] = True
            checked[corner & (truth == 0)] = CHECKED_BACKGROUND
            return image, truth, checked
    pytest.skip("no suitable image")


def test_fine_tuning_on_checked_objects_keeps_them_and_never_does_worse(corrected):
    image, labels, checked = corrected
    steps = []
    model, result, report = fine_tune_on_corrections(image, labels, checked, "nuclei-2d",
                                                     minutes=0.3, callback=steps.append,
                                                     progress=False)
    objects = len(np.unique(labels)) - 1
    assert report.blend_measure == f"F1@0.5 on {objects // 4} held-out objects"
    assert report.blend_scores[report.blend] >= report.blend_scores[0.0]
    assert model.info.name == "nuclei-2d-corrected"
    # every checked object is back exactly, with its id; nothing on checked background
    np.testing.assert_array_equal(result[labels > 0], labels[labels > 0])
    assert not result[checked == CHECKED_BACKGROUND].any()
    # training reports, then the segmentation's steps, to its end
    assert isinstance(steps[0], TrainingProgress) and steps[-1][0] == steps[-1][1]


def test_too_few_checked_objects_are_refused_with_what_to_do(corrected):
    image, labels, _ = corrected
    few = np.zeros(labels.shape, np.uint8)
    for label in range(1, MIN_CHECKED):
        few[labels == label] = CHECKED_OBJECT
    with pytest.raises(ValueError, match=f"{MIN_CHECKED - 1} checked object.*at least "
                                         f"{MIN_CHECKED}.*Accept"):
        fine_tune_on_corrections(image, labels, few, "nuclei-2d", progress=False)
    with pytest.raises(ValueError, match="minutes must be > 0"):
        fine_tune_on_corrections(image, labels, np.where(labels > 0, 1, 0), "nuclei-2d",
                                 minutes=0, progress=False)
