"""napari-medseg: interactive segmentation of microscopy and medical images.

The top-level names are the headless (Jupyter) API: they work on numpy arrays
and need neither Qt nor a napari viewer.
"""

from napari_medseg.io import read_image, write_labels
from napari_medseg.label_edit import MaskEdit, commit_mask, next_free_label, plan_mask_edit
from napari_medseg.synthetic import ct_volume, nuclei_2d, nuclei_3d

__version__ = "0.1.0"

__all__ = [
    "MaskEdit",
    "__version__",
    "commit_mask",
    "ct_volume",
    "next_free_label",
    "nuclei_2d",
    "nuclei_3d",
    "plan_mask_edit",
    "read_image",
    "write_labels",
]
