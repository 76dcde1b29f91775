"""Train a shipped nuclei model with napari_medseg.train_model, the function users train with.

    python scripts/train_nuclei.py nuclei-2d [--epochs 80] [--seed 0] [--threads 2] [--out PATH]
    python scripts/train_nuclei.py nuclei-he-2d

Data: the shared DSB2018 stage-1 training set (napari_medseg.datasets: its test split
``ids[::10]`` is never read here), the images of the ``train`` split of the model's kind:
fluorescence (grey) for ``nuclei-2d``, brightfield / H&E (RGB) for ``nuclei-he-2d``. The
``validation`` split of the same kind gives the validation loss printed per epoch.
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
from napari_medseg.model_files import BUILTIN
from napari_medseg.runtime import processor_name
from napari_medseg.training import setup_message, train_model

MODELS_DIR = Path(__file__).resolve().parents[1] / "src" / "napari_medseg" / "models"
RECIPES = {
    "nuclei-2d": {"kind": "fluorescence", "rgb": False,
                  "description": "Fluorescence nuclei (2D, grey), bright on dark; trained on "
                                 "the DSB2018 stage-1 training set (scripts/train_nuclei.py)."},
    "nuclei-he-2d": {"kind": "brightfield", "rgb": True,
                     "description": "Nuclei in colour brightfield and H&E images (2D, RGB); "
                                    "trained on the DSB2018 stage-1 training set "
                                    "(scripts/train_nuclei.py)."},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(RECIPES))
    parser.add_argument("--epochs", type=int, default=80,
                        help="train_model epochs (about 500 steps each for nuclei-2d)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="default: the package's file for the model")
    args = parser.parse_args(argv)
    recipe = RECIPES[args.model]
    folder = data_folder(DSB_TRAIN)
    split = dsb_split(folder)
    train = read_dsb(folder, split.of_kind(split.train, recipe["kind"]), rgb=recipe["rgb"])
    val = read_dsb(folder, split.of_kind(split.validation, recipe["kind"]), rgb=recipe["rgb"])
    torch.set_num_threads(args.threads)
    print(f"{args.model}: {len(train)} {recipe['kind']} training images, {len(val)} "
          f"validation; {processor_name()}, {args.threads} threads",
          flush=True)
    out = args.out or MODELS_DIR / BUILTIN.get(args.model, f"{args.model.replace('-', '_')}.pt")
    started = time.perf_counter()

    def report(progress) -> None:
        if progress.iteration == 0:
            print(f"training: {setup_message(progress)}", flush=True)
            return
        print(f"epoch {progress.epoch}/{progress.epochs} iteration {progress.iteration} "
              f"loss {progress.loss:.4f} validation {progress.validation_loss:.4f} "
              f"({progress.elapsed:.0f} s)", flush=True)

    model = train_model([i for i, _ in train], [t for _, t in train], rgb=recipe["rgb"],
                        epochs=args.epochs, validation=([i for i, _ in val], [t for _, t in val]),
                        name=args.model, description=recipe["description"], seed=args.seed,
                        device="cpu", callback=report)
    model.save(out)
    print(f"saved {out} after {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
