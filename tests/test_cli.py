"""The console script."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
