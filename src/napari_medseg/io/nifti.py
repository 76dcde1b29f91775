"""NIfTI-1/2 reading and writing with nibabel.

Volumes are shown the way radiology viewers show them: the voxel axes are
reoriented to the closest LPS orientation (x towards the patient's left,
y posterior, z superior) and reversed to napari's ``(…, z, y, x)`` order, so
an axial slice has anterior at the top and the patient's right on the left of
the screen. The original affine, header and the axis permutation are kept in
``metadata["nifti"]``; :func:`write_nifti` undoes the permutation and writes
with that affine and header, so a label map lands voxel for voxel on its image.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations as ornt

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

__all__ = ["read_nifti", "write_nifti"]

_DISPLAY_AXCODES = ("L", "P", "S")
# Integer types NIfTI-1 stores (smallest first, unsigned preferred for labels).
_NIFTI_LABEL_DTYPES = ("uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")
_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])


def read_nifti(path: str | Path) -> ImageFile:
    """Read a 2D, 3D or 4D NIfTI file (``.nii`` or ``.nii.gz``).

    Parameters
    ----------
    path : str or Path
        File to read.

    Returns
    -------
    ImageFile
        ``data`` of shape ``(z, y, x)`` or ``(t, z, y, x)`` in LPS display
        orientation; ``scale`` holds the voxel sizes in mm (1 for time);
        ``kind`` is "labels" for label maps (intent code "label", a label-like
        file name, or few non-negative integer values).

    Raises
    ------
    ImageReadError
        If the file is missing, not NIfTI, truncated, or has more than 4 non-singleton axes.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "no such file")
    try:
        img = nib.load(path)
    except Exception as err:  # nibabel raises many types for non-NIfTI input
        raise ImageReadError(path, f"not a valid NIfTI file ({err})") from None
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise ImageReadError(path, f"a {type(img).__name__} file, not NIfTI")

    shape = img.shape
    if len(shape) < 2 or min(shape) < 1:
        raise ImageReadError(path, f"its header declares data of shape {shape}; 2D to 4D "
                                   "data are supported")
    _check_declared_size(path, img)
    # Drop singleton axes beyond the third (e.g. x, y, z, 1, 1 from some exporters).
    keep = [i for i, n in enumerate(shape) if i < 3 or n > 1]
    if len(keep) > 4:
        raise ImageReadError(
            path, f"{len(keep)}D data of shape {shape}: only 2D, 3D and 4D (x, y, z, t) are "
            "supported",
        )
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as err:  # truncated or corrupt payload
        raise ImageReadError(path, f"the image data is truncated or corrupt ({err})") from None
    data = data.reshape(tuple(shape[i] for i in keep))
    if data.ndim == 2:  # a single slice
        data = data[..., np.newaxis]
    if data.dtype.kind == "c" or data.dtype.names is not None:
        raise ImageReadError(path, f"unsupported voxel type {data.dtype}")
    data = data.astype(data.dtype.newbyteorder("="), copy=False)  # GPU textures need native order

    affine = img.affine
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ImageReadError(path, "its orientation (the sform/qform affine and voxel sizes "
                                   "of the header) is not a valid, finite, non-degenerate "
                                   f"transform: {np.round(affine, 4).tolist()}")
    to_display = ornt.ornt_transform(ornt.io_orientation(affine),
                                     ornt.axcodes2ornt(_DISPLAY_AXCODES))
    display_affine = affine @ ornt.inv_ornt_aff(to_display, data.shape[:3])
    data = ornt.apply_orientation(data, to_display)
    data = np.ascontiguousarray(data.transpose(tuple(range(data.ndim - 1, -1, -1))))

    voxel = np.sqrt((display_affine[:3, :3] ** 2).sum(axis=0))  # (x, y, z) sizes
    origin = _LPS_FROM_RAS @ display_affine[:3, 3]
    extra = data.ndim - 3
    header = img.header
    is_labels = header.get_intent()[0] == "label" or looks_like_labels(data, path)
    if is_labels and data.dtype.kind == "f":
        data = _float_labels_to_int(data, path)

    return ImageFile(
        data=data,
        kind="labels" if is_labels else "image",
        scale=(1.0,) * extra + tuple(float(v) for v in voxel[::-1]),
        translate=(0.0,) * extra + tuple(float(v) for v in origin[::-1]),
        axes="TZYX"[-data.ndim:],
        units=("s",) * extra + ("mm",) * 3,
        name=stem(path),
        metadata={
            "nifti": {
                "affine": affine.copy(),
                "header": header.copy(),
                "to_display": to_display,
                "source_shape": tuple(shape),
                "display_shape": data.shape,
                "path": str(path),
            }
        },
    )


def write_nifti(
    path: str | Path,
    labels: np.ndarray,
    *,
    scale: tuple[float, ...] | None = None,
    translate: tuple[float, ...] | None = None,
    metadata: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a label array of shape ``(z, y, x)`` or ``(t, z, y, x)`` as NIfTI.

    Parameters
    ----------
    path : str or Path
        Target ``.nii`` or ``.nii.gz`` file.
    labels : ndarray of int or bool
        Label map in napari layout. The integer dtype is kept (bool becomes uint8).
    scale, translate : tuple of float, optional
        Voxel size and origin (mm) used when ``metadata`` has no source NIfTI
        information: an axis-aligned affine, right for labels of an axis-aligned
        source (a TIFF stack); for labels of a NIfTI scan pass its ``metadata``.
    metadata : dict, optional
        The ``metadata`` of an :class:`ImageFile` from :func:`read_nifti` (or a
        napari layer's metadata). Its ``"nifti"`` entry gives the file the
        source's affine, header and voxel order; labels must lie on the source's
        grid (its shape, or its spatial shape for a 4D series), else they are refused.
    overwrite : bool
        Replace an existing file. By default an existing file is an error.

    Returns
    -------
    Path
        The written file. The write is atomic: on failure an existing file is untouched.
    """
    path = check_writable(path, overwrite)
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3, 4):
        raise ImageWriteError(path, f"labels must be 2D, 3D or 4D, got shape {labels.shape}")
    if labels.size == 0:
        raise ImageWriteError(path, f"the labels are empty (shape {labels.shape})")
    if labels.ndim == 2:
        labels = labels[np.newaxis]
    dtype = smallest_label_dtype(labels, path, _NIFTI_LABEL_DTYPES)

    source = (metadata or {}).get("nifti")
    if source is not None:
        missing = {"affine", "header", "to_display", "source_shape", "display_shape"} - set(
            source)
        if missing:
            raise ImageWriteError(path, f"metadata['nifti'] lacks {sorted(missing)}; pass the "
                                        "metadata of the image as read_image returned it")
        display = tuple(source["display_shape"])
        if display == labels.shape:
            voxels = _from_display(labels, source["to_display"])
            voxels = voxels.reshape(source["source_shape"])
        elif labels.ndim == 3 and display[-3:] == labels.shape:
            # 3D labels drawn on a 4D (time) series: the spatial axes keep the affine
            voxels = _from_display(labels, source["to_display"])
        else:
            raise ImageWriteError(path, f"labels of shape {labels.shape} do not fit the source "
                                        f"image's grid {display}, so where they lie on it "
                                        "is unknown")
        header = source["header"].copy()
        affine = source["affine"]
    else:
        voxels = labels.transpose(tuple(range(labels.ndim - 1, -1, -1)))
        header, affine = None, _affine_from_scale(labels.ndim, scale, translate)

    image_class = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    img = image_class(voxels.astype(dtype, copy=False), affine, header=header, dtype=dtype)
    img.header.set_slope_inter(1.0, 0.0)
    img.header.set_intent("label")
    if header is not None:  # keep the source's coordinate-system codes
        img.set_sform(affine, int(header["sform_code"]) or 2)
        img.set_qform(affine, int(header["qform_code"]) or 2)

    def _save(tmp: Path) -> None:
        nib.save(img, tmp)

    return write_atomically(path, _save)


# deflate cannot compress by more than about 1032:1
_MAX_DEFLATE_RATIO = 1032


def _check_declared_size(path: Path, img) -> None:
    """Refuse a header whose data could not be in the file, before anything is allocated
    (a 1 KB file can declare gigabytes)."""
    header = img.header
    declared = int(np.prod(img.shape, dtype=np.int64)) * header.get_data_dtype().itemsize
    offset = int(getattr(img.dataobj, "offset", 0))  # where the voxels start
    size = path.stat().st_size
    if path.name.lower().endswith(".gz"):
        with open(path, "rb") as f:
            f.seek(-4, 2)
            stored = int.from_bytes(f.read(4), "little")  # uncompressed size mod 2**32
        if declared > _MAX_DEFLATE_RATIO * size or (offset + declared) % 2**32 != stored:
            raise ImageReadError(path, f"its header declares {declared:,} bytes of voxels "
                                       f"({img.shape}), which the {size:,}-byte file cannot "
                                       "hold: it is truncated or corrupt")
    elif offset + declared > size:
        raise ImageReadError(path, f"its header declares {declared:,} bytes of voxels "
                                   f"({img.shape}) but the file holds {size - offset:,}: "
                                   "it is truncated or corrupt")


def _from_display(data: np.ndarray, to_display: np.ndarray) -> np.ndarray:
    """Undo the reversal and reorientation applied by :func:`read_nifti`."""
    data = data.transpose(tuple(range(data.ndim - 1, -1, -1)))
    # to_display[i] = (j, flip): source axis i became display axis j, flipped if -1.
    inverse = np.empty_like(to_display)
    for src_axis, (dst_axis, flip) in enumerate(to_display):
        inverse[int(dst_axis)] = (src_axis, flip)
    return np.ascontiguousarray(ornt.apply_orientation(data, inverse))


def _affine_from_scale(ndim: int, scale, translate) -> np.ndarray:
    """RAS affine for an LPS-display array with the given (…, z, y, x) scale/translate."""
    spacing = np.ones(3) if scale is None else np.asarray(scale, float)[-3:][::-1]
    origin = np.zeros(3) if translate is None else np.asarray(translate, float)[-3:][::-1]
    affine = np.eye(4)
    affine[:3, :3] = _LPS_FROM_RAS @ np.diag(spacing)
    affine[:3, 3] = _LPS_FROM_RAS @ origin
    return affine


def _float_labels_to_int(data: np.ndarray, path: Path) -> np.ndarray:
    """Label maps stored as floats (some exporters do) become integers when exact."""
    rounded = np.rint(data)
    if not np.array_equal(rounded, data) or rounded.min() < 0:
        raise ImageReadError(path, "label map has non-integer or negative values")
    return rounded.astype(smallest_label_dtype(rounded.astype(np.int64), path, _NIFTI_LABEL_DTYPES))
