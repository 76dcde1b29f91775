"""Pieces shared by the NIfTI and TIFF readers and writers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from napari_medseg.safe_write import FileWriteError, write_atomically
from napari_medseg.safe_write import check_writable as _check_writable

__all__ = ["ImageFile", "ImageReadError", "ImageWriteError", "check_writable",
           "labels_by_name", "looks_like_labels", "named_like_labels", "smallest_label_dtype",
           "stem", "write_atomically"]

# File names that mark a label map rather than an intensity image.
_LABEL_NAME = re.compile(r"(label|mask|seg|annot|instance|roi)", re.IGNORECASE)


class ImageReadError(ValueError):
    """A file could not be read as an image; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"Cannot read {self.path.name!r}: {problem}.")


class ImageWriteError(FileWriteError):
    """An array could not be written; the message names the file and the problem."""


@dataclass
class ImageFile:
    """An image or label map read from disk, laid out for napari.

    Attributes
    ----------
    data : ndarray, dask array, or list of them
        Pixel data with spatial axes last as ``(..., z, y, x)`` (plus a trailing
        colour axis when ``rgb``); a dask array for files read lazily (zarr, big
        TIFF); the resolution levels, full first, when ``multiscale``.
    kind : {"image", "labels"}
        Whether the file holds intensities or an integer label map.
    scale : tuple of float
        Physical size of one pixel along each non-colour axis of ``data``.
    translate : tuple of float
        Physical position of the first pixel along each non-colour axis.
    axes : str
        One letter per axis of ``data`` (e.g. ``"TZYX"``, ``"CYX"``, ``"YXS"``).
    channel_axis : int or None
        Axis of ``data`` holding separate channels, if any.
    rgb : bool
        Whether the last axis holds RGB(A) colour samples.
    units : tuple of str
        Unit of each entry of ``scale``.
    metadata : dict
        Source-specific information needed to write results back faithfully.
    name : str
        Layer name (the file name without suffix).
    multiscale : bool
        Whether ``data`` is a list of resolution levels.
    """

    data: np.ndarray
    kind: Literal["image", "labels"]
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    axes: str
    name: str
    channel_axis: int | None = None
    rgb: bool = False
    units: tuple[str, ...] = ()
    metadata: dict = field(default_factory=dict)
    multiscale: bool = False


def stem(path: str | Path) -> str:
    """File name without its image suffixes (``a.nii.gz`` -> ``a``, ``b.ome.tif`` -> ``b``)."""
    name = Path(path).name
    for suffix in (".nii.gz", ".ome.tiff", ".ome.tif", ".nii", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def named_like_labels(path: str | Path) -> bool:
    """Whether ``path``'s name says label map (``label``, ``mask``, ``seg``...)."""
    return bool(_LABEL_NAME.search(stem(path)))


def labels_by_name(dtype: np.dtype, path: str | Path) -> bool:
    """Whether integer data named ``path`` is a label map by its name alone (``label``,
    ``mask``, ``seg``...): the rule for lazy arrays, which are not read to decide."""
    return np.dtype(dtype).kind in "biu" and named_like_labels(path)


def looks_like_labels(data: np.ndarray, path: str | Path) -> bool:
    """Whether an integer array named ``path`` is a label map rather than an image.

    Only non-negative integer data qualifies. A label-like file name decides;
    otherwise the data must have few distinct values with background (0) the
    most frequent, as label maps do and intensity images (CT, MRI, microscopy) do not.
    """
    if data.dtype.kind not in "biu" or data.size == 0:
        return False
    sample = data.ravel()[:: max(1, data.size // 2_000_000)]
    if sample.min() < 0:
        return False
    if labels_by_name(data.dtype, path):
        return True
    values, counts = np.unique(sample, return_counts=True)
    return len(values) <= 64 and values[0] == 0 and counts.argmax() == 0


def check_writable(path: str | Path, overwrite: bool) -> Path:
    """:func:`napari_medseg.safe_write.check_writable` with :class:`ImageWriteError`."""
    return _check_writable(path, overwrite, ImageWriteError)


def smallest_label_dtype(
    labels: np.ndarray, path: str | Path, allowed: tuple[str, ...]
) -> np.dtype:
    """Smallest dtype from ``allowed`` that holds every value of ``labels``."""
    if labels.dtype.kind == "b":
        return np.dtype(np.uint8)
    if labels.dtype.kind not in "iu":
        raise ImageWriteError(path, f"labels must be integers, got dtype {labels.dtype}")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        # they would not read back as labels (an image holds negative values, labels not)
        raise ImageWriteError(path, f"label ids must not be negative, got {int(labels.min())}")
    if labels.dtype.name in allowed:
        return labels.dtype
    lo, hi = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    for name in allowed:
        info = np.iinfo(name)
        if info.min <= lo and hi <= info.max:
            return np.dtype(name)
    raise ImageWriteError(path, f"label values {lo}..{hi} do not fit any of {allowed}")
