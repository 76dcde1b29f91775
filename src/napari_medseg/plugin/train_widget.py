"""Dock widget: train or fine-tune a model on the user's labels, then predict with it."""

from __future__ import annotations

import threading
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
from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QWidget

from napari_medseg.model_files import available_models
from napari_medseg.model_runner import SegmentationModel
from napari_medseg.networks import ARCHITECTURES
from napari_medseg.plugin.background import BackgroundWork, advance_progress
from napari_medseg.plugin.labels_target import ImageAsLabelsButton
from napari_medseg.plugin.model_widget import start_segmentation
from napari_medseg.training import (
    BLEND,
    BLEND_CHOICES,
    TASKS,
    TrainingProgress,
    blend_message,
    read_training_pairs,
    setup_message,
    train_steps,
)

__all__ = ["LossPlot", "TrainWidget"]

_SCRATCH, _FILE = "scratch", "model file..."
_LAYERS, _FOLDER = "image + labels layers", "folder of pairs"


class LossPlot(QWidget):
    """Training (blue) and validation (orange) loss per epoch, on a log scale, with its
    axes (loss at the bottom and top of the scale, epochs) and a legend."""

    def __init__(self):
        super().__init__()
        self.setMinimumHeight(130)
        self.train: list[float] = []
        self.validation: list[float] = []

    def clear(self) -> None:
        self.train, self.validation = [], []
        self.update()

    def add(self, epoch: int, loss: float | None, validation: float | None) -> None:
        """The losses of ``epoch`` (1-based); a second report of an epoch replaces its."""
        for series, value in ((self.train, loss), (self.validation, validation)):
            if value is not None:
                del series[epoch - 1:]
                series.extend([value] * (epoch - len(series)))  # an epoch it skipped
        self.update()

    def paintEvent(self, event) -> None:  # Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        grey, colours = QColor(140, 140, 140), (QColor(80, 160, 255), QColor(255, 160, 60))
        rect = self.rect().adjusted(44, 16, -6, -18)  # room for the axes' numbers
        painter.setPen(grey)
        painter.drawRect(rect)
        series = [s for s in (self.train, self.validation) if s]
        if not series:
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "loss per epoch")
            return
        values = np.log10(np.maximum(np.concatenate(series), 1e-6))
        lo, hi = float(values.min()), float(values.max())
        hi = hi if hi > lo else lo + 1
        n = max(len(s) for s in series)
        # axes: the loss at the top and bottom of the (log) scale, the epochs shown
        painter.drawText(2, rect.top() + 10, f"{10 ** hi:.3g}")
        painter.drawText(2, rect.bottom(), f"{10 ** lo:.3g}")
        painter.drawText(rect.left(), rect.bottom() + 14, "epoch 1")
        painter.drawText(rect.right() - 50, rect.bottom() + 14, f"epoch {n}")
        # legend, with the last values
        x = rect.left()
        for name, data, colour in (("training", self.train, colours[0]),
                                   ("validation", self.validation, colours[1])):
            if data:
                painter.setPen(colour)
                text = f"{name} loss {data[-1]:.3f}"
                painter.drawText(x, 12, text)
                x += painter.fontMetrics().horizontalAdvance(text) + 12
        for data, colour in ((self.train, colours[0]), (self.validation, colours[1])):
            if not data:
                continue
            points = [QPointF(rect.left() + rect.width() * k / max(n - 1, 1),
                              rect.bottom() - rect.height() * (np.log10(max(v, 1e-6)) - lo)
                              / (hi - lo)) for k, v in enumerate(data)]
            painter.setPen(QPen(colour, 2))
            painter.drawPolyline(QPolygonF(points))


class TrainWidget(Container):
    """Train a model on image + Labels layers (or a folder), then segment with it."""

    shared_pickers = False  # True in the MedSeg panel: its pickers choose the layers

    def __init__(self, napari_viewer: napari.Viewer):
        self._viewer = napari_viewer
        self._data = ComboBox(choices=[_LAYERS, _FOLDER], label="data")
        self._source = create_widget(annotation=Image, label="image")
        self._target = create_widget(annotation=Labels, label="labels")
        self._as_labels = ImageAsLabelsButton(napari_viewer, self._target,
                                              offered=lambda: self._data.value == _LAYERS)
        self._folder = FileEdit(mode="d", label="folder", visible=False)
        self._architecture = ComboBox(choices=ARCHITECTURES, value="unet", label="network")
        self._dims = ComboBox(choices=[2, 3], value=2, label="dims")
        self._task = ComboBox(choices=TASKS, value="instances", label="task")
        self._init = ComboBox(choices=[_SCRATCH, *available_models(), _FILE], label="start from")
        self._init_file = FileEdit(mode="r", filter="*.pt *.pth", label="model", visible=False)
        self._blend = ComboBox(
            choices=[("auto: best on validation", "auto"), *((f"{b:g}", b) for b in
                                                            BLEND_CHOICES[::-1])],
            value=BLEND, label="fine-tuned share", visible=False,
            tooltip="The saved model mixes the fine-tuned weights with the start model's: 1 "
                    "keeps only the fine-tuned ones, lower keeps more of what the model knew; "
                    "auto takes the mix that segments the validation data best (F1 on its "
                    "objects; 0: the start model, when fine-tuning did not help there).")
        self._minutes = FloatSpinBox(value=5.0, min=0.0, max=1440.0, step=1.0,
                                     label="minutes (0: by epochs)")
        self._epochs = SpinBox(value=0, min=0, max=100_000, label="epochs (0: auto)")
        self._patch = SpinBox(value=0, min=0, max=512, step=16, label="patch (0: auto)")
        self._sparse = CheckBox(value=False, text="sparse: label 0 = not annotated")
        self._background = SpinBox(value=1, min=1, max=2**31 - 1,
                                   label="checked background label", visible=False)
        self._output = FileEdit(mode="w", filter="*.pt", label="save to",
                                value=Path.home() / "napari-medseg-model.pt")
        self._train_button = PushButton(text="Train")
        self._cancel_button = PushButton(text="Cancel")
        self._predict_button = PushButton(text="Predict on this layer", enabled=False)
        self._status = Label(value="Choose an image and its labels.")
        self._status.native.setWordWrap(True)
        self.plot = LossPlot()
        super().__init__(widgets=[
            self._data, self._source, self._target, self._as_labels, self._folder,
            self._architecture, self._dims, self._task, self._init, self._init_file, self._blend,
            self._minutes, self._epochs, self._patch, self._sparse, self._background, self._output,
            self._train_button, self._cancel_button, self._status, self._predict_button])
        self.native.layout().insertWidget(self.index(self._status), self.plot)
        self._work = BackgroundWork([self._train_button, self._predict_button],
                                    self._cancel_button, self._status,
                                    "Cancelled; nothing was saved or added.")
        self._predict_button.enabled = False
        self._saved: Path | None = None
        self._blend_note = ""  # how fine-tuning chose its share, for the final message
        self._started = ""  # what the running job trains, for the status line
        self._data.changed.connect(self._show_data_choice)
        self._init.changed.connect(self._show_init_choice)
        self._sparse.changed.connect(lambda v: setattr(self._background, "visible", v))
        self._train_button.changed.connect(self.train)
        self._predict_button.changed.connect(self.predict)

    def _show_init_choice(self, value: str) -> None:
        self._init_file.visible = value == _FILE
        self._blend.visible = value != _SCRATCH

    def _show_data_choice(self, value: str) -> None:
        # the image layer stays: it is what "Predict on this layer" segments
        self._target.visible = value == _LAYERS and not self.shared_pickers
        self._as_labels.reset_choices()
        self._folder.visible = value != _LAYERS

    # -- training ----------------------------------------------------------------------------
    def train(self):
        """Start training; returns the worker (None if refused, with the reason shown)."""
        if self._work.running:
            show_warning("Already running.")
            return None
        try:
            images, labels = self._training_data()
        except ValueError as err:
            self._refuse(str(err))
            return None
        init = None
        if self._init.value == _FILE:
            init = str(self._init_file.value)
            if not Path(init).is_file():
                self._refuse("Choose the model file to start from.")
                return None
        elif self._init.value != _SCRATCH:
            init = self._init.value
        dims = self._dims.value
        options = {
            "architecture": self._architecture.value, "dims": dims, "task": self._task.value,
            "init": init, "blend": self._blend.value, "sparse": self._sparse.value,
            # from scratch on a colour layer: a colour model (a start model decides for itself)
            "rgb": init is None and self._data.value != _FOLDER and self._source.value.rgb,
            "background_label": self._background.value if self._sparse.value else None,
            "time_limit": self._minutes.value * 60 or None,
            "epochs": self._epochs.value or None,
            "patch_shape": (self._patch.value,) * dims if self._patch.value else None,
        }
        if options["time_limit"] is None and options["epochs"] is None:
            options["time_limit"] = 300.0
        self._blend_note = ""
        self.plot.clear()
        self._started = f"Training a {dims}D {options['architecture']} on {len(images)} image(s)"
        return self._work.start(_train, images, labels, options, self._work.cancel_event,
                                desc=self._started, total=100, returned=self._trained,
                                progress=self._progress, finished=self._finished)

    def _training_data(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if self._data.value == _FOLDER:
            return read_training_pairs(self._folder.value)
        image, labels = self._source.value, self._target.value
        if image is None or labels is None:
            raise ValueError("Choose an image layer and the Labels layer annotating it.")
        data = image.data[0] if image.multiscale else image.data
        return [np.asarray(data)], [np.asarray(labels.data)]

    def _progress(self, progress: TrainingProgress) -> None:
        advance_progress(self._work.worker.pbar, round(100 * progress.fraction), 100)
        if progress.loss is not None:  # keyed by epoch: a report repeating one replaces it
            self.plot.add(progress.epoch, progress.loss, progress.validation_loss)
        if progress.blend is not None:  # the last report: how fine-tuning ended
            self._blend_note = blend_message(progress)
            self._status.value = self._blend_note
        elif progress.loss is not None:
            val = "" if progress.validation_loss is None else \
                f", validation {progress.validation_loss:.3f}"
            self._status.value = (f"Epoch {progress.epoch}: loss {progress.loss:.3f}{val} "
                                  f"({progress.elapsed:.0f} s, {100 * progress.fraction:.0f}%; "
                                  f"{setup_message(progress)})")
        else:  # the first report, before any step
            # the first step compiles: a wait the user should know about (Cancel waits too)
            wait = "; compiling the network first, about 30 s on a CPU" if progress.compiled \
                else ""
            self._status.value = f"{self._started} ({setup_message(progress)}{wait})..."

    def _trained(self, model: SegmentationModel) -> None:
        path = _free_path(Path(self._output.value))
        path.parent.mkdir(parents=True, exist_ok=True)
        model.info.name = path.stem
        model.save(path)
        self._saved = path
        self._predict_button.enabled = True
        self._status.value = f"Trained; saved {path}. {self._blend_note} Predict, or load " \
                             "it in 'Segment'."
        show_info(f"Model saved to {path}")

    # -- prediction --------------------------------------------------------------------------
    def predict(self):
        """Segment the chosen image layer with the model just trained; returns the worker."""
        image = self._source.value
        if self._saved is None or image is None:
            self._refuse("Train a model and choose an image layer first.")
            return None
        options = {"overlap": 0.25, "foreground_threshold": None, "split_depth": 1.0}
        return start_segmentation(self._work, self._viewer, image, self._saved, options,
                                  finished=self._finished)

    # -- common ------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the running job; nothing is saved or added."""
        self._work.cancel()

    def _refuse(self, message: str) -> None:
        self._status.value = message
        show_warning(message)

    def _finished(self) -> None:
        self._predict_button.enabled = self._saved is not None


def _train(images, labels, options, cancel: threading.Event):
    """Worker body: yields TrainingProgress, returns the trained model."""
    return (yield from train_steps(images, labels, cancelled=cancel.is_set, **options))


def _free_path(path: Path) -> Path:
    """``path``, or ``NAME-1.pt``, ``NAME-2.pt``... if taken: never overwrite a model."""
    if path.suffix != ".pt":
        path = path.with_suffix(".pt")
    candidate, k = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
        k += 1
    return candidate
