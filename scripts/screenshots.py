"""Render the documentation screenshots with the real plugin on real data (run under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py [NAME ...]

The 2D pictures show a DSB2018 fluorescence image of the training set's test split
(NUCLEI_ID), the interpolation one a GoNuclear training crop (STACK); both from the shared
data folder (napari_medseg.datasets), which must be present.
"""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_medseg.datasets import (
    DSB_TRAIN,
    GONUCLEAR,
    data_folder,
    read_dsb,
    read_gonuclear,
)
from napari_medseg.display import auto_contrast
from napari_medseg.plugin.box_click_widget import BoxClickWidget
from napari_medseg.plugin.demo import open_demo
from napari_medseg.plugin.interpolation_widget import InterpolationWidget
from napari_medseg.plugin.livewire_widget import LiveWireWidget
from napari_medseg.plugin.train_widget import TrainWidget

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
NUCLEI_ID = "212b858a66f0"  # 520x696, 100 nuclei
STACK = "1135"


def _real_nuclei(viewer: napari.Viewer):
    """Add the DSB2018 image and its annotation (hidden): (image layer, truth layer)."""
    [(image, truth)] = read_dsb(data_folder(DSB_TRAIN), [NUCLEI_ID])
    layer = viewer.add_image(image, name=f"DSB2018 {NUCLEI_ID}",
                             contrast_limits=auto_contrast(image))
    return layer, viewer.add_labels(truth, name="annotation", visible=False)


def _central_nuclei(truth: np.ndarray, count: int) -> list[int]:
    """Ids of ``count`` nuclei of >= 300 px nearest the image centre, nearest first."""
    ids, sizes = np.unique(truth, return_counts=True)
    centre = np.array(truth.shape) / 2
    kept = [i for i, n in zip(ids[1:], sizes[1:], strict=True) if n >= 300]
    return sorted(kept, key=lambda i: np.linalg.norm(
        np.argwhere(truth == i).mean(0) - centre))[:count]


def _save(viewer: napari.Viewer, name: str) -> None:
    viewer.window._qt_window.resize(1400, 860)
    for _ in range(5):
        QApplication.processEvents()
    viewer.screenshot(str(IMAGES / name), canvas_only=False, flash=False)
    print("saved", IMAGES / name)


def interpolation() -> None:
    viewer = napari.Viewer(title="napari-medseg: slice interpolation")
    volume, truth, spacing = read_gonuclear(data_folder(GONUCLEAR), STACK)
    image = viewer.add_image(volume, name=f"GoNuclear {STACK}", scale=spacing,
                             contrast_limits=auto_contrast(volume))
    sparse = np.zeros_like(truth)
    sparse[::4] = truth[::4]  # an annotator outlined every 4th slice
    labels = viewer.add_labels(sparse, name="annotations", scale=image.scale)
    widget = InterpolationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Slice interpolation")
    widget._which.value = "all labels"
    widget._layer.value = labels
    viewer.dims.set_point(0, (len(volume) // 8 * 4 + 2) * image.scale[0])  # between annotated
    worker = widget.run(labels)
    while worker is not None and widget._work.running:
        QApplication.processEvents()
    _save(viewer, "interpolation.png")
    viewer.close()


def livewire() -> None:
    viewer = napari.Viewer(title="napari-medseg: live-wire scissors")
    image, truth = _real_nuclei(viewer)
    labels = viewer.add_labels(np.zeros_like(truth.data), name="annotations")
    widget = LiveWireWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Live-wire scissors")
    widget._source.value, widget._target.value = image, labels
    widget._active.value = True
    # one nucleus filled, one being traced
    for k, label in enumerate(_central_nuclei(truth.data, 2)):
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
    image, truth = _real_nuclei(viewer)
    labels = viewer.add_labels(np.zeros_like(truth.data), name="annotations")
    widget = BoxClickWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Box + click segmentation")
    widget._source.value, widget._target.value = image, labels
    widget._active.value = True
    # three nuclei committed, a fourth in progress
    for k, label in enumerate(_central_nuclei(truth.data, 4)):
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
    image, truth = _real_nuclei(viewer)
    truth.visible = True
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train a model")
    widget._source.value, widget._target.value = image, truth
    widget._init.value = "nuclei-2d"
    widget._minutes.value, widget._epochs.value = 0, 12
    widget._output.value = Path("/tmp/napari-medseg-screenshot-model.pt")
    for worker_start in (widget.train, widget.predict):
        worker_start()
        while widget._work.running:
            QApplication.processEvents()
    truth.visible = False
    _save(viewer, "training.png")
    viewer.close()


def planes() -> None:
    """The real CT in three planes (sagittal in the main view) and a GoNuclear stack."""
    from napari_medseg.plugin.view_planes import ViewPlanesWidget

    folder = data_folder("totalseg-ct")
    for name, image_file, labels_file, plane in (
            ("planes_ct.png", folder / "example_ct_sm.nii.gz", folder / "example_seg.nii.gz",
             "sagittal"),
            ("planes_gonuclear.png", data_folder(GONUCLEAR) / f"{STACK}_image.tif",
             data_folder(GONUCLEAR) / f"{STACK}_labels.tif", "coronal")):
        viewer = napari.Viewer(title="napari-medseg: three planes")
        [image] = viewer.open(image_file, plugin="napari-medseg")
        [labels] = viewer.open(labels_file, plugin="napari-medseg")
        labels.opacity = 0.4
        widget = ViewPlanesWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Planes")
        widget._layer.value = image
        widget._three.value = True
        widget.show(plane)
        _save(viewer, name)
        viewer.close()


def demo() -> None:
    viewer = napari.Viewer(title="napari-medseg demo")
    _real_nuclei(viewer)
    open_demo(None, viewer)
    _save(viewer, "demo.png")
    viewer.close()


if __name__ == "__main__":
    import sys

    IMAGES.mkdir(parents=True, exist_ok=True)
    pictures = {f.__name__: f for f in (demo, interpolation, livewire, box_click, training,
                                        planes)}
    for name in sys.argv[1:] or pictures:
        pictures[name]()
