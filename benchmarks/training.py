"""Training from the user's labels: fine-tuning to another lab's outlines, from scratch, sparse.

Usage: python benchmarks/training.py [--threads 2] [--runs finetune,scratch,sparse,colour]
                                     [--seed 0] [--model nuclei-2d]

Data (napari_medseg.datasets):
- finetune: the shipped model fine-tuned with train_model's defaults for 10 minutes on the 5
  fixed fine-tuning images of the DSB2018 stage-1 test set (its first 5 fluorescence ids;
  other annotators, more generous outlines), scored on its other 48 fluorescence images,
  beside the model as shipped; the validation loss of each fine-tuned share is printed.
- colour: nuclei-he-2d fine-tuned the same way on the stage-1 test set's first 3 colour
  images, scored on its other 9.
- scratch: a U-Net from scratch on the first 20 fluorescence images of the stage-1 training
  set's train split for 10 minutes, scored on the 57 fluorescence images of its test split.
- sparse: the same, with 20% of each image's nuclei labelled (at random, at least one) and
  background painted around them: background pixels within 40 px of a labelled nucleus and
  more than 3 px from any nucleus (so no unlabelled nucleus is marked background). Everything
  else is "not annotated".
Scores: F1 and AP at IoU 0.5 of matched instances over all nuclei of all images.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_medseg.datasets import DSB_TEST, DSB_TRAIN, data_folder, dsb_split, read_dsb
from napari_medseg.evaluation import match_instances
from napari_medseg.model_runner import load_model
from napari_medseg.runtime import processor_name
from napari_medseg.training import blend_message, train_model

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
    print(f"  {name:36s} F1@0.5 {f1:.3f}  AP@0.5 {ap:.3f}  ({last.iteration} iterations, "
          f"{seconds / 60:.1f} min, final loss {last.loss:.3f})", flush=True)
    if last.blend is not None:
        print(f"    {blend_message(last)}", flush=True)
    return model


def fine_tune(name, start, train, test, seed, minutes=10) -> None:
    """Score ``start``, fine-tune it on ``train`` with the defaults (validation data and
    share chosen automatically), score the result."""
    f1, ap = score(start, test)
    print(f"  {start.info.name + ' as shipped':36s} F1@0.5 {f1:.3f}  AP@0.5 {ap:.3f}", flush=True)
    run(name, test, [i for i, _ in train], [t for _, t in train], minutes, seed, init=start,
        validation=0.1, device="cpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", default="finetune,scratch,sparse")
    parser.add_argument("--model", default="nuclei-2d", help="the model to fine-tune")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds training and the sparse run's choice of nuclei")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = args.runs.split(",")
    print(f"{processor_name()}, {args.threads} threads")
    other_dir = data_folder(DSB_TEST)
    other = dsb_split(other_dir)
    if "finetune" in runs:
        ids = other.of_kind(other.test, "fluorescence")
        pairs = read_dsb(other_dir, ids)
        print(f"stage-1 test: fine-tuning on {len(pairs[:5])} images, scored on "
              f"{len(pairs[5:])} ({sum(len(np.unique(t)) - 1 for _, t in pairs[5:])} nuclei)",
              flush=True)
        fine_tune(f"{args.model} fine-tuned, 5 images", load_model(args.model, device="cpu"),
                  pairs[:5], pairs[5:], args.seed)
    if "colour" in runs:
        pairs = read_dsb(other_dir, other.of_kind(other.test, "brightfield"))
        print(f"stage-1 test colour: fine-tuning on 3 images, scored on {len(pairs[3:])}",
              flush=True)
        fine_tune("nuclei-he-2d fine-tuned, 3 images", load_model("nuclei-he-2d", device="cpu"),
                  pairs[:3], pairs[3:], args.seed)
    train_dir = data_folder(DSB_TRAIN)
    split = dsb_split(train_dir)
    test = read_dsb(train_dir, split.of_kind(split.test, "fluorescence"))
    twenty = read_dsb(train_dir, split.of_kind(split.train, "fluorescence")[:20])
    images = [i for i, _ in twenty]
    if {"scratch", "sparse"} & set(runs):
        print(f"stage-1 train, test split: {len(test)} fluorescence images, "
              f"{sum(len(np.unique(t)) - 1 for _, t in test)} nuclei", flush=True)
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
