"""Proofreading latency: delete, merge and split on large label arrays.

Usage: python benchmarks/proofreading.py [--objects 20]

- 2D: a 2048 x 2048 mosaic of the DSB2018 stage-1 training set's train-split fluorescence
  images and their labels (napari_medseg.datasets.mosaic).
- 3D: a 64 x 1024 x 1024 stack of GoNuclear crop 1136's labels and image tiled in y and x
  (each tile's ids made unique).
For ``--objects`` touching pairs of each: the time of delete (one click), merge (two
clicks) and split back (a click in each, with the image), each computed and written into
the array (:func:`napari_medseg.proofreading.apply_change`) and undone; median and worst.
The issue's target: <= 50 ms each. Printed with the processor it was measured on.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.datasets import (
    DSB_TRAIN,
    GONUCLEAR,
    GONUCLEAR_TRAIN,
    data_folder,
    dsb_split,
    mosaic,
    read_dsb,
    read_gonuclear,
)
from napari_medseg.evaluation import innermost_point, touching_pairs
from napari_medseg.proofreading import apply_change, delete_object, merge_objects, split_object
from napari_medseg.runtime import processor_name


def _timed(labels, change_of) -> float:
    """Seconds to compute a change and write it; the change is undone after."""
    t0 = time.perf_counter()
    change = change_of()
    apply_change(labels, change)
    seconds = time.perf_counter() - t0
    labels[change.indices] = change.old_values
    return seconds


def _click(labels: np.ndarray, boxes, label: int) -> tuple[int, ...]:
    """Where a user clicks on object ``label``: its innermost point (found in its box)."""
    box = boxes[label - 1]
    inner = innermost_point(labels[box] == label)
    return tuple(i + s.start for i, s in zip(inner, box, strict=True))


def run(name: str, image: np.ndarray, labels: np.ndarray, count: int) -> None:
    times = {"delete": [], "merge": [], "split": []}
    boxes = ndi.find_objects(labels)
    # a stack's touching pairs from its middle: searching the whole volume takes minutes
    middle = tuple(slice(n // 2 - 128, n // 2 + 128) for n in labels.shape[-2:])
    near = labels[(..., *middle)] if labels.ndim == 3 else labels
    for u, v in touching_pairs(near, count):
        pu, pv = _click(labels, boxes, u), _click(labels, boxes, v)
        times["delete"].append(_timed(labels, lambda p=pu: delete_object(labels, p)))
        t0 = time.perf_counter()
        merged = merge_objects(labels, [pu, pv])
        apply_change(labels, merged)
        times["merge"].append(time.perf_counter() - t0)
        times["split"].append(_timed(labels, lambda a=pu, b=pv: split_object(labels, [a, b],
                                                                              image)))
        labels[merged.indices] = merged.old_values
    print(f"{name} ({labels.shape}, {labels.dtype}), {len(times['delete'])} touching pairs:")
    for op, t in times.items():
        ms = 1000 * np.asarray(t)
        print(f"  {op:7s} median {np.median(ms):6.1f} ms, worst {ms.max():6.1f} ms "
              f"(target <= 50 ms)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"processor: {processor_name()}")
    folder = data_folder(DSB_TRAIN)
    split = dsb_split(folder)
    pairs = read_dsb(folder, split.of_kind(split.train, "fluorescence"))
    image, labels = mosaic(pairs, (2048, 2048))
    run("2D mosaic", image, labels, args.objects)

    crop, truth, _ = read_gonuclear(data_folder(GONUCLEAR), GONUCLEAR_TRAIN[0])
    tiles = [[np.where(truth[:64] > 0, truth[:64] + (i * 11 + j) * int(truth.max()), 0)
              for j in range(11)] for i in range(11)]
    stack = np.block(tiles)[:, :1024, :1024].astype(np.uint32)
    picture = np.tile(crop[:64], (1, 11, 11))[:, :1024, :1024]
    run("3D stack", picture, stack, args.objects)
    return 0


if __name__ == "__main__":
    sys.exit(main())
