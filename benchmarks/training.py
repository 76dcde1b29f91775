"""Training from the user's labels: fine-tuning, from scratch, sparse annotation.

Usage: python benchmarks/training.py [--threads 2] [--runs finetune,colour,scratch,sparse]
                                     [--seed 0]

Data: the shared DSB2018 fluorescence images, split as everywhere in this repo (sorted ids,
every 5th held out: 12 held-out fluorescence images, 839 nuclei). Training images are the
first 5 (fine-tuning) or 20 (from scratch) fluorescence images of the training part, in
sorted order. Each run is limited by wall-clock time on the CPU (``time_limit``), then scored
on the held-out images: F1 and AP at IoU 0.5 of matched instances.

- finetune: nuclei-2d fine-tuned on 5 images for 5 minutes with the defaults (one of the 5
  images is validation data, on which the share of fine-tuned weights is chosen), against
  nuclei-2d itself; the validation loss of each share is printed.
- colour: the same on a new kind of image: nuclei-2d (fluorescence) fine-tuned for 5 minutes
  on the 11 colour (H&E, brightfield) training images, scored on the held-out colour image
  (70 nuclei).
- scratch: a U-Net from scratch on 20 images for 10 minutes.
- sparse: the same, with 20% of each image's nuclei labelled (at random, at least one) and
  background painted around them: background pixels within 40 px of a labelled nucleus and
  more than 3 px from any nucleus (so no unlabelled nucleus is marked background). Everything
  else is "not annotated".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_medseg.evaluation import match_instances
from napari_medseg.model_runner import load_model
from napari_medseg.training import blend_message, train_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from train_box_click import DATA, colour_pairs, fluorescence_pairs, split_ids

BACKGROUND = 65535  # the "checked background" label of the sparse run


def sparsify(labels: np.ndarray, rng: np.random.Generator, fraction: float = 0.2,
             reach: float = 40.0, margin: float = 3.0) -> np.ndarray:
    ids = np.unique(labels)[1:]
    kept = rng.choice(ids, max(1, round(fraction * ids.size)), replace=False)
    out = np.where(np.isin(labels, kept), labels, 0).astype(np.int64)
    near_kept = ndi.distance_transform_edt(out == 0) < reach
    clear = ndi.distance_transform_edt(labels == 0) > margin
    out[near_kept & clear] = BACKGROUND
    return out


def score(model, test) -> tuple[float, float]:
    tp, fp, fn = sum(np.array(match_instances(model.segment(image), truth))
                     for image, truth in test)
    return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)


def run(name, test, images, labels, minutes, seed, **kwargs):
    """Train (no validation data unless ``kwargs`` says) and print the held-out scores."""
    history = []
    start = time.perf_counter()
    model = train_model(images, labels, time_limit=minutes * 60, callback=history.append,
                        seed=seed, **{"validation": 0, **kwargs})
    seconds = time.perf_counter() - start
    f1, ap = score(model, test)
    last = history[-1]
    print(f"  {name:34s} F1@0.5 {f1:.3f}  AP@0.5 {ap:.3f}  ({last.iteration} iterations, "
          f"{seconds / 60:.1f} min, final loss {last.loss:.3f})", flush=True)
    if last.blend is not None:
        print(f"    {blend_message(last)}", flush=True)
    return model


def fine_tune(name, start, train, test, seed) -> None:
    """Score ``start``, fine-tune it on ``train`` for 5 minutes with the defaults
    (validation data and share chosen automatically), score the result."""
    f1, ap = score(start, test)
    print(f"  {'nuclei-2d as shipped':34s} F1@0.5 {f1:.3f}  AP@0.5 {ap:.3f}", flush=True)
    run(name, test, [i for i, _ in train], [t for _, t in train], 5, seed, init=start,
        validation=0.1, device="cpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", default="finetune,scratch,sparse")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds training and the sparse run's choice of nuclei")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}")
        return 1
    torch.set_num_threads(args.threads)
    train_ids, test_ids = split_ids()
    train, test = fluorescence_pairs(train_ids), fluorescence_pairs(test_ids)
    runs = args.runs.split(",")
    print(f"held-out: {len(test)} fluorescence images, "
          f"{sum(len(np.unique(t)) - 1 for _, t in test)} nuclei; {args.threads} threads")
    base = load_model("nuclei-2d", device="cpu")
    if "finetune" in runs:
        fine_tune("nuclei-2d fine-tuned, 5 images", base, train[:5], test, args.seed)
    if "colour" in runs:
        colour_train, colour_test = colour_pairs(train_ids), colour_pairs(test_ids)
        print(f"colour held-out: {len(colour_test)} image(s), "
              f"{sum(len(np.unique(t)) - 1 for _, t in colour_test)} nuclei", flush=True)
        fine_tune(f"fine-tuned, {len(colour_train)} colour", base, colour_train, colour_test,
                  args.seed)
    twenty = train[:20]
    images = [i for i, _ in twenty]
    if "scratch" in runs:
        run("from scratch, 20 images", test, images, [t for _, t in twenty], 10, args.seed,
            device="cpu")
    if "sparse" in runs:
        rng = np.random.default_rng(args.seed)
        sparse = [sparsify(t, rng) for _, t in twenty]
        share = sum(len(np.unique(s)) - 2 for s in sparse) / sum(len(np.unique(t)) - 1
                                                                 for _, t in twenty)
        print(f"  sparse labels: {share:.0%} of the nuclei labelled", flush=True)
        run("from scratch, 20 images, sparse", test, images, sparse, 10, args.seed,
            sparse=True, background_label=BACKGROUND, device="cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
