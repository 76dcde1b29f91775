"""Base of the dock widgets whose mouse tool draws objects into a Labels layer.

Such a widget has an image and a Labels layer picker, a "fill with" choice (next free
id or the layer's selected label), "overwrite other labels" and an "active" checkbox.
While active, its mouse callbacks and keys are bound to the Labels layer (in pan-zoom
mode, so clicks reach the tool instead of the brush); they move with the layer picker
and are removed when the tool is switched off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, Widget, create_widget
from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning

from napari_medseg.plugin.labels_target import ImageAsLabelsButton
from napari_medseg.plugin.layer_edit import commit_mask_to_layer, watch_label_maximum
from napari_medseg.plugin.recovery_watch import journal_layer
from napari_medseg.plugin.view_planes import side_copies, watch_side_copies

__all__ = ["LabelsTool"]

NEXT_FREE, SELECTED = "next free id", "selected label"
DRAG_PX = 4  # a press that moves further than this (screen pixels) is a drag, not a click


class LabelsTool(Container):
    """Dock widget for a mouse tool that writes into a Labels layer.

    Subclasses give the tool's name, its callbacks (:meth:`_mouse_callbacks`),
    keys (:meth:`_keys`) and what switching it off discards (:meth:`_reset_tool`).
    """

    tool_name = "tool"
    ready_message = "{tool} on {layer!r}."  # status once bound; formatted with the layer name
    mouse_pan = True  # False: dragging belongs to the tool (the wheel still zooms)
    helper_layers: tuple[str, ...] = ()  # the tool's preview layers, removed when it is off

    def __init__(self, napari_viewer: napari.Viewer, *, active_text: str, status: str,
                 after_active: Sequence[Widget] = (), after_status: Sequence[Widget] = ()):
        self._viewer = napari_viewer
        self._source = create_widget(annotation=Image, label="image")
        self._target = create_widget(annotation=Labels, label="labels")
        self._as_labels = ImageAsLabelsButton(napari_viewer, self._target)
        self._label_choice = ComboBox(choices=[NEXT_FREE, SELECTED], value=NEXT_FREE,
                                      label="fill with")
        self._overwrite = CheckBox(value=False, text="overwrite other labels")
        self._active = CheckBox(value=False, text=active_text)
        self._status = Label(value=status)
        self._status.native.setWordWrap(True)
        super().__init__(widgets=[self._source, self._target, self._as_labels, self._label_choice,
                                  self._overwrite, self._active, *after_active, self._status,
                                  *after_status])
        self._bound: Labels | None = None
        # copies of the bound layer in side views (view_planes): id -> (copy, its view)
        self._copies: dict[int, tuple[Labels, object]] = {}
        self._view = napari_viewer  # the view (main or side) the current object is drawn in
        self._active.changed.connect(self._toggle)
        self._target.changed.connect(lambda _: self._active.value and self._rebind())

    # -- what subclasses define -------------------------------------------------------------
    def _mouse_callbacks(self) -> dict[str, Callable]:
        """``{"drag" | "move" | "double_click": callback}`` to bind to the layer."""
        raise NotImplementedError

    def _keys(self) -> dict[str, Callable[[Labels], None]]:
        """Key bindings (napari key names) while active."""
        raise NotImplementedError

    def _reset_tool(self) -> None:
        """Drop the object in progress (when the tool is switched off or moved)."""
        raise NotImplementedError

    def _layers(self) -> tuple[Image, Labels]:
        """The chosen image and the bound Labels layer, checked to match in shape."""
        layer, image = self._bound, self._source.value
        if layer is None or image is None:
            raise ValueError(f"Choose an image and activate {self.tool_name} on a Labels layer.")
        spatial = image.data.shape[:-1] if image.rgb else image.data.shape
        if tuple(spatial) != tuple(layer.data.shape):
            raise ValueError(f"Image {image.name!r} {tuple(spatial)} and labels {layer.name!r} "
                             f"{layer.data.shape} have different shapes.")
        return image, layer

    # -- committing -------------------------------------------------------------------------
    def _write(self, layer: Labels, mask: np.ndarray, offset: tuple[int, ...],
               verb: str) -> int | None:
        """Commit ``mask`` as one undo step with the widget's label and overwrite choices;
        reset the tool and report. Returns the label written, or None if refused."""
        label = layer.selected_label if self._label_choice.value == SELECTED else None
        mode = "overwrite" if self._overwrite.value else "preserve"
        try:
            edit = commit_mask_to_layer(layer, mask, label, mode=mode, offset=offset,
                                        select=False)
        except ValueError as err:
            show_warning(str(err))
            return None
        if not edit.n_changed:  # nothing written: the object stays for another try
            message = ("Nothing was written: every pixel of the mask already belongs to "
                       "another object (or to this one). Tick 'overwrite other labels' to "
                       "paint over them.")
            self._status.value = message
            show_warning(message)
            return None
        layer.selected_label = edit.label
        self._reset_tool()
        message = f"{verb} label {edit.label}: {edit.n_changed} pixels changed."
        self._status.value = message
        show_info(message)
        return edit.label

    def in_slice_view(self, layer: Labels | None = None) -> bool:
        """Whether the view of ``layer`` (the bound layer: the main view) shows a 2D slice:
        in the 3D view the tools leave the mouse to the camera."""
        return self.view_of(layer).dims.ndisplay == 2

    def preview(self, name: str, kind: str, **style):
        """The tool's preview layer ``name`` ("points" or "shapes"), made on first use in the
        bound Labels layer's geometry (again if that layer's dimensions changed)."""
        viewer, layer = self._viewer, self._bound
        if name in viewer.layers and viewer.layers[name].ndim == layer.ndim:
            return viewer.layers[name]
        if name in viewer.layers:
            viewer.layers.remove(name)
        add = viewer.add_shapes if kind == "shapes" else viewer.add_points
        made = add(name=name, ndim=layer.ndim, scale=layer.scale, translate=layer.translate,
                   **style)
        viewer.layers.selection.active = layer  # keep clicks going to the Labels layer
        return made

    def view_of(self, layer: Labels | None):
        """The viewer (or side view) showing ``layer``: the bound layer or a copy of it."""
        return self._copies.get(id(layer), (None, self._viewer))[1]

    def copy_made(self, layer, copy, view) -> None:
        """A side view copied ``layer`` (view_planes.watch_side_copies): bind to the copy."""
        if layer is self._bound:
            self._attach(copy, view)

    def _view_changed(self, event=None) -> None:
        if self._bound is not None:  # dragging rotates the camera in 3D, whatever the tool
            self._bound.mouse_pan = self.mouse_pan if self.in_slice_view() else True

    # -- activation -------------------------------------------------------------------------
    def _toggle(self, active: bool) -> None:
        self._reset_tool()
        if active:
            self._rebind()
        else:
            self._unbind()
            for name in self.helper_layers:  # previews belong to the tool, not the user
                if name in self._viewer.layers:
                    self._viewer.layers.remove(name)

    def _rebind(self) -> None:
        self._unbind()
        layer = self._target.value
        if layer is None:
            show_warning(f"Choose a Labels layer for {self.tool_name}.")
            self._active.value = False
            return
        layer.mode = "pan_zoom"
        self._bound = layer
        self._view_changed()
        self._viewer.dims.events.ndisplay.connect(self._view_changed)
        self._attach(layer, None)
        watch_side_copies(self)
        for copy, view in side_copies(self._viewer, layer):
            self._attach(copy, view)
        self._viewer.layers.selection.active = layer
        self._status.value = self.ready_message.format(tool=self.tool_name, layer=layer.name)

    def _unbind(self) -> None:
        layer, self._bound = self._bound, None
        if layer is None:
            return
        self._viewer.dims.events.ndisplay.disconnect(self._view_changed)
        for bound in (layer, *(copy for copy, _ in self._copies.values())):
            for kind, callback in self._mouse_callbacks().items():
                callbacks = getattr(bound, f"mouse_{kind}_callbacks")
                if callback in callbacks:
                    callbacks.remove(callback)
            for key in self._keys():
                bound.bind_key(key, None)
            bound.mouse_pan = True
        self._copies.clear()
        self._view = self._viewer
        self._status.value = f"{self.tool_name} is off."

    def _attach(self, layer: Labels, view) -> None:
        """Bind the tool's mouse callbacks and keys to ``layer`` (a side view's copy when
        ``view`` is given)."""
        if view is not None:
            self._copies[id(layer)] = (layer, view)
            layer.mouse_pan = self.mouse_pan
        else:
            watch_label_maximum(layer)
            journal_layer(layer)  # its edits survive a crash
        for kind, callback in self._mouse_callbacks().items():
            getattr(layer, f"mouse_{kind}_callbacks").append(callback)
        for key, action in self._keys().items():
            layer.bind_key(key, action, overwrite=True)
