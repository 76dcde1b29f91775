"""Stacks as three planes: resampling to isotropic voxels and back, for 2D networks in 3D.

A 2D network sees a 3D object only in the plane it is given. Run on the YX, ZX and ZY
planes of the stack resampled to isotropic voxels and averaged, its outputs combine
evidence from all three directions before one 3D watershed, instead of linking hard
per-slice labels; training on the same planes teaches it the views it will see.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["add_interpolated", "add_strided", "from_isotropic", "isotropic_zoom", "plane_slices",
           "source_index", "to_isotropic"]


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
    interpolation for images (float32; scipy's ``zoom(order=1, mode="nearest",
    grid_mode=True)``, one axis at a time), nearest neighbours for ``labels``."""
    if all(z == 1 for z in zoom):
        return volume
    if labels:
        return volume[np.ix_(*_nearest(volume.shape, zoom))]
    channel = volume.ndim == len(zoom) + 1
    x = (volume if channel else volume[None]).astype(np.float32, copy=False)
    for axis, z in enumerate(zoom, 1):
        if z != 1:
            n = x.shape[axis]
            shape = list(x.shape)
            shape[axis] = max(1, round(n * z))
            resampled = np.zeros(shape, np.float32)
            add_interpolated(resampled, x, axis, source_index(n, shape[axis]))
            x = resampled
    return x if channel else x[0]


def source_index(n: int, size: int) -> np.ndarray:
    """The fractional index into ``n`` voxels under each of ``size`` voxel centres that
    span the same extent (edges held).

    Examples
    --------
    >>> source_index(2, 4)
    array([0.  , 0.25, 0.75, 1.  ])
    """
    return np.clip((np.arange(size) + 0.5) * (n / size) - 0.5, 0, n - 1)


def add_interpolated(out: np.ndarray, values: np.ndarray, axis: int, source: np.ndarray,
                     scale: float = 1.0) -> None:
    """``out += scale * values`` linearly interpolated along ``axis`` at ``source``.

    One slab of the second axis at a time: a stack's probabilities are added without
    temporaries of their size (fresh large arrays cost more in page faults than the
    arithmetic on them).

    Parameters
    ----------
    out : ndarray of float32, shape (C, Z, Y, X)
    values : ndarray of float, shape of ``out`` except along ``axis``
    axis : int
        1, 2 or 3.
    source : ndarray of float, shape (out.shape[axis],)
        The fractional index into ``values`` along ``axis`` of each index of ``out``,
        within ``[0, values.shape[axis] - 1]``.

    Examples
    --------
    >>> out = np.zeros((1, 1, 1, 3), np.float32)
    >>> add_interpolated(out, np.array([[[[0.0, 2.0]]]]), 3, np.array([0.0, 0.5, 1.0]))
    >>> out.ravel().tolist()
    [0.0, 1.0, 2.0]
    """
    n = values.shape[axis]
    low = np.minimum(np.floor(source).astype(np.intp), n - 1)
    high = np.minimum(low + 1, n - 1)
    weight = (source - low).astype(np.float32)
    scale = np.float32(scale)
    if axis == 1:
        for j, (lo, hi, w) in enumerate(zip(low, high, weight, strict=True)):
            out[:, j] += values[:, lo] * ((1 - w) * scale)
            if w:
                out[:, j] += values[:, hi] * (w * scale)
        return
    shape = [1] * (out.ndim - 1)
    shape[axis - 1] = -1
    to_low, to_high = ((1 - weight) * scale).reshape(shape), (weight * scale).reshape(shape)
    for z in range(out.shape[1]):
        slab = values[:, z]
        out[:, z] += (np.take(slab, low, axis=axis - 1) * to_low
                      + np.take(slab, high, axis=axis - 1) * to_high)


def add_strided(out: np.ndarray, values: np.ndarray, axis: int, stride: int,
                scale: float = 1.0) -> None:
    """:func:`add_interpolated` for values computed at every ``stride``-th index of ``out``
    along ``axis`` (2 or 3) from 0, held beyond the last: the same sums from strided
    views, without gathering.

    Examples
    --------
    >>> out = np.zeros((1, 1, 1, 4), np.float32)
    >>> add_strided(out, np.array([[[[0.0, 2.0]]]]), 3, 2)
    >>> out.ravel().tolist()
    [0.0, 1.0, 2.0, 2.0]
    """
    k, size = values.shape[axis], out.shape[axis]
    if axis not in (2, 3) or not 0 < (k - 1) * stride < size <= k * stride:
        raise ValueError(f"{k} values every {stride} do not span {size} along axis {axis}.")
    scale, a = np.float32(scale), axis - 1

    def at(where):
        return (slice(None), where) if a == 1 else (slice(None), slice(None), where)

    for z in range(out.shape[1]):
        slab, target = values[:, z], out[:, z]
        target[at(slice(0, None, stride))] += slab * scale
        first, rest = slab[at(slice(0, k - 1))], slab[at(slice(1, k))]
        for r in range(1, stride):
            w = np.float32(r / stride)
            target[at(slice(r, (k - 1) * stride, stride))] += (first * ((1 - w) * scale)
                                                               + rest * (w * scale))
        target[at(slice((k - 1) * stride + 1, None))] += slab[at(slice(k - 1, k))] * scale


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
