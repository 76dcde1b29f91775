"""Instances from a network's interior and boundary maps, and linking 2D instances in 3D."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import relabel_sequential, watershed

from napari_medseg._image import distance_to_edge
from napari_medseg.evaluation import matches

__all__ = ["instances_from_boundary", "link_slices"]


def instances_from_boundary(interior: np.ndarray, boundary: np.ndarray,
                            interior_threshold: float = 0.5, foreground_threshold: float = 0.5,
                            split_depth: float = 1.0, min_size: int = 8,
                            sampling: Sequence[float] | None = None) -> np.ndarray:
    """Instances from interior and boundary probability maps (2D or 3D).

    The interior (``interior > interior_threshold``) is split where its distance
    map has separate peaks: one seed per regional maximum of the (lightly
    smoothed) distance to the interior's edge that stands at least
    ``split_depth`` above its surroundings. Seeds grow by watershed over the
    foreground (``interior + boundary > foreground_threshold``). Touching nuclei
    whose interiors the network leaves joined by a narrow neck are split there,
    which seeding from connected interior regions alone cannot do.

    Parameters
    ----------
    interior, boundary : ndarray of float, same shape
        Probabilities in [0, 1].
    interior_threshold, foreground_threshold : float
    split_depth : float
        Minimum depth, in pixels of distance, of the dip between two seeds; lower
        splits more. ``inf`` keeps one seed per connected interior region.
    min_size : int
        Objects smaller than this (pixels) are dropped.
    sampling : sequence of float, optional
        Pixel spacing per axis for the distance map (anisotropic stacks).

    Returns
    -------
    ndarray of int32, the maps' shape
        Objects numbered 1..N.

    Examples
    --------
    >>> interior = np.zeros((20, 40))
    >>> interior[5:15, 5:15] = interior[5:15, 25:35] = 1
    >>> labels = instances_from_boundary(interior, np.zeros_like(interior))
    >>> int(labels.max())
    2
    """
    if interior.shape != boundary.shape:
        raise ValueError(f"interior {interior.shape} and boundary {boundary.shape} differ.")
    if not split_depth > 0:
        raise ValueError(f"split_depth must be > 0, got {split_depth}.")
    core = interior > interior_threshold
    foreground = core | ((interior + boundary) > foreground_threshold)
    distance = ndi.gaussian_filter(distance_to_edge(core, sampling), 1.0)
    if np.isfinite(split_depth):
        seeds, _ = ndi.label(_h_maxima_by_region(distance, split_depth) & core)
    else:
        seeds, _ = ndi.label(core)
    labels = watershed(-distance, seeds, mask=foreground)
    sizes = np.bincount(labels.ravel())
    labels[sizes[labels] < min_size] = 0
    return relabel_sequential(labels)[0].astype(np.int32, copy=False)


def _h_maxima_by_region(image: np.ndarray, h: float, floor: float = 0.02) -> np.ndarray:
    """``h_maxima(image, h)`` where ``image > floor``, one connected region of it at a time.

    skimage sorts every pixel it is given, so the cost is that of the regions' bounding
    boxes. The smoothed distance map's tails (0 < value <= ``floor``, a few pixels around
    each object) joined a packed 64 x 512 x 512 stack into regions whose boxes held 22 M
    voxels (21 s); above 0.02 the boxes hold 11 M (8 s), with the same seeds. The same,
    exactly, wherever a maximum stands at ``floor + h`` or more: a path that leaves the
    regions falls to ``floor`` or below, so it cannot raise the reconstruction at such a
    pixel; only objects less than about ``floor + h`` deep can differ. And the regions
    meet only below ``floor``, which carries no maximum between them.
    """
    # regions as skimage's paths run: through corners too (its default footprint)
    regions, _ = ndi.label(image > floor, np.ones((3,) * image.ndim, bool))
    out = np.zeros(image.shape, bool)
    for k, where in enumerate(ndi.find_objects(regions), 1):
        where = tuple(slice(max(w.start - 1, 0), w.stop + 1) for w in where)
        own = regions[where] == k
        out[where] |= h_maxima(np.where(own, image[where], 0), h).astype(bool) & own
    return out


def link_slices(slices: Sequence[np.ndarray], min_iou: float = 0.3) -> np.ndarray:
    """Join per-slice instance labels into 3D objects by overlap with the previous slice.

    Each object of a slice takes the id of the object of the previous slice it
    overlaps best (IoU >= ``min_iou``, one-to-one, best pairs first); the others
    get new ids.

    Parameters
    ----------
    slices : sequence of ndarray of int, each (Y, X)

    Returns
    -------
    ndarray of int32, shape (Z, Y, X)

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 2]])
    >>> link_slices([a, a, 3 * a])[:, 0]
    array([[1, 1, 0, 2],
           [1, 1, 0, 2],
           [1, 1, 0, 2]], dtype=int32)
    """
    out = np.zeros((len(slices), *slices[0].shape), np.int32)
    next_id = 1
    previous = None
    for z, current in enumerate(slices):
        current = np.asarray(current)
        mapping = (matches(current, previous, min_iou, inclusive=True)
                   if previous is not None else {})
        ids = np.unique(current)
        ids = ids[ids > 0]
        lut = np.zeros(int(current.max(initial=0)) + 1, np.int32)
        for label in ids.tolist():
            if label in mapping:
                lut[label] = mapping[label]
            else:
                lut[label] = next_id
                next_id += 1
        out[z] = lut[current]
        previous = out[z]
    return out
