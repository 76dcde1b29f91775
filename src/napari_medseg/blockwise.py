"""Segmenting arrays of any size block by block, into zarr, with dask.

The image (numpy, dask or zarr) is cut into a grid of blocks; each block is segmented
with a margin of ``halo`` pixels around it, and only its own part (the *core*) is
written, straight into a zarr array chunked so that every block owns whole chunks
(no two tasks ever write one chunk). An object cut by a block border is seen whole
by both blocks in the margin they share; there the two segmentations are matched
(IoU above 0.5, one to one) and the matched objects joined, so every object gets one
id across the volume. A second pass rewrites each block with the final ids.

Normalisation is the whole image's, as :meth:`SegmentationModel.segment` would
compute it, from a subsample of the blocks. Blocks with no signal, a constant value
(padding, an empty region of a light-sheet volume) or, for models of bright objects,
nothing above the image's background level, are skipped: never segmented, never
written (zarr reads unwritten chunks as 0).

Work runs on dask's threaded scheduler, or on a ``dask.distributed`` cluster when
given a client; results are written to a hidden folder beside ``out`` and moved into
place only when complete, so a failure or Cancel leaves nothing half-written.
"""

from __future__ import annotations

import itertools
import math
import os
import zlib
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_medseg.evaluation import matches
from napari_medseg.label_edit import MAX_LABEL_KEY, RECORD_KEY
from napari_medseg.runtime import Cancelled, run_steps
from napari_medseg.safe_write import check_apart, written_beside
from napari_medseg.validation import as_integers, is_colour

__all__ = ["BlockGrid", "open_labels", "segment_blockwise", "segment_blockwise_steps"]

DEFAULT_BLOCK = 1024  # pixels along y and x (and z for 3D models)
DEFAULT_BLOCK_Z = 64  # planes per block when a 2D model runs on a stack
DEFAULT_HALO = 64  # pixels along y and x: wider than the nuclei the models are made for
DEFAULT_HALO_Z = 8
_SAMPLE = 4_000_000  # values per channel the normalisation ranges are computed from
_MATCH_IOU = 0.5


@dataclass(frozen=True)
class BlockGrid:
    """A grid of blocks over a spatial shape, each with a margin.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the image.
    block : tuple of int
        Block shape (the last blocks along an axis may be smaller).
    halo : tuple of int
        Margin read around each block; at most half the block.
    tile, step : tuple of int, optional
        The sliding window's tile and step: extended blocks then start and end on
        the whole image's tile grid, so a block's tiles are the whole image's and
        its probabilities those of the whole image (their blending depends on where
        tiles lie).

    Examples
    --------
    >>> grid = BlockGrid((100, 250), (64, 128), (16, 16))
    >>> grid.counts, len(grid)
    ((2, 2), 4)
    >>> grid.core(3), grid.extended(3)
    ((slice(64, 100, None), slice(128, 250, None)), (slice(48, 100, None), slice(112, 250, None)))
    """

    shape: tuple[int, ...]
    block: tuple[int, ...]
    halo: tuple[int, ...]
    tile: tuple[int, ...] | None = None
    step: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.shape)
        if len(self.block) != n or len(self.halo) != n:
            raise ValueError(f"block_shape {self.block} and halo {self.halo} need one entry per "
                             f"spatial axis of the image (shape {self.shape}).")
        if min(self.block) < 1 or min(self.halo) < 0:
            raise ValueError(f"block_shape {self.block} must be positive and halo {self.halo} "
                             "not negative.")
        if any(2 * h > b for h, b in zip(self.halo, self.block, strict=True)):
            raise ValueError(f"blocks of {self.block} do not fit a halo of {self.halo}: a block "
                             "must be at least twice the halo along every axis (pass a larger "
                             "block_shape, a multiple of the array's chunks, or a smaller halo).")

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(-(-s // b) for s, b in zip(self.shape, self.block, strict=True))

    def __len__(self) -> int:
        return int(np.prod(self.counts))

    def position(self, index: int) -> tuple[int, ...]:
        return tuple(int(p) for p in np.unravel_index(index, self.counts))

    def core(self, index: int) -> tuple[slice, ...]:
        """The block's own region, in image coordinates."""
        return tuple(slice(p * b, min((p + 1) * b, s)) for p, b, s in
                     zip(self.position(index), self.block, self.shape, strict=True))

    def extended(self, index: int) -> tuple[slice, ...]:
        """The block with its halo (widened to the tile grid), clipped to the image."""
        core = self.core(index)
        tile = self.tile or (1,) * len(core)
        step = self.step or (1,) * len(core)
        region = []
        for c, h, s, t, d in zip(core, self.halo, self.shape, tile, step, strict=True):
            start, stop = max(c.start - h, 0) // d * d, c.stop + h
            if t < s:  # a whole number of steps after the first tile
                stop = start + t + -(-max(stop - start - t, 0) // d) * d
            region.append(slice(start, min(stop, s)))
        return tuple(region)

    def neighbours(self, index: int) -> list[int]:
        """Blocks whose extended regions overlap this one's (faces, edges and corners)."""
        position, counts = self.position(index), self.counts
        found = []
        for step in itertools.product((-1, 0, 1), repeat=len(counts)):
            q = tuple(p + d for p, d in zip(position, step, strict=True))
            if any(step) and all(0 <= v < c for v, c in zip(q, counts, strict=True)):
                found.append(int(np.ravel_multi_index(q, counts)))
        return found

    def shared(self, a: int, b: int) -> tuple[slice, ...] | None:
        """The region both blocks' extended regions cover, or None."""
        region = tuple(slice(max(p.start, q.start), min(p.stop, q.stop)) for p, q in
                       zip(self.extended(a), self.extended(b), strict=True))
        return region if all(r.stop > r.start for r in region) else None


def segment_blockwise(model, image, out: str | os.PathLike, *,
                      block_shape: Sequence[int] | None = None,
                      halo: Sequence[int] | None = None, client=None,
                      scale: Sequence[float] | None = None,
                      translate: Sequence[float] | None = None, overwrite: bool = False,
                      progress: bool = True, **options: Any):
    """Segment an array of any size block by block into a zarr or OME-Zarr output.

    Parameters
    ----------
    model : SegmentationModel or str
        A loaded model, or a built-in name / model file for :func:`load_model`.
    image : ndarray, dask array or zarr array
        ``(Y, X)``, ``(Z, Y, X)``, or with colour / channels as the model takes them
        (``(Y, X, 3)``, ``(C, ...)``). Read block by block, never whole.
    out : str or PathLike
        Folder to create: ``*.ome.zarr`` for an OME-Zarr (NGFF 0.5) label image with
        ``scale`` / ``translate``; ``IMAGE.ome.zarr/labels/NAME`` for labels listed in
        that image's ``labels`` group, as NGFF describes; anything else for a plain
        zarr array.
    block_shape : sequence of int, optional
        Default: 1024 along y and x (z too for 3D models; 64 planes for a 2D model
        on a stack), rounded to whole chunks of a chunked input.
    halo : sequence of int, optional
        Margin segmented around each block (default 64 along y and x, 8 along z);
        it must be wider than the objects for a cut object to be seen whole.
    client : distributed.Client or str, optional
        Run on this ``dask.distributed`` cluster (a client or a scheduler address);
        default: dask's threads on this machine. Workers must see ``out``'s folder.
    scale, translate : sequence of float, optional
        Physical pixel size and origin (y, x or z, y, x) for an OME-Zarr output.
    overwrite : bool
        Replace ``out`` if it exists (only once the new result is complete).
    progress : bool
        Show a progress bar, in a terminal or notebook.
    **options
        Passed to :meth:`SegmentationModel.segment` (``interior_threshold``,
        ``tile_shape``, ``spacing``, ``diameter``...). Without a ``diameter``, the objects
        are measured once, on the middle block with signal, and every block is zoomed
        alike (:meth:`SegmentationModel.estimate_diameter`).

    Returns
    -------
    zarr.Array
        The labels (uint32, read-only), the image's spatial shape: instances with one
        id per object, 1..N, for instance models; classes for semantic models. Its
        ``attrs["napari-medseg"]`` records the model, blocks, halo, the blocks skipped
        as empty, the number of objects and the largest id (so tools need not read it).

    Raises
    ------
    ValueError
        Bad block shape or halo, an image the model cannot take, an ``out`` that
        exists (without ``overwrite``) or cannot be written, a scheduler address
        nobody answers. Nothing is written then.

    Examples
    --------
    >>> import tempfile
    >>> from napari_medseg import nuclei_2d
    >>> image, truth = nuclei_2d()
    >>> out = Path(tempfile.mkdtemp()) / "nuclei.zarr"
    >>> labels = segment_blockwise("nuclei-2d", image, out, block_shape=(256, 256),
    ...                            progress=False)
    >>> labels.shape, str(labels.dtype), int(labels[:].max()) > 30
    ((384, 384), 'uint32', True)
    """
    steps = segment_blockwise_steps(model, image, out, block_shape=block_shape, halo=halo,
                                    client=client, scale=scale, translate=translate,
                                    overwrite=overwrite, **options)
    return run_steps(steps, progress="Segmenting blocks" if progress else None)


def segment_blockwise_steps(model, image, out: str | os.PathLike, *,
                            block_shape: Sequence[int] | None = None,
                            halo: Sequence[int] | None = None, client=None,
                            scale: Sequence[float] | None = None,
                            translate: Sequence[float] | None = None, overwrite: bool = False,
                            cancelled: Callable[[], bool] | None = None, **options: Any
                            ) -> Generator[tuple[int, int], None, Any]:
    """:func:`segment_blockwise` as a generator for GUIs: yields ``(done, total)`` block
    steps (three per block: statistics, segmentation, final ids), returns the labels;
    raises :class:`Cancelled` once ``cancelled()`` is true, leaving nothing behind."""
    import dask.array as da
    import zarr

    model = _as_model(model)
    source = da.from_zarr(image) if isinstance(image, zarr.Array) else da.asarray(image)
    channels = _channel_axis(model, source)
    spatial = tuple(s for k, s in enumerate(source.shape) if k != channels)
    if len(spatial) not in (2, 3) or len(spatial) < model.info.dims:
        raise ValueError(f"a {model.info.dims}D model cannot run blockwise on an image of "
                         f"spatial shape {spatial}.")
    chunks = tuple(c[0] for k, c in enumerate(source.chunks) if k != channels)
    grid = BlockGrid(spatial, *_block_and_halo(model, spatial, chunks, block_shape, halo),
                     *_tile_grid(model, spatial, options))
    target = _output_path(out, overwrite)
    check_apart(target, _read_paths(image))
    if _is_ome(target):  # before any work: these once failed after the whole run
        scale, translate = _transforms(scale, translate, len(spatial))
        if _in_ome_image(target):
            _listed_labels(target)
    own_client = isinstance(client, str)  # connected here: closed here
    client = _as_client(client)
    try:
        with written_beside(target, overwrite) as partial:
            labels = _create_output(partial, target, grid, scale, translate)
            results = yield from _run_blocks(model, source, channels, grid, labels, client,
                                             cancelled, options)
            record = {"model": model.info.name, "block_shape": list(grid.block),
                      "halo": list(grid.halo), "blocks": len(grid),
                      "skipped": len(grid) - len(results)}
            if model.info.output != "semantic":
                yield from _final_ids(grid, labels, results, client, cancelled)
                record["objects"] = max((int(lut.max(initial=0)) for lut in results.values()),
                                        default=0)
                record[MAX_LABEL_KEY] = record["objects"]  # ids are 1..N: tools need not read
            labels.attrs.update({RECORD_KEY: record})
            if cancelled is not None and cancelled():  # a Cancel during the last pass
                raise Cancelled()
        _register(target)
    finally:
        if own_client:
            client.close()
    return open_labels(target)


# -- validation at the edge -------------------------------------------------------------------
def _as_model(model):
    from napari_medseg.model_runner import SegmentationModel, load_model

    if isinstance(model, SegmentationModel):
        return model
    if isinstance(model, str | os.PathLike):
        return load_model(model)
    raise TypeError(f"model must be a SegmentationModel or a model name or file, got "
                    f"{type(model).__name__}.")


def _channel_axis(model, source) -> int | None:
    if model.info.in_channels > 1 and source.ndim in (3, 4) and source.shape[-1] in (3, 4):
        return source.ndim - 1
    if model.info.in_channels > 1:
        return 0
    return source.ndim - 1 if is_colour(source) else None


def _block_and_halo(model, spatial, chunks, block_shape, halo) -> tuple[tuple, tuple]:
    n = len(spatial)
    stack_of_2d = n == 3 and model.info.dims == 2
    if halo is None:
        halo = ((DEFAULT_HALO_Z,) if n == 3 else ()) + (DEFAULT_HALO,) * 2
    if block_shape is None:
        wanted = ((DEFAULT_BLOCK_Z if stack_of_2d else DEFAULT_BLOCK,) if n == 3 else ()) \
            + (DEFAULT_BLOCK,) * 2
        # whole input chunks per block; the image's own size where it is smaller
        block_shape = tuple(min(max(1, round(w / c)) * c, s) if c < s else s
                            for w, c, s in zip(wanted, chunks, spatial, strict=True))
        block_shape = tuple(max(b, min(2 * h, s)) for b, h, s in
                            zip(block_shape, halo, spatial, strict=True))
    block, halo = as_integers(block_shape, "block_shape"), as_integers(halo, "halo")
    if len(block) == n:  # a block beyond the image is the image (its chunks sized so)
        block = tuple(min(b, s) for b, s in zip(block, spatial, strict=True))
    return block, halo


def _tile_grid(model, spatial, options) -> tuple[tuple | None, tuple | None]:
    """The sliding window's tile and step over the spatial axes, as MONAI places them
    (none along z for a 2D model on a stack)."""
    tile = tuple(options.get("tile_shape") or model.info.tile_shape)
    overlap = options.get("overlap", 0.25)
    if model.info.volume == "planes" and len(spatial) == 3 and model.info.dims == 2:
        return None, None  # resampled to isotropic voxels: no grid to keep
    step = tuple(max(int(t * (1 - overlap)), 1) for t in tile)
    if len(spatial) > len(tile):
        tile, step = (1, *tile), (1, *step)
    return tile, step


def _output_path(out, overwrite: bool) -> Path:
    if not isinstance(out, str | os.PathLike):
        raise TypeError(f"out must be a folder path (.zarr or .ome.zarr), got "
                        f"{type(out).__name__}.")
    target = Path(out)
    if target.exists() and not overwrite:
        raise ValueError(f"{target} exists; pass overwrite=True to replace it.")
    if target.exists() and not target.is_dir():
        raise ValueError(f"{target} is a file, not a zarr folder; it is left as it is.")
    parent = target.parent if target.parent != Path("") else Path(".")
    if parent.name == "labels" and not parent.exists():  # an OME-Zarr image's new labels
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write into {parent}: not a writable folder.")
    return target


def _read_paths(image) -> list[Path]:
    """The local folders of the zarr arrays ``image`` reads (itself, or those in its dask
    graph)."""
    import zarr

    arrays = [image] if isinstance(image, zarr.Array) else [
        v for v in dict(getattr(image, "__dask_graph__", dict)()).values()
        if isinstance(v, zarr.Array)]
    return [Path(a.store.root) / a.path for a in arrays if hasattr(a.store, "root")]


def _as_client(client):
    if client is None or not isinstance(client, str):
        return client
    from distributed import Client

    try:
        return Client(client, timeout="5s")
    except OSError as err:
        raise ValueError(f"no dask scheduler answers at {client!r} ({err}).") from None


def _is_ome(target: Path) -> bool:
    return target.name.lower().endswith(".ome.zarr") or _in_ome_image(target)


def _in_ome_image(target: Path) -> bool:
    """Whether ``target`` is ``IMAGE/labels/NAME`` of an OME-Zarr image."""
    import zarr

    from napari_medseg.io.omezarr import ngff_metadata

    if target.parent.name != "labels" or not target.parent.parent.is_dir():
        return False
    try:
        image = zarr.open_group(str(target.parent.parent), mode="r")
    except (FileNotFoundError, ValueError, zarr.errors.GroupNotFoundError):
        return False
    return "multiscales" in ngff_metadata(image)


def _transforms(scale, translate, n: int) -> tuple[list[float], list[float]]:
    """Checked OME-Zarr ``scale`` (positive) and ``translate`` (finite), ``n`` each."""
    try:
        scale = [float(s) for s in scale] if scale is not None else [1.0] * n
        translate = [float(t) for t in translate] if translate is not None else [0.0] * n
    except (TypeError, ValueError):
        raise ValueError(f"scale and translate must be numbers, got {scale!r} and "
                         f"{translate!r}.") from None
    if len(scale) != n or len(translate) != n:
        raise ValueError(f"scale {scale} and translate {translate} need {n} entries.")
    if not all(math.isfinite(s) and s > 0 for s in scale) or \
            not all(math.isfinite(t) for t in translate):
        raise ValueError(f"scale {scale} must be positive and finite, translate {translate} "
                         "finite.")
    return scale, translate


def _create_output(folder: Path, target: Path, grid: BlockGrid, scale, translate):
    """The output array in ``folder`` (to become ``target``); an OME-Zarr one with
    ``scale`` / ``translate`` as :func:`_transforms` checked them."""
    import zarr

    chunks = tuple(_chunk(b, 32 if k == 0 and len(grid.block) == 3 else 512)
                   for k, b in enumerate(grid.block))
    if not _is_ome(target):
        return zarr.create_array(str(folder), shape=grid.shape, chunks=chunks, dtype="uint32",
                                 fill_value=0)
    from ome_zarr.format import CurrentFormat
    from ome_zarr.writer import add_metadata, write_multiscales_metadata

    if _in_ome_image(target):  # the image's labels group, which the output goes into
        zarr.open_group(str(target.parent), mode="a")
    n = len(grid.shape)
    group = zarr.open_group(str(folder), mode="w-")
    axes = list("zyx"[3 - n:])
    array = group.create_array("0", shape=grid.shape, chunks=chunks, dtype="uint32",
                               fill_value=0, dimension_names=axes)
    transforms = [{"type": "scale", "scale": scale}]
    if any(translate):
        transforms.append({"type": "translation", "translation": translate})
    name = target.name.removesuffix(".zarr").removesuffix(".ome")
    write_multiscales_metadata(group, [{"path": "0", "coordinateTransformations": transforms}],
                               axes=axes, name=name)
    add_metadata(group, {"image-label": {"version": CurrentFormat().version}})
    return array


def _register(target: Path) -> None:
    """List a label image written into an OME-Zarr image's ``labels`` group there."""
    import zarr
    from ome_zarr.writer import add_metadata

    if _in_ome_image(target):
        names = _listed_labels(target)
        if target.name not in names:
            labels = zarr.open_group(str(target.parent), mode="a")
            add_metadata(labels, {"labels": [*names, target.name]})


def _listed_labels(target: Path) -> list[str]:
    """The label images an OME-Zarr image's ``labels`` group (``target``'s folder) lists,
    refusing a list that is not one of names (``5``, or ``"nuclei"``: a list of letters
    once written back)."""
    import zarr
    from ome_zarr.writer import get_metadata

    if not target.parent.exists():
        return []
    names = get_metadata(zarr.open_group(str(target.parent), mode="r")).get("labels", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{target.parent}: its 'labels' metadata must be a list of names, got "
                         f"{names!r}; mend it before writing labels there.")
    return names


def _chunk(block: int, limit: int) -> int:
    """The largest halving of ``block`` at most ``limit``: a block is whole chunks."""
    while block > limit and block % 2 == 0:
        block //= 2
    return block


def open_labels(out: str | os.PathLike, mode: str = "r"):
    """The label array :func:`segment_blockwise` wrote to ``out`` (its level 0 in an
    OME-Zarr), opened with ``mode`` ("r", or "r+" to edit it)."""
    import zarr

    target = Path(out)
    if _is_ome(target):
        return zarr.open_group(str(target), mode=mode)["0"]
    return zarr.open_array(str(target), mode=mode)


# -- the passes -------------------------------------------------------------------------------
def _run_blocks(model, source, channels, grid: BlockGrid, labels, client, cancelled, options
                ) -> Generator:
    """Statistics of every block, then the segmentation of those with signal, each
    writing its core. Returns, per segmented block, the lookup table from its ids to
    the final ones (instance models: objects joined across block borders by
    :class:`_Joins`), or its object counts (semantic models)."""
    import dask

    def pixels(region: tuple[slice, ...]):
        if channels is not None:
            region = (*region[:channels], slice(None), *region[channels:])
        return source[region]

    total = 3 * len(grid)
    stride = max(1, int(np.prod(grid.shape)) // _SAMPLE)
    shared = _Shared(model)
    if client is not None:  # sent to every worker once, not with every task
        shared = client.scatter(shared, broadcast=True, hash=False)
    tasks = [dask.delayed(_block_statistics, pure=True)(shared, pixels(grid.core(i)), stride, i)
             for i in range(len(grid))]
    stats = {}
    for done, (index, *result) in enumerate(_completed(tasks, client, cancelled), start=1):
        stats[index] = result
        yield done, total
    ranges = _ranges(model, [sample for _, _, sample in stats.values() if sample is not None])
    active = [i for i in range(len(grid)) if not _empty(model, *stats[i][:2], ranges)]
    if active and options.get("diameter") is None:  # one size for all blocks: seams agree
        options = {**options, "diameter": _diameter(model, pixels(grid.extended(
            active[len(active) // 2])), options.get("spacing"))}
    skip = set(range(len(grid))) - set(active)
    regions = {i: [(j, _relative(grid.shared(i, j), grid.extended(i)))
                   for j in grid.neighbours(i) if j not in skip] for i in active}
    semantic = model.info.output == "semantic"
    tasks = [dask.delayed(_segment_block, pure=False)(
        shared, pixels(grid.extended(i)), i, ranges, _relative(grid.core(i), grid.extended(i)),
        grid.core(i), labels, [] if semantic else regions[i], options) for i in active]
    joins, results = _Joins(), {}
    done = len(grid) + len(skip)
    yield done, total
    for index, counts, strips in _completed(tasks, client, cancelled):
        results[index] = counts
        joins.add(index, strips)
        done += 1
        yield done, total
    return joins.final(results) if not semantic else results


def _final_ids(grid: BlockGrid, labels, mapping: dict, client, cancelled) -> Generator:
    import dask

    total = 3 * len(grid)
    tasks = [dask.delayed(_relabel_block, pure=False)(labels, grid.core(i), lut)
             for i, lut in mapping.items() if len(lut) > 1]
    done = total - len(tasks)
    yield done, total
    for _ in _completed(tasks, client, cancelled):
        done += 1
        yield done, total


def _completed(tasks: list, client, cancelled) -> Generator:
    """Each task's result as it completes: on the cluster, or on dask's threads a batch
    at a time (Cancel is checked between results)."""
    import dask

    def check() -> None:
        if cancelled is not None and cancelled():
            raise Cancelled()

    if client is None:
        import torch

        workers = os.cpu_count() or 1
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, threads // workers))  # the cores go to the blocks
        try:
            for start in range(0, len(tasks), 2 * workers):
                check()
                yield from dask.compute(*tasks[start:start + 2 * workers], scheduler="threads",
                                        num_workers=workers)
        finally:
            torch.set_num_threads(threads)
        return
    from distributed import as_completed

    futures = client.compute(tasks)
    try:
        for future in as_completed(futures):
            check()
            yield future.result()
    finally:
        client.cancel(futures)


class _Shared:
    """Hands a model to dask without dask hashing its weights (a fixed token)."""

    def __init__(self, model):
        self.model = model

    def __dask_tokenize__(self):
        return ("napari-medseg-model", id(self.model))


def _block_statistics(shared: _Shared, pixels: np.ndarray, stride: int, index: int):
    """``(index, min, max, subsample)`` of a block's core in the network's channels, per
    channel; no subsample for a constant block."""
    x = shared.model.input_channels(pixels).reshape(shared.model.info.in_channels, -1)
    low, high = np.nanmin(x, axis=1), np.nanmax(x, axis=1)
    sample = x[:, ::stride] if np.any(high > low) else None
    return index, low, high, sample


def _diameter(model, block, spacing) -> float | None:
    """The objects' diameter measured on one block with signal (None for models that record
    no training size)."""
    if model.info.diameter is None or model.info.output == "semantic":
        return None
    return model.estimate_diameter(np.asarray(block), spacing=spacing).diameter


def _ranges(model, samples: list) -> np.ndarray | None:
    from napari_medseg.normalization import intensity_ranges

    if not samples:
        return None
    return intensity_ranges(np.concatenate(samples, axis=1), model.info.percentiles,
                            model.info.normalization)


def _empty(model, low, high, ranges) -> bool:
    """Nothing to find: a constant block, or, for models of bright objects on a dark
    background, a block nowhere above the image's low normalisation value."""
    if ranges is None or not np.any(high > low):
        return True
    return model.info.bright_objects is True and model.info.in_channels == 1 \
        and bool(np.all(high <= ranges[:, 0]))


def _relative(region: tuple[slice, ...], within: tuple[slice, ...]) -> tuple[slice, ...]:
    return tuple(slice(r.start - w.start, r.stop - w.start) for r, w in
                 zip(region, within, strict=True))


def _segment_block(shared: _Shared, pixels: np.ndarray, index: int, ranges, core, target,
                   labels, strips, options):
    """Segment one extended block and write its core; return ``(index, (n_core, n_all),
    {neighbour: compressed labels of the shared region})``. Objects in the core are
    numbered 1..n_core, those only in the halo after them."""
    model = shared.model
    _use_worker_threads()
    found = np.asarray(model.segment(pixels, ranges=ranges, progress=False, **options))
    if model.info.output == "semantic":
        labels[target] = found[core].astype(np.uint32)
        return index, (0, 0), {}
    inside = np.unique(found[core])
    inside = inside[inside > 0]
    outside = np.setdiff1d(np.unique(found), inside)
    outside = outside[outside > 0]
    lut = np.zeros(int(found.max(initial=0)) + 1, np.uint32)
    lut[inside] = np.arange(1, inside.size + 1)
    lut[outside] = np.arange(inside.size + 1, inside.size + outside.size + 1)
    found = lut[found]
    if inside.size:
        labels[target] = found[core]
    packed = {j: (zlib.compress(np.ascontiguousarray(found[region]).tobytes(), 1),
                  found[region].shape) for j, region in strips}
    return index, (int(inside.size), int(inside.size + outside.size)), packed


def _use_worker_threads() -> None:
    """On a distributed worker, let torch use that worker's threads, not the machine's."""
    try:
        from distributed import get_worker

        threads = get_worker().state.nthreads
    except (ImportError, ValueError):
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _relabel_block(labels, region: tuple[slice, ...], lut: np.ndarray) -> None:
    labels[region] = lut[np.asarray(labels[region])]


class _Joins:
    """Objects of neighbouring blocks matched in their shared region; joined as the
    connected components of the graph of matches (scipy.sparse.csgraph)."""

    def __init__(self):
        self.pairs: list[tuple[tuple[int, int], tuple[int, int]]] = []  # (block, id) x 2
        self.waiting: dict[tuple[int, int], tuple] = {}

    def add(self, index: int, strips: dict) -> None:
        for j, strip in strips.items():
            other = self.waiting.pop((j, index), None)
            if other is None:
                self.waiting[(index, j)] = strip
                continue
            a, b = _unpack(strip), _unpack(other)
            self.pairs.extend(((index, p), (j, q)) for p, q in matches(a, b, _MATCH_IOU).items())

    def final(self, counts: dict[int, tuple[int, int]]) -> dict[int, np.ndarray]:
        """Per block, the lookup table from its core ids to ids 1..N over the volume
        (numbered in block order)."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        if not counts:
            return {}
        blocks = sorted(counts)
        starts = np.cumsum([0] + [counts[b][1] + 1 for b in blocks])  # a node per id, 0 too
        start = dict(zip(blocks, starts[:-1].tolist(), strict=True))
        ends = np.array([[start[a] + p, start[b] + q] for (a, p), (b, q) in self.pairs],
                        np.int64).reshape(-1, 2)
        graph = coo_matrix((np.ones(len(ends)), (ends[:, 0], ends[:, 1])),
                           shape=(int(starts[-1]),) * 2)
        component = connected_components(graph, directed=False)[1]
        cores = [component[start[b] + 1:start[b] + counts[b][0] + 1] for b in blocks]
        found, first = np.unique(np.concatenate(cores), return_index=True)
        number = np.zeros(component.max(initial=0) + 1, np.uint32)
        number[found[np.argsort(first)]] = np.arange(1, found.size + 1)
        return {b: np.concatenate([[0], number[core]]).astype(np.uint32)
                for b, core in zip(blocks, cores, strict=True)}


def _unpack(strip: tuple) -> np.ndarray:
    data, shape = strip
    return np.frombuffer(zlib.decompress(data), np.uint32).reshape(shape)
