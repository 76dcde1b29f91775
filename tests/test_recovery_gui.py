"""Nothing lost in a crash: a viewer killed while editing leaves its label edits in the
journal, and the next viewer's MedSeg panel restores them; a clean exit or a save leaves
nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np

from napari_medseg.recovery import recoverable

_EDIT = textwrap.dedent("""
    import os, signal, sys, numpy as np, napari
    from qtpy.QtWidgets import QApplication
    from napari_medseg import nuclei_2d
    from napari_medseg.plugin.box_click_widget import BoxClickWidget

    image, truth = nuclei_2d((300, 300), n_nuclei=8, seed=4)
    viewer = napari.Viewer(show=False)
    picture = viewer.add_image(image)
    labels = viewer.add_labels(np.zeros(truth.shape, np.uint16), name="cells")
    widget = BoxClickWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._source.value, widget._target.value = picture, labels
    widget._active.value = True
    for label in (1, 2, 3):
        ys, xs = np.nonzero(truth == label)
        widget.set_box((ys.min() - 2, xs.min() - 2), (ys.max() + 2, xs.max() + 2))
        widget.commit()
    labels.undo()                          # the third object taken back
    labels.paint((280, 280), 9)            # napari's own brush
    def wait(seconds):
        import time
        end = time.time() + seconds
        while time.time() < end:
            QApplication.processEvents()
            time.sleep(0.05)
    wait(1.6)                              # the journal writes a second after the edits
    np.save(sys.argv[1], labels.data)
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    viewer.close()
""")


def _edit_in_a_viewer(tmp_path, how: str):
    root = tmp_path / "journal"
    env = {**os.environ, "MEDSEG_RECOVERY": str(root), "QT_QPA_PLATFORM": "offscreen"}
    expected = tmp_path / "expected.npy"
    proc = subprocess.run([sys.executable, "-c", _EDIT, str(expected), how], env=env,
                          capture_output=True, text=True, timeout=300)
    return proc, root, expected


def test_a_killed_viewers_edits_are_restored_by_the_next_panel(tmp_path, make_napari_viewer,
                                                               monkeypatch):
    proc, root, expected = _edit_in_a_viewer(tmp_path, "kill")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    expected = np.load(expected)
    assert set(np.unique(expected)) == {0, 1, 2, 9}  # two commits kept, one undone, a brush
    assert len(recoverable(root)) == 1
    monkeypatch.setenv("MEDSEG_RECOVERY", str(root))
    viewer = make_napari_viewer()
    _, panel = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    assert not panel._restore.native.isHidden()
    panel._restore.native.click()
    restored = viewer.layers["cells (recovered)"]
    np.testing.assert_array_equal(restored.data, expected)
    assert not recoverable(root) and panel._restore.native.isHidden()


def test_a_clean_exit_and_a_save_leave_no_journal(tmp_path):
    proc, root, _ = _edit_in_a_viewer(tmp_path, "close")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not root.exists() or not any(root.iterdir())


def test_saving_a_layer_removes_its_journal(tmp_path, make_napari_viewer):
    from napari_medseg.plugin import recovery_watch
    from napari_medseg.plugin.writers import write_labels_tiff

    viewer = make_napari_viewer()
    layer = viewer.add_labels(np.zeros((40, 40), np.uint8), name="saved one")
    recovery_watch.journal_layer(layer)
    layer.paint((10, 10), 3)
    key = str(id(layer))
    folder = recovery_watch._journal._layers[key]
    assert folder.exists()
    write_labels_tiff(str(tmp_path / "saved.tif"), layer.data, {"name": "saved one"})
    assert not folder.exists() and key not in recovery_watch._layers


def test_layers_journaled_after_others_were_saved_get_folders_of_their_own(tmp_path):
    from napari_medseg.recovery import EditJournal

    journal = EditJournal(tmp_path)
    labels = np.zeros((8, 8), np.uint8)
    journal.start("a", labels, name="a", base="zeros")
    journal.start("b", labels, name="b", base="zeros")
    journal.forget("a")
    journal.start("c", labels, name="c", base="zeros")  # once reused b's folder and failed
    assert len({p.name for p in journal.folder.iterdir()}) == 2
    journal.close()
