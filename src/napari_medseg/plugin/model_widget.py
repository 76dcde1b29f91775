"""Dock widget: run a segmentation model on an image layer in a worker thread; lazy or
very large images are segmented block by block into a zarr folder
(:func:`~napari_medseg.blockwise.segment_blockwise`), shown as a zarr-backed layer."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    PushButton,
    SpinBox,
    create_widget,
)
from napari.layers import Image
from napari.utils.notifications import show_info, show_warning

from napari_medseg.io import is_tiff_path
from napari_medseg.model_files import available_models, suggested_model
from napari_medseg.model_runner import SegmentationModel, load_model
from napari_medseg.object_size import SizeEstimate
from napari_medseg.plugin.background import BackgroundWork
from napari_medseg.validation import holds_colour

__all__ = ["BLOCKWISE_PIXELS", "ModelWidget", "add_result_layers", "blockwise_worker",
           "segment_worker", "start_segmentation"]

_FILE = "model file..."
_DEVICES = ("auto", "cpu", "cuda", "mps")
BLOCKWISE_PIXELS = 2**27  # in-memory images above this (11,585^2 px) are segmented blockwise


class ModelWidget(Container):
    """Segment an image layer with a built-in model or a model file."""

    def __init__(self, napari_viewer: napari.Viewer):
        self._viewer = napari_viewer
        self._source = create_widget(annotation=Image, label="image")
        self._model = ComboBox(choices=[*available_models(), _FILE], label="model")
        self._file = FileEdit(mode="r", filter="*.pt *.pth *.torchscript *.zip", label="file",
                              visible=False)
        self._device = ComboBox(choices=_DEVICES, value="auto", label="device")
        self._tile = SpinBox(value=0, min=0, max=2048, step=16, label="tile (0: model's)")
        self._overlap = FloatSpinBox(value=0.25, min=0.0, max=0.9, step=0.05, label="overlap")
        self._fg = FloatSpinBox(value=0.0, min=0.0, max=0.99, step=0.05,
                                label="object threshold (0: model's)",
                                tooltip="Foreground probability an object's pixels reach; 0: "
                                        "the value chosen with the model")
        # lower splits touching objects more readily
        self._split = FloatSpinBox(value=1.0, min=0.1, max=10.0, step=0.1,
                                   label="split depth (px)")
        self._diameter = FloatSpinBox(
            value=0.0, min=0.0, max=5000.0, step=1.0, label="object diameter (px)",
            tooltip="The objects' median diameter in pixels (a stack's yx planes). 0: "
                    "estimated. Images whose objects are far from the model's training size "
                    "are zoomed to it.")
        self._flips = CheckBox(value=False, text="average mirrored predictions (4x slower)")
        self._probabilities = CheckBox(value=False, text="also add probability maps")
        self._zarr = FileEdit(mode="w", filter="*.zarr", label="large images into",
                              tooltip="zarr folder for the labels of lazy (zarr, big TIFF) or "
                                      "very large images, segmented block by block; empty: "
                                      "a new folder in the temporary directory")
        # empty (not the current folder, which FileEdit shows for "") means a temporary one
        self._zarr.line_edit.value = ""
        self._zarr.line_edit.native.setPlaceholderText("a temporary folder")
        self._run_button = PushButton(text="Segment")
        self._cancel_button = PushButton(text="Cancel")
        self._status = Label(value="Choose an image and a model.")
        self._status.native.setWordWrap(True)
        super().__init__(widgets=[
            self._source, self._model, self._file, self._device, self._tile, self._overlap,
            self._fg, self._split, self._diameter, self._flips, self._probabilities, self._zarr,
            self._run_button,
            self._cancel_button, self._status])
        self._work = BackgroundWork([self._run_button], self._cancel_button, self._status,
                                    "Cancelled; no layer was added.")
        self._model.changed.connect(lambda v: setattr(self._file, "visible", v == _FILE))
        self._source.changed.connect(self._suggest)
        self._suggest(self._source.value)
        self._run_button.changed.connect(self.run)

    def _suggest(self, image: Image | None) -> None:
        """Choose the built-in model made for the image's kind (colour, stack), and say so."""
        if image is None or self._model.value == _FILE:
            return
        name, kind = model_for_layer(image)
        lost = lost_voxel_size(image)
        if name != self._model.value or lost or self._status.value.endswith("to keep it."):
            self._model.value = name
            self._status.value = lost or f"{name} chosen: it is the built-in model for {kind}."

    def run(self):
        """Start segmenting the chosen image; returns the worker (None if refused)."""
        image = self._source.value
        if image is None:
            show_warning("Open an image first.")
            return None
        source = self._file.value if self._model.value == _FILE else self._model.value
        if self._model.value == _FILE and not Path(source).is_file():
            show_warning("Choose a model file.")
            return None
        device = None if self._device.value == "auto" else self._device.value
        options = {"overlap": self._overlap.value,
                   "foreground_threshold": self._fg.value or None,
                   "split_depth": self._split.value, "test_time_flips": self._flips.value,
                   "diameter": self._diameter.value or None,
                   # voxel size of a stack (models on its planes resample by it)
                   "spacing": tuple(image.scale[-3:]) if image.ndim == 3 else None}
        out = str(self._zarr.value)
        return start_segmentation(self._work, self._viewer, image, source, options,
                                  device=device, tile=self._tile.value,
                                  with_prob=self._probabilities.value,
                                  zarr_out=out if out not in ("", ".") else None)

    def cancel(self) -> None:
        """Stop the running model; no layer is added."""
        self._work.cancel()


def lost_voxel_size(image: Image) -> str:
    """A warning when a TIFF stack was opened by another reader than MedSeg's with no voxel
    size (napari's drops it; a planes model then takes its slices as cubes), else ""."""
    path, reader = image.source.path, image.source.reader_plugin
    if (path and is_tiff_path(path) and reader
            and reader != "napari-medseg" and image.ndim >= 3
            and all(s == 1 for s in image.scale)):
        return (f"{image.name!r} was opened by {reader}'s reader, which drops a TIFF's voxel "
                "size: open it with MedSeg (File > Open with Plugin > MedSeg) to keep it.")
    return ""


def model_for_layer(image: Image) -> tuple[str, str]:
    """The built-in model made for an Image layer's kind, and the kind in words. Grey
    stored as RGB(A) (a fluorescence PNG through napari's reader) is grey."""
    data = image.data[-1] if image.multiscale else image.data  # the smallest level
    if image.rgb and data.ndim == 4:
        data = data[data.shape[0] // 2]
    colour = image.rgb and holds_colour(data)
    kind = ("a colour image" if colour else "a grey image stored as RGB" if image.rgb
            else "a 3D image" if image.ndim == 3 else "a 2D image")
    return suggested_model(colour, image.ndim), kind  # napari's ndim leaves out RGB


def add_result_layers(viewer: napari.Viewer, image: Image, model: SegmentationModel,
                      labels: np.ndarray, prob: np.ndarray | None,
                      size: SizeEstimate | None = None) -> str:
    """Add a model's labels (and probabilities) over ``image``; returns the message shown,
    with the object size they were made at."""
    common = {"scale": image.scale[-labels.ndim:], "translate": image.translate[-labels.ndim:]}
    name = f"{image.name} {model.info.name}"
    if prob is not None:
        viewer.add_image(prob, name=f"{name} probabilities", channel_axis=0, colormap="magma",
                         blending="additive", visible=False, **common)
    viewer.add_labels(labels, name=name, **common)
    kind = "objects" if model.info.output == "instance-boundary" else "classes"
    if isinstance(labels, np.ndarray):
        message = f"{model.info.name}: {len(np.unique(labels)) - 1} {kind}"
        message += f"; {size}." if size is not None else "."
    else:  # blockwise, in zarr: its record says what it found without reading it all
        record = labels.attrs["napari-medseg"]
        found = f"{record['objects']} objects" if "objects" in record else "classes"
        message = (f"{model.info.name}: {found}, block by block into {labels.store_path} "
                   f"({record['skipped']} of {record['blocks']} blocks empty).")
    why = model.info.mismatch(image.data[0] if image.multiscale else image.data)
    if why:  # the model was made for other images: say so, and which to take
        message += (f" Check the result: this is {why}"
                    f"{model.alternative(image.data)}.")
        show_warning(message)
    else:
        show_info(message)
    return message


def start_segmentation(work: BackgroundWork, viewer: napari.Viewer, image: Image, source,
                       options: dict, *, device: str | None = None, tile: int = 0,
                       with_prob: bool = False, finished: Callable[[], None] | None = None,
                       zarr_out: str | None = None):
    """Segment ``image`` with the model ``source`` (name or file) as ``work``'s job; the
    result layers are added unless it is cancelled, and the status line says what was
    found. A lazy image (dask, zarr) or one above :data:`BLOCKWISE_PIXELS` is segmented
    block by block into the zarr folder ``zarr_out`` (default: a new one in the
    temporary directory). Returns the worker (None if another job runs)."""
    data = image.data[0] if image.multiscale else image.data

    def add_layers(result) -> None:
        work.status.value = add_result_layers(viewer, image, *result)

    desc = f"Segmenting {image.name!r} with {Path(str(source)).name}"
    if isinstance(data, np.ndarray) and data.size <= BLOCKWISE_PIXELS:
        return work.start(segment_worker, str(source), device, data, tile, options, with_prob,
                          work.cancel_event, desc=desc, returned=add_layers, finished=finished)
    if zarr_out is None:
        folder = Path(tempfile.gettempdir()) / "napari-medseg"
        folder.mkdir(exist_ok=True)
        zarr_out = str(folder / f"{image.name}-{int(time.time())}.zarr")
    # it removes its unfinished zarr folder when cancelled
    return work.start(blockwise_worker, str(source), device, data, tile, options, zarr_out,
                      work.cancel_event, desc=f"{desc}, block by block", returned=add_layers,
                      finished=finished, stops_itself=True)


def segment_worker(source, device, data, tile, options, with_prob, cancel: threading.Event):
    """Worker body: yields (done, total) progress; returns (model, labels, probabilities,
    size estimate)."""
    model = load_model(source, device=device)
    model.test_time_flips = options.get("test_time_flips", False)
    tile_shape = (tile,) * model.info.dims if tile else None
    post = {"foreground_threshold": options["foreground_threshold"],
            "split_depth": options["split_depth"]}
    result = yield from model.segment_steps(data, tile_shape, options["overlap"], cancel.is_set,
                                            **post, spacing=options.get("spacing"),
                                            probabilities=with_prob, size=True,
                                            diameter=options.get("diameter"))
    return (model, *result) if with_prob else (model, result[0], None, result[1])


def blockwise_worker(source, device, data, tile, options, out: str, cancel: threading.Event):
    """Worker body for lazy or huge images: yields (done, total) block steps; returns
    (model, labels as a writable zarr array, None)."""
    from napari_medseg.blockwise import open_labels, segment_blockwise_steps

    model = load_model(source, device=device)
    model.test_time_flips = options.get("test_time_flips", False)
    tile_shape = (tile,) * model.info.dims if tile else None
    yield from segment_blockwise_steps(
        model, data, out, cancelled=cancel.is_set, tile_shape=tile_shape,
        overlap=options["overlap"], foreground_threshold=options["foreground_threshold"],
        split_depth=options["split_depth"], spacing=options.get("spacing"),
        diameter=options.get("diameter"))
    # opened for writing: the layer is edited in place, chunk by chunk
    return model, open_labels(out, mode="r+"), None
