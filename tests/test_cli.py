"""The console script."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_medseg.cli import main


def test_demo_starts_headlessly_and_closes(tmp_path):
    """`napari-medseg demo` opens the viewer with widgets; --screenshot renders it and exits."""
    shot = tmp_path / "demo.png"
    env = {**os.environ}
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    proc = subprocess.run(
        [sys.executable, "-m", "napari_medseg.cli", "demo", "--sample", "ct", "--screenshot",
         str(shot)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    from skimage.io import imread

    pixels = imread(shot)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 400
    assert pixels[..., :3].std() > 10  # an actual rendering, not a blank window


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--sample", "nope"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_predict_reads_png_and_writes_16_bit_png_labels(tmp_path, capsys):
    from skimage.io import imread, imsave

    from napari_medseg import nuclei_2d

    image = nuclei_2d((128, 128), n_nuclei=8, seed=1)[0]
    source, target = tmp_path / "cells.png", tmp_path / "cells_labels.png"
    imsave(source, (image / image.max() * 255).astype(np.uint8), check_contrast=False)
    assert main(["predict", str(source), str(target), "--model", "nuclei-2d",
                 "--device", "cpu"]) == 0
    labels = imread(target)
    assert labels.dtype in (np.uint8, np.uint16) and labels.shape == (128, 128)
    assert labels.max() >= 4
    assert "objects" in capsys.readouterr().out


def test_predict_says_the_object_size_and_takes_one(tmp_path, capsys, monkeypatch):
    import tifffile

    from napari_medseg.model_runner import SegmentationModel

    # float32 as on an AVX2 laptop: with AMX bfloat16 the zoom-1 pass splits these nuclei
    # into about 30-px pieces and the estimate trusts them (docs/models.md)
    monkeypatch.setattr(SegmentationModel, "_bfloat16", lambda self: False)

    from napari_medseg import nuclei_2d
    from napari_medseg.datasets import magnified

    image = magnified(*nuclei_2d(), 3.0)[0]  # nuclei of ~57 px
    tifffile.imwrite(tmp_path / "big.tif", image)
    assert main(["predict", str(tmp_path / "big.tif"), str(tmp_path / "a.tif"), "--model",
                 "nuclei-2d", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "object diameter" in out and "estimated on" in out and "zoomed 0." in out
    assert main(["predict", str(tmp_path / "big.tif"), str(tmp_path / "b.tif"), "--model",
                 "nuclei-2d", "--device", "cpu", "--diameter", "16"]) == 0
    assert "object diameter 16.0 px (given)" in capsys.readouterr().out


def test_bad_paths_are_answered_at_once_and_name_the_flag(tmp_path, capsys):
    code = ("import sys, time; from napari_medseg.cli import main; t = time.time()\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    print('torch' in sys.modules, round(time.time() - t, 1), e.code)\n")
    missing = tmp_path / "missing.tif"
    proc = subprocess.run([sys.executable, "-c", code, "predict", str(missing),
                           str(tmp_path / "out.tif"), "--model", "nuclei-2d"],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.split()[0] == "False"  # refused before torch was imported
    assert "does not exist" in proc.stderr
    existing = tmp_path / "out.tif"
    existing.write_bytes(b"x")
    (tmp_path / "in.tif").write_bytes(b"x")
    with pytest.raises(SystemExit):
        main(["predict", str(tmp_path / "in.tif"), str(existing), "--model", "nuclei-2d"])
    assert "pass --force to replace it" in capsys.readouterr().err


def test_predict_on_a_folder_loads_the_model_once_and_reports_images_per_second(
        tmp_path, capsys):
    from skimage.io import imread, imsave

    from napari_medseg import nuclei_2d

    folder = tmp_path / "images"
    folder.mkdir()
    for seed in range(3):
        image = nuclei_2d((128, 128), n_nuclei=8, seed=seed)[0]
        imsave(folder / f"cells{seed}.png", (image / image.max() * 255).astype(np.uint8),
               check_contrast=False)
    out = tmp_path / "labels"
    assert main(["predict", str(folder), str(out), "--model", "nuclei-2d",
                 "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        f"cells{seed}_labels.png" for seed in range(3)]
    assert imread(out / "cells0_labels.png").max() >= 4
    printed = capsys.readouterr().out
    assert "3 images in" in printed and "images/s" in printed
    with pytest.raises(SystemExit):  # written already: refused without --force, all named
        main(["predict", str(folder), str(out), "--model", "nuclei-2d"])
    assert "cells0_labels.png (and 2 more) already exists" in capsys.readouterr().err


def test_interpolate_a_zarr_label_folder_into_a_copy_or_in_place(tmp_path, capsys,
                                                                 gonuclear_dir):
    """Real GoNuclear labels annotated on every 5th slice, as a plain zarr array and as a
    one-level OME-Zarr label image: the copy is filled as in memory and the input kept; in
    place (OUTPUT = INPUT, --force) the OME-Zarr keeps its metadata; a pyramid is refused."""
    import tifffile
    import zarr
    from ome_zarr.writer import write_image, write_multiscales_metadata

    from napari_medseg import interpolate_labels, read_image

    truth = tifffile.imread(gonuclear_dir / "1135_labels.tif")
    sparse = np.zeros_like(truth)
    sparse[::5] = truth[::5]
    expected = interpolate_labels(sparse, progress=False)

    plain = tmp_path / "sparse.zarr"
    zarr.create_array(str(plain), shape=sparse.shape, chunks=(20, 50, 50),
                      dtype=sparse.dtype)[:] = sparse
    assert main(["interpolate", str(plain), str(tmp_path / "filled.zarr")]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "filled.zarr"))[:], expected)
    np.testing.assert_array_equal(zarr.open_array(str(plain))[:], sparse)
    assert "label 5: filled 12 slice(s)" in capsys.readouterr().out

    ome = tmp_path / "nuclei.ome.zarr"
    group = zarr.open_group(str(ome), mode="w")
    group.create_array("0", shape=sparse.shape, chunks=(20, 50, 50), dtype=sparse.dtype)[:] = \
        sparse
    write_multiscales_metadata(group, [{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": [0.5, 0.2, 0.2]}]}], axes=list("zyx"))
    with pytest.raises(SystemExit):  # in place only with --force
        main(["interpolate", str(ome), str(ome)])
    assert main(["interpolate", str(ome), str(ome), "--force"]) == 0
    [read] = read_image(ome)
    np.testing.assert_array_equal(np.asarray(read.data), expected)
    np.testing.assert_allclose(read.scale, [0.5, 0.2, 0.2])

    pyramid = tmp_path / "pyramid.ome.zarr"
    write_image(sparse, zarr.open_group(str(pyramid), mode="w"), axes="zyx",
                scale_factors=(2,))
    with pytest.raises(SystemExit):
        main(["interpolate", str(pyramid), str(tmp_path / "out.zarr")])
    assert "resolution levels" in capsys.readouterr().err
    assert not (tmp_path / "out.zarr").exists()
    assert not list(tmp_path.glob(".out.zarr.partial-*"))


@pytest.mark.parametrize("command", ["demo", "interpolate", "predict", "train"])
def test_each_subcommands_help_gives_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"example:\n  napari-medseg {command} " in capsys.readouterr().out


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys,
                                                                       monkeypatch):
    import napari_medseg.cli as cli

    def broken(args):
        raise RuntimeError("the model file's weights are corrupt")

    monkeypatch.setattr(cli, "run_predict", broken)
    image = tmp_path / "a.tif"
    tifffile.imwrite(image, np.zeros((32, 32), np.uint8))
    with pytest.raises(SystemExit) as info:
        main(["predict", str(image), str(tmp_path / "b.tif"), "--model", "nuclei-2d"])
    err = capsys.readouterr().err
    assert info.value.code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "RuntimeError: the model file's weights are corrupt" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="corrupt"):
        main(["--debug", "predict", str(image), str(tmp_path / "b.tif"), "--model", "nuclei-2d"])


def test_predict_never_writes_over_what_it_reads(tmp_path, capsys):
    """Issue 30.1-2: a file onto itself, a folder's annotations, two inputs to one output."""
    from skimage.io import imsave

    from napari_medseg import nuclei_2d

    folder = tmp_path / "images"
    folder.mkdir()
    image = nuclei_2d((128, 128), n_nuclei=8, seed=0)[0]
    grey = (image / image.max() * 255).astype(np.uint8)
    imsave(folder / "a.tif", grey, check_contrast=False)
    truth = np.arange(128 * 128, dtype=np.uint16).reshape(128, 128) % 7
    imsave(folder / "a_labels.tif", truth, check_contrast=False)  # the user's annotations
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(SystemExit):
        main(["predict", str(folder / "a.tif"), str(folder / "a.tif"), "--force",
              "--model", "nuclei-2d"])
    assert "is the input" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # into the images' own folder: the annotations stay
        main(["predict", str(folder), str(folder), "--force", "--model", "nuclei-2d"])
    assert "a_labels.tif is a file of the input folder" in capsys.readouterr().err
    imsave(folder / "a.tiff", grey, check_contrast=False)
    with pytest.raises(SystemExit):
        main(["predict", str(folder), str(tmp_path / "out"), "--model", "nuclei-2d"])
    assert "a.tif and a.tiff would both be written to a_labels.tif" in capsys.readouterr().err
    (folder / "a.tiff").unlink()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    # the annotations are not an input: one image segmented
    assert main(["predict", str(folder), str(tmp_path / "out"), "--model", "nuclei-2d",
                 "--device", "cpu"]) == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a_labels.tif"]
    assert "1 images in" in capsys.readouterr().out


def test_one_unreadable_file_of_a_folder_is_reported_and_the_rest_segmented(tmp_path, capsys):
    """Issue 30.15."""
    from skimage.io import imsave

    from napari_medseg import nuclei_2d

    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a.png", "c.png"):
        image = nuclei_2d((128, 128), n_nuclei=8, seed=1)[0]
        imsave(folder / name, (image / image.max() * 255).astype(np.uint8),
               check_contrast=False)
    (folder / "b.png").write_bytes(b"not a png")
    with pytest.raises(SystemExit, match="1"):
        main(["predict", str(folder), str(tmp_path / "out"), "--model", "nuclei-2d",
              "--device", "cpu"])
    err = capsys.readouterr().err
    assert "b.png: error:" in err and "1 of 3 files failed: b.png" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_labels.png",
                                                                    "c_labels.png"]


def test_interpolate_in_place_killed_while_writing_leaves_the_old_labels(tmp_path):
    """Issue 30.3: in place, a kill left half-interpolated labels with no way back. The run
    writes a copy and swaps it in: killed (SIGKILL) while writing, the old labels stay, and
    the next run clears the dead run's copy and fills the slices."""
    import signal

    import zarr

    from conftest import start_writing

    sparse = np.zeros((9, 32, 32), np.uint16)
    sparse[0, 8:20, 8:20] = sparse[8, 10:24, 10:24] = 3
    path = tmp_path / "nuclei.zarr"
    zarr.create_array(str(path), shape=sparse.shape, chunks=(3, 16, 16),
                      dtype=sparse.dtype)[:] = sparse
    code = ("import sys, time\n"
            "import napari_medseg.slice_interpolation as si\n"
            "def writing(node, **options):\n"
            "    node[0] = 99; node[4] = 7  # chunks half rewritten...\n"
            "    print('writing', flush=True); time.sleep(60)\n"
            "si.interpolate_labels_with_report = writing\n"
            "from napari_medseg.cli import main\n"
            "main(['interpolate', sys.argv[1], sys.argv[1], '--force'])\n")
    run = start_writing(code, str(path))
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    np.testing.assert_array_equal(zarr.open_array(str(path))[:], sparse)  # ...the old stay
    assert main(["interpolate", str(path), str(path), "--force"]) == 0
    filled = zarr.open_array(str(path))[:]
    assert (filled[4] == 3).any() and (filled[[0, 8]] == sparse[[0, 8]]).all()
    assert [p.name for p in tmp_path.iterdir()] == ["nuclei.zarr"]
