"""Small image helpers shared by the core tools."""

from __future__ import annotations

import numpy as np

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Grey values of an RGB(A) array ``(..., 3|4)`` as float32 ``(...)``; alpha is ignored."""
    return rgb[..., :3].astype(np.float32) @ _LUMA
