"""Model widget in a real viewer: run a model, cancel a run; and the predict CLI."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import tifffile
from napari.layers import Labels

from napari_medseg import nuclei_2d
from napari_medseg.cli import main
from napari_medseg.datasets import magnified
from napari_medseg.evaluation import match_instances
from napari_medseg.model_files import save_model
from napari_medseg.model_info import ModelInfo
from napari_medseg.model_runner import SegmentationModel, load_model
from napari_medseg.networks import build_network
from napari_medseg.plugin.model_widget import ModelWidget


def _wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget._work.running, timeout=120_000)


def test_builtin_nuclei_model_segments_in_a_worker(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image, truth = nuclei_2d()[:2]
    layer = viewer.add_image(image, scale=(0.5, 0.5), translate=(3, 4))
    widget = ModelWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._source.value = layer
    widget._probabilities.value = True
    assert widget.run() is not None
    _wait(qtbot, widget)
    labels = viewer.layers[-1]
    assert isinstance(labels, Labels) and labels.data.shape == image.shape
    assert tuple(labels.scale) == (0.5, 0.5) and tuple(labels.translate) == (3, 4)
    tp, fp, fn = match_instances(labels.data, truth)
    assert 2 * tp / (2 * tp + fp + fn) > 0.7
    assert "probabilities" in viewer.layers[-2].name or "probabilities" in viewer.layers[-4].name


@pytest.mark.parametrize("lazy", [False, True])
def test_cancel_adds_no_layer(make_napari_viewer, qtbot, tmp_path, lazy):
    info = ModelInfo(architecture="unet", dims=2, in_channels=1,
                     classes=["background", "interior", "boundary"], output="instance-boundary",
                     kwargs={"channels": (8, 16), "strides": (2,)}, tile_shape=(64, 64))
    path = save_model(tmp_path / "tiny.pt", build_network("unet", 2, 1, 3, **info.kwargs), info)
    viewer = make_napari_viewer()
    stack = np.random.default_rng(0).random((200, 256, 256), np.float32)
    layer = viewer.add_image(da.from_array(stack, chunks=(8, 256, 256)) if lazy else stack)
    widget = ModelWidget(viewer)
    widget._source.value = layer
    widget._zarr.value = tmp_path / "out.zarr"
    widget._model.value = "model file..."
    widget._file.value = path
    worker = widget.run()
    qtbot.wait(300)
    widget._cancel_button.native.click()
    _wait(qtbot, widget)
    assert worker.abort_requested or lazy  # the blockwise job stops itself, cleaning up
    assert [lyr.name for lyr in viewer.layers] == [layer.name]
    assert "Cancelled" in widget._status.value
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.pt"]  # no partial zarr


def test_a_colour_layer_gets_the_colour_model_which_finds_real_he_nuclei(
        make_napari_viewer, qtbot, dsb_train_dir):
    from napari_medseg.datasets import dsb_split, read_dsb

    split = dsb_split(dsb_train_dir)
    [(image, truth)] = read_dsb(dsb_train_dir, split.of_kind(split.test, "brightfield")[:1])
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, rgb=True)
    widget = ModelWidget(viewer)
    viewer.window.add_dock_widget(widget)  # as napari docks it: the layer list fills it
    assert widget._source.value is layer
    assert widget._model.value == "nuclei-he-2d" and "colour" in widget._status.value
    assert widget.run() is not None
    _wait(qtbot, widget)
    tp, fp, fn = match_instances(viewer.layers[-1].data, truth)
    assert 2 * tp / (2 * tp + fp + fn) > 0.7


def test_a_lazy_image_is_segmented_block_by_block_into_a_zarr_backed_layer(
        make_napari_viewer, qtbot, tmp_path):
    import dask.array as da
    import zarr

    viewer = make_napari_viewer()
    image, truth = nuclei_2d((512, 512), n_nuclei=24, seed=2)[:2]
    layer = viewer.add_image(da.from_array(image, chunks=(256, 256)), scale=(0.5, 0.5))
    widget = ModelWidget(viewer)
    widget._source.value = layer
    widget._zarr.value = tmp_path / "nuclei.zarr"
    assert widget.run() is not None
    _wait(qtbot, widget)
    labels = viewer.layers[-1]
    assert isinstance(labels, Labels) and isinstance(labels.data, zarr.Array)
    assert tuple(labels.scale) == (0.5, 0.5) and "block by block" in widget._status.value
    tp, fp, fn = match_instances(np.asarray(labels.data), truth)
    assert 2 * tp / (2 * tp + fp + fn) > 0.7
    assert (tmp_path / "nuclei.zarr" / "zarr.json").is_file()


def test_predict_cli_writes_labels(tmp_path, capsys):
    image, truth = nuclei_2d()[:2]
    src, dst = tmp_path / "nuclei.tif", tmp_path / "nuclei_labels.tif"
    tifffile.imwrite(src, image)
    assert main(["predict", "--model", "nuclei-2d", str(src), str(dst)]) == 0
    assert "objects" in capsys.readouterr().out
    labels = tifffile.imread(dst)
    tp, fp, fn = match_instances(labels, truth)
    assert 2 * tp / (2 * tp + fp + fn) > 0.7


def test_the_widget_says_the_object_size_it_segmented_at(make_napari_viewer, qtbot,
                                                         monkeypatch):
    # float32 as on an AVX2 laptop: with AMX bfloat16 the zoom-1 pass splits these 57-px
    # nuclei into about 30-px pieces and the estimate trusts them (docs/models.md)
    monkeypatch.setattr(SegmentationModel, "_bfloat16", lambda self: False)
    viewer = make_napari_viewer()
    image, truth = magnified(*nuclei_2d(), 3.0)  # nuclei of ~57 px: zoomed to the model's
    layer = viewer.add_image(image)
    widget = ModelWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._source.value = layer
    widget.run()
    _wait(qtbot, widget)
    assert "estimated on" in widget._status.value and "zoomed 0." in widget._status.value
    tp, fp, fn = match_instances(viewer.layers[-1].data, truth)
    assert 2 * tp / (2 * tp + fp + fn) > 0.8
    widget._diameter.value = 20  # a size of the user's: segmented as it is
    widget.run()
    _wait(qtbot, widget)
    assert "object diameter 20.0 px (given)" in widget._status.value


def test_a_fluorescence_png_opened_by_napari_as_rgba_gets_the_grey_model(
        make_napari_viewer, qtbot, dsb_train_dir):
    """A DSB fluorescence PNG (grey in RGBA) through napari's own reader is an RGB layer:
    the widget still picks the grey model; MedSeg's reader
    (which claims PNG) opens it grey in the first place."""
    from napari_medseg.datasets import dsb_split
    from napari_medseg.plugin.readers import get_reader

    split = dsb_split(dsb_train_dir)
    image_id = split.of_kind(split.train, "fluorescence")[0]
    path = dsb_train_dir / f"{image_id}_image.png"
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin="napari")
    assert layer.rgb and layer.data.shape[-1] == 4
    widget = ModelWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget._model.value == "nuclei-2d"  # was nuclei-he-2d, "for a colour image"
    assert widget._zarr.line_edit.value == ""  # a temporary folder, not the current one
    [(data, _, kind)] = get_reader(str(path))(str(path))
    assert kind == "image" and data.ndim == 2


def test_the_colour_model_warns_about_a_grey_bright_on_dark_image(dsb_train_dir):
    from napari_medseg.datasets import dsb_split, read_dsb

    split = dsb_split(dsb_train_dir)
    [(image, _)] = read_dsb(dsb_train_dir, split.of_kind(split.train, "fluorescence")[:1])
    he = load_model("nuclei-he-2d")
    assert "dark background" in he.info.mismatch(image)
    rgba = np.stack([image] * 3 + [np.full_like(image, 255)], axis=-1)
    assert "dark background" in he.info.mismatch(rgba)  # grey stored as RGBA is grey
    assert load_model("nuclei-2d").info.mismatch(rgba) == ""


def test_a_stack_opened_by_naparis_tiff_reader_is_said_to_have_lost_its_voxel_size(
        make_napari_viewer):
    from importlib import resources

    viewer = make_napari_viewer()
    with resources.as_file(resources.files("napari_medseg.samples")
                           .joinpath("gonuclear_1136.tif")) as path:
        [stack] = viewer.open(path, plugin="napari")
        [kept] = viewer.open(path, plugin="napari-medseg")
    widget = ModelWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._source.value = stack
    assert "drops a TIFF's voxel size" in widget._status.value
    widget._source.value = kept
    assert "voxel size" not in widget._status.value
