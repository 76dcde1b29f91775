"""Shared fixtures: the real data sets of the shared folder (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_medseg.datasets import DSB_TEST, DSB_TRAIN, GONUCLEAR, data_folder, dsb_split, read_dsb


def _folder(name: str) -> Path:
    try:
        return data_folder(name)
    except FileNotFoundError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def dsb_dir() -> Path:
    """The DSB2018 stage-1 test set (other annotators; test-only)."""
    return _folder(DSB_TEST)


@pytest.fixture(scope="session")
def dsb_train_dir() -> Path:
    """The DSB2018 stage-1 training set (its ``train`` split may be trained on)."""
    return _folder(DSB_TRAIN)


@pytest.fixture(scope="session")
def gonuclear_dir() -> Path:
    return _folder(GONUCLEAR)


def dsb_fluorescence(folder: Path, count: int, role: str = "train"
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``count`` fluorescence (image, labels) pairs of a split's ``role``."""
    split = dsb_split(folder)
    return read_dsb(folder, split.of_kind(getattr(split, role), "fluorescence")[:count])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
