"""Render the documentation screenshots with the real plugin (run under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_medseg.plugin.box_click_widget import BoxClickWidget
from napari_medseg.plugin.demo import open_demo
from napari_medseg.plugin.interpolation_widget import InterpolationWidget
from napari_medseg.plugin.livewire_widget import LiveWireWidget
from napari_medseg.plugin.train_widget import TrainWidget

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def _save(viewer: napari.Viewer, name: str) -> None:
    viewer.window._qt_window.resize(1400, 860)
    for _ in range(5):
        QApplication.processEvents()
    viewer.screenshot(str(IMAGES / name), canvas_only=False, flash=False)
    print("saved", IMAGES / name)


def interpolation() -> None:
    viewer = napari.Viewer(title="napari-medseg: slice interpolation")
    image, truth = viewer.open_sample("napari-medseg", "nuclei-3d")
    truth.visible = False
    sparse = np.zeros_like(truth.data)
    sparse[::4] = truth.data[::4]  # an annotator outlined every 4th slice
    labels = viewer.add_labels(sparse, name="annotations", scale=image.scale)
    widget = InterpolationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Slice interpolation")
    widget._which.value = "all labels"
    widget._layer.value = labels
    viewer.dims.set_point(0, 14 * image.scale[0])  # a slice between annotated ones
    worker = widget.run(labels)
    while worker is not None and widget._worker is not None:
        QApplication.processEvents()
    _save(viewer, "interpolation.png")
    viewer.close()


def livewire() -> None:
    viewer = napari.Viewer(title="napari-medseg: live-wire scissors")
    image, truth = viewer.open_sample("napari-medseg", "nuclei-2d")
    truth.visible = False
    labels = viewer.add_labels(np.zeros_like(truth.data), name="annotations")
    widget = LiveWireWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Live-wire scissors")
    widget._source.value, widget._target.value = image, labels
    widget._active.value = True
    ids = np.unique(truth.data)[1:]
    for k, label in enumerate(ids[:2]):  # one nucleus filled, one being traced
        ys, xs = np.nonzero(truth.data == label)
        cy, cx = ys.mean(), xs.mean()
        angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        outline = [(ys[np.argmax(np.cos(a) * (ys - cy) + np.sin(a) * (xs - cx))],
                    xs[np.argmax(np.cos(a) * (ys - cy) + np.sin(a) * (xs - cx))]) for a in angles]
        for p in outline[: 6 if k == 0 else 4]:
            widget.add_anchor(p)
        if k == 0:
            widget.close_contour()
        else:
            widget.move_to(outline[4])
            viewer.camera.center = (cy, cx)
            viewer.camera.zoom = 3.5
    _save(viewer, "livewire.png")
    viewer.close()


def box_click() -> None:
    viewer = napari.Viewer(title="napari-medseg: box + click")
    image, truth = viewer.open_sample("napari-medseg", "nuclei-2d")
    truth.visible = False
    labels = viewer.add_labels(np.zeros_like(truth.data), name="annotations")
    widget = BoxClickWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Box + click segmentation")
    widget._source.value, widget._target.value = image, labels
    widget._active.value = True
    ids = np.unique(truth.data)[1:]
    for k, label in enumerate(ids[:4]):  # three nuclei committed, a fourth in progress
        ys, xs = np.nonzero(truth.data == label)
        widget.set_box((ys.min() - 2, xs.min() - 2), (ys.max() + 2, xs.max() + 2))
        if k < 3:
            widget.commit()
        else:
            widget.add_prompt((ys.mean(), xs.mean()), positive=True)
            viewer.camera.center = (ys.mean(), xs.mean())
            viewer.camera.zoom = 3.5
    _save(viewer, "box_click.png")
    viewer.close()


def training() -> None:
    viewer = napari.Viewer(title="napari-medseg: train a model")
    image, truth = viewer.open_sample("napari-medseg", "nuclei-2d")
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train a model")
    widget._source.value, widget._target.value = image, truth
    widget._init.value = "nuclei-2d"
    widget._minutes.value, widget._epochs.value = 0, 12
    widget._output.value = Path("/tmp/napari-medseg-screenshot-model.pt")
    for worker_start in (widget.train, widget.predict):
        worker_start()
        while widget._worker is not None:
            QApplication.processEvents()
    truth.visible = False
    _save(viewer, "training.png")
    viewer.close()


def demo() -> None:
    viewer = open_demo("nuclei-2d")
    _save(viewer, "demo.png")
    viewer.close()


if __name__ == "__main__":
    IMAGES.mkdir(parents=True, exist_ok=True)
    demo()
    interpolation()
    livewire()
    box_click()
    training()
