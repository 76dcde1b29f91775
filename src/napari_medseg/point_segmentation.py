"""One click per nucleus: the object under a single click, without a box.

A click says where an object is but not how big it is, which is where box- or
click-prompted models are weakest. A model that knows the objects can say: the
built-in nuclei model (grey or colour, by the image) segments a window around the
click, the instance under it gives the object's extent, and a box + click session
(:class:`~napari_medseg.box_segmentation.BoxSession`) starts from that instance as
its prior mask, with the click as a positive prompt, so further clicks refine it
exactly as they refine a box. The window grows while the instance touches its
edge, so large objects are seen whole; only the window is ever segmented.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.box_segmentation import BoxSession, prior_box
from napari_medseg.validation import as_point, holds_colour, is_colour, real_source

__all__ = ["point_session", "preload", "segment_point"]

_WINDOW = 128  # first window around the click (pixels); doubles while the object touches it
_MAX_WINDOW = 1024
_SNAP = 4  # a click this close to an object (pixels) is taken as on it


def point_session(image: np.ndarray, point: Sequence[float], model=None) -> BoxSession:
    """A box + click session for the object under ``point``, its box inferred.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Y, X, 3|4)
        Any real dtype. Not modified.
    point : (y, x)
        The click, inside the image.
    model : SegmentationModel or str, optional
        The instance model that finds the object (default: the built-in one made for
        the image's kind, :func:`~napari_medseg.model_files.suggested_model`).

    Returns
    -------
    BoxSession
        Already holding the click as a positive prompt; ``add_click`` refines it.

    Raises
    ------
    ValueError
        When the model finds no object under (or next to) the click: the box + click
        network alone would invent one from the background's texture.
    """
    from napari_medseg.model_files import suggested_model
    from napari_medseg.model_runner import SegmentationModel

    image = real_source(image)
    if image.ndim != 2 and not is_colour(image):
        raise ValueError(f"image must be a 2D image (or 2D RGB), got shape {image.shape}.")
    shape = image.shape[:2]
    y, x = as_point(point, "point", (0, 0, *shape), f"the {shape[0]}x{shape[1]} image")
    if not isinstance(model, SegmentationModel):
        model = _loaded(str(model or suggested_model(holds_colour(image), 2)))
    found = _instance_at(image, (y, x), model)
    if found is None:
        raise ValueError(f"No object here: {model.info.name or 'the model'} finds none within "
                         f"{_SNAP} px of the click at {(y, x)}. Draw a box around it instead.")
    mask, offset = found
    session = BoxSession(image, prior_box(mask, offset), prior=mask, prior_offset=offset)
    session.add_click((y, x), positive=True)
    return session


def segment_point(image: np.ndarray, point: Sequence[float],
                  positive: Sequence[Sequence[float]] = (),
                  negative: Sequence[Sequence[float]] = (), model=None) -> np.ndarray:
    """Mask of the object under one click, refined by more positive/negative clicks.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Y, X, 3|4)
        Any real dtype. Not modified.
    point : (y, x)
        A click on the object.
    positive, negative : sequence of (y, x)
        Further clicks on the object / on what is not the object.
    model : SegmentationModel or str, optional
        See :func:`point_session`.

    Returns
    -------
    ndarray of bool, shape (Y, X)

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, labels = nuclei_2d()
    >>> mask = segment_point(image, (242, 108))
    >>> mask.shape, bool(mask[242, 108])
    ((384, 384), True)
    """
    session = point_session(image, point, model)
    for p in positive:
        session.add_click(p, positive=True)
    for p in negative:
        session.add_click(p, positive=False)
    return session.full_mask()


def _instance_at(image: np.ndarray, point: tuple[int, int], model):
    """The model's instance under (or next to) ``point``, as (mask, offset) in a window
    that grows until the instance does not touch it; None when there is none."""
    h, w = image.shape[:2]
    half = _WINDOW // 2
    while True:
        y0, x0 = max(point[0] - half, 0), max(point[1] - half, 0)
        y1, x1 = min(point[0] + half, h), min(point[1] + half, w)
        # at the training size: a window holds too few objects to measure them by
        labels = model.segment(image[y0:y1, x0:x1], diameter=model.info.diameter)
        py, px = point[0] - y0, point[1] - x0
        label = int(labels[py, px])
        if not label:
            distance, (iy, ix) = ndi.distance_transform_edt(labels == 0, return_indices=True)
            if distance[py, px] > _SNAP:
                return None
            label = int(labels[iy[py, px], ix[py, px]])
        mask = labels == label
        touches = ((mask[0].any() and y0 > 0) or (mask[-1].any() and y1 < h)
                   or (mask[:, 0].any() and x0 > 0) or (mask[:, -1].any() and x1 < w))
        if not touches or 2 * half >= _MAX_WINDOW:
            ys, xs = ndi.find_objects(mask.astype(np.uint8))[0]
            return mask[ys, xs], (y0 + ys.start, x0 + xs.start)
        half *= 2


def preload() -> None:
    """Load (and keep) the networks a box or a click needs: the box + click network and
    the built-in grey and colour nuclei models (seconds on a CPU, once)."""
    from napari_medseg.box_segmentation import _shipped_network
    from napari_medseg.model_files import suggested_model

    _shipped_network()
    for colour in (False, True):
        _loaded(suggested_model(colour, 2))


@functools.lru_cache(maxsize=4)
def _loaded(name: str):
    """A model loaded once per name or file (one click must not reload it)."""
    from napari_medseg.model_runner import load_model

    return load_model(name)
