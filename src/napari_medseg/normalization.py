"""Intensity normalisation of network inputs, shared by inference and training."""

from __future__ import annotations

import numpy as np

__all__ = ["apply_ranges", "intensity_ranges", "normalize"]

_SUBSAMPLE = 4_000_000  # values per channel that the ranges are computed from, at most


def intensity_ranges(x: np.ndarray, percentiles: tuple[float, float],
                     normalization: str = "percentiles") -> np.ndarray:
    """The values that normalisation maps to 0 and 1, per channel of ``x``.

    Parameters
    ----------
    x : ndarray, shape (C, ...)
        Any real dtype; non-finite values are left out.
    percentiles : (float, float)
        For "percentiles": the percentiles that map to 0 and 1.
    normalization : {"percentiles", "mean-std"}
        "mean-std" maps the mean to 0 and the mean + one standard deviation to 1.

    Returns
    -------
    ndarray of float64, shape (C, 2)
        Computed from a subsample of at most 4 million values per channel;
        (0, 0) for a channel without finite values.

    Examples
    --------
    >>> intensity_ranges(np.arange(101.0)[None], (1.0, 99.0))
    array([[ 1., 99.]])
    """
    ranges = np.zeros((x.shape[0], 2))
    for c in range(x.shape[0]):
        flat = x[c].reshape(-1)
        if flat.size > _SUBSAMPLE:
            flat = flat[:: flat.size // _SUBSAMPLE]
        if flat.dtype.kind == "b":  # np.percentile cannot interpolate booleans
            flat = flat.astype(np.uint8)
        finite = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
        if not finite.size:
            continue
        if normalization == "mean-std":
            mean = finite.mean(dtype=np.float64)
            ranges[c] = mean, mean + finite.std(dtype=np.float64)
        else:
            ranges[c] = np.percentile(finite, percentiles)
    return ranges


def apply_ranges(x: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """``x`` (C, ...) as float32 with each channel's range mapped to [0, 1].

    NaN becomes 0, +inf 1 and -inf 0; a channel whose range is empty is only shifted.
    """
    out = np.empty(x.shape, np.float32)
    for c, (lo, hi) in enumerate(ranges):
        scale = hi - lo if hi > lo else 1.0
        out[c] = x[c]
        out[c] -= lo
        out[c] /= scale
    return np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)


def normalize(x: np.ndarray, percentiles: tuple[float, float],
              normalization: str = "percentiles") -> np.ndarray:
    """:func:`apply_ranges` of :func:`intensity_ranges`: each channel of ``x`` (C, ...)
    normalised, as float32.

    Examples
    --------
    >>> normalize(np.array([[0.0, 5.0, 10.0]]), (0.0, 100.0))
    array([[0. , 0.5, 1. ]], dtype=float32)
    """
    return apply_ranges(x, intensity_ranges(x, percentiles, normalization))
