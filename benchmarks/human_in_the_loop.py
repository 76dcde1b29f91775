"""Learning from the user: a shipped model fine-tuned with train_model's defaults on a few of
another lab's images, scored on that lab's others.

Usage: python benchmarks/human_in_the_loop.py [--parts transfer,kinds,colour,3d]
                                              [--minutes 5] [--threads 2] [--seed 0]

Data (napari_medseg.datasets; the only test images trained on are the fixed fine-tuning
images the targets name):
- transfer: nuclei-2d on the first 5 fluorescence images of the DSB2018 stage-1 test set
  (finetune_ids), scored on its other 48 (target >= 0.88, never below the start model).
- kinds: within one kind of image, as a lab's own data is: of the stage-1 test set's
  fluorescence images of 512 x 640, fine-tuned on the first 2, scored on the other 6
  (target >= 0.90); of 519 x 161/162, the first 1 and the other 3 (>= 0.85); of 256 x 256,
  the first 5 and the other 19 (never below the start model).
- colour: nuclei-he-2d on the first 2 of its 512 x 680 colour images, scored on the other 6
  (>= 0.80).
- 3d: nuclei-3d on GoNuclear crop 1136 (10 minutes), 3D F1 on the test crop 1135 (>= 0.70),
  with Otsu + 3D watershed.
Each fine-tune: ``train_model(images, labels, init=model, time_limit=minutes * 60)`` and
nothing else (the held-out part and the share kept chosen by the defaults). Scores: pooled
F1@0.5 of matched instances. Printed with the processor.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from models import otsu_watershed  # benchmarks/models.py: the classical floor, one home

from napari_medseg.datasets import (
    DSB_TEST,
    GONUCLEAR,
    GONUCLEAR_TEST,
    GONUCLEAR_TRAIN,
    data_folder,
    dsb_split,
    finetune_ids,
    read_dsb,
    read_gonuclear,
)
from napari_medseg.evaluation import match_instances
from napari_medseg.model_runner import load_model
from napari_medseg.runtime import processor_name
from napari_medseg.training import blend_message, train_model


def f1(model, pairs, **options) -> float:
    tp, fp, fn = sum(np.array(match_instances(model.segment(image, progress=False, **options),
                                              truth)) for image, truth in pairs)
    return 2 * tp / max(2 * tp + fp + fn, 1)


def fine_tune(title: str, name: str, train, test, minutes: float, seed: int,
              **options) -> None:
    """Score ``name`` on ``test``, fine-tune it on ``train`` with the defaults, score again."""
    start = load_model(name, device="cpu")
    nuclei = sum(len(np.unique(t)) - 1 for _, t in test)
    print(f"{title}: fine-tuned on {len(train)}, scored on {len(test)} ({nuclei} nuclei)",
          flush=True)
    before = f1(start, test, **options)
    history = []
    t0 = time.perf_counter()
    model = train_model([i for i, _ in train], [t for _, t in train], init=start,
                        time_limit=60 * minutes, seed=seed, device="cpu",
                        callback=history.append, progress=False,
                        **({"spacing": options["spacing"]} if "spacing" in options else {}))
    seconds = time.perf_counter() - t0
    after = f1(model, test, **options)
    print(f"  {name} as shipped    F1@0.5 {before:.3f}\n"
          f"  fine-tuned          F1@0.5 {after:.3f}  ({history[-1].iteration} iterations, "
          f"{seconds / 60:.1f} min)\n  {blend_message(history[-1])}", flush=True)


def _by_shape(pairs, shapes) -> list:
    return [p for p in pairs if p[1].shape in shapes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="transfer,kinds,colour,3d")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    parts = args.parts.split(",")
    print(f"{processor_name()}, {args.threads} threads; fine-tuning {args.minutes:g} min each")
    folder = data_folder(DSB_TEST)
    split = dsb_split(folder)
    fluorescence = read_dsb(folder, split.of_kind(split.test, "fluorescence"))
    if "transfer" in parts:
        assert len(finetune_ids(folder)) == 5
        fine_tune("stage-1 test fluorescence", "nuclei-2d", fluorescence[:5], fluorescence[5:],
                  args.minutes, args.seed)
    if "kinds" in parts:
        for shapes, first in (({(512, 640)}, 2), ({(519, 161), (519, 162)}, 1),
                              ({(256, 256)}, 5)):
            group = _by_shape(fluorescence, shapes)
            fine_tune(f"stage-1 test fluorescence {' / '.join(map(str, sorted(shapes)))}",
                      "nuclei-2d", group[:first], group[first:], args.minutes, args.seed)
    if "colour" in parts:
        colour = _by_shape(read_dsb(folder, split.of_kind(split.test, "brightfield")),
                           {(512, 680)})
        fine_tune("stage-1 test colour 512 x 680", "nuclei-he-2d", colour[:2], colour[2:],
                  args.minutes, args.seed)
    if "3d" in parts:
        gonuclear = data_folder(GONUCLEAR)
        train = read_gonuclear(gonuclear, GONUCLEAR_TRAIN[0])
        test = read_gonuclear(gonuclear, GONUCLEAR_TEST[0])
        spacing = train[2]
        fine_tune(f"GoNuclear {GONUCLEAR_TRAIN[0]} -> {GONUCLEAR_TEST[0]}", "nuclei-3d",
                  [train[:2]], [test[:2]], 2 * args.minutes, args.seed, spacing=spacing)
        tp, fp, fn = match_instances(otsu_watershed(test[0], test[2]), test[1])
        print(f"  Otsu + 3D watershed F1@0.5 {2 * tp / max(2 * tp + fp + fn, 1):.3f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
