"""npe2 sample data: synthetic nuclei and CT volumes (generated, no downloads)."""

from __future__ import annotations

from napari.types import LayerDataTuple

from napari_medseg.synthetic import CT_ORGANS, ct_volume, nuclei_2d, nuclei_3d

__all__ = ["sample_ct", "sample_nuclei_2d", "sample_nuclei_3d"]


def sample_nuclei_2d() -> list[LayerDataTuple]:
    """2D fluorescence nuclei (uint16) and their instance labels."""
    image, labels = nuclei_2d()
    return [
        (image, {"name": "nuclei 2D", "colormap": "gray"}, "image"),
        (labels, {"name": "nuclei 2D ground truth", "opacity": 0.35}, "labels"),
    ]


def sample_nuclei_3d() -> list[LayerDataTuple]:
    """Anisotropic 3D nuclei stack (z step 1 µm, pixels 0.5 µm) and instance labels."""
    image, labels, scale = nuclei_3d()
    common = {"scale": scale, "metadata": {"units": ("µm", "µm", "µm")}}
    return [
        (image, {"name": "nuclei 3D", "colormap": "gray", **common}, "image"),
        (labels, {"name": "nuclei 3D ground truth", "opacity": 0.35, **common},
         "labels"),
    ]


def sample_ct() -> list[LayerDataTuple]:
    """CT-like volume in HU (soft-tissue window -160..240) with organ labels."""
    image, labels, scale = ct_volume()
    common = {"scale": scale, "metadata": {"units": ("mm", "mm", "mm")}}
    organ_names = {"index": list(range(len(CT_ORGANS) + 1)), "organ": ["background", *CT_ORGANS]}
    return [
        (image, {"name": "CT", "colormap": "gray", "contrast_limits": (-160, 240), **common},
         "image"),
        (labels, {"name": "CT organs", "opacity": 0.35, "features": organ_names,
                  **common}, "labels"),
    ]
