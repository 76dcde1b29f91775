"""Model runner: held-out accuracy of nuclei-2d, speed and memory.

Usage: python benchmarks/models.py [--threads 2] [--skip-memory]

Accuracy: the held-out shared DSB2018 fluorescence images (sorted ids, every 5th; never used
in training, see scripts/train_nuclei.py): F1 and AP at IoU 0.5 over all nuclei of all images
(matched instances, napari_medseg.evaluation.match_instances), for nuclei-2d and for Otsu +
distance-transform watershed in the same run.
Speed: segment() on a 512x512 image; sliding-window throughput of SegmentationModel.predict
against MONAI's sliding_window_inference with the same network, tiles and overlap.
Memory: peak resident memory of segmenting a 64x1024x1024 uint16 stack slice by slice.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

from napari_medseg.evaluation import match_instances
from napari_medseg.model_runner import load_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from train_box_click import DATA, fluorescence_pairs, split_ids


def otsu_watershed(image: np.ndarray) -> np.ndarray:
    smooth = ndi.gaussian_filter(image.astype(np.float32), 1)
    mask = smooth > threshold_otsu(smooth)
    distance = ndi.distance_transform_edt(mask)
    peaks = peak_local_max(distance, min_distance=4, labels=ndi.label(mask)[0])
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=mask)


def accuracy(model) -> None:
    totals = {"nuclei-2d": np.zeros(3, int), "Otsu + watershed": np.zeros(3, int)}
    pairs = fluorescence_pairs(split_ids()[1])
    n = len(pairs)
    for image, truth in pairs:
        totals["nuclei-2d"] += match_instances(model.segment(image), truth)
        totals["Otsu + watershed"] += match_instances(otsu_watershed(image), truth)
    print(f"held-out fluorescence images: {n}, nuclei: {totals['nuclei-2d'][[0, 2]].sum()}")
    for name, (tp, fp, fn) in totals.items():
        print(f"  {name:18s} F1@0.5 {2 * tp / (2 * tp + fp + fn):.3f}  "
              f"AP@0.5 {tp / (tp + fp + fn):.3f}  (TP {tp}, FP {fp}, FN {fn})")


def speed(model) -> None:
    from monai.inferers import sliding_window_inference

    rng = np.random.default_rng(0)
    image = rng.normal(1000, 100, (512, 512)).astype(np.float32)
    model.segment(image)
    t0 = time.perf_counter()
    model.segment(image)
    print(f"segment() on 512x512: {time.perf_counter() - t0:.2f} s")
    big = rng.normal(size=(1024, 1024)).astype(np.float32)
    tile = model.info.tile_shape
    t0 = time.perf_counter()
    model.predict(big, tile, 0.25)
    ours = time.perf_counter() - t0
    x = torch.from_numpy(big[None, None])
    t0 = time.perf_counter()
    with torch.inference_mode():
        sliding_window_inference(x, tile, 4, model.network, overlap=0.25, mode="gaussian")
    monai = time.perf_counter() - t0
    print(f"1024x1024 sliding window: ours {ours:.2f} s, MONAI {monai:.2f} s "
          f"(ratio {ours / monai:.2f})")


def memory(model) -> None:
    stack = np.random.default_rng(0).integers(0, 4000, (64, 1024, 1024), dtype=np.uint16)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    labels = model.segment(stack)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"64x1024x1024 uint16 stack: {time.perf_counter() - t0:.0f} s, peak RSS {after:.0f} MiB "
          f"(input {stack.nbytes / 2**20:.0f} MiB, labels {labels.nbytes / 2**20:.0f} MiB, "
          f"peak before {before:.0f} MiB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}")
        return 1
    torch.set_num_threads(args.threads)
    model = load_model("nuclei-2d", device="cpu")
    accuracy(model)
    speed(model)
    if not args.skip_memory:
        memory(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
