"""Shared fixtures: the real DSB2018 nuclei (skipped when absent) and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

DATA_DIR = Path(
    os.environ.get("MEDSEG_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
) / "dsb2018-stage1-test"


def dsb_ids() -> list[str]:
    """Sorted ids of the shared DSB2018 images (empty when the folder is absent)."""
    if not DATA_DIR.is_dir():
        return []
    return sorted(p.name[: -len("_labels.tif")] for p in DATA_DIR.glob("*_labels.tif"))


@pytest.fixture(scope="session")
def dsb_dir() -> Path:
    if not dsb_ids():
        pytest.skip(f"shared DSB2018 data not found at {DATA_DIR}")
    return DATA_DIR


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
