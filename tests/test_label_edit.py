"""Committing masks into plain label arrays."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_medseg import commit_mask, next_free_label, plan_mask_edit


def test_next_free_label():
    assert next_free_label(np.zeros((3, 3), np.uint8)) == 1
    assert next_free_label(np.array([[0, 7], [2, 0]], np.int32)) == 8
    # past the dtype's largest id, the smallest id not in use (253 are free here)
    assert next_free_label(np.array([0, 1, 255], np.uint8)) == 2
    assert next_free_label(np.array([255], np.uint8)) == 1
    with pytest.raises(ValueError, match="No free label id"):
        next_free_label(np.arange(256, dtype=np.uint8))
    with pytest.raises(ValueError, match="integer dtype"):
        next_free_label(np.zeros(3, float))


def test_preserve_keeps_other_objects_and_overwrite_replaces_them():
    labels = np.zeros((6, 6), np.uint16)
    labels[0:3, 0:3] = 4
    mask = np.zeros((6, 6), bool)
    mask[1:5, 1:5] = True

    kept = labels.copy()
    edit = commit_mask(kept, mask)
    assert edit.label == 5
    assert (kept[0:3, 0:3] == 4).all()
    assert (kept[mask & (labels == 0)] == 5).all()
    assert edit.n_changed == (mask & (labels == 0)).sum()

    over = labels.copy()
    commit_mask(over, mask, label=9, mode="overwrite")
    assert (over[mask] == 9).all()
    assert (over[~mask] == labels[~mask]).all()


def test_cropped_mask_with_offset_is_clipped_to_the_array():
    labels = np.zeros((10, 10, 10), np.uint8)
    crop = np.ones((4, 4, 4), bool)
    edit = commit_mask(labels, crop, label=3, offset=(8, -2, 5))
    assert edit.n_changed == 2 * 2 * 4
    assert (labels[8:10, 0:2, 5:9] == 3).all()
    assert labels.sum() == 3 * 16
    # A crop entirely outside changes nothing.
    assert commit_mask(labels, crop, offset=(20, 0, 0)).n_changed == 0


def test_undo_with_old_values_restores_exactly():
    labels = np.arange(25, dtype=np.int32).reshape(5, 5) % 3
    before = labels.copy()
    mask = np.eye(5, dtype=bool)
    edit = commit_mask(labels, mask, label=7, mode="overwrite")
    labels[edit.indices] = edit.old_values
    np.testing.assert_array_equal(labels, before)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mask": np.ones((4, 4), np.uint8)}, "boolean"),
        ({"mask": np.ones((4,), bool)}, "dimensions"),
        ({"mask": np.ones((3, 3), bool)}, "offset"),
        ({"mask": np.ones((4, 4), bool), "mode": "replace"}, "mode"),
        ({"mask": np.ones((4, 4), bool), "label": 0}, "label must be"),
        ({"mask": np.ones((4, 4), bool), "label": 300}, "label must be"),
        ({"mask": np.ones((4, 4), bool), "label": 1.7}, "label must be a whole number"),
        ({"mask": np.ones((4, 4), bool), "label": "2"}, "label must be an integer"),
        ({"mask": np.ones((3, 3), bool), "offset": (1.9, 1.9)}, "must be a whole number"),
    ],
)
def test_bad_input_is_refused_and_labels_untouched(kwargs, message):
    labels = np.full((4, 4), 2, np.uint8)
    with pytest.raises((ValueError, TypeError), match=message):
        commit_mask(labels, **kwargs)
    assert (labels == 2).all()


def test_read_only_array_is_refused():
    labels = np.zeros((3, 3), np.uint8)
    labels.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        commit_mask(labels, np.ones((3, 3), bool))


def test_only_the_bounding_box_is_scanned():
    """A small crop committed into a large volume costs time of the crop, not the volume."""
    labels = np.zeros((8, 2048, 2048), np.uint16)  # 64 MiB
    plan = plan_mask_edit(labels, np.ones((2, 3, 3), bool), label=1, offset=(1, 100, 100))
    assert plan.n_changed == 18
    assert {tuple(ix) for ix in zip(*plan.indices, strict=True)} == {
        (z, y, x) for z in (1, 2) for y in (100, 101, 102) for x in (100, 101, 102)
    }


def test_commit_on_real_nuclei_labels(dsb_dir):
    labels = tifffile.imread(next(dsb_dir.glob("*_labels.tif")))
    # Re-commit one nucleus grown by a pixel: only background around it changes.
    from scipy import ndimage as ndi

    target = int(labels.max())
    grown = ndi.binary_dilation(labels == target, iterations=2)
    out = labels.copy()
    edit = commit_mask(out, grown, label=target)
    assert (out[labels != 0] == labels[labels != 0]).all()
    assert edit.n_changed == (grown & (labels == 0)).sum() > 0


label_arrays = arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)),
                      elements=st.integers(0, 5))


@settings(max_examples=150, deadline=None)
@given(labels=label_arrays, data=st.data())
def test_properties(labels, data):
    mask = data.draw(arrays(bool, labels.shape))
    label = data.draw(st.integers(1, 9))
    mode = data.draw(st.sampled_from(["preserve", "overwrite"]))
    out = labels.copy()
    edit = commit_mask(out, mask, label=label, mode=mode)
    # Nothing outside the mask changes; inside it, the label is written where allowed.
    np.testing.assert_array_equal(out[~mask], labels[~mask])
    writable = mask if mode == "overwrite" else mask & ((labels == 0) | (labels == label))
    assert (out[writable] == label).all()
    np.testing.assert_array_equal(out[mask & ~writable], labels[mask & ~writable])
    # Committing again is a no-op, and the edit record undoes the commit.
    assert commit_mask(out, mask, label=label, mode=mode).n_changed == 0
    out[edit.indices] = edit.old_values
    np.testing.assert_array_equal(out, labels)


def _chunk_files(folder) -> dict[str, float]:
    """Chunk files of a zarr v3 array and their modification times."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for p in (folder / "c").rglob("*") if p.is_file()}


def test_commit_into_zarr_writes_only_the_chunks_under_the_mask(tmp_path, gonuclear_dir):
    """A real GoNuclear nucleus committed into a chunked zarr label volume on disk: only
    the chunks it covers are read and written, the next id comes from the array's record
    of its largest id, and a read-only array is refused."""
    import zarr

    from napari_medseg.label_edit import label_maximum

    labels = tifffile.imread(gonuclear_dir / "1135_labels.tif")
    nucleus = labels == np.bincount(labels.ravel())[1:].argmax() + 1
    ks, ys, xs = (slice(i.min(), i.max() + 1) for i in np.nonzero(nucleus))
    folder = tmp_path / "labels.zarr"
    store = zarr.create_array(str(folder), shape=(4 * labels.shape[0], *labels.shape[1:]),
                              chunks=(16, 32, 32), dtype="uint32")
    store[0, 0, 0] = 41  # another object, far away
    before = _chunk_files(folder)
    assert next_free_label(store) == 42  # read once (no record yet)...
    edit = commit_mask(store, nucleus[ks, ys, xs], offset=(ks.start, ys.start, xs.start))
    assert edit.label == 42 and edit.n_changed == nucleus.sum()
    assert store.attrs["napari-medseg"]["max_label"] == 42  # ...then kept in the record
    after = _chunk_files(folder)
    covered = {f"c/{k}/{y}/{x}" for k in range(ks.start // 16, (ks.stop - 1) // 16 + 1)
               for y in range(ys.start // 32, (ys.stop - 1) // 32 + 1)
               for x in range(xs.start // 32, (xs.stop - 1) // 32 + 1)}
    changed = {name for name, t in after.items() if before.get(name) != t}
    assert changed == covered and before["c/0/0/0"] == after["c/0/0/0"]
    np.testing.assert_array_equal(store[ks, ys, xs] == 42, nucleus[ks, ys, xs])

    store[-1, -1, -1] = 99  # written behind the record's back: not seen...
    assert label_maximum(store) == 42
    again = zarr.open_array(str(folder), mode="r")
    with pytest.raises(ValueError, match="read-only"):
        commit_mask(again, nucleus[ks, ys, xs], offset=(0, 0, 0))
    assert (store[:16, :32, :32] != 43).all()


@pytest.mark.parametrize("record", [True, -3, "x", 10**12, 3])
def test_a_bad_or_stale_largest_id_record_is_repaired_not_handed_out(tmp_path, record):
    """Issue 30.5: ``true``, a negative number, one beyond the dtype, or one below the ids
    the chunks being written hold (another program wrote them) never gives an id in use."""
    import zarr

    from napari_medseg.label_edit import MAX_LABEL_KEY, RECORD_KEY, commit_mask

    data = np.zeros((8, 8), np.uint16)
    data[0, 0], data[4:6, 4:6] = 9, 4
    labels = zarr.create_array(str(tmp_path / "l.zarr"), data=data, chunks=(4, 4))
    labels.attrs[RECORD_KEY] = {MAX_LABEL_KEY: record}
    mask = np.zeros((8, 8), bool)
    mask[3:7, 3:7] = True  # around object 4: its chunks are read
    with pytest.warns(UserWarning, match="record"):
        edit = commit_mask(labels, mask)
    assert edit.label == 10 and labels.attrs[RECORD_KEY][MAX_LABEL_KEY] == 10
    assert (labels[4:6, 4:6] == 4).all() and labels[0, 0] == 9
