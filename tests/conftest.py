"""Shared fixtures and helpers: the real data sets of the shared folder (skipped when
absent), synthetic objects, and a shown viewer with its canvas coordinates."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt
from scipy import ndimage as ndi
from skimage.draw import ellipse

from napari_medseg.datasets import DSB_TEST, DSB_TRAIN, GONUCLEAR, data_folder, dsb_split, read_dsb
from napari_medseg.plugin.slice_plane import camera_of, canvas_zoom

# crash journals of the tests' viewers go to a folder of their own, not the user's cache
os.environ["MEDSEG_RECOVERY"] = tempfile.mkdtemp(prefix="medseg-recovery-")


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


@pytest.fixture(scope="session")
def ct_dir() -> Path:
    """The shared TotalSegmentator CT and MR (the CT is test-only)."""
    return _folder("totalseg-ct")


@pytest.fixture(scope="session")
def real_ct(ct_dir):
    """The real CT and its organ labels as read_image gives them: (ct, organs) ImageFiles."""
    from napari_medseg import read_image

    [ct] = read_image(ct_dir / "example_ct_sm.nii.gz")
    [organs] = read_image(ct_dir / "example_seg.nii.gz")
    return ct, organs


def dsb_fluorescence(folder: Path, count: int, role: str = "train"
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``count`` fluorescence (image, labels) pairs of a split's ``role``."""
    split = dsb_split(folder)
    return read_dsb(folder, split.of_kind(getattr(split, role), "fluorescence")[:count])


def start_writing(code: str, *args: str):
    """A child Python process running ``code`` (with ``args``), once it has printed
    "writing": for tests that kill a run while it writes (``.send_signal(SIGKILL)``)."""
    import subprocess
    import sys

    run = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                           text=True)
    assert run.stdout.readline().strip() == "writing"
    return run


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# -- synthetic objects and viewer helpers shared by the tests --------------------------------
def blob_image(shape=(96, 96), dark=False, dtype=np.uint16, seed=0):
    """A blurred, textured nucleus-like ellipse with a touching neighbour."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, bool)
    truth[ellipse(46, 44, 18, 24, shape=shape, rotation=0.4)] = True
    neighbour = np.zeros(shape, bool)
    neighbour[ellipse(46, 80, 12, 12, shape=shape)] = True
    neighbour &= ~truth
    signal = truth * (1 + 0.3 * ndi.gaussian_filter(rng.normal(size=shape), 2)) + 0.7 * neighbour
    image = ndi.gaussian_filter(signal, 1.2) * 2000 + 300 + rng.normal(0, 40, shape)
    if dark:
        image = image.max() + 300 - image
    return image.clip(0).astype(dtype), truth


def blob(shape=(96, 96), center=(48, 48), radii=(20, 28), dtype=np.uint16, rng=None):
    """A blurred bright ellipse on a dark, noisy background (like a stained nucleus)."""
    rng = rng or np.random.default_rng(0)
    truth = np.zeros(shape, bool)
    truth[ellipse(*center, *radii, shape=shape)] = True
    image = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), 1.5) * 3000 + 400
    image += rng.normal(0, 60, shape)
    return image.clip(0, np.iinfo(dtype).max if dtype != np.float32 else None).astype(dtype), truth


def outline(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    return max(contours, key=len)[:, 0, ::-1]  # (y, x)


def outline_anchors(mask: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    contour = outline(mask)
    return contour[(start + np.arange(n) * len(contour) // n) % len(contour)]


def canvas_of(viewer):
    return viewer.window._qt_viewer.canvas.native


def screen_point(viewer, layer, data_point, canvas=None) -> QPoint:
    """Canvas pixel (logical) of a data point of ``layer`` on the displayed plane; a side
    view (a ViewerModel) with its ``canvas`` widget works too."""
    world = np.asarray(layer.data_to_world(data_point))
    displayed = list(viewer.dims.displayed)
    camera = camera_of(viewer)
    center = np.asarray(camera.center)[-2:]
    canvas = canvas or canvas_of(viewer)
    offset = (world[displayed] - center) * canvas_zoom(viewer)
    vertical, horizontal = camera.orientation2d  # "up": rows grow upwards on screen
    offset *= (-1 if vertical == "up" else 1, -1 if horizontal == "left" else 1)
    return QPoint(round(canvas.width() / 2 + offset[1]),
                  round(canvas.height() / 2 + offset[0]))


def drag(qtbot, viewer, layer, a, b, canvas=None):
    """Drag with the left button from data point ``a`` to ``b`` of ``layer``, in six moves."""
    canvas = canvas or canvas_of(viewer)
    pa, pb = screen_point(viewer, layer, a, canvas), screen_point(viewer, layer, b, canvas)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=pa)
    for t in np.linspace(0, 1, 6)[1:]:
        qtbot.mouseMove(canvas, pa + (pb - pa) * t)
        qtbot.wait(5)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=pb)
    qtbot.wait(20)


@pytest.fixture
def viewer(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(900, 700)
    return viewer




def leaking_stack():
    """A disk through 12 slices that, from slice 7 on, touches a bright region reaching the
    image border (as an organ touches its neighbours): (volume, the disk's true mask)."""
    from skimage.draw import disk

    volume = np.zeros((12, 96, 96), np.float32)
    truth = np.zeros(volume.shape, bool)
    for z in range(12):
        truth[z][disk((48, 48), 12, shape=(96, 96))] = True
    volume[truth] = 1
    volume[7:, 30:66, 48:96] = 1
    volume = ndi.gaussian_filter(volume, (0, 1, 1))
    return volume + np.random.default_rng(0).normal(0, 0.05, volume.shape), truth
