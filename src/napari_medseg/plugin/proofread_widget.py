"""Proofreading in napari: delete, merge, split and accept a Labels layer's objects by
clicking.

While the tool is active on a Labels layer, in *delete* mode a click deletes the object
under it; in *merge* mode clicks gather objects and Enter merges them (into the first);
in *split* mode clicks place a seed in each part and Enter splits, or a drag across an
object cuts it along the line; in *accept* mode a click marks the object as checked, in a
"checked" Labels layer beside it where the user also paints checked background. D / M /
S / A switch modes, Esc drops the gathered clicks. Every edit is one undo step (Ctrl+Z), in
3D on a stack, through :mod:`napari_medseg.proofreading` (only the object's region is read
and written).
"""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import ComboBox, FloatSpinBox, Label, PushButton
from napari.layers import Labels
from napari.utils import DirectLabelColormap
from napari.utils.notifications import show_info

from napari_medseg.model_files import available_models
from napari_medseg.plugin.background import BackgroundWork, advance_progress
from napari_medseg.plugin.labels_tool import DRAG_PX, LabelsTool
from napari_medseg.plugin.layer_edit import (
    merge_changes_into_layer,
    merge_into_layer,
    next_free_label_of_layer,
)
from napari_medseg.plugin.model_widget import model_for_layer
from napari_medseg.plugin.slice_plane import SlicePlane, canvas_zoom
from napari_medseg.proofreading import (
    CHECKED_BACKGROUND,
    CHECKED_OBJECT,
    LabelChange,
    accept_object,
    add_object,
    delete_object,
    merge_objects,
    redo_object,
    split_object,
)
from napari_medseg.training.corrections import fine_tune_on_corrections_steps
from napari_medseg.training.progress import TrainingProgress, blend_message

__all__ = ["ProofreadWidget", "checked_layer_of"]

DELETE, MERGE, SPLIT, REDO, ADD, ACCEPT = "delete", "merge", "split", "redo", "add", "accept"
_CLICKS, _CUT = "proofreading clicks", "proofreading cut"
_HINTS = {DELETE: "click an object to delete it",
          MERGE: "click the objects to merge (the first keeps its id), then Enter",
          SPLIT: "click once in each part, then Enter; or drag a line across the object",
          REDO: "click the object, then on what it misses (right-click: what it should not "
                "hold), then Enter: box + click from its current mask",
          ADD: "click a missed object to add it (next free id)",
          ACCEPT: "click an object to mark it checked (green); paint checked background in "
                  "the checked layer"}
_CHECKED_COLOURS = {None: "transparent", 0: "transparent", CHECKED_OBJECT: "lime",
                    CHECKED_BACKGROUND: "royalblue"}
_TUNED = "fine-tuned here"  # the model choice after a fine-tuning: the next round starts there


def checked_layer_of(viewer: napari.Viewer, layer: Labels) -> Labels:
    """The Labels layer beside ``layer`` recording what the user checked (made on first
    use, in ``layer``'s geometry): :data:`CHECKED_OBJECT` on accepted objects,
    :data:`CHECKED_BACKGROUND` where background was painted as checked."""
    name = f"{layer.name} checked"
    if name in viewer.layers and viewer.layers[name].data.shape == layer.data.shape:
        return viewer.layers[name]
    checked = viewer.add_labels(np.zeros(layer.data.shape, np.uint8), name=name,
                                scale=layer.scale, translate=layer.translate, opacity=0.35,
                                colormap=DirectLabelColormap(color_dict=_CHECKED_COLOURS))
    viewer.layers.selection.active = layer
    return checked


class ProofreadWidget(LabelsTool):
    """Dock widget: correct a segmentation object by object."""

    tool_name = "Proofreading"
    ready_message = "{tool} on {layer!r}."
    mouse_pan = False  # a drag cuts in split mode; the wheel still zooms
    helper_layers = (_CLICKS, _CUT)

    def __init__(self, napari_viewer: napari.Viewer):
        self._mode = ComboBox(choices=[DELETE, MERGE, SPLIT, REDO, ADD, ACCEPT], value=DELETE,
                              label="click to")
        self._paint_background = PushButton(text="Paint checked background")
        self._help = Label(value="D: delete, M: merge, S: split, R: redo, N: add, A: accept "
                                 "(checked). Enter: merge / split / redo with the clicks. "
                                 "Esc: drop the clicks. Ctrl+Z: undo.")
        self._help.native.setWordWrap(True)
        self._model = ComboBox(choices=available_models(), label="model that made it",
                               tooltip="Fine-tuning starts from it; after a round, from the "
                                       "model fine-tuned here")
        self._minutes = FloatSpinBox(value=5.0, min=0.5, max=120.0, step=0.5, label="minutes")
        self._tune_button = PushButton(text="Fine-tune on my corrections")
        self._cancel_button = PushButton(text="Cancel")
        super().__init__(napari_viewer, active_text="Proofreading active (click objects)",
                         status="Activate, then click objects to correct.",
                         after_active=[self._mode, self._paint_background, self._model,
                                       self._minutes, self._tune_button, self._cancel_button],
                         after_status=[self._help])
        self._paint_background.changed.connect(self.paint_checked_background)
        self._work = BackgroundWork([self._tune_button], self._cancel_button, self._status,
                                    "Cancelled; the model and the labels are as they were.")
        self._tune_button.changed.connect(self.fine_tune)
        self._tuned = None  # the model of the last round
        self._source.changed.connect(self._suggest)
        self._suggest(self._source.value)
        # ids are the objects' own: no fill choice; merges and splits never overwrite others
        self._label_choice.visible = False
        self._overwrite.visible = False
        self._points: list[np.ndarray] = []  # gathered clicks, in the layer's data coordinates
        self._signs: list[bool] = []  # redo: whether each click after the first is positive
        self._mode.changed.connect(lambda _: self._reset_tool())

    # -- public actions (what the mouse and keys do) ----------------------------------------
    def click(self, point, positive: bool = True) -> None:
        """A click at ``point`` (the Labels layer's data coordinates); ``positive`` False: a
        right-click (redo: what the object should not hold)."""
        point, mode = np.asarray(point, float), self._mode.value
        if not positive and not (mode == REDO and self._points):
            return  # a right-click only says "not this" to a redo under way
        if mode == DELETE:
            self._apply(delete_object(self._layer_data(), point))
            return
        if mode == ADD:
            self._apply(self._on_plane(add_object, [point], label=next_free_label_of_layer(
                self._bound)))
            return
        if mode == REDO and self._points:
            self._signs.append(positive)
        if mode == ACCEPT:
            checked = checked_layer_of(self._viewer, self._bound)
            self._apply(accept_object(self._layer_data(), checked.data, point), checked)
            return
        self._points.append(point)
        self._show()
        self._say(f"{len(self._points)} click(s) gathered: {_HINTS[self._mode.value]}.")

    def finish(self) -> None:
        """Merge, split or redo with what the clicks gathered (Enter)."""
        points, self._points = self._points, []
        signs, self._signs = self._signs, []
        self._show()
        if self._mode.value == REDO and points:
            self._apply(self._on_plane(
                redo_object, [points[0]],
                positive=[p for p, s in zip(points[1:], signs, strict=True) if s],
                negative=[p for p, s in zip(points[1:], signs, strict=True) if not s]))
        elif self._mode.value == MERGE:
            self._apply(merge_objects(self._layer_data(), points))
        elif self._mode.value == SPLIT:
            self._apply(split_object(self._layer_data(), points, self._image()))

    def cut(self, start, end) -> None:
        """Split the object a straight line from ``start`` to ``end`` crosses (a drag)."""
        self._apply(split_object(self._layer_data(), [np.asarray(start, float),
                                                      np.asarray(end, float)],
                                 self._image(), line=True))

    def paint_checked_background(self) -> None:
        """Select the checked layer with napari's brush on checked background: paint where
        there is no object (the model's false objects included)."""
        if self._bound is None:
            self._say("Activate proofreading on a Labels layer first.")
            return
        checked = checked_layer_of(self._viewer, self._bound)
        self._active.value = False  # the brush needs the mouse
        self._viewer.layers.selection.active = checked
        checked.selected_label = CHECKED_BACKGROUND
        checked.mode = "paint"
        self._say(f"Painting checked background in {checked.name!r}; tick 'Proofreading "
                  "active' to click objects again.")

    def fine_tune(self):
        """Fine-tune the chosen model on the checked objects and background, then segment
        the image again, keeping every checked object (one undo step); returns the worker
        (None if refused)."""
        image, layer = self._source.value, self._target.value
        if image is None or layer is None:
            self._say("Choose the image and the Labels layer you corrected.")
            return None
        name = f"{layer.name} checked"
        if name not in self._viewer.layers:
            self._say("Nothing is checked yet: accept (A) the objects that are right, and "
                      "paint checked background, first.")
            return None
        data = np.asarray(image.data[0] if image.multiscale else image.data)
        before = np.asarray(layer.data).copy()
        checked = np.asarray(self._viewer.layers[name].data)
        start = self._tuned if self._model.value == _TUNED else self._model.value
        spacing = tuple(image.scale[-3:]) if layer.ndim == 3 else None
        self._report = None

        def done(result) -> None:
            model, labels = result
            top = np.iinfo(layer.data.dtype).max
            if labels.max() > top:
                self._say(f"Not written: {labels.max()} objects do not fit the {layer.name!r} "
                          f"layer's {layer.data.dtype} ids (up to {top}); convert it to a "
                          "larger type first.")
                return
            written, kept = merge_into_layer(layer, before, labels)
            self._tuned = model
            if _TUNED not in self._model.choices:
                self._model.choices = [*self._model.choices, _TUNED]
            self._model.value = _TUNED
            note = blend_message(self._report) if self._report is not None else ""
            self._say(f"Segmented again with the fine-tuned model: {written} voxels changed"
                      f"{f', {kept} you edited meanwhile kept' if kept else ''}. {note}")

        return self._work.start(_fine_tune, data, before, checked, start, self._minutes.value,
                                spacing, self._work.cancel_event, total=100,
                                desc=f"Fine-tuning on the corrections of {layer.name!r}",
                                returned=done, progress=self._progress)

    def _progress(self, step) -> None:
        if isinstance(step, TrainingProgress):
            advance_progress(self._work.worker.pbar, round(90 * step.fraction), 100)
            self._report = step
            if step.loss is not None:
                self._status.value = (f"Fine-tuning: loss {step.loss:.3f} "
                                      f"({step.elapsed:.0f} s, {100 * step.fraction:.0f}%)")
        else:  # segmenting again: the last tenth
            done, total = step
            advance_progress(self._work.worker.pbar, 90 + round(10 * done / max(total, 1)), 100)
            if done == 0:  # once: a late step must not hide the result's message
                self._status.value = "Segmenting again with the fine-tuned model..."

    def _suggest(self, image) -> None:
        if image is not None and self._model.value != _TUNED:
            self._model.value = model_for_layer(image)[0]

    def set_mode(self, mode: str) -> None:
        self._mode.value = mode
        self._say(f"{mode.capitalize()}: {_HINTS[mode]}.")

    # -- LabelsTool --------------------------------------------------------------------------
    def _mouse_callbacks(self) -> dict:
        return {"drag": self._on_press}

    def _keys(self) -> dict:
        return {"d": lambda _: self.set_mode(DELETE), "m": lambda _: self.set_mode(MERGE),
                "s": lambda _: self.set_mode(SPLIT), "a": lambda _: self.set_mode(ACCEPT),
                "r": lambda _: self.set_mode(REDO), "n": lambda _: self.set_mode(ADD),
                "Enter": lambda _: self.finish(),
                "Escape": lambda _: self._reset_tool()}

    def _reset_tool(self) -> None:
        self._points, self._signs = [], []
        self._show()

    def _on_press(self, layer, event):
        negative = event.button == 2 or "Alt" in event.modifiers
        if event.button not in (1, 2) or not self.in_slice_view(layer):
            return
        start = np.asarray(event.position, float)
        yield
        moved, end = 0.0, start
        while event.type == "mouse_move":
            end = np.asarray(event.position, float)
            moved = max(moved, float(np.linalg.norm(end - start)))
            if self._mode.value == SPLIT and moved * canvas_zoom(self.view_of(layer)) > DRAG_PX:
                self._show_cut(layer, start, end)
            yield
        data = [np.asarray(layer.world_to_data(p), float) for p in (start, end)]
        if moved * canvas_zoom(self.view_of(layer)) <= DRAG_PX:
            self.click(data[0], positive=not negative)
        elif self._mode.value == SPLIT:
            self._show_cut(layer, None, None)
            self.cut(*data)

    # -- internals --------------------------------------------------------------------------
    def _layer_data(self):
        if self._bound is None:
            raise ValueError("Activate proofreading on a Labels layer first.")
        return self._bound.data

    def _on_plane(self, edit, points, **options) -> LabelChange:
        """``edit`` (redo_object, add_object: 2D) on the displayed slice of the layer and
        the image, its change lifted back into the layer's axes."""
        image = self._image()
        if image is None:
            return _no_image(self._bound)
        plane = SlicePlane(self._viewer, self._bound)
        rgb = self._source.value.rgb
        axes = list(plane.axes)
        to_plane = {k: [np.asarray(p, float)[axes] for p in v] for k, v in options.items()
                    if k in ("positive", "negative")}
        change = edit(plane.extract(self._bound.data), plane.extract(image, rgb=rgb),
                      np.asarray(points[0], float)[axes],
                      **{**options, **to_plane})
        full = [np.full(change.indices[0].size, i, np.intp) for i in plane.index]
        full[axes[0]], full[axes[1]] = change.indices
        return LabelChange(tuple(full), change.old_values, change.new_values, change.message)

    def _image(self):
        """The chosen image (colour ones too) when it matches the layer: where split parts
        meet; split_object reads (and makes grey) only the object's window of it."""
        image = self._source.value
        if image is None or self._bound is None:
            return None
        data = image.data[0] if image.multiscale else image.data
        spatial = data.shape[:-1] if image.rgb else data.shape
        return data if tuple(spatial) == self._bound.data.shape else None

    def _apply(self, change: LabelChange, layer: Labels | None = None) -> None:
        """Write ``change`` into ``layer`` (the bound one) as one undo step and say what it
        did (or why nothing)."""
        if change.n_changed:
            merge_changes_into_layer(layer or self._bound, change.indices, change.old_values,
                                     change.new_values)
        self._say(change.message[:1].upper() + change.message[1:] + ".")

    def _say(self, message: str) -> None:
        self._status.value = message
        show_info(message)

    def _show(self) -> None:
        layer = self._bound
        if layer is None:
            if _CLICKS in self._viewer.layers:
                self._viewer.layers[_CLICKS].data = np.empty((0, 2))
            return
        points = np.asarray(self._points, float).reshape(-1, layer.ndim)
        self.preview(_CLICKS, "points", face_color="magenta", border_width=0,
                      size=3 * float(min(layer.scale[-2:]))).data = points

    def _show_cut(self, layer: Labels, start, end) -> None:
        preview = self.preview(_CUT, "shapes", edge_color="magenta",
                                edge_width=0.5 * float(min(self._bound.scale[-2:])))
        if start is None:
            preview.data = []
            return
        line = np.array([layer.world_to_data(start), layer.world_to_data(end)], float)
        preview.data = [(line, "line")]


def _no_image(layer: Labels) -> LabelChange:
    empty = np.empty(0, layer.data.dtype)
    return LabelChange(tuple(np.empty(0, np.intp) for _ in range(layer.ndim)), empty, empty,
                       "choose the image the labels belong to (same grid) first")


def _fine_tune(image, labels, checked, start, minutes, spacing, cancel):
    """Worker body: yields training reports and segmentation steps; returns (model,
    labels)."""
    model, labels, _ = yield from fine_tune_on_corrections_steps(
        image, labels, checked, start, minutes=minutes, spacing=spacing,
        cancelled=cancel.is_set)
    return model, labels
