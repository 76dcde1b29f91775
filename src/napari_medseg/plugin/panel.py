"""Dock widget: one MedSeg panel with every tool by name, over one image and labels picker.

Nine docked tools cut to one-letter tabs, or stacked until the window is taller than a
screen, hide what the plugin does. The panel shows the tools as a grid of named buttons;
the chosen one fills the scrollable area below, so the panel's height stays that of one
tool. The image and labels chosen at the top are every tool's (each tool's own pickers
are hidden and follow them); each tool stays available on its own from the Plugins menu.
"""

from __future__ import annotations

import napari
from magicgui.widgets import Container, PushButton, create_widget
from napari.layers import Image, Labels
from napari.utils.notifications import show_info
from qtpy.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from napari_medseg.plugin.box_click_widget import BoxClickWidget
from napari_medseg.plugin.display_widget import DisplayWidget
from napari_medseg.plugin.interpolation_widget import InterpolationWidget
from napari_medseg.plugin.labels_target import ImageAsLabelsButton, new_labels_for_image
from napari_medseg.plugin.livewire_widget import LiveWireWidget
from napari_medseg.plugin.measure_widget import MeasureWidget
from napari_medseg.plugin.model_widget import ModelWidget
from napari_medseg.plugin.proofread_widget import ProofreadWidget
from napari_medseg.plugin.readers import NIFTI_PATTERNS, prefer_this_reader
from napari_medseg.plugin.recovery_watch import restore_into
from napari_medseg.plugin.train_widget import TrainWidget
from napari_medseg.plugin.view_planes import ViewPlanesWidget
from napari_medseg.recovery import recoverable

__all__ = ["MedSegPanel"]

# name, widget class, {"image" | "labels": the widget's own picker of it}
TOOLS = (
    ("Box + click", BoxClickWidget, {"image": "_source", "labels": "_target"}),
    ("Segment", ModelWidget, {"image": "_source"}),
    ("Proofread", ProofreadWidget, {"image": "_source", "labels": "_target"}),
    ("Live-wire", LiveWireWidget, {"image": "_source", "labels": "_target"}),
    ("Interpolate", InterpolationWidget, {"labels": "_layer"}),
    ("Train", TrainWidget, {"image": "_source", "labels": "_target"}),
    ("Measure", MeasureWidget, {"labels": "_target"}),
    ("Planes", ViewPlanesWidget, {"image": "_layer"}),
    ("Display", DisplayWidget, {"image": "_source"}),
)
_COLUMNS = 3


class MedSegPanel(Container):
    """Every MedSeg tool in one dock widget: pick the image and labels once, then a tool.

    ``tools`` maps each tool's name to its widget (the same classes the Plugins menu
    docks one by one); :meth:`show_tool` switches the area below the buttons.
    """

    def __init__(self, napari_viewer: napari.Viewer):
        self._viewer = napari_viewer
        self._image_picker = create_widget(annotation=Image, label="image")
        self._labels_picker = create_widget(annotation=Labels, label="labels")
        self._as_labels = ImageAsLabelsButton(napari_viewer, self._labels_picker)
        self._new_labels = PushButton(text="New labels for the image")
        left = recoverable()  # journals of a viewer that did not close cleanly
        self._restore = PushButton(text=f"Restore unsaved edits of a crashed viewer "
                                        f"({len(left)})", visible=bool(left))
        self.tools = {name: kind(napari_viewer) for name, kind, _ in TOOLS}
        self._roles = {name: roles for name, _, roles in TOOLS}
        for name, tool in self.tools.items():
            for attribute in self._roles[name].values():
                getattr(tool, attribute).visible = False
            if isinstance(getattr(tool, "_as_labels", None), ImageAsLabelsButton):
                tool._as_labels.offered = lambda: False  # the panel's button offers it
                tool._as_labels.visible = False
            if isinstance(tool, TrainWidget):
                tool.shared_pickers = True
        super().__init__(widgets=[self._restore, self._image_picker, self._labels_picker,
                                  self._as_labels, self._new_labels])
        self._buttons = QButtonGroup(self.native)
        grid, self._shown = QGridLayout(), 0
        for k, name in enumerate(self.tools):
            button = QPushButton(name)
            button.setCheckable(True)
            button.setToolTip(f"{name}: {type(self.tools[name]).__doc__.splitlines()[0]}")
            self._buttons.addButton(button, k)
            grid.addWidget(button, k // _COLUMNS, k % _COLUMNS)
        buttons, holder, column = QWidget(), QWidget(), QVBoxLayout()
        buttons.setLayout(grid)
        column.setContentsMargins(0, 0, 0, 0)
        # the tools one above the other, all hidden but the chosen one: the area takes its
        # height (a stacked widget takes the tallest tool's and spreads a short one thin)
        for tool in self.tools.values():
            column.addWidget(tool.native)
        column.addStretch(1)
        holder.setLayout(column)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(holder)
        self.native.layout().addWidget(buttons)
        self.native.layout().addWidget(scroll, 1)
        self._buttons.idClicked.connect(lambda k: self.show_tool(list(self.tools)[k]))
        self._image_picker.changed.connect(self._image_chosen)
        self._labels_picker.changed.connect(lambda _: self._share())
        self._new_labels.changed.connect(self._add_labels)
        self._restore.changed.connect(self._restore_edits)
        prefer_this_reader(patterns=NIFTI_PATTERNS)  # File > Open of a .nii asks no more
        if left:
            show_info("MedSeg kept the unsaved label edits of a viewer that did not close "
                      "cleanly: 'Restore unsaved edits' in the MedSeg panel adds them.")
        self.show_tool("Box + click")
        self._image_chosen(self._image_picker.value)

    @property
    def tool(self) -> str:
        """The name of the tool shown."""
        return list(self.tools)[self._shown]

    def show_tool(self, name: str) -> None:
        """Show the tool ``name`` (a key of :attr:`tools`) below the buttons."""
        self._shown = k = list(self.tools).index(name)
        for j, tool in enumerate(self.tools.values()):
            tool.native.setVisible(j == k)
        self._buttons.button(k).setChecked(True)

    def reset_choices(self, *_) -> None:
        """napari calls this on every change of the layer list: the tools' hidden pickers
        follow it too (they are not this container's children), then take its choice."""
        for tool in self.tools.values():
            tool.reset_choices()
        super().reset_choices()
        self._share()

    def _image_chosen(self, image: Image | None) -> None:
        # the tool for the layer shown first: a CT's display window, else box + click
        if image is not None and "nifti" in image.metadata:
            self.show_tool("Display")
        self._share()

    def _share(self) -> None:
        chosen = {"image": self._image_picker.value, "labels": self._labels_picker.value}
        for name, tool in self.tools.items():
            for role, attribute in self._roles[name].items():
                picker, layer = getattr(tool, attribute), chosen[role]
                if layer is None or picker.value is layer:
                    continue
                if layer not in picker.choices:  # a layer list change it has not seen yet
                    picker.reset_choices()
                if layer in picker.choices:  # not while the viewer closes, layer by layer
                    picker.value = layer

    def _restore_edits(self, *_) -> None:
        added = restore_into(self._viewer)
        self._restore.visible = False
        show_info(f"Restored {len(added)} label layer(s): "
                  f"{', '.join(layer.name for layer in added)}.")

    def _add_labels(self, *_) -> None:
        image = self._image_picker.value
        if image is None:
            return
        layer = new_labels_for_image(self._viewer, image, name=f"{image.name} annotations")
        self.reset_choices()
        self._labels_picker.value = layer
