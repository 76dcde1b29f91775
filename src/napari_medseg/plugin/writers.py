"""npe2 writers: Labels layers to NIfTI and (OME-)TIFF.

napari calls these after the user picked the file in its save dialog (which
asks before replacing a file), so they overwrite; the headless
:func:`napari_medseg.write_labels` refuses to unless asked. A saved layer's crash journal
(napari_medseg.plugin.recovery_watch) is removed.
"""

from __future__ import annotations

from typing import Any

from napari_medseg.io import write_nifti, write_tiff
from napari_medseg.plugin.recovery_watch import forget_saved

__all__ = ["write_labels_nifti", "write_labels_tiff"]


def write_labels_nifti(path: str, data: Any, meta: dict) -> list[str]:
    """Write a Labels layer to ``.nii``/``.nii.gz`` with its source image's affine."""
    written = write_nifti(path, data, scale=meta.get("scale"), translate=meta.get("translate"),
                          metadata=meta.get("metadata"), overwrite=True)
    forget_saved(meta.get("name"))
    return [str(written)]


def write_labels_tiff(path: str, data: Any, meta: dict) -> list[str]:
    """Write a Labels layer to ``.tif``/``.ome.tif`` with its scale as physical pixel sizes."""
    written = write_tiff(path, data, scale=meta.get("scale"), metadata=meta.get("metadata"),
                         overwrite=True)
    forget_saved(meta.get("name"))
    return [str(written)]
