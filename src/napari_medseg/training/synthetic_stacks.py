"""Synthetic 3D nuclei stacks with known labels, made from real 2D annotations.

Real annotated 3D nuclei are scarce; annotated 2D nuclei are not. Each 2D nucleus (its
outline and its texture) becomes a body of revolution about its own plane: the slice
``z`` above the middle is the part of the outline deeper than ``R (1 - sqrt(1 - (z/h)^2))``
from its edge (``R`` its largest depth, ``h`` its half-height), so every cross-section is
a real outline shrunk as a sphere's would be. Bodies are packed to touching density on an
isotropic grid, then imaged as a widefield or confocal microscope does: uneven
brightness, an anisotropic Gaussian point spread (the axial blur that spreads light into
the neighbouring slices), slices every 1-4 voxels, shot and read noise. The labels are
sampled at the same slices: a network trained on their planes learns where a nucleus
ends along z under that blur.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

__all__ = ["synthetic_stack"]

_MIN_AREA = 30  # px: smaller 2D annotations are fragments, not nuclei


def synthetic_stack(pairs: Sequence[tuple[np.ndarray, np.ndarray]],
                    shape: tuple[int, int, int] = (64, 128, 128), *,
                    z_step: float | None = None, density: float | None = None,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """A fluorescence stack of packed nuclei made from real 2D ones, with its labels.

    Parameters
    ----------
    pairs : sequence of (ndarray, ndarray)
        Grey 2D images ``(Y, X)`` and their instance labels: the nuclei's outlines and
        textures (nuclei touching an image edge are left out).
    shape : (int, int, int)
        The isotropic volume ``(Z, Y, X)`` before slicing, in the 2D images' pixels.
    z_step : float, optional
        Slice spacing in pixels (default: drawn in 1-4).
    density : float, optional
        Share of the volume aimed at for nuclei (default: drawn in 0.15-0.4; packing
        stops earlier when no more fit).
    seed : int

    Returns
    -------
    image : ndarray of float32, shape (Z', Y, X)
        ``Z' = round(Z / z_step)`` slices, about 0-1.
    labels : ndarray of int32, shape (Z', Y, X)
    spacing : (float, float, float)
        ``(z_step, 1, 1)``.

    Raises
    ------
    ValueError
        If ``pairs`` hold no nucleus of at least 30 px away from the image edges, or a
        setting is out of range.

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, labels, spacing = synthetic_stack([nuclei_2d()], (32, 64, 64), z_step=2)
    >>> image.shape, spacing, int(labels.max()) > 3
    ((16, 64, 64), (2.0, 1.0, 1.0), True)
    """
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"shape must be 3 sizes of at least 8, got {shape}.")
    rng = np.random.default_rng(seed)
    z_step = float(rng.uniform(1, 4) if z_step is None else z_step)
    density = float(rng.uniform(0.15, 0.4) if density is None else density)
    if not 1 <= z_step <= shape[0] / 2:
        raise ValueError(f"z_step must be in [1, {shape[0] / 2}] (half the depth), got "
                         f"{z_step}.")
    if not 0 < density < 1:
        raise ValueError(f"density must be in (0, 1), got {density}.")
    nuclei = _nuclei(pairs)
    if not nuclei:
        raise ValueError(f"no nucleus of at least {_MIN_AREA} px away from the image edges "
                         "in pairs.")
    labels, signal = _packed(nuclei, shape, density, rng)
    return (*_imaged(signal, labels, z_step, rng), (z_step, 1.0, 1.0))


def _nuclei(pairs) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mask, texture) crops of the whole nuclei in ``pairs``; textures scaled so the
    image's bright nuclei are about 1."""
    out = []
    for image, labels in pairs:
        image = np.asarray(image, np.float32)
        labels = np.asarray(labels)
        if image.shape != labels.shape or image.ndim != 2:
            raise ValueError(f"pairs must be grey 2D images and labels of one shape, got "
                             f"{image.shape} and {labels.shape}.")
        low, high = np.percentile(image, (1, 99.5))
        image = (image - low) / max(high - low, 1e-6)
        for i, where in enumerate(ndi.find_objects(labels), start=1):
            if where is None or any(s.start == 0 or s.stop == n
                                    for s, n in zip(where, labels.shape, strict=True)):
                continue
            mask = labels[where] == i
            if mask.sum() >= _MIN_AREA:
                out.append((mask, np.clip(image[where], 0, None) * mask))
    return out


def _body(mask: np.ndarray, texture: np.ndarray, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    """A nucleus as a 3D body (mask and signal, ``(Z, Y, X)``) from its 2D outline."""
    turn = int(rng.integers(4))
    mask, texture = np.rot90(mask, turn), np.rot90(texture, turn)
    depth = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    radius = depth.max()
    half = max(1.0, np.sqrt(mask.sum() / np.pi) * rng.uniform(0.7, 1.3))
    z = np.arange(-int(half), int(half) + 1, dtype=np.float32)[:, None, None]
    inside = depth[None] > radius * (1 - np.sqrt(np.clip(1 - (z / half) ** 2, 0, 1)))
    inside[len(z) // 2] = mask  # the middle slice is the annotation itself
    # chromatin varies through z: the 2D texture, modulated by smooth 3D noise
    noise = ndi.gaussian_filter(rng.normal(size=inside.shape), 1.5)
    modulation = 1 + 0.2 * noise / max(float(noise.std()), 1e-6)
    return inside, np.clip(texture[None] * modulation, 0, None) * inside


def _packed(nuclei, shape, density: float, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """Bodies placed at random until ``density`` of the volume is filled (or 50 tries in a
    row fail); a body may press into its neighbours by 10% of its volume, giving only its
    free voxels: the touching, squashed nuclei of a tissue."""
    labels = np.zeros(shape, np.int32)
    signal = np.zeros(shape, np.float32)
    filled, failures, target = 0, 0, density * np.prod(shape)
    while filled < target and failures < 50:
        mask, texture = nuclei[rng.integers(len(nuclei))]
        inside, body = _body(mask, texture, rng)
        corner = [int(rng.integers(-(b // 2), n - b // 2))
                  for b, n in zip(inside.shape, shape, strict=True)]
        dst = tuple(slice(max(c, 0), min(c + b, n))
                    for c, b, n in zip(corner, inside.shape, shape, strict=True))
        src = tuple(slice(d.start - c, d.stop - c) for d, c in zip(dst, corner, strict=True))
        inside, body = inside[src], body[src]
        free = labels[dst] == 0
        new = inside & free
        if inside.sum() == 0 or (inside & ~free).sum() > 0.1 * inside.sum():
            failures += 1
            continue
        failures = 0
        labels[dst][new] = labels.max() + 1
        signal[dst][new] = (body * rng.uniform(0.3, 1.0))[new]
        filled += int(new.sum())
    return labels, signal


def _imaged(signal: np.ndarray, labels: np.ndarray, z_step: float,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``signal`` as a microscope records it at slices ``z_step`` apart, and the labels
    under those slices."""
    field = ndi.gaussian_filter(rng.normal(size=signal.shape).astype(np.float32),
                                np.asarray(signal.shape) / 4)
    field = 1 + 0.4 * field / max(float(np.abs(field).max()), 1e-6)  # 0.6-1.4
    axial, lateral = rng.uniform(1.0, 3.0) * z_step ** 0.5, rng.uniform(0.5, 1.2)
    blurred = ndi.gaussian_filter(signal * field, (axial, lateral, lateral))
    depth = signal.shape[0]
    # slice centres, as planes.to_isotropic places them back; voxel i's centre is i + 0.5
    at = np.minimum((np.arange(max(1, round(depth / z_step))) + 0.5) * z_step, depth - 0.5)
    low = np.clip(np.floor(at - 0.5).astype(int), 0, depth - 1)
    high = np.minimum(low + 1, depth - 1)
    weight = np.clip(at - 0.5 - low, 0, 1)[:, None, None].astype(np.float32)
    sliced = blurred[low] * (1 - weight) + blurred[high] * weight
    photons = rng.uniform(30, 500)
    background = rng.uniform(0.02, 0.15)
    image = rng.poisson((sliced + background) * photons) / photons
    image = image + rng.normal(0, rng.uniform(0.005, 0.03), image.shape)
    return image.astype(np.float32), labels[np.floor(at).astype(int)]
