"""Box + click ("frame cut") in napari: drag a box, click to refine, commit to Labels.

While the tool is active on a Labels layer: dragging draws a box around an
object on the displayed slice, or a single click on an object segments it without
a box (:func:`napari_medseg.segment_point`); then a left click adds a positive
prompt, a right click (or Alt+click) a negative one; the mask preview updates
after every prompt. C or Enter commits it (one undo step), Esc clears the prompts,
Ctrl+Z takes back the last prompt (or, with no prompts, undoes the last commit).
In a volume, "Propagate" follows the object through the slices, and "3D box"
segments a box that spans +/- N slices around the displayed one.
"""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import ComboBox, PushButton, SpinBox
from napari.layers import Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_warning

from napari_medseg.box_segmentation import BoxSession, propagate_mask_with_report
from napari_medseg.plugin.background import BackgroundWork
from napari_medseg.plugin.labels_tool import DRAG_PX, LabelsTool
from napari_medseg.plugin.slice_plane import SlicePlane, canvas_zoom
from napari_medseg.point_segmentation import point_session, preload
from napari_medseg.validation import is_zarr_array

LARGE_GROWTH = 1.5  # a propagated object above this many times (first slice x slices) asks
LARGE_SHARE = 0.10  # as does one above this share of the layer's voxels

__all__ = ["BoxClickWidget"]

_BOX, _CLICKS, _PREVIEW = "box prompt", "click prompts", "mask preview"


class BoxClickWidget(LabelsTool):
    """Dock widget: box + click segmentation into a Labels layer."""

    tool_name = "Box + click"
    ready_message = ("{tool} on {layer!r}: drag a box around an object, or click one; then "
                     "click to add to it, right-click (or Alt+click) to take away.")
    mouse_pan = False  # dragging draws boxes; the wheel still zooms
    helper_layers = (_BOX, _CLICKS, _PREVIEW)

    def __init__(self, napari_viewer: napari.Viewer):
        self._depth = SpinBox(value=0, min=0, max=200, label="3D box: +/- slices",
                              tooltip="0: 2D box on the displayed slice; N: the box spans "
                                      "N slices up and down")
        self._commit_button = PushButton(text="Commit (C / Enter)")
        self._propagate_button = PushButton(text="Propagate through slices")
        self._method = ComboBox(
            choices=[("network (microscopy)", "network"), ("intensity (CT / MR organs)",
                                                          "intensity")],
            value="network", label="propagate by",
            tooltip="How each next slice is found: the box + click network, or the first "
                    "slice's intensities near the previous outline (organs in CT and MR, "
                    "which the network knows little of). Chosen by the image's file; "
                    "NIfTI volumes take intensity.")
        self._cancel_button = PushButton(text="Cancel")
        super().__init__(napari_viewer, active_text="Box + click active (drag a box)",
                         status="Activate, then drag a box around an object or click one; "
                                "right-click (or Alt+click) marks what is not the object.",
                         after_active=[self._depth, self._commit_button, self._method,
                                       self._propagate_button, self._cancel_button])
        self._plane: SlicePlane | None = None
        self._session: BoxSession | None = None
        self._prompts: list[tuple[tuple[int, int], bool]] = []
        self._from_point = False
        self._volume_result: tuple[np.ndarray, tuple[int, int, int]] | None = None
        self._work = BackgroundWork([self._propagate_button], self._cancel_button,
                                    self._status)
        self._preview_region: tuple[slice, ...] | None = None
        self._commit_button.changed.connect(self.commit)
        self._propagate_button.changed.connect(self.propagate)
        self._source.changed.connect(self._choose_method)
        self._choose_method(self._source.value)
        self._active.changed.connect(lambda on: on and self._preload())

    # -- public actions (what the mouse and keys do) ----------------------------------------
    def set_box(self, corner_a, corner_b) -> None:
        """Start an object from a box given by two opposite corners ``(row, col)`` (plane)."""
        self.clear()
        image, layer = self._layers()
        self._plane = plane = SlicePlane(self._view, layer)
        a, b = np.asarray(corner_a, float), np.asarray(corner_b, float)
        lo = np.floor(np.minimum(a, b) + 0.5).astype(int)
        hi = np.floor(np.maximum(a, b) + 0.5).astype(int) + 1
        box = (int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1]))
        if self._depth.value and layer.ndim >= 3:
            self._segment_3d(box)
            return
        self._session = BoxSession(plane.extract(image.data, rgb=image.rgb), box)
        self._status.value = ("Box drawn: click to add to the object, right-click (or "
                              "Alt+click) to take away; C / Enter commits.")
        self._show()

    def add_prompt(self, point, positive: bool = True) -> None:
        """A click at ``(row, col)`` of the plane inside the box."""
        y, x = (int(v) for v in np.floor(np.asarray(point, float) + 0.5))
        if self._session is None:
            if not positive:
                raise ValueError("Click on an object (left click) or draw a box around it "
                                 "first.")
            self._start_at((y, x))
            return
        box, clicks = self._session.box, self._session.clicks
        self._session.add_click((y, x), positive=positive)
        if self._session.clicks == clicks:  # a negative click outside the box
            self._status.value = "That click is outside the object's box: nothing to take away."
            return
        self._prompts.append(((y, x), positive))
        if self._session.box != box:
            self._status.value = "The box grew to take in the click."
        if self._volume_result is not None:  # the click refines this slice only
            self._volume_result = None
            self._status.value = "Refined this slice; propagate again for the other slices."
        self._show()

    def undo_prompt(self) -> bool:
        """Take back the last click, or the box if there are no clicks; False if nothing."""
        if self._prompts and not (self._from_point and len(self._prompts) == 1):
            self._prompts.pop()
            self._session.undo_click()
            self._show()
            return True
        if self._session is not None or self._volume_result is not None:
            self.clear()
            return True
        return False

    def clear(self) -> None:
        """Drop the box, the clicks and the preview (Esc); stop work in progress for them."""
        self._work.cancel()
        self._session, self._prompts, self._volume_result = None, [], None
        self._from_point = False  # the session began with one click, no box
        if self._bound is not None:
            self._status.value = self.ready_message.format(tool=self.tool_name,
                                                           layer=self._bound.name)
        self._show()

    def commit(self) -> int | None:
        """Write the previewed mask into the Labels layer as one undo step; return its id."""
        layer = self._bound
        if layer is None or (self._session is None and self._volume_result is None):
            show_warning("Nothing to commit: draw a box first.")
            return None
        if self._volume_result is not None:
            mask, offset = self._plane.embed_volume(*self._volume_result)
            if not self._large_commit_confirmed(int(mask.sum()), layer.data.size):
                self._status.value = ("Not committed. Refine the slice and propagate again, "
                                      "or use a 3D box with fewer slices.")
                return None
        else:
            mask, offset = self._plane.embed(self._session.mask, self._session.offset)
        if not mask.any():
            show_warning("The mask is empty; add a positive click on the object.")
            return None
        return self._write(layer, mask, offset, "Committed")

    def _large_commit_confirmed(self, voxels: int, total: int) -> bool:
        """Ask before writing a propagated object far larger than the slice it came from
        suggested (more than LARGE_GROWTH times its area on every slice it reaches) or
        more than LARGE_SHARE of the layer: the signs of a leak into the neighbours."""
        slices = _slices_with_object(self._volume_result[0])
        seed = int(self._session.mask.sum()) if self._session is not None else 0
        expected = max(seed, 1) * slices
        if voxels <= LARGE_GROWTH * expected and voxels <= LARGE_SHARE * total:
            return True
        from qtpy.QtWidgets import QMessageBox

        answer = QMessageBox.question(
            self.native, "Commit a large object?",
            f"This commit writes {voxels:,} voxels on {slices} slices: "
            f"{voxels / expected:.1f} times the first slice's object on every slice, "
            f"{voxels / total:.0%} of the volume. Propagation may have leaked into "
            "neighbouring structures. Commit anyway?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def propagate(self):
        """Follow the current 2D mask up and down the slices (in a worker thread)."""
        if self._session is None or not self._session.mask.any():
            show_warning("Segment the object on one slice first.")
            return None
        if self._bound.ndim < 3:
            show_warning("Propagation needs a 3D (or higher) layer.")
            return None
        image = self._source.value
        volume = self._plane.volume(image.data, rgb=image.rgb)
        index = self._plane.index[self._plane.sliced_axis]
        return self._run(propagate_mask_with_report, volume, index, self._session.mask,
                         self._session.offset, method=self._method.value,
                         desc="Propagating through slices")

    def _rebind(self) -> None:
        super()._rebind()
        if self._bound is not None:
            # the preview layers now: made at a drag's first move, they moved the views'
            # cameras under the mouse (napari fits views to new layers)
            self._show()

    def _choose_method(self, image) -> None:
        """Intensity propagation for medical volumes (NIfTI), the network otherwise."""
        if image is not None:
            self._method.value = "intensity" if "nifti" in image.metadata else "network"

    def _preload(self) -> None:
        """Load the networks in the background when the tool is switched on, so that the
        first box does not wait for them (seconds on a CPU)."""
        # its own thread, not the widget's job: Propagate must not wait for it
        worker = create_worker(preload, _start_thread=False,
                               _connect={"errored": lambda err: show_warning(
                                   f"Loading the box + click network failed: {err}")})
        worker.returned.connect(lambda _: self._loaded())
        self._status.value = "Loading the box + click network..."
        worker.start()

    def _loaded(self) -> None:
        # only over the loading message: not over an object's, nor a "No object here"
        if self._bound is not None and self._status.value.startswith("Loading the box"):
            try:
                self._status.value = self.ready_message.format(tool=self.tool_name,
                                                               layer=self._bound.name)
            except RuntimeError:  # the widget was closed while the networks loaded
                pass

    def _start_at(self, point: tuple[int, int]) -> None:
        """One click, no box: the object under the click, its box inferred."""
        image, layer = self._layers()
        self._plane = plane = SlicePlane(self._view, layer)
        self._session = point_session(plane.extract(image.data, rgb=image.rgb), point)
        self._prompts, self._from_point = [(point, True)], True
        self._status.value = ("Object under the click; click to add to it, right-click to "
                              "take away, C / Enter commits.")
        self._show()

    # -- 3D box and workers -----------------------------------------------------------------
    def _segment_3d(self, box) -> None:
        image, plane = self._source.value, self._plane
        volume = plane.volume(image.data, rgb=image.rgb)
        z = plane.index[plane.sliced_axis]
        d = self._depth.value
        session = BoxSession(volume[z], box)  # shows the middle slice at once
        self._session = session
        self._show()
        self._run(propagate_mask_with_report, volume, z, session.mask, session.offset,
                  z_range=(max(z - d, 0), min(z + d + 1, volume.shape[0])), limit_box=session.box,
                  method=self._method.value, desc="Segmenting the 3D box")

    def _run(self, fn, *args, desc: str, **kwargs):
        session = self._session  # a result is shown only if the box is still the same
        return self._work.start(fn, *args, desc=desc, **kwargs,
                                returned=lambda result: self._propagated(result, session))

    def _propagated(self, result, session: BoxSession) -> None:
        if session is not self._session:
            return
        stack, corner, report = result
        self._volume_result = (stack, corner)
        n = _slices_with_object(stack)
        self._status.value = (f"Object found on {n} slices ({corner[0]}..{corner[0] + n - 1}); "
                              f"it ends {report.message()}. C / Enter commits.")
        self._show()

    # -- mouse and keys -----------------------------------------------------------------------
    def _mouse_callbacks(self) -> dict:
        return {"drag": self._on_press}

    def _keys(self) -> dict:
        return {"C": lambda _: self.commit(), "Enter": lambda _: self.commit(),
                "Escape": lambda _: self.clear(), "Control-Z": self._undo_key}

    def _reset_tool(self) -> None:
        self.clear()

    def _undo_key(self, layer: Labels) -> None:
        if not self.undo_prompt():
            layer.undo()

    def _on_press(self, layer, event):
        if not self.in_slice_view(layer):
            return  # the 3D view's camera is the user's
        view = self.view_of(layer)  # the main view or a side view of the three planes
        start = np.asarray(event.position, float)
        negative = event.button == 2 or "Alt" in event.modifiers
        try:
            plane = SlicePlane(view, layer)
        except ValueError as err:  # 3D view
            show_warning(str(err))
            return
        a = plane.to_plane(layer, start)
        yield
        dragged = False
        while event.type == "mouse_move":
            now = np.asarray(event.position, float)
            if np.linalg.norm(now - start) * canvas_zoom(view) > DRAG_PX:
                dragged = True
                self._draw_box(plane, a, plane.to_plane(layer, now))
            yield
        try:
            if view is not self._view:  # a click in another view starts a new object there
                self.clear()
                self._view = view
            if dragged and event.button == 1:
                self.set_box(a, plane.to_plane(layer, np.asarray(event.position, float)))
            elif not dragged and event.button in (1, 2):
                self.add_prompt(a, positive=not negative)
        except ValueError as err:  # outside the image, no object there, mismatched layers
            show_warning(str(err))
            self._status.value = str(err)
            self._show()

    # -- preview layers ---------------------------------------------------------------------
    def _draw_box(self, plane: SlicePlane, a, b) -> None:
        # the four edges as line vectors: updating them per mouse move costs a third of a
        # Shapes rectangle's re-triangulation (docs/box_click.md)
        self._preview(_BOX, "vectors").data = _edges(plane.to_world(
            self._bound, _corners(*(_inside(plane, p) for p in (a, b)))))

    def _show(self) -> None:
        layer, plane = self._bound, self._plane
        if layer is None:
            return
        session = self._session
        boxes, points, colours = np.empty((0, 2, layer.ndim)), np.empty((0, layer.ndim)), []
        if session is not None:
            y0, x0, y1, x1 = session.box
            corners = _corners(_inside(plane, (y0 - 0.5, x0 - 0.5)),
                               _inside(plane, (y1 - 0.5, x1 - 0.5)))
            boxes = _edges(plane.to_world(layer, corners))
            if self._prompts:
                points = plane.to_world(layer, np.array([p for p, _ in self._prompts], float))
                colours = ["lime" if s else "magenta" for _, s in self._prompts]
        self._preview(_BOX, "vectors").data = boxes
        clicks = self._preview(_CLICKS, "points")
        clicks.data = points
        if len(colours):
            clicks.face_color = colours
        preview = self._preview(_PREVIEW, "labels")
        if self._preview_region is not None:  # erase the last preview: only where it was
            preview.data[self._preview_region] = 0
            self._preview_region = None
        if self._volume_result is not None:
            stack, corner = self._volume_result
            mask, offset = plane.embed_volume(stack, corner)
        elif session is not None:
            mask, offset = plane.embed(session.mask, session.offset)
        else:
            preview.refresh()
            return
        where = tuple(slice(o, o + s) for o, s in zip(offset, mask.shape, strict=True))
        preview.data[where] = mask.astype(np.uint8)  # the region is all 0 after the erase
        self._preview_region = where
        preview.refresh()

    def _preview(self, name: str, kind: str):
        viewer, layer = self._viewer, self._bound
        if name in viewer.layers and viewer.layers[name].ndim == layer.ndim and (
                kind != "labels" or viewer.layers[name].data.shape == layer.data.shape):
            return viewer.layers[name]
        if name in viewer.layers:
            viewer.layers.remove(name)
        if kind == "labels":
            self._preview_region = None
        common = {"name": name, "scale": layer.scale, "translate": layer.translate}
        if kind == "vectors":
            preview = viewer.add_vectors(np.empty((0, 2, layer.ndim)), ndim=layer.ndim,
                                         edge_color="yellow", edge_width=1,
                                         vector_style="line", **common)
        elif kind == "points":
            preview = viewer.add_points(np.empty((0, layer.ndim)), ndim=layer.ndim, size=4,
                                        border_width=0, **common)
        else:
            # A uint8 layer of the target's shape, written only inside the object's box:
            # one byte per voxel is the price of a live preview in every view, except for
            # a zarr-backed target, whose preview keeps only the chunks written, in memory.
            preview = viewer.add_labels(_blank_like(layer.data), opacity=0.5, **common)
            preview.colormap = napari.utils.DirectLabelColormap(
                color_dict={None: "transparent", 0: "transparent", 1: "cyan"})
        viewer.layers.selection.active = layer  # keep the mouse on the Labels layer
        return preview


def _blank_like(data):
    """A zero uint8 array of ``data``'s shape: numpy, or zarr in memory for zarr data."""
    if not is_zarr_array(data):
        return np.zeros(data.shape, np.uint8)
    import zarr

    return zarr.zeros(data.shape, chunks=data.chunks, dtype=np.uint8,
                      store=zarr.storage.MemoryStore())


def _edges(corners: np.ndarray) -> np.ndarray:
    """A closed polygon's edges as napari vectors: (N, 2, D) of (start, direction)."""
    return np.stack([corners, np.roll(corners, -1, axis=0) - corners], axis=1)


def _slices_with_object(stack: np.ndarray) -> int:
    """How many slices of a propagated (K, H, W) stack hold some of the object."""
    return int(stack.reshape(len(stack), -1).any(1).sum())


def _inside(plane: SlicePlane, point) -> np.ndarray:
    """``point`` moved onto the plane's pixel centres where it lies beyond them: a preview
    reaching past the image would widen the viewer's range on every mouse move (and
    napari-orthogonal-views then re-centres its views under the mouse)."""
    return np.clip(np.asarray(point, float), 0, np.asarray(plane.shape) - 1)


def _corners(a, b) -> np.ndarray:
    """The four corners of the plane rectangle spanned by ``a`` and ``b``: (4, 2)."""
    return np.array([[a[0], a[1]], [a[0], b[1]], [b[0], b[1]], [b[0], a[1]]], float)
