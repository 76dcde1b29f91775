"""Box + click in a real viewer (run under Xvfb): mouse-move cost during a drag, and the
first preview after the tool has loaded its networks.

    xvfb-run -a .venv/bin/python benchmarks/gui_latency.py [--moves 60]

On the real TotalSegmentator CT (axial plane, one organ's cross-section), the same
simulated mouse (Qt test events on the canvas, each followed by processing the event
queue and drawing the canvas) drags across the image: with napari's own pan (tool
off) and with the box tool on. The median and 95th percentile time per move are
printed for both; the first preview is the time from releasing the mouse to the mask
preview being drawn, after activation has preloaded the networks.
"""

from __future__ import annotations

import argparse
import time

import napari
import numpy as np
from qtpy.QtCore import QPoint, Qt
from qtpy.QtTest import QTest
from qtpy.QtWidgets import QApplication

from napari_medseg.datasets import data_folder
from napari_medseg.plugin.box_click_widget import BoxClickWidget
from napari_medseg.plugin.labels_target import new_labels_for_image
from napari_medseg.plugin.slice_plane import camera_of
from napari_medseg.runtime import processor_name

LIVER = 5


def settle(canvas) -> None:
    """Process pending events and draw the canvas now."""
    QApplication.processEvents()
    canvas.repaint()
    QApplication.processEvents()


def drag(canvas, a: QPoint, b: QPoint, moves: int) -> tuple[list[float], float]:
    """Drag from a to b: seconds per move, and seconds from release to a drawn canvas."""
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    settle(canvas)
    times = []
    for t in np.linspace(0, 1, moves + 1)[1:]:
        p = a + (b - a) * float(t)
        start = time.perf_counter()
        QTest.mouseMove(canvas, p)
        settle(canvas)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    settle(canvas)
    return times, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=60)
    args = parser.parse_args()
    folder = data_folder("totalseg-ct")
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1200, 900)
    [image] = viewer.open(folder / "example_ct_sm.nii.gz", plugin="napari-medseg")
    [organs] = viewer.open(folder / "example_seg.nii.gz", plugin="napari-medseg")
    organs.visible = False
    truth = np.asarray(organs.data)
    z = int(np.argmax((truth == LIVER).sum((1, 2))))
    viewer.dims.set_point(0, image.data_to_world((z, 0, 0))[0])
    labels = new_labels_for_image(viewer, image, np.uint16, name="annotations")
    viewer.reset_view()
    canvas = viewer.window._qt_viewer.canvas.native
    for _ in range(10):
        settle(canvas)

    ys, xs = np.nonzero(truth[z] == LIVER)
    camera = camera_of(viewer)
    zoom, centre = camera.zoom, np.asarray(camera.center)[-2:]

    def screen(row: float, col: float) -> QPoint:
        world = np.asarray(image.data_to_world((z, row, col)))[1:]
        off = (world - centre) * zoom
        return QPoint(round(canvas.width() / 2 + off[1]), round(canvas.height() / 2 + off[0]))

    a, b = screen(ys.min() - 1, xs.min() - 1), screen(ys.max() + 1, xs.max() + 1)
    print(f"{processor_name()}; canvas {canvas.width()}x{canvas.height()}, "
          f"{args.moves} moves per drag")

    plain, _ = drag(canvas, a, b, args.moves)  # napari's pan, the tool off
    camera.zoom, camera.center = zoom, (*camera.center[:-2], *centre)  # undo the pan
    settle(canvas)

    widget = BoxClickWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._source.value, widget._target.value = image, labels
    start = time.perf_counter()
    widget._active.value = True
    loading = widget._status.value
    while widget._status.value == loading:  # the background load reports when done
        QApplication.processEvents()
        time.sleep(0.005)
    loaded = time.perf_counter() - start
    for _ in range(5):
        settle(canvas)
    tool, first = drag(canvas, a, b, args.moves)
    assert widget._session is not None, "the drag drew no box"
    widget.clear()
    settle(canvas)
    _, again = drag(canvas, a, b, args.moves)

    def stats(t: list[float]) -> str:
        ms = 1000 * np.asarray(t)
        return f"median {np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms"

    print(f"mouse move during a drag, napari's pan (tool off): {stats(plain)}")
    print(f"mouse move during a drag, box tool on:             {stats(tool)}")
    print(f"activation until the networks were loaded: {loaded:.2f} s")
    print(f"first preview (release to drawn mask):    {first:.3f} s "
          f"(the next box: {again:.3f} s)")
    viewer.close()


if __name__ == "__main__":
    main()
