"""napari-medseg: interactive segmentation of microscopy and medical images.

The top-level names are the headless (Jupyter) API: they work on numpy arrays
and need neither Qt nor a napari viewer.
"""

from napari_medseg.io import read_image, write_labels
from napari_medseg.label_edit import MaskEdit, commit_mask, next_free_label, plan_mask_edit
from napari_medseg.livewire import LiveWire, livewire_path, path_to_mask
from napari_medseg.slice_interpolation import (
    InterpolationReport,
    interpolate_labels,
    interpolate_labels_with_report,
)
from napari_medseg.synthetic import ct_volume, nuclei_2d, nuclei_3d, object_from_outline

__version__ = "0.1.0"

__all__ = [
    "InterpolationReport",
    "LiveWire",
    "MaskEdit",
    "__version__",
    "commit_mask",
    "ct_volume",
    "interpolate_labels",
    "interpolate_labels_with_report",
    "livewire_path",
    "next_free_label",
    "nuclei_2d",
    "nuclei_3d",
    "object_from_outline",
    "path_to_mask",
    "plan_mask_edit",
    "read_image",
    "write_labels",
]
