"""npe2 sample data: small real images shipped with the package (napari_medseg.samples), and
synthetic nuclei and CT volumes (generated)."""

from __future__ import annotations

from napari.types import LayerDataTuple

from napari_medseg.plugin.readers import image_file_to_layer_data
from napari_medseg.samples import read_sample
from napari_medseg.synthetic import CT_ORGANS, ct_volume, nuclei_2d, nuclei_3d

__all__ = ["sample_ct", "sample_dsb2018_nuclei", "sample_gonuclear_3d", "sample_nuclei_2d",
           "sample_nuclei_3d", "sample_totalseg_ct", "shipped_sample"]


def shipped_sample(key: str) -> list[LayerDataTuple]:
    """A shipped real sample: the image, and its annotations hidden beneath nothing (so
    that the image does not look segmented before anything is done)."""
    image, labels = read_sample(key)
    image_layer, labels_layer = (image_file_to_layer_data(f) for f in (image, labels))
    labels_layer[1].update(name=f"{image.name} ground truth", opacity=0.4, visible=False)
    return [image_layer, labels_layer]


def sample_dsb2018_nuclei() -> list[LayerDataTuple]:
    """A real fluorescence image of DSB2018's training split and its 90 nuclei (CC0)."""
    return shipped_sample("dsb2018-nuclei")


def sample_gonuclear_3d() -> list[LayerDataTuple]:
    """GoNuclear crop 1136 (plant nuclei, 0.284 x 0.128 x 0.128 um voxels) and its labels."""
    return shipped_sample("gonuclear-3d")


def sample_totalseg_ct() -> list[LayerDataTuple]:
    """TotalSegmentator's example CT (HU, 3 mm voxels) and its organ labels."""
    return shipped_sample("totalseg-ct")


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
