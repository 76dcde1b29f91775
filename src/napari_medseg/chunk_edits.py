"""Edits of a zarr array held in memory chunk by chunk until they are written.

An algorithm that edits a label volume larger than memory (interpolation of zarr-backed
labels) reads and writes regions through :class:`ChunkEdits`: the chunks a region
touches are read once and kept, the array itself is not written until
:meth:`ChunkEdits.write` (all at once, so stopping early leaves it untouched), and
:meth:`ChunkEdits.changes` lists the changed voxels for an undoable edit of a napari
layer. Memory follows the chunks touched, not the volume.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["ChunkEdits"]


class ChunkEdits:
    """In-memory edits of the chunks of ``array`` (a zarr array, or anything with
    ``shape``, ``chunks`` and region indexing).

    Indexing takes a tuple of one slice (with explicit bounds inside the array) or int
    per axis, like the array's own.

    Examples
    --------
    >>> import zarr
    >>> array = zarr.zeros((8, 8), chunks=(4, 4), dtype="uint8")
    >>> edits = ChunkEdits(array)
    >>> edits[1:3, 2:6] = 5
    >>> int(array[:].sum()), int(edits[0:4, 0:8].sum())  # the array is not written yet
    (0, 40)
    >>> indices, old, new = edits.changes()
    >>> len(old), int(new.max()), edits.write()  # 8 voxels changed, in 2 chunks
    (8, 5, 2)
    >>> int(array[:].sum())
    40
    """

    def __init__(self, array):
        self.array = array
        self.shape = tuple(array.shape)
        self._grid = tuple(array.chunks)
        self._chunks: dict[tuple[int, ...], np.ndarray] = {}
        self._original: dict[tuple[int, ...], np.ndarray] = {}
        self._dirty: set[tuple[int, ...]] = set()

    def __getitem__(self, index) -> np.ndarray:
        region, kept = self._region(index)
        out = np.empty([s.stop - s.start for s in region], self.array.dtype)
        for key, inner, outer in self._pieces(region):
            out[outer] = self._chunk(key)[inner]
        return out.reshape(kept)

    def __setitem__(self, index, values) -> None:
        region, kept = self._region(index)
        # values are shaped like what __getitem__ returns (int indices drop their axis)
        values = np.broadcast_to(np.asarray(values, self.array.dtype), kept).reshape(
            [s.stop - s.start for s in region])
        for key, inner, outer in self._pieces(region):
            self._chunk(key)[inner] = values[outer]
            self._dirty.add(key)

    @property
    def n_chunks(self) -> int:
        """Chunks read so far."""
        return len(self._chunks)

    def changes(self) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
        """The voxels that differ from the array as first read: ``(indices, old, new)``,
        a fancy index (one ``(K,)`` intp array per axis) and the old and new values."""
        parts = []
        for key in sorted(self._dirty):
            chunk, original = self._chunks[key], self._original[key]
            local = np.nonzero(chunk != original)
            start = [k * c for k, c in zip(key, self._grid, strict=True)]
            parts.append((tuple(i + s for i, s in zip(local, start, strict=True)),
                          original[local], chunk[local]))
        if not parts:
            empty = np.empty(0, np.intp)
            return (tuple(empty for _ in self.shape), np.empty(0, self.array.dtype),
                    np.empty(0, self.array.dtype))
        indices = tuple(np.concatenate([p[0][a] for p in parts]) for a in range(len(self.shape)))
        return (indices, np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]))

    def write(self) -> int:
        """Write every changed chunk into the array; returns how many were written."""
        written = 0
        for key in sorted(self._dirty):
            if not np.array_equal(self._chunks[key], self._original[key]):
                self.array[self._chunk_slices(key)] = self._chunks[key]
                written += 1
        return written

    # -- internals -----------------------------------------------------------------------
    def _region(self, index) -> tuple[list[slice], list[int]]:
        """The region ``index`` covers, one slice per axis, and the shape of what it reads
        (without the axes that ints index)."""
        index = index if isinstance(index, tuple) else (index,)
        if len(index) != len(self.shape):
            raise IndexError(f"need {len(self.shape)} indices, got {len(index)}.")
        region, kept = [], []
        for ix, n in zip(index, self.shape, strict=True):
            if isinstance(ix, slice):
                start, stop, step = ix.indices(n)
                if step != 1:
                    raise IndexError("ChunkEdits takes slices with step 1.")
                region.append(slice(start, max(stop, start)))
                kept.append(region[-1].stop - start)
            else:
                region.append(slice(int(ix), int(ix) + 1))
        return region, kept

    def _pieces(self, region: list[slice]):
        """``(chunk key, slices in the chunk, slices in the region)`` for every chunk the
        region overlaps."""
        ranges = [range(s.start // c, (s.stop - 1) // c + 1) if s.stop > s.start else range(0)
                  for s, c in zip(region, self._grid, strict=True)]
        for key in itertools.product(*ranges):
            inner, outer = [], []
            for k, s, c in zip(key, region, self._grid, strict=True):
                lo, hi = max(s.start, k * c), min(s.stop, (k + 1) * c)
                inner.append(slice(lo - k * c, hi - k * c))
                outer.append(slice(lo - s.start, hi - s.start))
            yield key, tuple(inner), tuple(outer)

    def _chunk_slices(self, key) -> tuple[slice, ...]:
        return tuple(slice(k * c, min((k + 1) * c, n))
                     for k, c, n in zip(key, self._grid, self.shape, strict=True))

    def _chunk(self, key) -> np.ndarray:
        if key not in self._chunks:
            data = np.array(self.array[self._chunk_slices(key)])
            self._chunks[key], self._original[key] = data, data.copy()
        return self._chunks[key]
