"""Everyday 2D formats (PNG, JPEG, BMP) through imageio: reading images and label maps,
writing label maps as 8- or 16-bit PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.io._common import (
    ImageFile,
    ImageReadError,
    ImageWriteError,
    check_writable,
    looks_like_labels,
    smallest_label_dtype,
    stem,
    write_atomically,
)

__all__ = ["SUFFIXES", "read_png", "write_png"]

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_PNG_LABEL_DTYPES = ("uint8", "uint16")


def read_png(path: str | Path) -> ImageFile:
    """Read a PNG, JPEG or BMP file.

    Returns
    -------
    ImageFile
        ``data`` of shape ``(y, x)`` or ``(y, x, 3|4)`` (``rgb``); "labels" for a
        label-like integer image (see :func:`~napari_medseg.io._common.looks_like_labels`);
        ``scale`` 1 (these formats carry no pixel size napari-medseg trusts).

    Raises
    ------
    ImageReadError
        If the file is missing or not a readable image.
    """
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "no such file")
    try:
        data = np.asarray(iio.imread(path))
    except Exception as err:  # imageio raises many types for broken files
        raise ImageReadError(path, f"not a readable {path.suffix} image ({err})") from None
    if data.ndim == 3 and data.shape[-1] in (1, 2):  # grey (+ alpha)
        data = data[..., 0]
    rgb = data.ndim == 3 and data.shape[-1] in (3, 4)
    if rgb and not np.ptp(data[..., :3].astype(np.int32), axis=-1).any():
        data, rgb = data[..., 0], False  # grey stored as RGB (as DSB2018's fluorescence)
    if data.ndim != 2 and not rgb:
        raise ImageReadError(path, f"unsupported layout {data.shape}: expected a 2D grey or "
                                   "colour image")
    kind = "labels" if not rgb and looks_like_labels(data, path) else "image"
    return ImageFile(data=data, kind=kind, scale=(1.0, 1.0), translate=(0.0, 0.0),
                     axes="YXS" if rgb else "YX", name=stem(path), rgb=rgb,
                     units=("pixel", "pixel"), metadata={"png": {"path": str(path)}})


def write_png(path: str | Path, labels: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write a 2D label map as an 8- or 16-bit grey PNG (ids up to 65,535), atomically.

    Raises
    ------
    ImageWriteError
        For labels that are not 2D integers, or ids that do not fit 16 bits.
    """
    import imageio.v3 as iio

    path = check_writable(path, overwrite)
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ImageWriteError(path, f"PNG holds 2D labels, got shape {labels.shape}; use "
                                    ".tif or .nii.gz for stacks")
    if labels.size == 0:
        raise ImageWriteError(path, "the labels are empty (0 pixels)")
    dtype = smallest_label_dtype(labels, path, _PNG_LABEL_DTYPES)
    return write_atomically(path, lambda tmp: iio.imwrite(tmp, labels.astype(dtype),
                                                          extension=".png"))
