"""Small image helpers shared by the core tools."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Grey values of an RGB(A) array ``(..., 3|4)`` as float32 ``(...)``; alpha is ignored."""
    return rgb[..., :3].astype(np.float32) @ _LUMA


def resized(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 2D image (or ``(Y, X, C)``) resampled to ``shape`` (Y, X): OpenCV's area
    interpolation where it shrinks (averaging, no aliasing), linear where it grows."""
    import cv2

    method = cv2.INTER_AREA if shape[0] * shape[1] < image.shape[0] * image.shape[1] \
        else cv2.INTER_LINEAR
    return cv2.resize(image, (shape[1], shape[0]), interpolation=method)


def distance_to_edge(mask: np.ndarray, sampling: Sequence[float] | None = None) -> np.ndarray:
    """Euclidean distance of each ``True`` pixel to the nearest ``False`` one, float64.

    2D with square pixels takes OpenCV's exact transform (several times faster than
    scipy's on large and on small masks, equal to 1e-6); 3D masks and spacings take the
    ``edt`` package's (exact, equal to scipy's to 1e-6, about 40x faster on a
    142x512x512 stack: 0.8 s against 37 s); masks without a ``False`` pixel (where
    neither has anything to measure to) and other dimensions take scipy's.
    """
    if mask.all() or mask.ndim not in (2, 3):
        from scipy import ndimage as ndi

        return ndi.distance_transform_edt(mask, sampling=sampling)
    if mask.ndim == 2 and (sampling is None or sampling[0] == sampling[1]):
        import cv2

        distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2,
                                         cv2.DIST_MASK_PRECISE).astype(np.float64)
        return distance * (sampling[0] if sampling is not None else 1.0)
    import edt

    anisotropy = (1.0,) * mask.ndim if sampling is None else tuple(map(float, sampling))
    return edt.edt(np.ascontiguousarray(mask, bool), anisotropy=anisotropy,
                   black_border=False, parallel=1).astype(np.float64)
