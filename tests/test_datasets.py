"""The fixed splits of the shared data sets (skipped when they are absent)."""

from __future__ import annotations

import pytest

from napari_medseg.datasets import data_folder, dsb_split, finetune_ids, read_gonuclear


def test_training_set_split_keeps_every_tenth_image_for_testing(dsb_train_dir):
    split = dsb_split(dsb_train_dir)
    ids = sorted(split.kinds)
    assert split.test == ids[::10] and len(split.test) == 67
    assert len(split.of_kind(split.test, "fluorescence")) == 57
    assert set(split.train).isdisjoint(split.test) and set(split.validation).isdisjoint(
        split.test)
    assert len(split.train) + len(split.validation) + len(split.test) == 664


def test_stage1_test_set_is_all_test_images_with_five_fixed_fine_tuning_ones(dsb_dir):
    split = dsb_split(dsb_dir)
    assert not split.train and len(split.test) == 65
    tune = finetune_ids(dsb_dir)
    assert tune == split.of_kind(split.test, "fluorescence")[:5]


def test_gonuclear_crops_come_with_their_voxel_size(gonuclear_dir):
    image, labels, spacing = read_gonuclear(gonuclear_dir, "1135")
    assert image.shape == labels.shape == (100, 100, 100)
    assert 0.27 < spacing[0] < 0.29 and 0.12 < spacing[1] < 0.13


def test_a_missing_data_set_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDSEG_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        data_folder("dsb2018-stage1-train")
