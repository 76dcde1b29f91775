"""Object size: the objects' diameter in an image, and the zoom that brings them to the size a
model was trained at.

A network trained on nuclei of 10-50 pixels splits nuclei of 100 pixels and misses nuclei of
4: its result depends on the magnification. :func:`median_diameter` measures objects;
:func:`diameter_from_passes` turns first passes of a model at several zooms into one
estimate; :func:`zoom_for` says how much to zoom an image so that its objects fall in the
model's range. :meth:`napari_medseg.model_runner.SegmentationModel.estimate_diameter` runs the
passes (docs/models.md: how the rules were chosen, on the training set's validation split).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["PASS_ZOOMS", "UP_ZOOM", "SizeEstimate", "as_diameter", "check_zoomed",
           "diameter_from_passes", "median_diameter", "typical_diameter", "zoom_for"]

# First passes: the image as it is and shrunk twice and four times. A network splits
# objects larger than it was trained on, so its estimate at zoom 1 is too small for them;
# the shrunk passes see them at a size it knows.
PASS_ZOOMS = (1.0, 0.5, 0.25)
# Objects smaller than the training size are measured once more in the image enlarged this
# much: the network draws small objects too large (nuclei-2d's zoom-1 estimates of 4-6 px
# nuclei come out 7-9), not enlarged ones.
UP_ZOOM = 2.0
# A pass's objects measured below this share of the training size (in the pass's own pixels)
# are not trusted: the network cannot draw objects much smaller than it saw.
TRUSTED = 0.85
# Fewer objects than this in every pass: the estimate is unsure.
MIN_OBJECTS = 3
# Objects between these shares of the training size are segmented as they are; smaller
# ones are zoomed to the training size, larger ones to ZOOM_LARGE times it (a network splits
# large blurred objects, not those it saw at this size). Chosen on the DSB2018 training
# set's validation split at 0.5x, 1x and 2x (docs/models.md).
FREE_BAND = (0.6, 2.0)
ZOOM_LARGE = 1.5
# Zooms beyond these are not applied (work grows with the square or cube of the zoom).
ZOOM_LIMITS = (0.125, 4.0)


@dataclass(frozen=True)
class SizeEstimate:
    """What a model made of the objects' size in an image.

    Attributes
    ----------
    diameter : float
        Median object diameter in pixels of the image's y/x grid (a stack's yx planes),
        of circles of the objects' areas.
    objects : int
        How many objects it was measured on (0 when given or unsure).
    zoom : float
        How much the image is zoomed before the network (1.0: not at all).
    source : {"given", "estimated", "unsure"}
        "unsure": too few objects were found to measure; ``diameter`` is then the
        model's training size and the image is not zoomed.
    """

    diameter: float
    objects: int
    zoom: float
    source: str

    def remeasured(self, labels: np.ndarray | Sequence[np.ndarray], zoom: float = 1.0
                   ) -> SizeEstimate:
        """This estimate measured again on ``labels`` (a segmentation at ``zoom``: its
        pixels are ``zoom`` times the image's), where it holds at least a quarter as many
        objects as the estimate was made on; else unchanged."""
        diameter, objects = median_diameter(labels)
        if objects < max(MIN_OBJECTS, self.objects / 4):
            return self
        return replace(self, diameter=diameter / zoom, objects=objects)

    def __str__(self) -> str:
        zoom = f", zoomed {self.zoom:.2f}x for the model" if self.zoom != 1 else ""
        if self.source == "unsure":
            return (f"object size unknown (fewer than {MIN_OBJECTS} objects found): "
                    f"segmented at the model's training size{zoom}")
        how = "given" if self.source == "given" else f"estimated on {self.objects} objects"
        return f"object diameter {self.diameter:.1f} px ({how}){zoom}"


def as_diameter(diameter) -> float | None:
    """``diameter`` as a positive finite float, or None (estimate it).

    Examples
    --------
    >>> as_diameter(17), as_diameter(None)
    (17.0, None)
    """
    if diameter is None:
        return None
    if isinstance(diameter, bool) or not isinstance(diameter, (int, float, np.integer,
                                                               np.floating)):
        raise ValueError(f"diameter must be a positive number of pixels or None (estimate "
                         f"it), got {diameter!r}.")
    if not (np.isfinite(diameter) and diameter > 0):
        raise ValueError(f"diameter must be a positive number of pixels, got {diameter!r}.")
    return float(diameter)


def median_diameter(labels: np.ndarray | Sequence[np.ndarray]) -> tuple[float, int]:
    """The median diameter of the objects of a label image (or of several, pooled) and
    their number.

    Each object counts as the circle (2D) or ball (3D) of its area or volume.

    Parameters
    ----------
    labels : ndarray of int, (Y, X) or (Z, Y, X), or a sequence of them

    Returns
    -------
    diameter : float
        In pixels; NaN when there is no object.
    objects : int

    Examples
    --------
    >>> labels = np.zeros((20, 20), int)
    >>> labels[2:6, 2:6], labels[10:14, 10:14] = 1, 2
    >>> round(median_diameter(labels)[0], 2), median_diameter([labels, labels])[1]
    (4.51, 4)
    """
    images = [labels] if isinstance(labels, np.ndarray) else list(labels)
    diameters = []
    for image in images:
        sizes = np.bincount(np.asarray(image).ravel())[1:].astype(np.float64)
        sizes = sizes[sizes > 0]
        diameters.append(2 * (3 * sizes / (4 * np.pi)) ** (1 / 3) if image.ndim == 3
                         else 2 * np.sqrt(sizes / np.pi))
    diameters = np.concatenate(diameters) if diameters else np.zeros(0)
    if not diameters.size:
        return float("nan"), 0
    return float(np.median(diameters)), int(diameters.size)


def diameter_from_passes(passes: dict[float, tuple[float, int]], trained: float
                         ) -> tuple[float, int] | None:
    """One diameter from first passes of a network at several zooms.

    Parameters
    ----------
    passes : dict
        ``{zoom: (median diameter in that pass's pixels, objects)}``.
    trained : float
        The model's training object size, pixels.

    Returns
    -------
    (float, int) or None
        The diameter in the image's own pixels and the objects of the pass it came
        from; None when no pass found :data:`MIN_OBJECTS` objects.

    Notes
    -----
    Each pass's objects, measured back in the image's pixels, are an estimate. A pass is
    trusted when its objects are at least :data:`TRUSTED` times ``trained`` in its own
    pixels;
    the estimate is the median of the trusted ones (too-large objects split at zoom 1
    pull it down, touching small ones merged at zoom 1/4 pull it up: the middle is
    right), or the zoom-1 pass when none is trusted (small objects).

    Examples
    --------
    >>> diameter_from_passes({1.0: (30.0, 70), 0.5: (33.0, 40), 0.25: (20.0, 30)}, 16.0)
    (66.0, 40)
    """
    found = {z: (d / z, n) for z, (d, n) in passes.items() if n >= MIN_OBJECTS and d > 0}
    if not found:
        return None
    trusted = sorted((d, n) for z, (d, n) in found.items()
                     if z <= 1 and passes[z][0] >= TRUSTED * trained
                     and not _merging(passes, z, trained))
    if not trusted:  # small objects: the most enlarged pass that found them
        return found[max(found)]
    return trusted[(len(trusted) - 1) // 2] if len(trusted) % 2 else max(trusted[-2:])


def _merging(passes: dict[float, tuple[float, int]], zoom: float, trained: float) -> bool:
    """Whether the pass at ``zoom`` found under half the objects of the pass twice as fine:
    it merges them. Zoom 1 is the reference only where its own objects are trusted (where
    they are not, it shatters large objects into many small pieces)."""
    finer = passes.get(2 * zoom)
    if finer is None or (2 * zoom == 1 and finer[0] < TRUSTED * trained):
        return False
    return 2 * zoom <= 1 and passes[zoom][1] < finer[1] / 2


def zoom_for(diameter: float, trained: float) -> float:
    """The zoom that brings objects of ``diameter`` pixels to a size the model segments
    well: 1.0 within :data:`FREE_BAND` of its training size ``trained``, else the zoom to
    ``trained`` (smaller objects) or to :data:`ZOOM_LARGE` times it (larger ones).

    Returns
    -------
    float
        Within :data:`ZOOM_LIMITS`.

    Examples
    --------
    >>> zoom_for(100.0, 20.0), zoom_for(25.0, 20.0), zoom_for(5.0, 20.0)
    (0.3, 1.0, 4.0)
    """
    low, high = FREE_BAND
    if low * trained <= diameter <= high * trained:
        return 1.0
    target = trained if diameter < low * trained else ZOOM_LARGE * trained
    return float(np.clip(target / diameter, *ZOOM_LIMITS))


def check_zoomed(shape: Sequence[int], estimate: SizeEstimate, smallest: int = 16) -> None:
    """Refuse a zoom that leaves the network less than ``smallest`` pixels along an axis of
    an image grid ``shape`` that had them.

    Examples
    --------
    >>> check_zoomed((64, 64), SizeEstimate(400.0, 0, 0.125, "given"))
    Traceback (most recent call last):
    ...
    ValueError: zoomed 0.125x to bring objects of 400 px to the model's size, the image ...
    """
    zoomed = tuple(max(1, round(n * estimate.zoom)) for n in shape)
    if estimate.zoom < 1 and min(zoomed) < smallest <= min(shape):
        raise ValueError(f"zoomed {estimate.zoom:g}x to bring objects of "
                         f"{estimate.diameter:.0f} px to the model's size, the image "
                         f"{tuple(shape)} would be {zoomed} pixels: too small for the network. "
                         "Give a smaller diameter, or segment a larger image.")


def typical_diameter(labels: Sequence[np.ndarray]) -> float | None:
    """The typical object diameter of training labels: the median over label images of
    each one's :func:`median_diameter` (so that images with many small objects do not
    outweigh those with a few large ones). None when no image holds an object.

    Examples
    --------
    >>> small, large = np.zeros((40, 40), int), np.zeros((40, 40), int)
    >>> small[:4, :4], large[:20, :20] = 1, 1
    >>> round(typical_diameter([small, large, large]), 1)
    22.6
    """
    medians = [d for d, n in map(median_diameter, labels) if n]
    return float(np.median(medians)) if medians else None
