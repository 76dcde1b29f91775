"""Reading and writing NIfTI and TIFF images and label maps (no Qt, no napari).

:func:`read_image` returns :class:`ImageFile` objects whose arrays are laid out the way
napari slices them (``(..., z, y, x)``), with voxel sizes as ``scale``; :func:`write_labels`
writes a label array back, restoring the source file's orientation when the
``metadata`` of the read image is passed along.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.io._common import ImageFile, ImageReadError, ImageWriteError
from napari_medseg.io.nifti import read_nifti, write_nifti
from napari_medseg.io.tiff import read_tiff, write_tiff

__all__ = [
    "ImageFile",
    "ImageReadError",
    "ImageWriteError",
    "is_nifti_path",
    "is_tiff_path",
    "read_image",
    "read_nifti",
    "read_tiff",
    "write_labels",
    "write_nifti",
    "write_tiff",
]


def is_nifti_path(path: str | Path) -> bool:
    """Whether ``path`` has a NIfTI suffix (``.nii`` or ``.nii.gz``)."""
    name = str(path).lower()
    return name.endswith((".nii", ".nii.gz"))


def is_tiff_path(path: str | Path) -> bool:
    """Whether ``path`` has a TIFF suffix (``.tif``, ``.tiff``, ``.ome.tif``...)."""
    return str(path).lower().endswith((".tif", ".tiff"))


def read_image(path: str | Path) -> list[ImageFile]:
    """Read a NIfTI or TIFF file.

    Parameters
    ----------
    path : str or Path
        A ``.nii``, ``.nii.gz``, ``.tif`` or ``.tiff`` file.

    Returns
    -------
    list of ImageFile
        One entry per layer the file holds (currently always one; channels are
        described by ``channel_axis``).

    Raises
    ------
    ImageReadError
        If the file is missing, unreadable, truncated or of an unsupported layout.
    """
    if is_nifti_path(path):
        return [read_nifti(path)]
    if is_tiff_path(path):
        return [read_tiff(path)]
    raise ImageReadError(path, "not a NIfTI (.nii, .nii.gz) or TIFF (.tif, .tiff) file")


def write_labels(
    path: str | Path,
    labels: np.ndarray,
    *,
    scale: tuple[float, ...] | None = None,
    translate: tuple[float, ...] | None = None,
    metadata: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a label array to NIfTI or TIFF, chosen by the file suffix.

    See :func:`write_nifti` and :func:`write_tiff` for the parameters.
    """
    if is_nifti_path(path):
        return write_nifti(path, labels, scale=scale, translate=translate,
                           metadata=metadata, overwrite=overwrite)
    if is_tiff_path(path):
        return write_tiff(path, labels, scale=scale, metadata=metadata, overwrite=overwrite)
    raise ImageWriteError(path, "unsupported suffix; use .nii.gz, .nii, .tif or .ome.tif")
