"""Per-pixel training targets from label maps."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

__all__ = ["CONTACT", "IGNORE", "target"]

IGNORE = -1  # target value of pixels left out of the loss
CONTACT = 3  # target value of boundary pixels where objects touch (class 2, weighted up)


def target(labels: np.ndarray, task: str, sparse: bool = False,
           background_label: int | None = None) -> np.ndarray:
    """Loss target: a class per pixel, :data:`IGNORE` where not annotated.

    Parameters
    ----------
    labels : ndarray of int
        Object ids (task "instances") or class ids (task "semantic"); 0 is background,
        or *not annotated* with ``sparse``.
    task : {"instances", "semantic"}
    sparse : bool
    background_label : int, optional
        The value that marks checked background.

    Returns
    -------
    ndarray of int64, ``labels``' shape
        For instances: 0 background, 1 interior, 2 boundary (the objects' inner rim),
        :data:`CONTACT` boundary where two objects meet.

    Examples
    --------
    >>> labels = np.zeros((5, 8), int)
    >>> labels[1:4, 1:4], labels[1:4, 4:7] = 1, 2  # two touching objects
    >>> target(labels, "instances")
    array([[0, 0, 0, 3, 3, 0, 0, 0],
           [0, 2, 2, 3, 3, 2, 2, 0],
           [0, 2, 1, 3, 3, 1, 2, 0],
           [0, 2, 2, 3, 3, 2, 2, 0],
           [0, 0, 0, 3, 3, 0, 0, 0]])
    """
    background = labels == background_label if background_label is not None else None
    objects = labels if background is None else np.where(background, 0, labels)
    if task == "instances":
        out = (objects > 0).astype(np.int64)
        out[find_boundaries(objects, mode="inner") & (objects > 0)] = 2
        out[_contacts(objects)] = CONTACT
    else:
        out = objects.astype(np.int64)
    if sparse:
        out[labels == 0] = IGNORE
    return out


def _contacts(objects: np.ndarray) -> np.ndarray:
    """Pixels with two different objects in their 3x3(x3) neighbourhood: where touching
    objects meet, and the background gaps of a pixel or two between them."""
    top = int(objects.max()) + 1
    largest = ndi.maximum_filter(objects, size=3)
    smallest = ndi.minimum_filter(np.where(objects > 0, objects, top), size=3)
    return (smallest < top) & (largest != smallest)
