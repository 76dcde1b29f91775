"""Reading and writing NIfTI, TIFF, PNG and (lazily) zarr images and label maps (no Qt,
no napari).

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
from napari_medseg.io.omezarr import is_zarr_path, read_zarr
from napari_medseg.io.png import SUFFIXES as _PNG_SUFFIXES
from napari_medseg.io.png import read_png, write_png
from napari_medseg.io.tiff import read_tiff, write_tiff

__all__ = [
    "ImageFile",
    "ImageReadError",
    "ImageWriteError",
    "is_image_path",
    "is_nifti_path",
    "is_png_path",
    "is_tiff_path",
    "is_zarr_path",
    "read_image",
    "read_nifti",
    "read_png",
    "read_tiff",
    "read_zarr",
    "write_labels",
    "write_nifti",
    "write_png",
    "write_tiff",
]


def is_nifti_path(path: str | Path) -> bool:
    """Whether ``path`` has a NIfTI suffix (``.nii`` or ``.nii.gz``)."""
    name = str(path).lower()
    return name.endswith((".nii", ".nii.gz"))


def is_tiff_path(path: str | Path) -> bool:
    """Whether ``path`` has a TIFF suffix (``.tif``, ``.tiff``, ``.ome.tif``...)."""
    return str(path).lower().endswith((".tif", ".tiff"))


def is_png_path(path: str | Path) -> bool:
    """Whether ``path`` is an everyday 2D image (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``)."""
    return str(path).lower().endswith(_PNG_SUFFIXES)


def is_image_path(path: str | Path) -> bool:
    """Whether :func:`read_image` reads files like ``path`` (by its suffix)."""
    return is_nifti_path(path) or is_tiff_path(path) or is_png_path(path) or is_zarr_path(path)


def read_image(path: str | Path) -> list[ImageFile]:
    """Read a NIfTI, TIFF, PNG, JPEG or BMP file, or an OME-Zarr / zarr folder.

    Parameters
    ----------
    path : str or Path
        A ``.nii``, ``.nii.gz``, ``.tif``, ``.tiff``, ``.png``, ``.jpg`` or ``.bmp`` file,
        or a zarr folder (:func:`read_zarr`).

    Returns
    -------
    list of ImageFile
        One entry per layer the file holds (an OME-Zarr image's label images follow
        it; channels are described by ``channel_axis``). Zarr and TIFF files larger
        than :data:`~napari_medseg.io.tiff.LAZY_BYTES` come as dask arrays, read only
        where shown or computed.

    Raises
    ------
    ImageReadError
        If the file is missing, unreadable, truncated or of an unsupported layout.

    Examples
    --------
    >>> import tempfile
    >>> from napari_medseg import nuclei_3d
    >>> image, labels, scale = nuclei_3d()
    >>> path = write_labels(Path(tempfile.mkdtemp()) / "nuclei_seg.nii.gz", labels, scale=scale)
    >>> [reopened] = read_image(path)
    >>> reopened.kind, reopened.data.shape, reopened.scale
    ('labels', (32, 160, 160), (1.0, 0.5, 0.5))
    """
    if is_nifti_path(path):
        return [read_nifti(path)]
    if is_tiff_path(path):
        return [read_tiff(path)]
    if is_png_path(path):
        return [read_png(path)]
    if is_zarr_path(path):
        return read_zarr(path)
    raise ImageReadError(path, "not a NIfTI (.nii, .nii.gz), TIFF (.tif, .tiff), PNG / "
                               "JPEG / BMP file or zarr folder")


def write_labels(
    path: str | Path,
    labels: np.ndarray,
    *,
    scale: tuple[float, ...] | None = None,
    translate: tuple[float, ...] | None = None,
    metadata: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a label array to NIfTI, TIFF or PNG (2D, 16-bit), chosen by the file suffix.

    See :func:`write_nifti`, :func:`write_tiff` and :func:`write_png` for the parameters.

    Examples
    --------
    >>> import tempfile
    >>> from napari_medseg import nuclei_2d
    >>> image, labels = nuclei_2d()
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_labels(folder / "nuclei_labels.png", labels).name
    'nuclei_labels.png'
    >>> read_image(folder / "nuclei_labels.png")[0].kind
    'labels'
    """
    if is_nifti_path(path):
        return write_nifti(path, labels, scale=scale, translate=translate,
                           metadata=metadata, overwrite=overwrite)
    if is_tiff_path(path):
        return write_tiff(path, labels, scale=scale, metadata=metadata, overwrite=overwrite)
    if str(path).lower().endswith(".png"):
        return write_png(path, labels, overwrite=overwrite)
    raise ImageWriteError(path, "unsupported suffix; use .nii.gz, .nii, .tif, .ome.tif or .png")
