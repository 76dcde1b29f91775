"""Make the rehearsal set shipped beside nuclei-2d: crops of its own training images.

    python scripts/make_replay.py [--out src/napari_medseg/models/nuclei_2d_replay.npz]

Fine-tuning a shipped model mixes patches of these crops into every batch
(``train_model(replay="auto")``, docs/training.md), so that it keeps what it knew while it
learns a user's images. Data: every 10th fluorescence image (sorted ids) of the DSB2018
stage-1 training set's *train* split (CC0, as the model was trained on), the central
128 x 128 pixels of each with its nuclei's labels; test and validation images are never
read here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from napari_medseg.datasets import DSB_TRAIN, data_folder, dsb_split, read_dsb
from napari_medseg.model_files import replay_path, write_replay_set

EVERY = 10
REPLAY_CROP = 128  # pixels per side of a crop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = data_folder(DSB_TRAIN)
    split = dsb_split(folder)
    ids = split.of_kind(split.train, "fluorescence")[::EVERY]
    images, labels = [], []
    for image, lab in read_dsb(folder, ids, rgb=False):
        y, x = (max(0, (n - REPLAY_CROP) // 2) for n in lab.shape)
        images.append(image[y:y + REPLAY_CROP, x:x + REPLAY_CROP])
        labels.append(lab[y:y + REPLAY_CROP, x:x + REPLAY_CROP])
    out = write_replay_set(args.out or replay_path("nuclei-2d"), images, labels,
                           source=f"DSB2018 stage-1 training set (CC0), train split, every "
                                  f"{EVERY}th fluorescence image: " + " ".join(ids))
    nuclei = sum(len(np.unique(lab)) - 1 for lab in labels)
    print(f"{out}: {len(images)} crops, {nuclei} nuclei, {out.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
