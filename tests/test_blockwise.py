"""Blockwise segmentation into zarr / OME-Zarr, on dask's threads and on a real
dask.distributed cluster of worker processes; lazy zarr and TIFF reading."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

from napari_medseg import nuclei_2d
from napari_medseg.blockwise import BlockGrid, segment_blockwise, segment_blockwise_steps
from napari_medseg.datasets import dsb_split, mosaic, read_dsb
from napari_medseg.evaluation import matches, seam_splits
from napari_medseg.io import ImageReadError, read_image, read_zarr
from napari_medseg.runtime import Cancelled

BLOCK = (512, 512)


@pytest.fixture(scope="module")
def model():
    from napari_medseg.model_runner import load_model

    return load_model("nuclei-2d", device="cpu")


@pytest.fixture(scope="module")
def real_mosaic(dsb_train_dir):
    """1536 x 1536 of the training set's fluorescence test images, tiled."""
    split = dsb_split(dsb_train_dir)
    pairs = read_dsb(dsb_train_dir, split.of_kind(split.test, "fluorescence"))
    return mosaic(pairs, (1536, 1536))


@pytest.fixture(scope="module")
def blockwise_result(model, real_mosaic, tmp_path_factory):
    image, _ = real_mosaic
    out = tmp_path_factory.mktemp("blockwise") / "mosaic.zarr"
    return segment_blockwise(model, image, out, block_shape=BLOCK, progress=False)


def test_blockwise_gives_the_in_memory_answer_without_seam_splits(model, real_mosaic,
                                                                  blockwise_result):
    image, truth = real_mosaic
    whole = model.segment(image, progress=False)
    labels = blockwise_result[:]
    assert labels.dtype == np.uint32 and labels.shape == image.shape
    ids = np.unique(labels[labels > 0])
    np.testing.assert_array_equal(ids, np.arange(1, ids.size + 1))  # one id per object
    assert len(matches(whole, labels, 0.9)) >= 0.99 * whole.max()
    assert seam_splits(whole, labels, BLOCK) == 0
    crossing = sum(1 for t in np.unique(truth[511:513])[1:] if t)  # real objects at a seam
    assert crossing > 5
    record = blockwise_result.attrs["napari-medseg"]
    assert record["objects"] == ids.size and record["blocks"] == 9


def test_a_local_cluster_of_worker_processes_gives_the_same_labels(model, real_mosaic,
                                                                  blockwise_result, tmp_path):
    from distributed import Client, LocalCluster

    image, _ = real_mosaic
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        labels = segment_blockwise(model, image, tmp_path / "cluster.zarr", block_shape=BLOCK,
                                   client=client, progress=False)
    np.testing.assert_array_equal(labels[:], blockwise_result[:])


def test_stacks_are_segmented_in_3d_blocks_as_in_memory(tmp_path):
    from napari_medseg import nuclei_3d
    from napari_medseg.model_runner import load_model

    image, _, spacing = nuclei_3d()
    planes = load_model("nuclei-3d", device="cpu")  # 2D network on the stack's three planes
    whole = planes.segment(image, spacing=spacing, progress=False)
    labels = segment_blockwise(planes, image, tmp_path / "stack.zarr",
                               block_shape=(16, 128, 128), spacing=spacing, progress=False)[:]
    assert labels.shape == image.shape and whole.max() > 20
    assert len(matches(whole, labels, 0.9)) >= 0.99 * whole.max()
    assert seam_splits(whole, labels, (16, 128, 128)) == 0


def test_empty_blocks_are_skipped_and_never_written(model, tmp_path):
    image, _ = nuclei_2d((256, 256), n_nuclei=10, seed=3)
    sparse = np.zeros((1024, 1024), image.dtype)
    sparse[:256, :256] = image
    labels = segment_blockwise(model, sparse, tmp_path / "sparse.zarr", block_shape=(256, 256),
                               halo=(32, 32), progress=False)
    record = labels.attrs["napari-medseg"]
    assert record["blocks"] == 16 and record["skipped"] == 15  # decided on the blocks themselves
    assert labels[256:, 256:].max() == 0 and record["objects"] >= 8
    chunk_files = [p for p in (tmp_path / "sparse.zarr").rglob("*") if p.is_file()
                   and p.name != "zarr.json"]
    assert len(chunk_files) <= 4


def test_ome_zarr_labels_carry_scale_and_read_back_with_ome_zarr(model, tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    image, _ = nuclei_2d((300, 300), n_nuclei=12, seed=4)
    out = tmp_path / "nuclei.ome.zarr"
    labels = segment_blockwise(model, image, out, block_shape=(160, 160), halo=(32, 32),
                               scale=(0.5, 0.25), translate=(10.0, 0.0), progress=False)
    [node] = list(Reader(parse_url(str(out)))())
    assert node.metadata["coordinateTransformations"][0] == [
        {"type": "scale", "scale": [0.5, 0.25]},
        {"type": "translation", "translation": [10.0, 0.0]}]
    np.testing.assert_array_equal(np.asarray(node.data[0]), labels[:])
    [reread] = read_zarr(out)
    assert reread.kind == "labels" and reread.scale == (0.5, 0.25)
    assert reread.translate == (10.0, 0.0)


def test_labels_go_into_an_ome_zarr_images_labels_group(model, tmp_path):
    from ome_zarr.writer import write_image

    image, _ = nuclei_2d((256, 256), n_nuclei=10, seed=5)
    root = zarr.open_group(str(tmp_path / "cells.ome.zarr"), mode="w")
    write_image(image, root, axes="yx", scale_factors=(2,), scale={"y": 0.3, "x": 0.3})
    [source] = read_image(tmp_path / "cells.ome.zarr")
    assert source.multiscale and [a.shape for a in source.data] == [(256, 256), (128, 128)]
    segment_blockwise(model, source.data[0], tmp_path / "cells.ome.zarr" / "labels" / "nuclei",
                      scale=source.scale, progress=False)
    files = read_image(tmp_path / "cells.ome.zarr")
    assert [f.kind for f in files] == ["image", "labels"]
    assert files[1].name == "nuclei" and files[1].scale == (0.3, 0.3)


def test_cancel_leaves_nothing_behind(model, tmp_path):
    image, _ = nuclei_2d((512, 512), n_nuclei=20, seed=6)
    steps = []

    def cancelled() -> bool:
        return len(steps) > 5

    out = tmp_path / "cancelled.zarr"
    run = segment_blockwise_steps(model, image, out, block_shape=(128, 128), halo=(32, 32),
                                  cancelled=cancelled)
    with pytest.raises(Cancelled):
        for step in run:
            steps.append(step)
    assert list(tmp_path.iterdir()) == []


def test_bad_input_is_refused_before_anything_is_written(model, tmp_path):
    import dask.array as da

    image = da.zeros((512, 512), chunks=(64, 64), dtype=np.uint16)
    with pytest.raises(ValueError, match="at least twice the halo"):
        segment_blockwise(model, image, tmp_path / "a.zarr", block_shape=(64, 64),
                          progress=False)
    (tmp_path / "taken.zarr").mkdir()
    with pytest.raises(ValueError, match="overwrite=True"):
        segment_blockwise(model, image, tmp_path / "taken.zarr", progress=False)
    with pytest.raises(ValueError, match="not a writable folder"):
        segment_blockwise(model, image, tmp_path / "missing" / "a.zarr", progress=False)
    with pytest.raises(ValueError, match="no dask scheduler answers"):
        segment_blockwise(model, image, tmp_path / "b.zarr", client="tcp://127.0.0.1:9",
                          progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.zarr"]


def test_an_ome_zarr_without_its_metadata_is_refused(tmp_path):
    group = zarr.open_group(str(tmp_path / "broken.ome.zarr"), mode="w")
    group.create_array("0", shape=(8, 8), dtype="uint8")
    with pytest.raises(ImageReadError, match=r"without OME-Zarr 'multiscales'.*\(0\)"):
        read_zarr(tmp_path / "broken.ome.zarr")
    group.attrs["ome"] = {"version": "0.5", "multiscales": [
        {"axes": [{"name": "y"}, {"name": "x"}], "datasets": [{"path": "1"}]}]}
    with pytest.raises(ImageReadError, match="dataset '1'"):
        read_zarr(tmp_path / "broken.ome.zarr")


def test_ngff_04_multiscale_images_are_read_lazily(tmp_path):
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image

    stack = np.random.default_rng(0).integers(0, 1000, (8, 64, 64), dtype=np.uint16)
    root = zarr.open_group(str(tmp_path / "v04.zarr"), mode="w", zarr_format=2)
    write_image(stack, root, axes="zyx", fmt=FormatV04(), scale_factors=[{"y": 2, "x": 2}],
                scale={"z": 2.0, "y": 0.5, "x": 0.5})
    [image] = read_image(tmp_path / "v04.zarr")
    assert image.multiscale and type(image.data[0]).__name__ == "Array"
    assert image.scale == (2.0, 0.5, 0.5) and image.axes == "ZYX"
    np.testing.assert_array_equal(np.asarray(image.data[0]), stack)


def test_big_tiffs_are_read_through_tifffiles_zarr_store(tmp_path, monkeypatch):
    import napari_medseg.io.tiff as tiff

    stack = np.random.default_rng(1).integers(0, 1000, (6, 64, 80), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "big.tif", stack, imagej=True, resolution=(2, 2),
                     metadata={"spacing": 3.0, "unit": "um", "axes": "ZYX"})
    monkeypatch.setattr(tiff, "LAZY_BYTES", 1000)
    [image] = read_image(tmp_path / "big.tif")
    assert type(image.data).__name__ == "Array" and image.scale == (3.0, 0.5, 0.5)
    np.testing.assert_array_equal(np.asarray(image.data), stack)


def test_block_grid_neighbours_and_shared_regions():
    grid = BlockGrid((100, 100), (50, 50), (10, 10))
    assert grid.neighbours(0) == [1, 2, 3]
    assert grid.shared(0, 3) == (slice(40, 60), slice(40, 60))
    with pytest.raises(ValueError, match="one entry per spatial axis"):
        BlockGrid((100, 100), (50,), (10, 10))


def test_cli_predict_blockwise_reads_zarr_and_writes_ome_zarr(tmp_path, capsys):
    from napari_medseg.cli import main

    image, _ = nuclei_2d((256, 256), n_nuclei=10, seed=7)
    zarr.create_array(str(tmp_path / "in.zarr"), data=image, chunks=(128, 128))
    out = tmp_path / "out.ome.zarr"
    assert main(["predict", "--blockwise", str(tmp_path / "in.zarr"), str(out),
                 "--model", "nuclei-2d", "--device", "cpu", "--block", "128,128",
                 "--halo", "32,32"]) == 0
    assert "objects in 4 blocks" in capsys.readouterr().out
    assert read_zarr(out)[0].data.max().compute() >= 8
    with pytest.raises(SystemExit):
        main(["predict", str(tmp_path / "in.zarr"), str(tmp_path / "x.zarr"),
              "--model", "nuclei-2d"])
    assert "predict --blockwise" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", str(tmp_path / "in.zarr"), str(tmp_path / "x.tif"), "--blockwise",
              "--model", "nuclei-2d"])
    assert "writes a .zarr or .ome.zarr folder" in capsys.readouterr().err


def test_overwrite_replaces_a_result_only_once_the_new_one_is_complete(model, tmp_path):
    image, _ = nuclei_2d((256, 256), n_nuclei=10, seed=8)
    out = tmp_path / "labels.zarr"
    first = segment_blockwise(model, image, out, block_shape=(128, 128), halo=(32, 32),
                              progress=False)[:]
    second = segment_blockwise(model, image, out, block_shape=(128, 128), halo=(32, 32),
                               overwrite=True, progress=False)[:]
    np.testing.assert_array_equal(first, second)
    assert [p.name for p in tmp_path.iterdir()] == ["labels.zarr"]  # nothing set aside left


def test_an_output_that_is_holds_or_lies_in_the_input_is_refused_even_with_overwrite(
        model, tmp_path):
    """Issue 30.1: the input image replaced by its labels."""
    from ome_zarr.writer import write_image

    image, _ = nuclei_2d((256, 256), n_nuclei=10, seed=5)
    zarr.create_array(str(tmp_path / "img.zarr"), data=image, chunks=(128, 128))
    root = zarr.open_group(str(tmp_path / "cells.ome.zarr"), mode="w")
    write_image(image, root, axes="yx", scale_factors=(2,))
    (tmp_path / "link.zarr").symlink_to(tmp_path / "img.zarr")
    plain = zarr.open_array(str(tmp_path / "img.zarr"), mode="r")
    [ome] = read_image(tmp_path / "cells.ome.zarr")
    for source, out, where in (
            (plain, tmp_path / "img.zarr", "is the input"),
            (plain, tmp_path / "link.zarr", "is the input"),  # through a link
            (read_zarr(tmp_path / "img.zarr")[0].data, tmp_path / "img.zarr", "is the input"),
            (ome.data[0], tmp_path / "cells.ome.zarr", "holds the input"),
            (ome.data[0], tmp_path / "cells.ome.zarr" / "s0", "is the input"),
            (ome.data[0], tmp_path / "cells.ome.zarr" / "s0" / "x", "lies inside the input"),
            (ome.data[1], tmp_path / "cells.ome.zarr" / "s1", "is the input")):
        with pytest.raises(ValueError, match=where):
            segment_blockwise(model, source, out, overwrite=True, progress=False)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "img.zarr"))[:], image)
    # an OME-Zarr image's labels group is apart from its arrays
    segment_blockwise(model, ome.data[0], tmp_path / "cells.ome.zarr" / "labels" / "nuclei",
                      progress=False)


def test_cli_predict_blockwise_into_its_input_is_refused_with_force(tmp_path, capsys):
    from napari_medseg.cli import main

    image, _ = nuclei_2d((256, 256), n_nuclei=10, seed=7)
    zarr.create_array(str(tmp_path / "in.zarr"), data=image, chunks=(128, 128))
    with pytest.raises(SystemExit, match="1"):
        main(["predict", "--blockwise", str(tmp_path / "in.zarr"), str(tmp_path / "in.zarr"),
              "--force", "--model", "nuclei-2d", "--device", "cpu"])
    assert "is the input" in capsys.readouterr().err
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "in.zarr"))[:], image)


def test_a_non_finite_or_negative_scale_is_refused_before_the_run_and_on_reading(model,
                                                                                tmp_path):
    """Issue 30.11: a NaN scale was written after the whole run, then refused by the
    package's own reader; an infinite translation was read."""
    from ome_zarr.writer import write_image

    image, _ = nuclei_2d((128, 128), n_nuclei=6, seed=3)
    for scale, translate in (((float("nan"), 1.0), None), ((-1.0, 1.0), None),
                             ((1.0, 1.0), (0.0, float("inf")))):
        with pytest.raises(ValueError, match="must be positive and finite"):
            segment_blockwise(model, image, tmp_path / "out.ome.zarr", scale=scale,
                              translate=translate, progress=False)
    assert list(tmp_path.iterdir()) == []
    import json

    root = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w")
    write_image(np.zeros((64, 64), np.uint16), root, axes="yx")
    meta = tmp_path / "img.ome.zarr" / "zarr.json"  # as another program may write it
    doc = json.loads(meta.read_text())
    doc["attributes"]["ome"]["multiscales"][0]["coordinateTransformations"] = [
        {"type": "translation", "translation": [0.0, float("inf")]}]
    meta.write_text(json.dumps(doc))
    with pytest.raises(ImageReadError, match="is not finite"):
        read_zarr(tmp_path / "img.ome.zarr")


@pytest.mark.parametrize("listed", [5, "nuclei"])
def test_a_malformed_labels_list_is_refused_before_the_run_and_never_written(model, tmp_path,
                                                                           listed):
    """Issue 30.12: 5 raised after the run with the output unlisted; "nuclei" became a list
    of letters and the image unreadable."""
    from ome_zarr.writer import write_image

    image, _ = nuclei_2d((128, 128), n_nuclei=6, seed=3)
    root = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w")
    write_image(image, root, axes="yx")
    labels = root.create_group("labels")
    labels.attrs.update({"ome": {"version": "0.5", "labels": listed}})
    with pytest.raises(ValueError, match="must be a list of names"):
        segment_blockwise(model, image, tmp_path / "img.ome.zarr" / "labels" / "cells",
                          progress=False)
    assert dict(zarr.open_group(str(tmp_path / "img.ome.zarr" / "labels")).attrs) == {
        "ome": {"version": "0.5", "labels": listed}}
    assert sorted(p.name for p in (tmp_path / "img.ome.zarr" / "labels").iterdir()) == [
        "zarr.json"]
