"""Labels layers that match an image: same shape, scale, translate and source metadata.

napari's own "new labels" button knows nothing of the file an image came from;
a Labels layer made here carries the image's NIfTI/TIFF metadata, so saving it
restores the image's orientation and voxel size.
"""


import napari
import numpy as np
from magicgui import magic_factory
from napari.layers import Image, Labels

__all__ = ["new_labels_for_image", "new_labels_widget"]

# Metadata that tells writers where the image came from (see napari_medseg.io).
_SOURCE_KEYS = ("nifti", "tiff", "units", "axes")
_DTYPES = {"uint8 (≤255 objects)": np.uint8, "uint16": np.uint16, "uint32": np.uint32}


def new_labels_for_image(
    viewer: napari.Viewer, image: Image, dtype: np.dtype | type = np.uint32, name: str | None = None
) -> Labels:
    """Add an empty Labels layer aligned with ``image`` and return it."""
    shape = image.data.shape[:-1] if image.rgb else image.data.shape
    if image.multiscale:
        shape = image.data[0].shape[:-1] if image.rgb else image.data[0].shape
    return viewer.add_labels(
        np.zeros(shape, dtype),
        name=name or f"{image.name} labels",
        scale=image.scale,
        translate=image.translate,
        rotate=image.rotate,
        metadata={k: v for k, v in image.metadata.items() if k in _SOURCE_KEYS},
    )


@magic_factory(
    call_button="Create Labels layer",
    dtype={"choices": list(_DTYPES)},
)
def new_labels_widget(
    viewer: napari.Viewer, image: Image, dtype: str = "uint16"
) -> None:
    """Create an empty Labels layer aligned with the chosen image."""
    if image is None:
        raise ValueError("Open an image first.")
    layer = new_labels_for_image(viewer, image, _DTYPES[dtype])
    viewer.layers.selection.active = layer
