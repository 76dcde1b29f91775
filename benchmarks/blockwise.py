"""Blockwise segmentation: same answer as in memory, flat memory, scaling out.

Usage: python benchmarks/blockwise.py [--parts same,memory,scale,stack] [--side 4096]
                                      [--depth 16] [--model nuclei-2d]

The images are mosaics of the 57 fluorescence images of the DSB2018 stage-1 training set's
test split (ids[::10]; napari_medseg.datasets.mosaic), so the true objects are known.
- same: a ``side`` x ``side`` mosaic (default 4096) segmented in memory (``segment``) and
  blockwise (1024 px blocks, 64 px halo): the share of in-memory objects matched at IoU
  0.9, objects split at block seams (evaluation.seam_splits), the true objects that cross
  a seam; and the time of both (the overhead of blockwise on an image that fits).
- memory: zarr volumes of 2 and 8 GiB of uint16 (32768^2 and 65536^2 pixels, chunks of
  1024^2), empty but for the same two 2048^2 mosaics, segmented blockwise each in a fresh
  process: peak resident memory (ru_maxrss) and time.
- scale: the ``side`` mosaic on a dask.distributed LocalCluster of 1 and of 2 single-threaded
  worker processes: throughput ratio.
- stack: a 3D stack of ``depth`` (default 16) 2048^2 mosaics, each of the test images in
  another order, segmented in memory (slice by slice, objects linked across slices) and
  blockwise (blocks of 8 planes by 1024^2, halo 2 planes): the figures of ``same``, seams
  along all three axes.
Every figure is printed with the processor it was measured on.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_medseg.blockwise import segment_blockwise
from napari_medseg.datasets import DSB_TRAIN, data_folder, dsb_split, mosaic, read_dsb
from napari_medseg.evaluation import matches, seam_splits
from napari_medseg.runtime import processor_name

BLOCK = (1024, 1024)
SIZES = {"2 GiB": 32768, "8 GiB": 65536}


def test_mosaic(side: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A ``side``^2 mosaic of the test split's fluorescence images (in the order given by
    ``seed``, sorted ids for None)."""
    folder = data_folder(DSB_TRAIN)
    split = dsb_split(folder)
    pairs = read_dsb(folder, split.of_kind(split.test, "fluorescence"))
    if seed is not None:
        pairs = [pairs[i] for i in np.random.default_rng(seed).permutation(len(pairs))]
    return mosaic(pairs, (side, side))


def same(model_name: str, side: int, folder: Path) -> None:
    image, truth = test_mosaic(side)
    print(f"same answer, {side}x{side} mosaic:")
    _compare(model_name, image, truth, BLOCK, None, folder / "same.zarr")


def stack(model_name: str, depth: int, folder: Path) -> None:
    slices = [test_mosaic(2048, seed) for seed in range(depth)]
    image = np.stack([s[0] for s in slices])
    truth = np.stack([s[1] + (k << 20) * (s[1] > 0) for k, s in enumerate(slices)])
    print(f"same answer, stack of {depth} 2048x2048 mosaics:")
    # links of objects across slices reach 2 planes into a neighbouring block
    _compare(model_name, image, truth, (8, *BLOCK), (2, 64, 64), folder / "stack.zarr")


def _compare(model_name: str, image: np.ndarray, truth: np.ndarray, block: tuple[int, ...],
             halo: tuple[int, ...] | None, out: Path) -> None:
    """``segment`` in memory and ``segment_blockwise`` in ``block``s on one image: objects
    matched, objects split at seams, time."""
    import torch

    from napari_medseg.model_runner import load_model

    torch.set_num_threads(2)
    model = load_model(model_name, device="cpu")
    model.segment(image[(0,) * (image.ndim - 2)][:512, :512], progress=False)  # warm-up
    started = time.perf_counter()
    whole = model.segment(image, progress=False)
    in_memory = time.perf_counter() - started
    started = time.perf_counter()
    labels = segment_blockwise(model, image, out, block_shape=block, halo=halo,
                               progress=False)[:]
    blockwise = time.perf_counter() - started
    matched = len(matches(whole, labels, 0.9)) / max(int(whole.max()), 1)
    crossing = set()
    for axis, step in enumerate(block):
        for k in range(step, image.shape[axis], step):
            crossing |= set(np.unique(np.take(truth, [k - 1, k], axis=axis)).tolist())
    print(f"  {int(whole.max())} objects in memory, {len(crossing - {0})} true objects "
          f"crossing a seam; matched at IoU 0.9: {matched:.4f}; split at seams: "
          f"{seam_splits(whole, labels, block)}")
    print(f"  time: in memory {in_memory:.1f} s, blockwise (dask threads) {blockwise:.1f} s "
          f"= {blockwise / in_memory:.2f}x")


def sparse_volume(path: Path, side: int) -> None:
    """A zarr volume of ``side``^2 uint16, empty but for two 2048^2 mosaics."""
    import zarr

    image, _ = test_mosaic(2048)
    array = zarr.create_array(str(path), shape=(side, side), chunks=BLOCK, dtype="uint16",
                              fill_value=0)
    scaled = image.astype(np.uint16) * 64
    array[:2048, :2048] = scaled
    array[side // 2:side // 2 + 2048, side // 2:side // 2 + 2048] = scaled


def memory(model_name: str, folder: Path) -> None:
    rss = {}
    for name, side in SIZES.items():
        source = folder / f"sparse-{side}.zarr"
        sparse_volume(source, side)
        result = subprocess.run([sys.executable, __file__, "--child", str(source),
                                 str(folder / f"labels-{side}.zarr"), "--model", model_name],
                                capture_output=True, text=True, check=True)
        peak, seconds, objects = result.stdout.split()
        rss[name] = float(peak)
        print(f"  {name} ({side}^2 uint16): peak RSS {float(peak):.0f} MiB, {float(seconds):.0f} "
              f"s, {objects} objects")
        shutil.rmtree(source)
    small, large = rss.values()
    print(f"  peak RSS, 4x the volume: {large / small:.2f}x")


def child(source: str, out: str, model_name: str) -> None:
    import dask.array as da
    import torch
    import zarr

    torch.set_num_threads(1)  # the two dask threads are the two cores
    started = time.perf_counter()
    labels = segment_blockwise(model_name, da.from_zarr(zarr.open_array(source, mode="r")),
                               out, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(peak, time.perf_counter() - started, labels.attrs["napari-medseg"]["objects"])


def scale(model_name: str, side: int, folder: Path) -> None:
    from distributed import Client, LocalCluster

    from napari_medseg.model_runner import load_model

    image, _ = test_mosaic(side)
    model = load_model(model_name, device="cpu")
    seconds = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            segment_blockwise(model, image[:1024, :1024], folder / f"warm-{workers}.zarr",
                              client=client, progress=False)  # workers load torch
            started = time.perf_counter()
            segment_blockwise(model, image, folder / f"scale-{workers}.zarr", block_shape=BLOCK,
                              client=client, progress=False)
            seconds[workers] = time.perf_counter() - started
        print(f"  {workers} worker process(es): {seconds[workers]:.1f} s")
    print(f"  throughput, 2 workers / 1: {seconds[1] / seconds[2]:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="same,memory,scale,stack")
    parser.add_argument("--side", type=int, default=4096)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--model", default="nuclei-2d")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.model)
        return 0
    print(f"{processor_name()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        parts = args.parts.split(",")
        if "memory" in parts:  # first: a child's peak RSS counts the parent's memory it forks
            print("flat memory (blockwise, dask threads, 1 torch thread each):")
            memory(args.model, folder)
        if "same" in parts:
            same(args.model, args.side, folder)
        if "stack" in parts:
            stack(args.model, args.depth, folder)
        if "scale" in parts:
            print(f"scaling out, {args.side}x{args.side} mosaic, LocalCluster:")
            scale(args.model, args.side, folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
