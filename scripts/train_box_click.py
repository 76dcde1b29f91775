"""Train the box + click network shipped as ``napari_medseg/models/box_click_2d.pt``.

    python scripts/train_box_click.py [--epochs 60] [--steps 250] [--seed 0] [--threads 2]
                                      [--out PATH]

The recipe: which objects, which settings, one call of
napari_medseg.training.box_click.train_box_click (the loop every network here trains by).
Objects (napari_medseg.datasets; test images are never read here), as weighted groups:

- 45%: nuclei of the fluorescence images of the DSB2018 stage-1 training set's train split;
- 20%: nuclei of its brightfield / H&E images (as grey);
- 25%: nuclei of the GoNuclear training crop (datasets.GONUCLEAR_TRAIN: 1136; crop 1135 is
  test-only) in all three planes of the crop resampled to isotropic voxels (z slices and the
  orthogonal planes, as a user sees them in any view);
- 10%: organs of the TotalSegmentator MR (the CT is test-only), in its three planes.

Validation loss per report: box-only, 64 nuclei of the train set's validation split.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_medseg.box_segmentation import WEIGHTS, save_box_click_network
from napari_medseg.datasets import (
    DSB_TRAIN,
    GONUCLEAR,
    GONUCLEAR_TRAIN,
    data_folder,
    dsb_split,
    read_dsb,
    read_gonuclear,
)
from napari_medseg.io import read_image
from napari_medseg.planes import plane_slices
from napari_medseg.runtime import processor_name
from napari_medseg.training.box_click import BoxClickObjects, train_box_click

MODELS_DIR = Path(__file__).resolve().parents[1] / "src" / "napari_medseg" / "models"
MR = ("totalseg-ct", "example_mr_sm.nii.gz", "example_seg_mr.nii.gz")


def planes(image: np.ndarray, labels: np.ndarray, spacing) -> tuple[list, list]:
    """The 2D slices of a stack along each axis, resampled to isotropic voxels."""
    pairs = plane_slices(image, labels, spacing)
    return [i for i, _ in pairs], [t for _, t in pairs]


def objects() -> tuple[BoxClickObjects, BoxClickObjects, dict]:
    folder = data_folder(DSB_TRAIN)
    split = dsb_split(folder)
    fluo = read_dsb(folder, split.of_kind(split.train, "fluorescence"))
    colour = read_dsb(folder, split.of_kind(split.train, "brightfield"))
    gonuclear = [planes(*read_gonuclear(data_folder(GONUCLEAR), crop))
                 for crop in GONUCLEAR_TRAIN]
    [mr] = read_image(data_folder(MR[0]) / MR[1])
    [mr_labels] = read_image(data_folder(MR[0]) / MR[2])
    mr = planes(np.asarray(mr.data, np.float32), np.asarray(mr_labels.data), mr.scale)
    groups = [([i for i, _ in fluo], [t for _, t in fluo], 0.45),
              ([i for i, _ in colour], [t for _, t in colour], 0.20),
              ([i for g in gonuclear for i in g[0]], [t for g in gonuclear for t in g[1]], 0.25),
              (mr[0], mr[1], 0.10)]
    val = read_dsb(folder, split.of_kind(split.validation, "fluorescence"))
    counts = {"fluorescence images": len(fluo), "colour images": len(colour),
              "GoNuclear slices": sum(len(g[0]) for g in gonuclear), "MR slices": len(mr[0])}
    return (BoxClickObjects(groups),
            BoxClickObjects([([i for i, _ in val], [t for _, t in val], 1.0)]), counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--steps", type=int, default=250, help="steps per epoch")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=MODELS_DIR / WEIGHTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train, val, counts = objects()
    print(f"box + click: {len(train)} objects ({counts}); {processor_name()}, "
          f"{args.threads} threads", flush=True)
    started = time.perf_counter()

    def report(progress) -> None:
        if progress.loss is not None:
            print(f"epoch {progress.epoch}/{progress.epochs} iteration {progress.iteration} "
                  f"loss {progress.loss:.4f} validation {progress.validation_loss:.4f} "
                  f"({progress.elapsed:.0f} s)", flush=True)

    network = train_box_click(train, epochs=args.epochs, steps_per_epoch=args.steps,
                              batch_size=args.batch, seed=args.seed, validation=val,
                              device="cpu", callback=report)
    save_box_click_network(args.out, network, overwrite=True, iterations=args.epochs * args.steps,
                           seed=args.seed, recipe="scripts/train_box_click.py", **{
                               "objects": {k: int(v) for k, v in counts.items()}})
    print(f"saved {args.out} after {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
