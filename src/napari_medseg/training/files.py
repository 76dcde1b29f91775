"""Reading training data: folders of image/label pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_training_pairs"]

_IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".nii", ".nii.gz")


def read_training_pairs(folder: str | Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Image and label arrays from a folder of pairs.

    Two layouts: ``NAME_image.EXT`` next to ``NAME_labels.EXT`` (EXT: tif, png,
    nii...), or ``images/NAME.EXT`` with ``labels/NAME.EXT``.

    Returns
    -------
    (images, labels) : lists of ndarray, in the sorted order of the names
        Images as stored (colour stays colour).

    Raises
    ------
    ValueError
        When the folder holds no pairs, or a label file holds no integers.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder.")
    files = {_stem(p): p for p in sorted(folder.iterdir())
             if p.name.lower().endswith(_IMAGE_SUFFIXES)}
    found = [(files[stem.removesuffix("_labels") + "_image"], path)
             for stem, path in sorted(files.items())
             if stem.endswith("_labels") and stem.removesuffix("_labels") + "_image" in files]
    if not found and (folder / "images").is_dir() and (folder / "labels").is_dir():
        label_files = {_stem(p): p for p in (folder / "labels").iterdir()}
        found = [(p, label_files[_stem(p)]) for p in sorted((folder / "images").iterdir())
                 if _stem(p) in label_files]
    if not found:
        raise ValueError(f"no image/label pairs in {str(folder)!r}: expected NAME_image.tif + "
                         "NAME_labels.tif files, or images/ and labels/ folders with the "
                         "same file names.")
    images = [_read_array(image) for image, _ in found]
    labels = [_read_array(lab) for _, lab in found]
    for path, lab in zip((p for _, p in found), labels, strict=True):
        if lab.dtype.kind not in "iub":
            raise ValueError(f"{path.name} holds {lab.dtype} values, not integer labels.")
    return images, labels


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".ome.tif", ".ome.tiff"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _read_array(path: Path) -> np.ndarray:
    from napari_medseg.io import is_nifti_path, is_tiff_path, read_image

    if is_nifti_path(path) or is_tiff_path(path):
        return np.asarray(read_image(path)[0].data)
    from skimage.io import imread

    return imread(path)
