"""Axial, coronal and sagittal planes of a volume, one at a time or three side by side.

A volume layer's last three axes are ``(z, y, x)``; our NIfTI reader puts them in LPS
order (z towards superior, y posterior, x the patient's left), so:

- **axial** shows ``(y, x)``: anterior at the top, the patient's right on the left;
- **coronal** shows ``(z, x)`` and **sagittal** ``(z, y)``, superior at the top
  (the camera's vertical axis points up), anterior on the left in sagittal.

That is the radiological convention of Slicer and ITK-SNAP. Microscopy stacks keep
z growing downwards, as Fiji's orthogonal views do, and are named xy / xz / yz.
Axis labels carry the direction (``I-S``, ``A-P``, ``R-L``) or the physical axis and
unit (``z (µm)``).

The two side views of the three-plane layout (napari-orthogonal-views) show copies
of the main view's layers that share their data. The mouse tools (box + click, one
click, live-wire) work in every view: :func:`side_copies` finds a Labels layer's
copies and the views they are in, and the tools bind to them as to the layer itself;
commits go to the main layer, as one undo step, and show in all views.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable

import napari
from magicgui.widgets import CheckBox, Container, Label, PushButton, create_widget
from napari.layers import Image, Layer
from napari.utils.notifications import show_warning

from napari_medseg.plugin.slice_plane import camera_of

__all__ = ["ViewPlanesWidget", "axis_labels", "hide_three_planes", "plane_names",
           "show_plane", "show_three_planes", "side_copies", "watch_side_copies"]

# Displayed (row, column) axes of each plane, as positions among a layer's last 3 axes.
_PLANES = {"axial": (1, 2), "coronal": (0, 2), "sagittal": (0, 1)}
_MICROSCOPY = {"axial": "xy", "coronal": "xz", "sagittal": "yz"}


def is_patient_volume(layer: Layer) -> bool:
    """Whether ``layer`` came from a NIfTI file (anatomical orientation known)."""
    return "nifti" in layer.metadata


def plane_names(layer: Layer) -> dict[str, str]:
    """``{plane: name shown}``: anatomical names for NIfTI, xy / xz / yz otherwise."""
    if is_patient_volume(layer):
        return {p: p for p in _PLANES}
    return dict(_MICROSCOPY)


def axis_labels(layer: Layer) -> tuple[str, ...]:
    """Labels of the layer's axes: ``I-S (mm)``, ``A-P (mm)``, ``R-L (mm)`` for NIfTI
    (the direction the index grows), ``z (µm)``-style names with units otherwise."""
    return axis_names(layer.ndim, layer.metadata)


def axis_names(ndim: int, metadata: dict) -> tuple[str, ...]:
    """:func:`axis_labels` of a layer of ``ndim`` axes and this metadata (the reader's:
    "axes", "units", and "nifti" for a patient volume)."""
    units = tuple(metadata.get("units") or ("",) * ndim)[-ndim:]
    if "nifti" in metadata:
        names = ("t", "I-S", "A-P", "R-L")[-ndim:]
    else:
        axes = str(metadata.get("axes") or "TZYX"[-ndim:])[-ndim:].lower()
        names = tuple(axes) if len(axes) == ndim else ("t", "z", "y", "x")[-ndim:]
    return tuple(f"{n} ({u})" if u and u != "pixel" else n
                 for n, u in zip(names, units, strict=True))


def _row_up(layer: Layer) -> tuple[str, str]:
    """Camera 2D orientation for a plane whose rows run along z."""
    return ("up", "right") if is_patient_volume(layer) else ("down", "right")


def _check_volume(viewer: napari.Viewer, layer: Layer) -> int:
    if layer.ndim < 3:
        raise ValueError(f"{layer.name!r} is {layer.ndim}D: planes need a volume.")
    if viewer.dims.ndisplay != 2:
        raise ValueError("Planes are 2D views; switch the viewer to 2D first.")
    return viewer.dims.ndim - layer.ndim  # napari aligns layers by their trailing axes


def _orient(model, layer: Layer, z_dim: int) -> None:
    """Point a view's camera the convention's way for the plane it shows."""
    rows_are_z = model.dims.order[-2] == z_dim
    camera_of(model).orientation2d = _row_up(layer) if rows_are_z else ("down", "right")


def show_plane(viewer: napari.Viewer, layer: Layer, plane: str) -> None:
    """Show ``plane`` ("axial", "coronal" or "sagittal") of ``layer`` in the main view.

    The plane's axes become the displayed ones (rows, columns), the third spatial
    axis the slider; the slice position is kept. Axis labels name the layer's axes.

    Raises
    ------
    ValueError
        For an unknown plane, a layer of fewer than 3 axes, or the 3D view.
    """
    if plane not in _PLANES:
        raise ValueError(f"plane must be one of {list(_PLANES)}, got {plane!r}")
    offset = _check_volume(viewer, layer)
    spatial = [offset + layer.ndim - 3 + k for k in range(3)]
    rows, cols = (spatial[k] for k in _PLANES[plane])
    sliced = next(d for d in spatial if d not in (rows, cols))
    others = [d for d in viewer.dims.order if d not in spatial]
    viewer.dims.order = (*others, sliced, rows, cols)
    _label_axes(viewer, layer)
    _orient(viewer, layer, spatial[0])
    viewer.reset_view()  # the plane's extent differs from the last one's


def _label_axes(viewer: napari.Viewer, layer: Layer) -> None:
    labels = list(viewer.dims.axis_labels)
    labels[viewer.dims.ndim - layer.ndim:] = axis_labels(layer)
    viewer.dims.axis_labels = labels


def show_three_planes(viewer: napari.Viewer, layer: Layer) -> None:
    """Show the main view's plane of ``layer`` with the two other planes beside it
    (napari-orthogonal-views), every view in the convention of :func:`show_plane`.

    Raises
    ------
    ImportError
        If napari-orthogonal-views is not installed (``pip install napari-medseg[all]``).
    """
    try:
        from napari_orthogonal_views.ortho_view_manager import _get_manager
    except ImportError as err:
        raise ImportError("The three-plane layout needs napari-orthogonal-views: "
                          "pip install napari-orthogonal-views") from err
    offset = _check_volume(viewer, layer)
    z_dim = offset + layer.ndim - 3
    _label_axes(viewer, layer)
    manager = _get_manager(viewer)  # the package's documented way to reach its views
    # tell the tools of every new copy (called as the copies are made, on show)
    manager.register_layer_hook(Layer, _copy_made, name="napari-medseg tools")
    manager.show()  # now, not on the next event loop turn as show_orthogonal_views does
    # Each side view's slider is one of the main view's displayed axes (positions
    # among its last three dims); it shows the other two in (z, y, x) order, as
    # show_plane does: (y, x) axial, (z, x) coronal, (z, y) sagittal.
    views = (manager.right_widget, manager.bottom_widget)
    for view, slider in zip(views, (-1, -2), strict=True):
        shown = sorted((k for k in (-3, -2, -1) if k != slider),
                       key=lambda k: viewer.dims.order[k])
        view.order = (slider, *shown)
    manager.update_dims_order()
    for model in _side_views(manager):
        model.dims.axis_labels = viewer.dims.axis_labels
        _orient(model, layer, z_dim)
        model.reset_view()


_WATCHERS: weakref.WeakSet = weakref.WeakSet()


def watch_side_copies(watcher) -> None:
    """Call ``watcher.copy_made(layer, copy, view)`` whenever a side view copies a layer
    (held weakly: a closed widget drops out)."""
    _WATCHERS.add(watcher)


def _copy_made(layer: Layer, copy: Layer) -> list[Callable]:
    module = _orthogonal_views()
    managers = list(module._VIEWER_MANAGERS.values()) if module is not None else []
    for view in (v for m in managers for v in _side_views(m)
                 if any(shown is copy for shown in v.layers)):
        for watcher in list(_WATCHERS):
            watcher.copy_made(layer, copy, view)
    return []


def _orthogonal_views():
    """napari-orthogonal-views' manager module if something imported it, else None."""
    return sys.modules.get("napari_orthogonal_views.ortho_view_manager")


def _side_views(manager) -> list:
    """The view models of a manager's two side views, those it has made."""
    return [w.vm_container.viewer_model for w in (manager.right_widget, manager.bottom_widget)
            if hasattr(w, "vm_container")]


def side_copies(viewer: napari.Viewer, layer: Layer) -> list[tuple[Layer, object]]:
    """``(copy, view)`` for each side view of ``viewer`` that shows a copy of ``layer``
    (same data); empty without the three-plane layout."""
    module = _orthogonal_views()
    manager = module._VIEWER_MANAGERS.get(viewer) if module is not None else None
    if manager is None or not manager.is_shown():
        return []
    return [(copy, view) for view in _side_views(manager) for copy in view.layers
            if copy is not layer and type(copy) is type(layer) and copy.data is layer.data]


def hide_three_planes(viewer: napari.Viewer) -> None:
    """Hide the side views of :func:`show_three_planes` (if shown)."""
    try:
        from napari_orthogonal_views.ortho_view_manager import _get_manager
    except ImportError:
        return
    _get_manager(viewer).hide()


class ViewPlanesWidget(Container):
    """Dock widget: a volume's axial / coronal / sagittal plane in the main view (where
    the tools work), and a three-plane layout."""

    def __init__(self, napari_viewer: napari.Viewer):
        self._viewer = napari_viewer
        self._layer = create_widget(annotation=Image, label="volume")
        self._buttons = {p: PushButton(text=p) for p in _PLANES}
        self._three = CheckBox(value=False, text="three planes side by side")
        self._status = Label(value="The mouse tools work in every view; interpolation and "
                                   "propagation along the main view's slider axis.")
        self._status.native.setWordWrap(True)
        super().__init__(widgets=[self._layer, *self._buttons.values(), self._three,
                                  self._status])
        for plane, button in self._buttons.items():
            button.changed.connect(lambda _=None, p=plane: self.show(p))
        self._three.changed.connect(self._toggle_three)
        self._layer.changed.connect(self._rename)
        self._rename(self._layer.value)

    def _rename(self, layer: Layer | None) -> None:
        names = plane_names(layer) if layer is not None else {p: p for p in _PLANES}
        for plane, button in self._buttons.items():
            button.text = names[plane]

    def show(self, plane: str) -> None:
        """Show ``plane`` of the chosen volume in the main view."""
        layer = self._layer.value
        try:
            if layer is None:
                raise ValueError("Open a volume first.")
            show_plane(self._viewer, layer, plane)
            if self._three.value:
                show_three_planes(self._viewer, layer)
        except (ValueError, ImportError) as err:
            show_warning(str(err))
            return
        self._status.value = (f"Main view: {plane_names(layer)[plane]} plane of "
                              f"{layer.name!r}; interpolation and propagation run along "
                              "its slider axis.")

    def _toggle_three(self, on: bool) -> None:
        layer = self._layer.value
        if not on:
            hide_three_planes(self._viewer)
            return
        try:
            if layer is None:
                raise ValueError("Open a volume first.")
            show_three_planes(self._viewer, layer)
        except (ValueError, ImportError) as err:
            show_warning(str(err))
            self._three.value = False
