"""A journal of label edits on disk, so that a crash loses none of them.

A viewer that dies (a crash, a killed process, a closed laptop) takes every unsaved edit
with it. Each journaled label array keeps, in a folder of this process, where its
content came from (a file it was read from, all zeros, or a snapshot taken when it was
first edited) and the latest content of every tile that was edited since: a restore is
the base with those tiles laid over it. Writing tiles, not whole arrays, keeps a commit's
cost to the region it touched. The folder goes when the process ends cleanly (or the
array is saved); a folder whose process is gone is what :func:`recoverable` lists.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["EditJournal", "RecoveredLabels", "default_root", "discard", "recoverable",
           "restore", "tiles_under"]

TILE = 64  # tile side along the last two axes (one index along the others): small tiles
# keep what a commit makes the journal write close to the object's own size


def default_root() -> Path:
    """Where journals live: ``$MEDSEG_RECOVERY``, else the user's cache folder."""
    if os.environ.get("MEDSEG_RECOVERY"):
        return Path(os.environ["MEDSEG_RECOVERY"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("napari-medseg")) / "recovery"


def tiles_under(region: Iterable[slice], shape: tuple[int, ...]) -> set[tuple[int, ...]]:
    """The tiles (indices on the tile grid) a box of ``slice`` s touches.

    Examples
    --------
    >>> sorted(tiles_under((slice(2, 4), slice(60, 70), slice(0, 10)), (8, 512, 512)))
    [(2, 0, 0), (2, 1, 0), (3, 0, 0), (3, 1, 0)]
    """
    ranges = []
    for axis, (where, n) in enumerate(zip(region, shape, strict=True)):
        start, stop, _ = where.indices(n)
        side = TILE if axis >= len(shape) - 2 else 1
        if stop <= start:
            return set()
        ranges.append(range(start // side, (stop - 1) // side + 1))
    return {tuple(t) for t in np.stack(np.meshgrid(*ranges, indexing="ij"), -1).reshape(
        -1, len(shape)).tolist()}


def _tile_slices(tile: tuple[int, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    sides = [1] * (len(shape) - 2) + [TILE, TILE]
    return tuple(slice(t * s, min((t + 1) * s, n)) for t, s, n in zip(tile, sides, shape,
                                                                       strict=True))


class EditJournal:
    """The journal of this process: one sub-folder per label array.

    Parameters
    ----------
    root : path, optional
        Folder of all journals (default :func:`default_root`); this process's goes in
        ``root / "<pid>-<start time>"`` and is removed at a clean exit.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> journal = EditJournal(root)
    >>> labels = np.zeros((4, 300, 300), np.uint16)
    >>> journal.start("cells", labels, name="cells", base="zeros")
    >>> labels[1, 10:20, 10:20] = 7
    >>> journal.write("cells", labels, tiles_under((slice(1, 2), slice(10, 20),
    ...                                             slice(10, 20)), labels.shape))
    >>> [(found.name, int(found.data.max()))
    ...  for found in restore(journal.folder)]  # what a new process would restore
    [('cells', 7)]
    >>> journal.close()
    """

    def __init__(self, root: str | Path | None = None):
        root = Path(root) if root is not None else default_root()
        self.folder = root / f"{os.getpid()}-{int(time.time() * 1000)}"
        self._layers: dict[str, Path] = {}
        self._started = self._writes = 0
        atexit.register(self.close)

    def __contains__(self, key: str) -> bool:
        return key in self._layers

    def start(self, key: str, array: np.ndarray, *, name: str, base: str | Path,
              scale: Iterable[float] | None = None, translate: Iterable[float] | None = None
              ) -> None:
        """Journal ``array`` under ``key``. ``base``: the file it was read from, "zeros",
        or "snapshot" (its content now is written once)."""
        self._started += 1  # never a folder number twice (forgotten layers leave gaps)
        folder = self.folder / f"{self._started:03d}"
        (folder / "tiles").mkdir(parents=True)
        meta = {"name": name, "shape": list(array.shape), "dtype": str(array.dtype),
                "scale": None if scale is None else [float(s) for s in scale],
                "translate": None if translate is None else [float(t) for t in translate]}
        if base == "snapshot":
            np.save(folder / "base.npy", np.asarray(array))
        elif base != "zeros":
            path = Path(base).resolve()
            stat = path.stat()
            meta["file"] = {"path": str(path), "size": stat.st_size, "mtime": stat.st_mtime}
        meta["base"] = base if base in ("zeros", "snapshot") else "file"
        (folder / "meta.json").write_text(json.dumps(meta))
        self._layers[key] = folder

    def write(self, key: str, array: np.ndarray, tiles: Iterable[tuple[int, ...]]) -> None:
        """Write the current content of ``tiles`` of the journaled ``array``: one file per
        call (later files win on restore)."""
        tiles = list(tiles)
        if not tiles:
            return
        folder = self._layers[key] / "tiles"
        self._writes += 1
        part = folder / f"{self._writes:08d}.npz"
        temporary = folder / f"{self._writes:08d}.tmp"
        with open(temporary, "wb") as file:
            np.savez(file, **{"_".join(map(str, t)): np.asarray(
                array[_tile_slices(t, array.shape)]) for t in tiles})
        os.replace(temporary, part)  # a kill mid-write leaves the earlier files whole

    def forget(self, key: str) -> None:
        """Stop journaling ``key`` and remove its files (it was saved)."""
        folder = self._layers.pop(key, None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Remove this process's journal (a clean exit)."""
        self._layers.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class RecoveredLabels:
    """A label array rebuilt from a journal."""

    name: str
    data: np.ndarray
    scale: list[float] | None
    translate: list[float] | None
    note: str  # where its base came from, and any doubt about it


def recoverable(root: str | Path | None = None) -> list[Path]:
    """Journals of processes that are gone (crashed or killed), oldest first."""
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        pid = folder.name.split("-")[0]
        if folder.is_dir() and pid.isdigit() and not _alive(int(pid)) and any(
                folder.glob("*/meta.json")):
            found.append(folder)
    return found


def restore(folder: str | Path) -> list[RecoveredLabels]:
    """Rebuild the label arrays of a journal folder (see :class:`EditJournal`)."""
    out = []
    for layer in sorted(Path(folder).glob("*/meta.json")):
        meta = json.loads(layer.read_text())
        shape, dtype = tuple(meta["shape"]), np.dtype(meta["dtype"])
        note = "edits on an empty layer"
        if meta["base"] == "snapshot":
            data = np.load(layer.parent / "base.npy")
            note = "edits on the layer as it was when first edited"
        elif meta["base"] == "file":
            data, note = _from_file(meta["file"], shape, dtype)
        else:
            data = np.zeros(shape, dtype)
        for part in sorted((layer.parent / "tiles").glob("*.npz")):
            with np.load(part) as tiles:
                for name in tiles.files:
                    tile = tuple(int(t) for t in name.split("_"))
                    data[_tile_slices(tile, shape)] = tiles[name]
        out.append(RecoveredLabels(meta["name"], data, meta["scale"], meta["translate"], note))
    return out


def discard(folder: str | Path) -> None:
    """Remove a journal folder (restored, or declined)."""
    shutil.rmtree(folder, ignore_errors=True)


def _from_file(file: dict, shape, dtype) -> tuple[np.ndarray, str]:
    from napari_medseg.io import read_image

    path = Path(file["path"])
    if not path.exists():
        return np.zeros(shape, dtype), (f"{path} is gone: only the edited tiles are "
                                        "restored, on an empty layer")
    [found] = read_image(path)
    data = np.array(found.data, dtype=dtype)
    if data.shape != shape:
        return np.zeros(shape, dtype), (f"{path} now holds another shape: only the edited "
                                        "tiles are restored, on an empty layer")
    stat = path.stat()
    changed = stat.st_size != file["size"] or stat.st_mtime != file["mtime"]
    return data, (f"edits on {path}" + (" (the file changed since; check the result)"
                                        if changed else ""))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
