"""Checks at the edge of the public API: one home for each, with one message each.

Every public function of the core checks its arguments here, so a bad value is
refused where it enters with a ``TypeError`` or ``ValueError`` that names the
argument and what was expected, and nothing is coerced silently (``1.7`` is not
an id, ``"12"`` is not a list of ids).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from napari_medseg._image import luminance

__all__ = [
    "MIN_EXTENT",
    "as_axis",
    "as_float32",
    "as_gray2d",
    "as_integer",
    "as_integers",
    "as_label_array",
    "as_point",
    "as_shape",
    "holds_colour",
    "is_colour",
    "is_zarr_array",
    "real_image",
    "real_source",
]

_LARGEST = 2.0**50  # values are scaled below this (their squares stay finite in float32)
# pixels along each side below which an array is not an image (a trailing axis of 3 is
# colour only when the other two are at least this long)
MIN_EXTENT = 16


def as_integer(value, name: str, minimum: int | None = None,
               maximum: int | None = None) -> int:
    """``value`` as an int: an integer, or a float of integral value.

    Examples
    --------
    >>> as_integer(3.0, "label")
    3
    >>> as_integer(1.7, "label")
    Traceback (most recent call last):
    ...
    ValueError: label must be a whole number, got 1.7.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    if not (np.isfinite(float(value)) and float(value) == int(value)):
        raise ValueError(f"{name} must be a whole number, got {value!r}.")
    out = int(value)
    if (minimum is not None and out < minimum) or (maximum is not None and out > maximum):
        if maximum is None:
            wanted = {0: "non-negative", 1: "positive"}.get(minimum, f">= {minimum}")
            raise ValueError(f"{name} must be {wanted}, got {out}.")
        low = "" if minimum is None else minimum
        raise ValueError(f"{name} must be in {low}..{maximum}, got {out}.")
    return out


def as_integers(values, name: str, minimum: int | None = None,
                length: int | None = None) -> tuple[int, ...]:
    """A sequence of integers (each as :func:`as_integer`); a string is refused.

    Examples
    --------
    >>> as_integers([1, 2.0], "label_ids")
    (1, 2)
    """
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a sequence of integers, got "
                        f"{type(values).__name__} {values!r}.")
    out = tuple(as_integer(v, f"{name}[{k}]", minimum) for k, v in enumerate(values))
    if length is not None and len(out) != length:
        raise ValueError(f"{name} needs {length} entries, got {len(out)}: {out}.")
    return out


def as_axis(axis, ndim: int) -> int:
    """An axis of an ``ndim``-dimensional array, negative ones counted from the end.

    Examples
    --------
    >>> as_axis(-1, 3)
    2
    """
    axis = as_integer(axis, "axis")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for {ndim}D data.")
    return axis % ndim


def as_shape(shape, name: str = "shape", ndim: int | None = None) -> tuple[int, ...]:
    """A shape: non-negative integers (``ndim`` of them when given)."""
    return as_integers(shape, name, minimum=0, length=ndim)


def as_label_array(labels, name: str = "labels", ndims: Sequence[int] | None = None,
                   nonnegative: bool = True, chunked: bool = False) -> np.ndarray:
    """``labels`` itself, checked: a numpy array of integers, of one of ``ndims``
    dimensions, with no negative ids (a pass over the array: ``nonnegative=False`` skips
    it where only a region is touched). ``chunked=True`` also takes a zarr array, whose
    ids are not scanned (it may not fit in memory)."""
    if chunked and is_zarr_array(labels):
        nonnegative = False
    elif not isinstance(labels, np.ndarray):
        kinds = "a numpy or zarr array" if chunked else "a numpy array"
        raise TypeError(f"{name} must be {kinds}, got {type(labels).__name__}.")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name} must have an integer dtype, got {labels.dtype}.")
    if ndims is not None and labels.ndim not in ndims:
        raise ValueError(f"{name} must be {' or '.join(f'{n}D' for n in ndims)}, got "
                         f"shape {labels.shape}.")
    if labels.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a 0-d array.")
    if nonnegative and labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(f"{name} must not contain negative ids.")
    return labels


def is_zarr_array(array) -> bool:
    """Whether ``array`` is a zarr array (checked without importing zarr when it is not)."""
    return type(array).__module__.startswith("zarr.") and hasattr(array, "chunks")


def is_colour(image: np.ndarray) -> bool:
    """Whether a 3-axis array is a colour image ``(Y, X, 3|4)``: its last axis holds 3 or 4
    samples and the other two make an image (at least :data:`MIN_EXTENT` each); a
    ``(10, 64, 3)`` array is a stack.

    Examples
    --------
    >>> is_colour(np.zeros((64, 64, 3))), is_colour(np.zeros((10, 64, 3)))
    (True, False)
    """
    shape = np.shape(image)
    return len(shape) == 3 and shape[-1] in (3, 4) and min(shape[:2]) >= MIN_EXTENT


def holds_colour(image) -> bool:
    """Whether ``image`` is a colour image (:func:`is_colour`) whose colour channels differ:
    grey stored as RGB(A), as many microscopes and exports write fluorescence, is grey.
    Judged on a subsample of about a million pixels (a lazy image reads only those).

    Examples
    --------
    >>> grey = np.repeat(np.arange(64 * 64).reshape(64, 64, 1) % 251, 3, axis=-1)
    >>> holds_colour(grey), holds_colour(grey * [1, 1, 0])
    (False, True)
    """
    if not is_colour(image):
        return False
    step = max(1, int(np.sqrt(np.prod(np.shape(image)[:2]) / 2**20)))
    sample = np.asarray(image[::step, ::step, :3], np.float64)
    return bool(np.ptp(sample, axis=-1).any())


def real_image(image, name: str = "image") -> np.ndarray:
    """``image`` as an array of real numbers (bool, integers, floats), not copied."""
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be real-valued, got dtype {image.dtype}.")
    return image


def real_source(image, name: str = "image"):
    """Like :func:`real_image`, but a lazy array (dask, zarr) stays lazy, as a dask array:
    for tools that read only a region of an image that may not fit in memory."""
    if not (is_zarr_array(image) or type(image).__module__.startswith("dask.")):
        return real_image(image, name)
    import dask.array as da

    image = da.from_zarr(image) if is_zarr_array(image) else da.asarray(image)
    if image.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be real-valued, got dtype {image.dtype}.")
    return image


def as_float32(image: np.ndarray) -> np.ndarray:
    """A float32 copy; non-finite values become the smallest finite one (0 when there is
    none), and values beyond 2**50 in magnitude (float64 beyond float32's range among
    them) are scaled by a power of two, exactly, rather than overflowing in the cast or
    in squares later (the tools using this are scale-invariant)."""
    image = np.asarray(image)
    if image.dtype.kind in "fiu" and image.size:
        finite = image[np.isfinite(image)] if image.dtype.kind == "f" else image
        peak = float(np.abs(finite.astype(np.float64)).max()) if finite.size else 0.0
        if peak > _LARGEST:
            image = image.astype(np.float64) * 2.0 ** -int(np.ceil(np.log2(peak / _LARGEST)))
    out = image.astype(np.float32)  # a copy: the caller's array is never touched
    finite = np.isfinite(out)
    if not finite.all():
        out[~finite] = out[finite].min() if finite.any() else 0.0
    return out


def as_gray2d(image, name: str = "image", minimum: int = 1) -> np.ndarray:
    """A 2D image as float32 grey values: ``(Y, X)``, or colour ``(Y, X, 3|4)`` as
    luminance; at least ``minimum`` pixels along each axis. A lazy image (dask, zarr)
    stays a lazy dask array, read where it is sliced.

    Examples
    --------
    >>> as_gray2d(np.ones((4, 5, 3), np.uint8)).shape
    (4, 5)
    """
    image = real_source(image, name)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        image = luminance(image) if image.dtype.kind != "f" or image.dtype.itemsize <= 4 \
            else luminance(as_float32(image[..., :3]))
    if image.ndim != 2:
        raise ValueError(f"{name} must be a 2D image (or 2D RGB), got shape {image.shape}.")
    if min(image.shape) < minimum:
        raise ValueError(f"{name} must be at least {minimum}x{minimum} pixels, got shape "
                         f"{image.shape}.")
    if not isinstance(image, np.ndarray):  # lazy: each block is made finite where read
        return image.map_blocks(as_float32, dtype=np.float32)
    return as_float32(image)


def as_point(point, name: str, box: Sequence[int], where: str | None = None
             ) -> tuple[int, ...]:
    """A finite point inside the half-open ``box`` ``(lo..., hi...)``, rounded to pixels;
    ``where`` names the box in the message.

    Examples
    --------
    >>> as_point((2.4, 3.6), "click", (0, 0, 10, 10))
    (2, 4)
    """
    ndim = len(box) // 2
    try:  # True is not a coordinate, though numpy would make it 1
        p = np.array([]) if isinstance(point, str) or any(
            isinstance(v, bool | np.bool_) for v in np.asarray(point, dtype=object).ravel()) \
            else np.asarray(point, dtype=float)
    except (TypeError, ValueError):
        p = np.array([])
    if p.shape != (ndim,) or not np.isfinite(p).all():
        axes = ("(y, x)", "(z, y, x)")[ndim - 2] if ndim in (2, 3) else f"{ndim}-D"
        raise ValueError(f"{name} must be a finite {axes} point, got {point!r}.")
    rounded = tuple(int(v) for v in np.rint(p))
    lo, hi = box[:ndim], box[ndim:]
    if not all(a <= v < b for v, a, b in zip(rounded, lo, hi, strict=True)):
        where = where or f"{tuple(lo)}..{tuple(b - 1 for b in hi)}"
        raise ValueError(f"{name} {rounded} is outside {where}.")
    return rounded
