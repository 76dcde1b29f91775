"""Live-wire scissors in napari: anchors on the displayed slice, a path that follows the mouse.

While the tool is active on a Labels layer, a click places an anchor, the path
from the last anchor follows the mouse, and double-clicking (or clicking the
first anchor again) closes the contour and fills it into the Labels layer as
one undo step. Backspace removes the last anchor, Escape cancels. Dragging
still pans the view.
"""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import CheckBox, Label
from napari.layers import Labels
from napari.utils.notifications import show_warning

from napari_medseg.livewire import LiveWire, NetworkBoundary, livewire_path, path_to_mask
from napari_medseg.plugin.labels_tool import DRAG_PX, LabelsTool
from napari_medseg.plugin.slice_plane import SlicePlane, canvas_zoom

__all__ = ["LiveWireWidget"]

_CLOSE_PX = 8  # clicking this close (screen pixels) to the first anchor closes the contour
_PATH, _ANCHORS = "live-wire path", "live-wire anchors"


class LiveWireWidget(LabelsTool):
    """Dock widget: activate live-wire scissors on a Labels layer."""

    tool_name = "Live-wire"
    ready_message = "{tool} on {layer!r}: click along the outline."
    helper_layers = (_PATH, _ANCHORS)

    def __init__(self, napari_viewer: napari.Viewer):
        self._help = Label(value="Double-click or click the first anchor: close and fill. "
                                 "Backspace: remove last anchor. Esc: cancel.")
        self._help.native.setWordWrap(True)
        self._nuclei = CheckBox(value=False, text="follow the nuclei model's outlines",
                                tooltip="For nuclei images: the path also follows where the "
                                        "built-in nuclei model puts the outline, as annotators "
                                        "draw it, not only the steepest edge")
        super().__init__(napari_viewer, active_text="Live-wire active (click anchors)",
                         status="Activate, then click along an object's outline.",
                         after_active=[self._nuclei], after_status=[self._help])
        self._plane: SlicePlane | None = None
        self._wire: LiveWire | None = None
        self._fixed: list[np.ndarray] = []  # traced pieces between consecutive anchors
        self._live = np.empty((0, 2))

    # -- public actions ---------------------------------------------------------------------
    def add_anchor(self, plane_point) -> None:
        """Place an anchor at ``(row, col)`` of the displayed plane (as a click does)."""
        if self._wire is None:
            self._start()
        wire = self._wire
        if wire.anchors:
            last_piece = wire.path_to(plane_point)
            if len(last_piece) < 2:
                return  # same pixel as the last anchor
            self._fixed.append(last_piece[:-1])
        wire.anchor(plane_point)
        self._live = np.empty((0, 2))
        self._show()

    def move_to(self, plane_point) -> None:
        """Update the live path from the last anchor to ``(row, col)``."""
        if self._wire is None or not self._wire.anchors:
            return
        self._live = self._wire.path_to(plane_point)
        self._show()

    def remove_last_anchor(self) -> None:
        """Take back the last anchor (Backspace)."""
        if self._wire is None or not self._wire.anchors:
            return
        self._wire.undo_anchor()
        if self._fixed:
            self._fixed.pop()
        self._live = np.empty((0, 2))
        if not self._wire.anchors:
            self.cancel()
            return
        self._show()

    def cancel(self) -> None:
        """Drop the contour being traced (Escape); the Labels layer is untouched."""
        self._wire, self._plane, self._fixed = None, None, []
        self._live = np.empty((0, 2))
        self._show()

    def close_contour(self) -> int | None:
        """Close the contour through the anchors, fill it into the Labels layer, return its id.

        The closed boundary is recomputed through all anchors at once (each
        segment then knows its neighbours), which is what gets filled.
        """
        wire, plane, layer = self._wire, self._plane, self._bound
        if wire is None or layer is None:
            return None
        if len(wire.anchors) < 3:
            show_warning("Place at least 3 anchors before closing the contour.")
            return None
        path = livewire_path(wire.image, wire.anchors, closed=True, spacing=plane.spacing,
                             boundary=wire.boundary)
        lo = path.min(0)
        crop = path_to_mask(path - lo, tuple(path.max(0) - lo + 1))
        mask, offset = plane.embed(crop, tuple(int(v) for v in lo))
        return self._write(layer, mask, offset, "Filled")

    # -- mouse and keys -----------------------------------------------------------------------
    def _mouse_callbacks(self) -> dict:
        return {"drag": self._on_press, "move": self._on_move,
                "double_click": self._on_double_click}

    def _keys(self) -> dict:
        return {"Backspace": lambda _: self.remove_last_anchor(),
                "Escape": lambda _: self.cancel()}

    def _reset_tool(self) -> None:
        self.cancel()

    def _on_press(self, layer, event):
        if event.button != 1 or not self.in_slice_view(layer):
            return
        start = np.asarray(event.position)
        yield
        moved = 0.0
        while event.type == "mouse_move":
            moved = max(moved, float(np.linalg.norm(np.asarray(event.position) - start)))
            yield
        if moved * canvas_zoom(self.view_of(layer)) > DRAG_PX:
            return  # that was a pan
        self._click(layer, start)

    def _click(self, layer: Labels, world_position) -> None:
        view = self.view_of(layer)
        if view is not self._view:  # a contour lives in the view it was begun in
            if self._wire is not None and self._wire.anchors:
                show_warning("Finish (double-click) or drop (Esc) the contour in the view "
                             "where it was begun first.")
                return
            self.cancel()
            self._view = view
        try:
            if self._plane is None:
                self._plane = SlicePlane(self._view, layer)
            point = self._plane.to_plane(layer, world_position)
            wire = self._wire
            if wire is not None and len(wire.anchors) >= 3:
                first = np.asarray(wire.anchors[0], float)
                distance = np.linalg.norm((point - first) * self._plane.spacing)
                if distance * canvas_zoom(self._view) <= _CLOSE_PX:
                    self.close_contour()
                    return
            self.add_anchor(point)
        except ValueError as err:  # outside the image, wrong view, unusable image
            show_warning(str(err))
            if self._wire is None or not self._wire.anchors:
                self.cancel()

    def _on_move(self, layer, event):
        if (self._wire is None or self._plane is None or self.view_of(layer) is not self._view
                or not self.in_slice_view(layer)):
            return
        point = self._plane.to_plane(layer, event.position)
        if all(0 <= p < s for p, s in zip(np.rint(point), self._plane.shape, strict=True)):
            self.move_to(point)

    def _on_double_click(self, layer, event):
        # The double-click's first press already placed (or repeated) an anchor.
        if self._wire is not None and len(self._wire.anchors) >= 3:
            self.close_contour()

    # -- internals --------------------------------------------------------------------------
    def _start(self) -> None:
        image, layer = self._layers()
        if self._plane is None:
            self._plane = SlicePlane(self._view, layer)
        plane = np.asarray(self._plane.extract(image.data, rgb=image.rgb))
        boundary = NetworkBoundary(plane) if self._nuclei.value else None
        self._wire = LiveWire(plane, spacing=self._plane.spacing, boundary=boundary)

    def _show(self) -> None:
        """Draw the path (fixed pieces + live piece) and the anchors in preview layers."""
        layer = self._bound
        if layer is None or self._wire is None:
            for name in (_PATH, _ANCHORS):
                if name in self._viewer.layers:
                    self._viewer.layers[name].data = []
            return
        pieces = [p for p in (*self._fixed, self._live) if len(p)]
        path = np.concatenate(pieces) if pieces else np.empty((0, 2))
        anchors = np.asarray(self._wire.anchors, float).reshape(-1, 2)
        width = 0.4 * min(self._plane.spacing)
        paths = [self._plane.to_world(layer, path)] if len(path) >= 2 else []
        self.preview(_PATH, "shapes", edge_color="yellow", edge_width=width).data = [
            (p, "path") for p in paths]
        self.preview(_ANCHORS, "points", face_color="cyan", border_width=0,
                      size=2.5 * min(self._plane.spacing)).data = self._plane.to_world(
            layer, anchors)
