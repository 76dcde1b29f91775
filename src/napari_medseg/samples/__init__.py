"""Small real images with their annotations, shipped with the package (about 1.5 MB).

Each is a real image from a public data set whose licence allows redistribution, from the
portions used for training or demos only (docs/samples.md names each source):

- ``dsb2018-nuclei``: a fluorescence image of the 2018 Data Science Bowl stage-1 training set
  (BBBC038v1, training split, CC0 1.0) with its 90 annotated nuclei;
- ``gonuclear-3d``: GoNuclear crop 1136 (plant tissue nuclei, MIT licence), 100^3 voxels of
  0.284 x 0.128 x 0.128 um, with its 32 annotated nuclei;
- ``totalseg-ct``: TotalSegmentator's small example CT (3 mm voxels, HU; Apache-2.0) with that
  tool's organ labels (its class ids: 1 spleen, 2 right kidney, 3 left kidney, 5 liver, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from napari_medseg.io import ImageFile, read_image

__all__ = ["REAL_SAMPLES", "RealSample", "read_sample"]


@dataclass(frozen=True)
class RealSample:
    """A shipped image and its labels: file names in this folder, where they come from."""

    title: str
    image: str
    labels: str
    source: str
    licence: str


REAL_SAMPLES = {
    "dsb2018-nuclei": RealSample(
        "Nuclei 2D (real fluorescence, DSB2018)", "dsb2018_b76ff33ae9da.png",
        "dsb2018_b76ff33ae9da_labels.tif",
        "2018 Data Science Bowl stage-1 training set (BBBC038v1), image b76ff33ae9da",
        "CC0 1.0"),
    "gonuclear-3d": RealSample(
        "Nuclei 3D (real plant tissue stack, GoNuclear)", "gonuclear_1136.tif",
        "gonuclear_1136_labels.tif", "GoNuclear test data, crop 1136 (Vijayan et al. 2024)",
        "MIT"),
    "totalseg-ct": RealSample(
        "CT with organ labels (real, TotalSegmentator example)", "totalseg_ct.nii.gz",
        "totalseg_ct_organs.nii.gz",
        "TotalSegmentator repository's example CT and its organ predictions",
        "Apache-2.0"),
}


def read_sample(key: str) -> tuple[ImageFile, ImageFile]:
    """The image and labels of the shipped sample ``key`` (of :data:`REAL_SAMPLES`), with
    their voxel size, and their source and licence in the metadata.

    Examples
    --------
    >>> image, labels = read_sample("gonuclear-3d")
    >>> image.data.shape, labels.kind, image.metadata["licence"]
    ((100, 100, 100), 'labels', 'MIT')
    """
    if key not in REAL_SAMPLES:
        raise ValueError(f"unknown sample {key!r}; the shipped ones are {sorted(REAL_SAMPLES)}.")
    sample = REAL_SAMPLES[key]
    files = []
    for name, kind in ((sample.image, "image"), (sample.labels, "labels")):
        with resources.as_file(resources.files(__name__).joinpath(name)) as path:
            [found] = read_image(path)
        found.kind = kind
        found.metadata.update(source=sample.source, licence=sample.licence)
        files.append(found)
    return files[0], files[1]
