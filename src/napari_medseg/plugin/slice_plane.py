"""The 2D plane a viewer shows of a layer, and mappings between it and the layer's data."""

from __future__ import annotations

import napari
import numpy as np
from napari.layers import Layer

__all__ = ["SlicePlane", "camera_of", "canvas_zoom", "slider_axis"]


def slider_axis(viewer: napari.Viewer, layer: Layer) -> int:
    """The layer axis the viewer's slider steps through: the last of the viewer's
    non-displayed dimensions in its axis order (the slider nearest the displayed plane),
    mapped to the layer's own axes (napari aligns layers by their trailing axes).

    Raises
    ------
    ValueError
        In the 3D view, or when the layer has no axis outside the displayed ones.
    """
    if viewer.dims.ndisplay != 2:
        raise ValueError("This works on the displayed 2D slice; switch the viewer to 2D.")
    offset = viewer.dims.ndim - layer.ndim
    sliced = [d - offset for d in viewer.dims.not_displayed if d >= offset]
    if not sliced:
        raise ValueError(f"{layer.name!r} has no axis the slider steps through: it is "
                         f"{layer.ndim}D and all of it is displayed.")
    return sliced[-1]


class SlicePlane:
    """The 2D plane of a layer shown in the viewer, and the mapping to it.

    Parameters
    ----------
    viewer : napari.Viewer
    layer : napari.layers.Layer
        The layer whose data axes define the plane (the image must share its grid).
    """

    def __init__(self, viewer: napari.Viewer, layer: Layer):
        if viewer.dims.ndisplay != 2:
            raise ValueError("This works on the displayed 2D slice; switch the viewer to 2D.")
        offset = viewer.dims.ndim - layer.ndim
        self.axes = tuple(d - offset for d in viewer.dims.displayed)
        if any(a < 0 for a in self.axes):
            raise ValueError(f"{layer.name!r} has fewer than 2 axes in the displayed plane.")
        point = np.asarray(layer.world_to_data(viewer.dims.point[offset:]))
        index = np.clip(np.rint(point).astype(int), 0, np.asarray(layer.data.shape) - 1)
        self.index = tuple(int(i) for i in index)  # plane position along the sliced axes
        self.shape = tuple(layer.data.shape[a] for a in self.axes)
        self.spacing = tuple(float(layer.scale[a]) for a in self.axes)
        self.key = (self.axes, tuple(self.index[a] for a in range(layer.ndim)
                                     if a not in self.axes))
        self._sliced = slider_axis(viewer, layer) if layer.ndim > 2 else None

    def extract(self, data: np.ndarray, rgb: bool = False) -> np.ndarray:
        """The plane of ``data`` (a view), rows along ``axes[0]`` and columns along ``axes[1]``."""
        slicer = tuple(slice(None) if a in self.axes else i for a, i in enumerate(self.index))
        plane = data[(*slicer, slice(None))] if rgb else data[slicer]
        return np.swapaxes(plane, 0, 1) if self.axes[0] > self.axes[1] else plane

    def to_plane(self, layer: Layer, world_position) -> np.ndarray:
        """``(row, col)`` in the plane for a world position (float)."""
        data = np.asarray(layer.world_to_data(world_position))[-layer.ndim:]
        return data[list(self.axes)]

    def to_world(self, layer: Layer, points: np.ndarray) -> np.ndarray:
        """Plane ``(row, col)`` points (N, 2) to the layer's data coordinates (N, ndim)."""
        full = np.tile(np.asarray(self.index, float), (len(points), 1))
        full[:, self.axes[0]], full[:, self.axes[1]] = points[:, 0], points[:, 1]
        return full

    def embed(self, mask: np.ndarray, corner: tuple[int, int]) -> tuple[np.ndarray, tuple]:
        """A plane crop at ``corner`` as an nD mask and its offset in the layer."""
        if self.axes[0] > self.axes[1]:
            mask = mask.T
            corner = corner[::-1]
        lo, hi = sorted(self.axes)
        shape = [1] * len(self.index)
        shape[lo], shape[hi] = mask.shape
        offset = list(self.index)
        offset[lo], offset[hi] = corner
        return mask.reshape(shape), tuple(offset)

    @property
    def sliced_axis(self) -> int:
        """The layer axis the slider steps through (:func:`slider_axis`)."""
        if self._sliced is None:
            raise ValueError("The layer has no axis the slider steps through in this view.")
        return self._sliced

    def volume(self, data: np.ndarray, rgb: bool = False) -> np.ndarray:
        """A (Z, rows, cols) view of ``data`` along :attr:`sliced_axis`; other axes fixed."""
        z = self.sliced_axis
        slicer = tuple(slice(None) if a in (*self.axes, z) else i
                       for a, i in enumerate(self.index))
        kept = [a for a in range(len(self.index)) if a in (*self.axes, z)]
        view = data[(*slicer, slice(None))] if rgb else data[slicer]
        order = [kept.index(z), kept.index(self.axes[0]), kept.index(self.axes[1])]
        return np.transpose(view, (*order, *range(3, view.ndim)))

    def embed_volume(self, stack: np.ndarray, corner: tuple[int, int, int]
                     ) -> tuple[np.ndarray, tuple]:
        """A (K, H, W) crop of :meth:`volume` at ``corner`` as an nD mask and its offset."""
        axes = (self.sliced_axis, *self.axes)
        order = np.argsort(axes)
        shape = [1] * len(self.index)
        offset = list(self.index)
        for k, a in enumerate(axes):
            shape[a] = stack.shape[k]
            offset[a] = corner[k]
        return np.transpose(stack, order).reshape(shape), tuple(offset)


def camera_of(viewer):
    """The camera of a viewer (or ViewerModel): napari 0.9 moved it to ``viewer.scene``."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def canvas_zoom(viewer: napari.Viewer) -> float:
    """Screen pixels per world unit."""
    return float(camera_of(viewer).zoom)
