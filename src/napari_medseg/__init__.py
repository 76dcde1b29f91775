"""napari-medseg: interactive segmentation of microscopy and medical images.

The top-level names are the headless (Jupyter) API: they work on numpy arrays
and need neither Qt nor a napari viewer.
"""

from napari_medseg.blockwise import segment_blockwise
from napari_medseg.box_segmentation import BoxSession, propagate_mask, segment_box
from napari_medseg.io import read_image, write_labels
from napari_medseg.label_edit import MaskEdit, commit_mask, next_free_label, plan_mask_edit
from napari_medseg.livewire import LiveWire, livewire_path, path_to_mask
from napari_medseg.point_segmentation import segment_point
from napari_medseg.proofreading import (
    LabelChange,
    apply_change,
    delete_object,
    merge_objects,
    split_object,
)
from napari_medseg.slice_interpolation import (
    InterpolationReport,
    interpolate_labels,
    interpolate_labels_with_report,
)
from napari_medseg.synthetic import ct_volume, nuclei_2d, nuclei_3d, object_from_outline

__version__ = "0.1.0"

__all__ = [
    "BoxSession",
    "InterpolationReport",
    "LabelChange",
    "LiveWire",
    "MaskEdit",
    "__version__",
    "apply_change",
    "available_models",
    "commit_mask",
    "ct_volume",
    "delete_object",
    "interpolate_labels",
    "interpolate_labels_with_report",
    "livewire_path",
    "load_model",
    "merge_objects",
    "next_free_label",
    "nuclei_2d",
    "nuclei_3d",
    "object_from_outline",
    "path_to_mask",
    "plan_mask_edit",
    "propagate_mask",
    "read_image",
    "save_model",
    "segment_blockwise",
    "segment_box",
    "segment_point",
    "split_object",
    "train_model",
    "write_labels",
]

# these import torch, which is slow
_LAZY = {"available_models": "model_files", "load_model": "model_runner",
         "save_model": "model_files", "train_model": "training"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"napari_medseg.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'napari_medseg' has no attribute {name!r}")
