"""Writers never leave half a file, keep permissions, refuse protected files, follow links."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch

from napari_medseg import write_labels
from napari_medseg.model_files import save_model
from napari_medseg.model_info import ModelInfo
from napari_medseg.networks import build_network
from napari_medseg.safe_write import FileWriteError

LABELS = np.arange(12, dtype=np.uint8).reshape(3, 4)
SUFFIXES = ["x.tif", "x.nii.gz"]


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("name", SUFFIXES)
def test_new_files_get_the_mode_open_would_give_and_replaced_ones_keep_theirs(
        tmp_path, umask_022, name):
    path = write_labels(tmp_path / name, LABELS)
    assert _mode(path) == 0o644
    os.chmod(path, 0o664)
    write_labels(path, LABELS + 1, overwrite=True)
    assert _mode(path) == 0o664
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries


@pytest.mark.parametrize("name", SUFFIXES)
def test_write_protected_files_are_refused_and_left_alone(tmp_path, name):
    path = write_labels(tmp_path / name, LABELS)
    before = path.read_bytes()
    os.chmod(path, 0o444)
    with pytest.raises(FileWriteError, match="write-protected"):
        write_labels(path, LABELS + 1, overwrite=True)
    assert path.read_bytes() == before


@pytest.mark.parametrize("name", SUFFIXES)
def test_a_symbolic_link_is_written_through_to_its_target(tmp_path, name):
    target = write_labels(tmp_path / name, LABELS)
    link = tmp_path / f"link-{name}"
    link.symlink_to(target)
    written = write_labels(link, LABELS + 1, overwrite=True)
    assert link.is_symlink() and written == target.resolve()
    assert target.read_bytes() != b""


def _model():
    info = ModelInfo("unet", 2, 1, ["background", "object"],
                     kwargs={"channels": (4, 8), "strides": (2,), "num_res_units": 0})
    return build_network("unet", 2, 1, 2, **info.kwargs), info


def test_save_model_refuses_to_replace_a_file_unless_asked_and_names_a_missing_folder(
        tmp_path):
    net, info = _model()
    path = save_model(tmp_path / "m.pt", net, info)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_model(path, net, info)
    save_model(path, net, info, overwrite=True)
    with pytest.raises(FileWriteError, match="does not exist"):
        save_model(tmp_path / "missing" / "m.pt", net, info)


def test_a_failing_save_leaves_the_old_file_untouched(tmp_path, monkeypatch):
    net, info = _model()
    path = save_model(tmp_path / "m.pt", net, info)
    before = path.read_bytes()

    def broken(obj, file):
        with open(file, "wb") as f:
            f.write(b"half a fi")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, net, info, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_a_killed_runs_partial_folder_is_removed_by_the_next_run(tmp_path):
    """Issue 30.16: a run killed while writing left `.NAME.partial-XXXX` forever."""
    import signal
    import time

    from conftest import start_writing
    from napari_medseg.safe_write import written_beside

    target = tmp_path / "out.zarr"
    code = ("import sys, time\nfrom pathlib import Path\n"
            "from napari_medseg.safe_write import written_beside\n"
            "with written_beside(Path(sys.argv[1])) as folder:\n"
            "    folder.mkdir(); (folder / 'chunk').write_bytes(b'x')\n"
            "    print('writing', flush=True)\n"
            "    time.sleep(60)\n")
    run = start_writing(code, str(target))
    [partial] = tmp_path.iterdir()
    with pytest.raises(FileExistsError, match=f"another run \\(process {run.pid}\\)"):
        with written_beside(target):  # two runs never race for one output
            pass
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    time.sleep(0.1)
    assert partial.exists()  # nothing removed it: killed
    with written_beside(target) as folder:
        folder.mkdir()
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]


def test_an_old_output_set_aside_by_a_killed_run_is_put_back_or_removed(tmp_path):
    from napari_medseg.safe_write import written_beside

    target = tmp_path / "out.zarr"
    (tmp_path / ".out.zarr.old-1234abcd").mkdir()  # killed between the two renames
    with pytest.raises(RuntimeError):
        with written_beside(target):
            raise RuntimeError("failed")
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]  # the only copy, back
    (tmp_path / ".out.zarr.old-5678abcd").mkdir()  # the new one was in place already
    with written_beside(target, replace=True) as folder:
        folder.mkdir()
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]


def test_a_file_replaced_by_a_folder_leaves_nothing_behind_and_a_new_output_is_not_raced(
        tmp_path):
    from napari_medseg.safe_write import move_folder_into_place, written_beside

    target = tmp_path / "out.zarr"
    target.write_bytes(b"an old file")
    with written_beside(target, replace=True) as folder:
        folder.mkdir()
    assert target.is_dir() and [p.name for p in tmp_path.iterdir()] == ["out.zarr"]
    (tmp_path / "new").mkdir()
    with pytest.raises(FileExistsError, match="created while this run wrote it"):
        move_folder_into_place(tmp_path / "new", target, replace=False)
    assert target.is_dir() and (tmp_path / "new").is_dir()
