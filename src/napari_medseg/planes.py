"""Stacks as three planes: resampling to isotropic voxels and back, for 2D networks in 3D.

A 2D network sees a 3D object only in the plane it is given. Run on the YX, ZX and ZY
planes of the stack resampled to isotropic voxels and averaged, its outputs combine
evidence from all three directions before one 3D watershed, instead of linking hard
per-slice labels; training on the same planes teaches it the views it will see.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

__all__ = ["from_isotropic", "isotropic_zoom", "plane_slices", "to_isotropic"]


def isotropic_zoom(spacing: Sequence[float] | None, ndim: int = 3) -> tuple[float, ...]:
    """Zoom factors per axis that make voxels of ``spacing`` cubes of its finest spacing.

    Examples
    --------
    >>> isotropic_zoom((0.28, 0.127, 0.127))
    (2.204724409448819, 1.0, 1.0)
    """
    if spacing is None:
        return (1.0,) * ndim
    spacing = np.asarray(spacing, float)
    if spacing.shape != (ndim,) or not (np.isfinite(spacing).all() and (spacing > 0).all()):
        raise ValueError(f"spacing must be {ndim} positive finite numbers, got "
                         f"{tuple(spacing.tolist())}.")
    return tuple(float(s) for s in spacing / spacing.min())


def to_isotropic(volume: np.ndarray, zoom: Sequence[float], labels: bool = False
                 ) -> np.ndarray:
    """``volume`` (Z, Y, X), or (C, Z, Y, X) for images, resampled by ``zoom``: linear
    interpolation for images (float32), nearest neighbours for ``labels``."""
    if all(z == 1 for z in zoom):
        return volume
    if labels:
        return volume[np.ix_(*_nearest(volume.shape, zoom))]
    channels = volume if volume.ndim == len(zoom) + 1 else volume[None]
    out = np.stack([ndi.zoom(c.astype(np.float32, copy=False), zoom, order=1, mode="nearest",
                             grid_mode=True) for c in channels])
    return out if volume.ndim == len(zoom) + 1 else out[0]


def from_isotropic(values: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Values on an isotropic grid (from :func:`to_isotropic`) back on the ``shape`` grid,
    by nearest neighbours: the isotropic voxel under each voxel's centre."""
    zoom = [s / n for n, s in zip(values.shape, shape, strict=True)]
    return values[np.ix_(*_nearest(values.shape, zoom))]


def _nearest(shape: Sequence[int], zoom: Sequence[float]) -> list[np.ndarray]:
    """For each axis, the source index under each target voxel's centre."""
    out = []
    for n, z in zip(shape, zoom, strict=True):
        size = max(1, round(n * z))
        out.append(np.minimum(((np.arange(size) + 0.5) / z).astype(int), n - 1))
    return out


def plane_slices(image: np.ndarray, labels: np.ndarray, spacing: Sequence[float] | None,
                 min_side: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    """The annotated 2D slices of a stack along each of its three axes, resampled to
    isotropic voxels: the views of the object a 2D network on its planes sees.

    Parameters
    ----------
    image : ndarray, shape (Z, Y, X) or (C, Z, Y, X)
    labels : ndarray of int, shape (Z, Y, X)
    spacing : sequence of float or None
        Voxel size (z, y, x).
    min_side : int
        Slices narrower than this along either axis are left out.

    Returns
    -------
    list of (image slice, label slice)
        Image slices keep a leading channel axis when ``image`` has one.

    Examples
    --------
    >>> from napari_medseg import nuclei_3d
    >>> image, labels, spacing = nuclei_3d((8, 32, 32), n_nuclei=2)
    >>> pairs = plane_slices(image, labels, spacing)
    >>> {pair[1].shape for pair in pairs} == {(32, 32), (16, 32)}
    True
    """
    zoom = isotropic_zoom(spacing)
    channel = image.ndim == labels.ndim + 1
    image, labels = to_isotropic(image, zoom), to_isotropic(labels, zoom, labels=True)
    out = []
    for axis in range(3):
        for k in range(labels.shape[axis]):
            lab = np.take(labels, k, axis=axis)
            if lab.any() and min(lab.shape) >= min_side:
                out.append((np.ascontiguousarray(np.take(image, k, axis=axis + channel)),
                            np.ascontiguousarray(lab)))
    return out
