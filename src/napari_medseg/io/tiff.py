"""TIFF, OME-TIFF and ImageJ hyperstack reading and writing with tifffile."""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import tifffile

from napari_medseg.io._common import (
    ImageFile,
    ImageReadError,
    ImageWriteError,
    check_writable,
    labels_by_name,
    looks_like_labels,
    smallest_label_dtype,
    stem,
    write_atomically,
)

__all__ = ["LAZY_BYTES", "read_tiff", "write_tiff"]

LAZY_BYTES = 2**30  # TIFFs larger than this are read lazily, through tifffile's zarr store

_OME_LABEL_DTYPES = ("uint8", "uint16", "uint32", "int8", "int16", "int32")
# Length units (OME names and ImageJ spellings) in micrometres.
_UM_PER_UNIT = {
    "m": 1e6, "cm": 1e4, "mm": 1e3, "µm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0,
    "\\u00B5m": 1.0, "nm": 1e-3, "Å": 1e-4, "pm": 1e-6,
}
# usable pixel sizes (µm, or s for time): from 1 pm to 1 km
_MIN_SIZE, _MAX_SIZE = 1e-6, 1e9


def read_tiff(path: str | Path) -> ImageFile:
    """Read a TIFF, OME-TIFF or ImageJ hyperstack.

    Parameters
    ----------
    path : str or Path
        File to read.

    Returns
    -------
    ImageFile
        ``data`` in the file's axis order (tifffile's letters in ``axes``, Y and X
        last, RGB samples moved to the very end), a dask array over tifffile's zarr
        store for files above :data:`LAZY_BYTES` (all resolution levels of a
        pyramidal file, ``multiscale``); ``scale`` holds physical pixel
        sizes in µm from OME ``PhysicalSize*`` or ImageJ spacing/resolution (1
        where unknown); a ``C`` axis becomes ``channel_axis``.

    Raises
    ------
    ImageReadError
        If the file is missing, not a TIFF, or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "no such file")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = series.axes
            lazy = series.nbytes > LAZY_BYTES
            data = _lazy_levels(path, len(series.levels)) if lazy else series.asarray()
            sizes = _physical_sizes(tif, path.name)
    except Exception as err:  # tifffile raises many types for broken files
        raise ImageReadError(path, f"not a readable TIFF file ({err})") from None

    levels = data if lazy else [data]
    if "S" in axes and axes[-1] != "S":  # planar RGB -> interleaved
        levels = [np.moveaxis(level, axes.index("S"), -1) for level in levels]  # dask too
        axes = axes.replace("S", "") + "S"
    data = levels[0]
    rgb = axes.endswith("S") and data.shape[-1] in (3, 4)
    if axes.endswith("S") and not rgb:
        raise ImageReadError(path, f"{data.shape[-1]} samples per pixel; expected 1, 3 or 4")
    spatial = axes[:-1] if rgb else axes
    if data.dtype.kind not in "biuf":
        raise ImageReadError(path, f"unsupported pixel type {data.dtype}")

    # a lazy file is not read to tell labels from an image: its name decides
    labels = labels_by_name(data.dtype, path) if lazy else looks_like_labels(data, path)
    kind = "labels" if not rgb and "C" not in spatial and labels else "image"
    scale = tuple(sizes.get(ax, 1.0) for ax in spatial)
    units = tuple("µm" if ax in sizes and ax in "ZYX" else "s" if ax == "T" and ax in sizes
                  else "pixel" for ax in spatial)
    return ImageFile(
        data=levels if len(levels) > 1 else data,
        kind=kind,
        scale=scale,
        translate=(0.0,) * len(spatial),
        axes=axes,
        name=stem(path),
        channel_axis=spatial.index("C") if "C" in spatial and kind == "image" else None,
        rgb=rgb,
        units=units,
        metadata={"tiff": {"axes": axes, "path": str(path)}},
        multiscale=len(levels) > 1,
    )


def _lazy_levels(path: Path, levels: int) -> list:
    """Every resolution level of the file's first series as a dask array over tifffile's
    zarr store (which opens the file again, so it outlives the TiffFile)."""
    import dask.array as da
    import zarr

    node = zarr.open(tifffile.imread(path, aszarr=True, series=0), mode="r")
    if isinstance(node, zarr.Array):
        return [da.from_zarr(node)]
    return [da.from_zarr(node[str(k)]) for k in range(levels)]



def write_tiff(
    path: str | Path,
    labels: np.ndarray,
    *,
    scale: tuple[float, ...] | None = None,
    metadata: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a 2D-4D label array as (OME-)TIFF with its physical pixel sizes.

    Parameters
    ----------
    path : str or Path
        Target ``.tif``, ``.tiff`` or ``.ome.tif`` file. OME-XML is written in all cases.
    labels : ndarray of int or bool, shape (y, x), (z, y, x) or (t, z, y, x)
        Label map; stored in the smallest OME integer type holding its values.
    scale : tuple of float, optional
        Pixel size per axis in µm, written as OME ``PhysicalSize{X,Y,Z}``.
    metadata : dict, optional
        Layer metadata; a ``"tiff"`` entry from :func:`read_tiff` supplies the axis letters.
    overwrite : bool
        Replace an existing file. By default an existing file is an error.

    Returns
    -------
    Path
        The written file (atomically: on failure an existing file is untouched).
    """
    path = check_writable(path, overwrite)
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3, 4):
        raise ImageWriteError(path, f"labels must be 2D, 3D or 4D, got shape {labels.shape}")
    if labels.size == 0:
        raise ImageWriteError(path, f"the labels are empty (shape {labels.shape})")
    dtype = smallest_label_dtype(labels, path, _OME_LABEL_DTYPES)
    axes = ((metadata or {}).get("tiff") or {}).get("axes", "")
    if len(axes) != labels.ndim or not set(axes) <= set("TZYXQ"):
        axes = "TZYX"[-labels.ndim:]
    ome = {"axes": axes}
    if scale is not None:
        if len(scale) != labels.ndim:
            raise ImageWriteError(path, f"scale {tuple(scale)} needs {labels.ndim} entries")
        for ax, size in zip(axes, scale, strict=True):
            if ax in "ZYX":
                ome[f"PhysicalSize{ax}"] = float(size)
                ome[f"PhysicalSize{ax}Unit"] = "µm"

    def _save(tmp: Path) -> None:
        tifffile.imwrite(tmp, labels.astype(dtype, copy=False), ome=True, metadata=ome,
                         compression="zlib")

    return write_atomically(path, _save)


def _physical_sizes(tif: tifffile.TiffFile, name: str) -> dict[str, float]:
    """Pixel sizes by axis letter (µm for Z/Y/X, s for T) from OME or ImageJ metadata;
    invalid values are dropped with a warning naming the field, the rest are kept."""
    if tif.is_ome and tif.ome_metadata:
        return _ome_sizes(tif.ome_metadata, name)
    sizes: dict[str, float] = {}
    page = tif.pages.first
    ij = tif.imagej_metadata or {}
    unit = str(ij.get("unit", "")).strip() if ij else ""
    if ij and unit and unit not in _UM_PER_UNIT and unit.lower() not in ("pixel", "pixels"):
        _ignored(name, "ImageJ unit", unit, "an unknown length unit; sizes left in pixels")
        return sizes
    factor = _UM_PER_UNIT.get(unit) if ij else None
    if ij and factor is None:
        factor = 1.0  # ImageJ without a length unit: keep its numbers as they are
    unit_tag = page.tags.get("ResolutionUnit")
    if not ij and unit_tag is not None and int(unit_tag.value) == 3:  # centimetre
        factor = 1e4
    if factor is not None:
        for ax, tag in (("X", "XResolution"), ("Y", "YResolution")):
            res = page.tags.get(tag)
            if res is not None:
                num, den = res.value
                if num > 0 and den > 0:
                    _keep(sizes, ax, factor * den / num, name, tag, res.value)
    if ij.get("spacing"):
        _keep(sizes, "Z", _number(ij["spacing"]) * (factor or 1.0), name, "ImageJ spacing",
              ij["spacing"])
    if ij.get("finterval"):
        _keep(sizes, "T", _number(ij["finterval"]), name, "ImageJ finterval", ij["finterval"])
    return sizes


def _ome_sizes(xml: str, name: str) -> dict[str, float]:
    sizes: dict[str, float] = {}
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        warnings.warn(f"{name}: its OME-XML metadata cannot be parsed; pixel sizes are left "
                      "at 1.", UserWarning, stacklevel=4)
        return sizes
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return sizes
    for ax in "XYZ":
        field = f"PhysicalSize{ax}"
        value = pixels.get(field)
        if value is None:
            continue
        unit = pixels.get(f"{field}Unit", "µm")
        if unit not in _UM_PER_UNIT:
            _ignored(name, f"{field}Unit", unit, "an unknown length unit")
            continue
        _keep(sizes, ax, _number(value) * _UM_PER_UNIT[unit], name, field, value)
    if pixels.get("TimeIncrement") is not None:
        value = pixels.get("TimeIncrement")
        _keep(sizes, "T", _number(value), name, "TimeIncrement", value)
    return sizes


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _keep(sizes: dict, axis: str, size: float, name: str, field: str, value) -> None:
    """``sizes[axis] = size`` when it is a usable pixel size, else a warning."""
    if np.isfinite(size) and _MIN_SIZE <= size <= _MAX_SIZE:
        sizes[axis] = float(size)
    else:
        _ignored(name, field, value, "not a usable size")


def _ignored(name: str, field: str, value, why: str) -> None:
    warnings.warn(f"{name}: {field}={value!r} is {why}; ignored (that axis keeps size 1).",
                  UserWarning, stacklevel=5)
