"""Train a shipped nuclei model with napari_medseg.train_model, the function users train with.

    python scripts/train_nuclei.py nuclei-2d      [--epochs N] [--seed 0] [--threads 2]
    python scripts/train_nuclei.py nuclei-he-2d   [--out PATH]

Data (napari_medseg.datasets; test images are never read here):
- nuclei-2d: the fluorescence (grey) images of the DSB2018 stage-1 training set's train
  split, from scratch; the validation split's fluorescence images give the validation loss.
- nuclei-he-2d: its brightfield / H&E images, as RGB (a model with 3 input channels).
The built-in nuclei-3d is nuclei-2d's file run on a stack's planes (model_files.BUILTIN).
Everything else is train_model's defaults; the run is seeded (for a given --threads and
processor). docs/models.md gives the command that made each shipped file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from napari_medseg.datasets import DSB_TRAIN, data_folder, dsb_split, read_dsb
from napari_medseg.runtime import processor_name
from napari_medseg.training import setup_message, train_model

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


RECIPES = {
    "nuclei-2d": {"data": dsb("fluorescence", rgb=False), "epochs": 80, "options": {},
                  "description": "Fluorescence nuclei (2D, grey), bright on dark; trained on "
                                 "the DSB2018 stage-1 training set (scripts/train_nuclei.py)."},
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
    args = parser.parse_args(argv)
    recipe = RECIPES[args.model]
    images, labels, validation, options = recipe["data"]()
    options = {**recipe["options"], **options}
    torch.set_num_threads(args.threads)
    print(f"{args.model}: {len(images)} training images, {len(validation[0])} validation; "
          f"{processor_name()}, {args.threads} threads", flush=True)
    out = args.out or MODELS_DIR / f"{args.model.replace('-', '_')}.pt"
    started = time.perf_counter()

    def report(progress) -> None:
        if progress.iteration == 0:
            print(f"training: {setup_message(progress)}", flush=True)
            return
        print(f"epoch {progress.epoch}/{progress.epochs} iteration {progress.iteration} "
              f"loss {progress.loss:.4f} validation {progress.validation_loss:.4f} "
              f"({progress.elapsed:.0f} s)", flush=True)

    model = train_model(images, labels, epochs=args.epochs or recipe["epochs"],
                        validation=validation, name=args.model,
                        description=recipe["description"], seed=args.seed, device="cpu",
                        callback=report, **options)
    model.save(out, overwrite=True)
    print(f"saved {out} after {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
