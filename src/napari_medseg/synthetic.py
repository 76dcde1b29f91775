"""Deterministic synthetic images with ground-truth labels.

They stand in for real data in the sample menu and exercise the tools with what
real data has: blur, shot and read noise, uneven background, touching objects
of varying brightness and texture, anisotropic voxels and negative CT values.
Every generator takes a ``seed`` and returns the same arrays for the same seed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["ct_volume", "nuclei_2d", "nuclei_3d", "object_from_outline"]


def nuclei_2d(
    shape: tuple[int, int] = (384, 384), n_nuclei: int = 60, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Fluorescence-like 2D image of nuclei with their instance labels.

    Parameters
    ----------
    shape : (int, int)
        Image size ``(Y, X)``.
    n_nuclei : int
        Number of nuclei placed (some touch or overlap; overlaps are resolved
        in favour of the nucleus placed later, as one cell lying on another).
    seed : int
        Random seed.

    Returns
    -------
    image : ndarray of uint16, shape (Y, X)
        12-bit-like camera image.
    labels : ndarray of uint16, shape (Y, X)
        Instance labels, 0 = background, ids 1..n.

    Examples
    --------
    >>> image, labels = nuclei_2d()
    >>> image.shape, image.dtype, int(labels.max())
    ((384, 384), dtype('uint16'), 60)
    """
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint16)
    brightness = np.zeros(shape, np.float32)
    yy, xx = np.indices(shape, dtype=np.float32)
    for i in range(1, n_nuclei + 1):
        cy, cx = rng.uniform(10, shape[0] - 10), rng.uniform(10, shape[1] - 10)
        a, b = rng.uniform(7, 15), rng.uniform(6, 12)
        theta = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(theta) + dy * np.sin(theta)) / a
        v = (-dx * np.sin(theta) + dy * np.cos(theta)) / b
        # Irregular outline: radius modulated by a few low harmonics.
        phi = np.arctan2(v, u)
        wobble = 1 + sum(rng.uniform(-0.06, 0.06) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
                         for k in (2, 3, 5))
        inside = u**2 + v**2 <= wobble**2
        labels[inside] = i
        brightness[inside] = rng.uniform(0.35, 1.0)
    texture = ndi.gaussian_filter(rng.normal(size=shape).astype(np.float32), 1.5)
    signal = brightness * (1 + 0.8 * texture)
    # Nuclei are brighter at the centre and dim towards a soft edge.
    depth = ndi.distance_transform_edt(labels > 0)
    signal *= np.clip(depth / 4.0, 0.25, 1.0)
    signal = ndi.gaussian_filter(signal, 1.2)
    background = 0.06 + 0.05 * (xx / shape[1]) + 0.03 * np.sin(yy / shape[0] * np.pi)
    photons = rng.poisson((signal + background) * 900).astype(np.float32)
    image = photons + rng.normal(100, 6, shape)  # camera offset and read noise
    return np.clip(image, 0, 4095).astype(np.uint16), labels


def nuclei_3d(
    shape: tuple[int, int, int] = (32, 160, 160), n_nuclei: int = 30, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Anisotropic 3D fluorescence stack of nuclei with instance labels.

    Parameters
    ----------
    shape : (int, int, int)
        Stack size ``(Z, Y, X)``.
    n_nuclei : int
        Number of ellipsoidal nuclei.
    seed : int
        Random seed.

    Returns
    -------
    image : ndarray of uint16, shape (Z, Y, X)
    labels : ndarray of uint16, shape (Z, Y, X)
    scale : (float, float, float)
        Voxel size in µm, ``(1.0, 0.5, 0.5)``: z steps are twice the pixel size.

    Examples
    --------
    >>> image, labels, scale = nuclei_3d()
    >>> image.shape, scale
    ((32, 160, 160), (1.0, 0.5, 0.5))
    """
    rng = np.random.default_rng(seed)
    scale = (1.0, 0.5, 0.5)
    labels = np.zeros(shape, np.uint16)
    brightness = np.zeros(shape, np.float32)
    zz, yy, xx = np.indices(shape, dtype=np.float32)
    for i in range(1, n_nuclei + 1):
        centre = [rng.uniform(4, shape[0] - 4), rng.uniform(12, shape[1] - 12),
                  rng.uniform(12, shape[2] - 12)]
        radii_um = rng.uniform(3.0, 5.5, size=3)
        radii = radii_um / np.asarray(scale)  # in voxels
        theta = rng.uniform(0, np.pi)
        dy, dx = yy - centre[1], xx - centre[2]
        u = (dx * np.cos(theta) + dy * np.sin(theta)) / radii[2]
        v = (-dx * np.sin(theta) + dy * np.cos(theta)) / radii[1]
        w = (zz - centre[0]) / radii[0]
        inside = u**2 + v**2 + w**2 <= 1
        labels[inside] = i
        brightness[inside] = rng.uniform(0.4, 1.0)
    texture = ndi.gaussian_filter(rng.normal(size=shape).astype(np.float32), 1.5)
    signal = brightness * (1 + 0.6 * texture)
    # Axial blur is wider than lateral, as in a widefield/confocal PSF.
    signal = ndi.gaussian_filter(signal, (1.0, 1.3, 1.3))
    photons = rng.poisson((signal + 0.08) * 600).astype(np.float32)
    image = photons + rng.normal(100, 5, shape)
    return np.clip(image, 0, 65535).astype(np.uint16), labels, scale


CT_ORGANS = ("body", "lung_right", "lung_left", "liver", "kidney_right", "kidney_left", "spine")


def ct_volume(
    shape: tuple[int, int, int] = (48, 160, 160), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Abdomen/chest CT-like volume in Hounsfield units with organ labels.

    The volume is in radiological display layout ``(z, y, x)``: z superior,
    y posterior, x towards the patient's left.

    Parameters
    ----------
    shape : (int, int, int)
        Volume size ``(Z, Y, X)``.
    seed : int
        Random seed.

    Returns
    -------
    image : ndarray of int16, shape (Z, Y, X)
        HU values: air -1000, lung about -850, fat -100, soft tissue 30-60, bone 700.
    labels : ndarray of uint8, shape (Z, Y, X)
        Organ ids; names in :data:`CT_ORGANS` (id = index + 1; body is 1).
    scale : (float, float, float)
        Voxel size in mm, ``(2.5, 1.0, 1.0)``.

    Examples
    --------
    >>> hu, organs, spacing = ct_volume()
    >>> hu.dtype, int(hu.min()), int(organs.max()), spacing
    (dtype('int16'), -1024, 7, (2.5, 1.0, 1.0))
    """
    rng = np.random.default_rng(seed)
    scale = (2.5, 1.0, 1.0)
    nz, ny, nx = shape
    z, y, x = np.indices(shape, dtype=np.float32)
    zc, yc, xc = z / nz, (y - ny / 2) / (ny / 2), (x - nx / 2) / (nx / 2)  # normalised

    def ellipsoid(c, r):
        return (((zc - c[0]) / r[0]) ** 2 + ((yc - c[1]) / r[1]) ** 2
                + ((xc - c[2]) / r[2]) ** 2) <= 1

    body = (yc / 0.62) ** 2 + (xc / 0.88) ** 2 <= 1
    organs = {
        "lung_right": ellipsoid((0.95, -0.05, -0.45), (0.45, 0.42, 0.3)),
        "lung_left": ellipsoid((0.95, -0.05, 0.45), (0.45, 0.42, 0.28)),
        "liver": ellipsoid((0.35, -0.02, -0.38), (0.3, 0.4, 0.36)),
        "kidney_right": ellipsoid((0.2, 0.3, -0.3), (0.16, 0.14, 0.1)),
        "kidney_left": ellipsoid((0.22, 0.3, 0.3), (0.16, 0.14, 0.1)),
        "spine": ((yc - 0.4) / 0.1) ** 2 + (xc / 0.09) ** 2 <= 1,
    }
    labels = np.zeros(shape, np.uint8)
    labels[body] = 1
    hu = np.full(shape, -1000.0, np.float32)
    hu[body] = -90.0  # subcutaneous fat
    inner = (yc / 0.55) ** 2 + (xc / 0.8) ** 2 <= 1
    hu[inner] = 35.0  # muscle / soft tissue
    values = {"lung_right": -850, "lung_left": -850, "liver": 60, "kidney_right": 30,
              "kidney_left": 30, "spine": 700}
    for name, region in organs.items():
        region &= body
        labels[region] = CT_ORGANS.index(name) + 1
        hu[region] = values[name]
    # Vessels in the lungs and the liver give texture that thresholds cannot split cleanly.
    vessels = ndi.gaussian_filter(rng.normal(size=shape).astype(np.float32), (1, 2, 2)) > 0.12
    lungs = np.isin(labels, [2, 3])
    hu[lungs & vessels] = -400
    hu = ndi.gaussian_filter(hu, (0.7, 1.0, 1.0))  # scanner resolution
    hu += rng.normal(0, 12, shape)  # quantum noise
    return np.clip(hu, -1024, 3071).astype(np.int16), labels, scale


def object_from_outline(
    mask: np.ndarray,
    n_slices: int,
    drift: tuple[float, float] = (0.0, 0.0),
    rotation: float = 0.0,
    min_scale: float = 0.35,
) -> np.ndarray:
    """Stack a 2D outline into a 3D object, as a nucleus or organ looks through z.

    The outline is scaled by an ellipsoid profile (``min_scale`` at the ends, 1 in
    the middle), drifts linearly by ``drift`` pixels from first to last slice and
    turns by ``rotation`` radians, all about its centroid. Real 2D annotations
    stacked this way give 3D test objects with real outlines.

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
        The outline at the widest slice.
    n_slices : int
        Number of slices (>= 1).
    drift : (float, float)
        Total ``(dy, dx)`` shift over the stack.
    rotation : float
        Total in-plane rotation over the stack (radians).
    min_scale : float
        Scale of the first and last slice relative to the middle one.

    Returns
    -------
    ndarray of bool, shape (n_slices, Y, X)

    Examples
    --------
    >>> outline = np.pad(np.ones((5, 5), bool), 2)
    >>> object_from_outline(outline, 7).shape
    (7, 9, 9)
    """
    mask = np.asarray(mask, bool)
    centre = np.array(np.nonzero(mask), float).mean(axis=1)
    out = np.zeros((n_slices, *mask.shape), bool)
    for k in range(n_slices):
        u = 0.0 if n_slices == 1 else 2 * k / (n_slices - 1) - 1  # -1 .. 1
        scale = min_scale + (1 - min_scale) * np.sqrt(max(1 - u * u, 0.0))
        angle = rotation * (u + 1) / 2
        shift = np.asarray(drift, float) * (u + 1) / 2
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        matrix = rot / scale  # output -> input coordinates
        offset = centre - matrix @ (centre + shift)
        out[k] = ndi.affine_transform(mask.astype(np.float32), matrix, offset, order=1) > 0.5
    return out
