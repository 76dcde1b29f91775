"""Train widget in a real viewer (train, plot, save, predict; cancel), and the train CLI."""

from __future__ import annotations

import numpy as np
import tifffile
from napari.layers import Labels

from napari_medseg import nuclei_2d
from napari_medseg.cli import main
from napari_medseg.model_runner import load_model
from napari_medseg.plugin.train_widget import TrainWidget


def _wait(qtbot, widget, timeout=180_000):
    qtbot.waitUntil(lambda: not widget._work.running, timeout=timeout)


def _widget(viewer, tmp_path, epochs):
    image, truth = nuclei_2d((192, 192), n_nuclei=20, seed=2)[:2]
    layer = viewer.add_image(image, scale=(0.5, 0.5))
    labels = viewer.add_labels(truth, scale=(0.5, 0.5))
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._source.value, widget._target.value = layer, labels
    widget._init.value = "nuclei-2d"
    widget._minutes.value, widget._epochs.value, widget._patch.value = 0, epochs, 64
    widget._output.value = tmp_path / "mine.pt"
    return widget, truth


def test_train_plots_saves_and_predicts(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    (tmp_path / "mine.pt").write_bytes(b"an earlier model")  # must survive
    widget, truth = _widget(viewer, tmp_path, epochs=2)
    assert not widget._blend.native.isHidden()  # fine-tuning: the fine-tuned share is offered
    layout = widget.native.layout()
    assert layout.indexOf(widget.plot) == widget.index(widget._status)  # just above it
    assert widget.train() is not None
    _wait(qtbot, widget)
    assert len(widget.plot.train) == len(widget.plot.validation) == 2  # strip held out
    saved = tmp_path / "mine-1.pt"
    assert saved.is_file() and (tmp_path / "mine.pt").read_bytes() == b"an earlier model"
    assert load_model(saved).info.name == "mine-1"
    assert "held-out objects" in widget._status.value  # how the fine-tuned share was chosen
    assert widget._predict_button.enabled
    n_layers = len(viewer.layers)
    widget._predict_button.native.click()
    _wait(qtbot, widget)
    assert len(viewer.layers) == n_layers + 1
    result = viewer.layers[-1]
    assert isinstance(result, Labels) and result.data.shape == truth.shape
    assert tuple(result.scale) == (0.5, 0.5) and result.data.max() > 5


def test_cancel_saves_nothing(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    widget, _ = _widget(viewer, tmp_path, epochs=500)
    worker = widget.train()
    qtbot.waitUntil(lambda: len(widget.plot.train) >= 1, timeout=120_000)
    assert "%; cpu, " in widget._status.value  # how it trains: device, precision
    widget._cancel_button.native.click()
    _wait(qtbot, widget)
    assert worker.abort_requested
    assert not list(tmp_path.glob("*.pt"))
    assert not widget._predict_button.enabled
    assert "Cancelled" in widget._status.value


def test_mismatched_layers_give_a_message(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    widget, _ = _widget(viewer, tmp_path, epochs=1)
    widget._target.value = viewer.add_labels(np.zeros((50, 50), np.int32), name="other")
    widget.train()
    _wait(qtbot, widget)
    assert "must match" in widget._status.value
    assert not list(tmp_path.glob("*.pt"))


def test_train_cli_on_a_folder(tmp_path, capsys):
    for k in range(2):
        image, labels = nuclei_2d((96, 96), n_nuclei=8, seed=k)[:2]
        tifffile.imwrite(tmp_path / f"n{k}_image.tif", image)
        tifffile.imwrite(tmp_path / f"n{k}_labels.tif", labels.astype(np.uint16))
    out = tmp_path / "model.pt"
    assert main(["train", str(tmp_path), str(out), "--epochs", "2", "--patch", "64,64",
                 "--init", "nuclei-2d", "--precision", "fp32", "--compile", "off"]) == 0
    printed = capsys.readouterr().out
    assert "epoch 2 loss" in printed and out.is_file()
    assert "training on 2 image(s): cpu, float32\n" in printed
    # 96 px images leave no strip to hold out: nothing checks the fine-tuning, so the start
    # model comes back and the message says why
    assert "No held-out annotations to check the fine-tuning on" in printed
    kept, start = load_model(out).info, load_model("nuclei-2d").info
    assert (kept.diameter, kept.interior_threshold) == (start.diameter,
                                                        start.interior_threshold)
    assert load_model(out).info.name == "model"


def test_the_loss_plot_has_one_point_per_epoch_and_the_status_lines_loss(qtbot):
    """A second report of an epoch (the run's last, saying how fine-tuning ended) replaces
    its point: the axis ends at the last epoch and the legend shows the status line's loss."""
    from napari_medseg.plugin.train_widget import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.add(1, 0.5, 0.6)
    plot.add(2, 0.4, None)
    plot.add(2, 0.3, 0.35)
    assert plot.train == [0.5, 0.3] and plot.validation == [0.6, 0.35]
    plot.add(4, 0.2, 0.25)  # an epoch without a report keeps the axis in epochs
    assert len(plot.train) == len(plot.validation) == 4
    plot.grab()  # paints
