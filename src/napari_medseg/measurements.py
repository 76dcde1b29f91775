"""Measuring labelled objects: size, physical volume, extent and intensity (scikit-image)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from skimage.measure import regionprops_table

from napari_medseg.safe_write import check_writable, write_atomically
from napari_medseg.validation import as_label_array, real_image

__all__ = ["measure_labels", "write_table"]


def measure_labels(labels: np.ndarray, image: np.ndarray | None = None,
                   spacing: Sequence[float] | None = None) -> dict[str, np.ndarray]:
    """One row per object: its id, voxel count, physical size, bounding box, centroid and
    (with ``image``) mean intensity.

    Parameters
    ----------
    labels : ndarray of int, 2D or 3D
        0 is background.
    image : ndarray, optional
        Intensities on the same grid (a grey image; colour is averaged over channels).
    spacing : sequence of float, optional
        Physical size of a pixel per axis (a layer's ``scale``: mm for CT, um for
        microscopy); default 1.

    Returns
    -------
    dict of str to ndarray
        Columns ``label``, ``voxels``, ``size`` (area in 2D, volume in 3D, physical
        units), ``bbox_min_k`` / ``bbox_max_k`` per axis k (voxels, half-open),
        ``centroid_k`` (physical), and ``mean_intensity`` with ``image``.

    Examples
    --------
    >>> labels = np.zeros((4, 6, 6), np.uint8)
    >>> labels[1:3, 1:4, 1:4] = 7
    >>> table = measure_labels(labels, spacing=(2.0, 0.5, 0.5))
    >>> int(table["label"][0]), int(table["voxels"][0]), float(table["size"][0])
    (7, 18, 9.0)
    """
    labels = as_label_array(labels, ndims=(2, 3))
    spacing = np.ones(labels.ndim) if spacing is None else np.asarray(spacing, float)
    if spacing.shape != (labels.ndim,) or not (np.isfinite(spacing).all() and
                                               (spacing > 0).all()):
        raise ValueError(f"spacing must be {labels.ndim} positive numbers, got {spacing}.")
    properties = ["label", "area", "bbox", "centroid"]
    intensity = None
    if image is not None:
        intensity = real_image(image)
        if intensity.shape[:labels.ndim] != labels.shape:
            raise ValueError(f"image {intensity.shape} and labels {labels.shape} differ.")
        if intensity.ndim == labels.ndim + 1:  # colour: the mean of the channels
            intensity = intensity.mean(-1)
        properties.append("intensity_mean")
    raw = regionprops_table(labels, intensity_image=intensity, properties=properties)
    table = {"label": raw["label"], "voxels": raw["area"].astype(np.int64),
             "size": raw["area"] * float(np.prod(spacing))}
    for k in range(labels.ndim):
        table[f"bbox_min_{k}"] = raw[f"bbox-{k}"]
        table[f"bbox_max_{k}"] = raw[f"bbox-{k + labels.ndim}"]
    for k in range(labels.ndim):
        table[f"centroid_{k}"] = raw[f"centroid-{k}"] * spacing[k]
    if intensity is not None:
        table["mean_intensity"] = raw["intensity_mean"]
    return table


def write_table(path: str | Path, table: dict[str, np.ndarray], overwrite: bool = False
                ) -> Path:
    """Write a :func:`measure_labels` table as CSV (a header row, one row per object)."""
    path = check_writable(path, overwrite)
    names = list(table)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(names)
            for row in zip(*(table[n] for n in names), strict=True):
                out.writerow([v.item() if hasattr(v, "item") else v for v in row])

    return write_atomically(path, write)
