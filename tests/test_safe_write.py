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
