"""Train a shipped nuclei model with napari_medseg.train_model, the function users train with.

    python scripts/train_nuclei.py nuclei-2d      [--epochs N] [--seed 0] [--threads 2]
    python scripts/train_nuclei.py nuclei-he-2d   [--out PATH]
    python scripts/train_nuclei.py nuclei-3d --init nuclei-3d --minutes 30 --blend 1 \
        --learning-rate 3e-4
    python scripts/train_nuclei.py nuclei-3d --thresholds-only --init FILE

Data (napari_medseg.datasets; test images are never read here):
- nuclei-2d: the fluorescence (grey) images of the DSB2018 stage-1 training set's train
  split, from scratch; the validation split's fluorescence images give the validation loss.
- nuclei-3d: nuclei-2d's images, half of the patches made to look like a stack's side
  planes (train_model's anisotropy), and the YX, ZX and ZY planes of synthetic stacks
  made from the same split's nuclei (training.synthetic_stacks), for the three-planes
  path (volume "planes").
- nuclei-he-2d: its brightfield / H&E images, as RGB (a model with 3 input channels).
Everything else is train_model's defaults; the run is seeded (for a given --threads and
processor). --init fine-tunes a model (a built-in name or a file) with the same recipe.
nuclei-3d's post-processing thresholds are then chosen on validation stacks (GoNuclear crop
1136 and synthetic stacks of the validation split's nuclei): the pair of THRESHOLDS with the
best pooled 3D F1@0.5 is recorded in the model (--thresholds-only: for the --init file as it
is, without training).
docs/models.md gives the commands that made each shipped file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_medseg.datasets import (
    DSB_TRAIN,
    GONUCLEAR,
    GONUCLEAR_TRAIN,
    data_folder,
    dsb_split,
    read_dsb,
    read_gonuclear,
)
from napari_medseg.evaluation import match_instances
from napari_medseg.model_runner import load_model
from napari_medseg.planes import plane_slices
from napari_medseg.runtime import processor_name
from napari_medseg.training import setup_message, train_model
from napari_medseg.training.synthetic_stacks import synthetic_stack

MODELS_DIR = Path(__file__).resolve().parents[1] / "src" / "napari_medseg" / "models"


def dsb(kind: str, rgb: bool):
    def data():
        folder = data_folder(DSB_TRAIN)
        split = dsb_split(folder)
        train = read_dsb(folder, split.of_kind(split.train, kind), rgb=rgb)
        val = read_dsb(folder, split.of_kind(split.validation, kind), rgb=rgb)
        return ([i for i, _ in train], [t for _, t in train],
                ([i for i, _ in val], [t for _, t in val]), {})
    return data


STACKS = 32, 8  # synthetic stacks made from the training / validation split's nuclei
PLANE_STEP = 4  # every 4th plane of each: neighbouring planes are nearly the same


def stack_planes(pairs, count: int, seed: int) -> tuple[list, list]:
    """Images and labels of the planes (every PLANE_STEP-th) of ``count`` synthetic
    stacks of (64, 128, 128) isotropic pixels made from ``pairs``' nuclei."""
    planes = []
    for k in range(count):
        image, labels, spacing = synthetic_stack(pairs, (64, 128, 128), seed=seed + k)
        planes += plane_slices(image, labels, spacing)[::PLANE_STEP]
    return [i for i, _ in planes], [t for _, t in planes]


# (interior, foreground) threshold pairs compared for nuclei-3d
THRESHOLDS = ((0.5, 0.5), (0.6, 0.6), (0.7, 0.7), (0.75, 0.75), (0.8, 0.8), (0.85, 0.85),
              (0.8, 0.7), (0.7, 0.8))
VALIDATION_STACKS = 12  # synthetic, from the validation split's nuclei (other seeds)


def choose_thresholds(model) -> None:
    """Record in ``model`` the pair of :data:`THRESHOLDS` with the best mean of the 3D
    F1@0.5 on the real validation crop and on the synthetic validation stacks (pooled over
    them): the real crop counts as much as the many synthetic nuclei. Prints each pair's."""
    folder = data_folder(DSB_TRAIN)
    split = dsb_split(folder)
    val = read_dsb(folder, split.of_kind(split.validation, "fluorescence"), rgb=False)
    crop = read_gonuclear(data_folder(GONUCLEAR), GONUCLEAR_TRAIN[0])
    stacks = {f"crop {GONUCLEAR_TRAIN[0]}": [crop], "synthetic": [
        synthetic_stack(val, (64, 128, 128), seed=20_000 + k) for k in range(VALIDATION_STACKS)]}
    scores = {}
    for pair in THRESHOLDS:
        f1 = {}
        for name, group in stacks.items():
            tp, fp, fn = sum(np.array(match_instances(model.segment(
                image, spacing=spacing, diameter=model.info.diameter, interior_threshold=pair[0],
                foreground_threshold=pair[1], progress=False), truth))
                for image, truth, spacing in group)
            f1[name] = 2 * tp / max(2 * tp + fp + fn, 1)
        scores[pair] = float(np.mean(list(f1.values())))
        print(f"thresholds {pair}: " + ", ".join(f"{k} {v:.3f}" for k, v in f1.items())
              + f", mean {scores[pair]:.3f}", flush=True)
    best = max(scores, key=scores.get)
    model.info.interior_threshold, model.info.foreground_threshold = best
    print(f"chosen: interior {best[0]}, foreground {best[1]}", flush=True)


def dsb_and_stacks():
    images, labels, (val_images, val_labels), options = dsb("fluorescence", rgb=False)()
    train = list(zip(images, labels, strict=True))
    val = list(zip(val_images, val_labels, strict=True))
    extra, extra_labels = stack_planes(train, STACKS[0], seed=0)
    val_extra, val_extra_labels = stack_planes(val, STACKS[1], seed=10_000)
    return (images + extra, labels + extra_labels,
            (val_images + val_extra, val_labels + val_extra_labels), options)


RECIPES = {
    "nuclei-2d": {"data": dsb("fluorescence", rgb=False), "epochs": 80, "options": {},
                  "description": "Fluorescence nuclei (2D, grey), bright on dark; trained on "
                                 "the DSB2018 stage-1 training set (scripts/train_nuclei.py)."},
    # nuclei-2d's images, half of the patches made to look like a stack's side planes: run on
    # the three planes of a stack (volume "planes"), its ZX and ZY inputs are not new to it
    "nuclei-3d": {"data": dsb_and_stacks, "epochs": 80, "thresholds": True,
                  "options": {"anisotropy": (1.0, 4.0), "volume": "planes"},
                  "description": "Fluorescence nuclei in 3D stacks: a 2D network run on the "
                                 "YX, ZX and ZY planes of the stack resampled to isotropic "
                                 "voxels, averaged, then one 3D watershed; trained on the "
                                 "DSB2018 stage-1 training set with side-plane augmentation "
                                 "and on the planes of synthetic stacks made from its nuclei "
                                 "(scripts/train_nuclei.py)."},
    "nuclei-he-2d": {"data": dsb("brightfield", rgb=True), "epochs": 80,
                     "options": {"rgb": True},
                     "description": "Nuclei in colour brightfield and H&E images (2D, RGB); "
                                    "trained on the DSB2018 stage-1 training set "
                                    "(scripts/train_nuclei.py)."},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(RECIPES))
    parser.add_argument("--epochs", type=int, help="train_model epochs (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="default: the package's file for the model")
    parser.add_argument("--init", help="fine-tune this model (built-in name or file)")
    parser.add_argument("--minutes", type=float, help="stop after this long (instead of "
                                                      "--epochs)")
    parser.add_argument("--learning-rate", type=float, help="default: train_model's")
    parser.add_argument("--blend", type=float, default=None,
                        help="fine-tuned share kept (default: train_model's 'auto')")
    parser.add_argument("--thresholds-only", action="store_true",
                        help="nuclei-3d: choose the thresholds of the --init file, no training")
    args = parser.parse_args(argv)
    recipe = RECIPES[args.model]
    torch.set_num_threads(args.threads)
    out = args.out or MODELS_DIR / f"{args.model.replace('-', '_')}.pt"
    if args.thresholds_only:
        if not (recipe.get("thresholds") and args.init):
            parser.error("--thresholds-only is for nuclei-3d, with --init")
        model = load_model(args.init, device="cpu")
        choose_thresholds(model)
        model.save(out, overwrite=True)
        print(f"saved {out}", flush=True)
        return 0
    images, labels, validation, options = recipe["data"]()
    options = {**recipe["options"], **options}
    print(f"{args.model}: {len(images)} training images, {len(validation[0])} validation; "
          f"{processor_name()}, {args.threads} threads", flush=True)
    started = time.perf_counter()

    def report(progress) -> None:
        if progress.iteration == 0:
            print(f"training: {setup_message(progress)}", flush=True)
            return
        print(f"epoch {progress.epoch}/{progress.epochs} iteration {progress.iteration} "
              f"loss {progress.loss:.4f} validation {progress.validation_loss:.4f} "
              f"({progress.elapsed:.0f} s)", flush=True)

    if args.init is not None:
        options["init"] = args.init
    if args.blend is not None:
        options["blend"] = args.blend
    if args.minutes is not None:
        options["time_limit"] = 60 * args.minutes
    epochs = args.epochs or (None if args.minutes else recipe["epochs"])
    model = train_model(images, labels, epochs=epochs, learning_rate=args.learning_rate,
                        validation=validation, name=args.model,
                        description=recipe["description"], seed=args.seed, device="cpu",
                        callback=report, **options)
    if recipe.get("thresholds"):
        choose_thresholds(model)
    model.save(out, overwrite=True)
    print(f"saved {out} after {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
