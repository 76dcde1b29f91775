"""Render the documentation screenshots with the real plugin (run under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_medseg.plugin.demo import open_demo
from napari_medseg.plugin.interpolation_widget import InterpolationWidget

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


def demo() -> None:
    viewer = open_demo("nuclei-2d")
    _save(viewer, "demo.png")
    viewer.close()


if __name__ == "__main__":
    IMAGES.mkdir(parents=True, exist_ok=True)
    demo()
    interpolation()
