"""Live-wire: IoU of closed paths through 4 and 6 anchors on real nuclei, and latency.

Usage: python benchmarks/livewire.py [--nuclei N] [--split test|validation|train] [--threads 2]

Accuracy protocol (napari_medseg.datasets): the fluorescence nuclei of >= 40 px not touching the
image border, up to N taken evenly over the images in sorted-id order, of the DSB2018 stage-1
training set's test split and of the stage-1 test set (``--split validation`` or ``train``:
that split of the training set instead, where the cost weights are chosen). Anchors are placed
evenly (by contour index, from a random start) along the annotated outer boundary; the closed
path is filled (path pixels + interior) and compared with the annotation. In the same run: our
cost with the image alone, with the nuclei model's outline map (NetworkBoundary), a straight
polygon through the anchors, and OpenCV's IntelligentScissorsMB (on a crop around the nucleus).
Speed: a 2048x2048 uint16 image (a real image tiled and scaled to 16 bit, plus noise): median
time of LiveWire.anchor() and of LiveWire.path_to() to points 10-90 px away, both costs.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np
import torch

from napari_medseg.datasets import DSB_TEST, DSB_TRAIN, data_folder, dsb_split, read_dsb
from napari_medseg.livewire import LiveWire, NetworkBoundary, livewire_path, path_to_mask
from napari_medseg.runtime import processor_name


def image_sets(split_name: str) -> dict[str, list]:
    """{name: [(image, labels)]} of fluorescence images to measure on."""
    train = data_folder(DSB_TRAIN)
    split = dsb_split(train)
    sets = {f"train set, {split_name} split":
            read_dsb(train, split.of_kind(getattr(split, split_name), "fluorescence"))}
    if split_name == "test":
        other = data_folder(DSB_TEST)
        test = dsb_split(other)
        sets["stage-1 test"] = read_dsb(other, test.of_kind(test.test, "fluorescence"))
    return sets


def nuclei(pairs, n_max: int, rng: np.random.Generator):
    """Yield (image index, mask, outer contour (K, 2) as (y, x)) for evaluation nuclei."""
    per_image = max(1, n_max // len(pairs) + 1)
    count = 0
    for k, (_, labels) in enumerate(pairs):
        candidates = []
        for label in range(1, labels.max() + 1):
            mask = labels == label
            ys, xs = np.nonzero(mask)
            if (len(ys) < 40 or ys.min() == 0 or xs.min() == 0
                    or ys.max() == mask.shape[0] - 1 or xs.max() == mask.shape[1] - 1):
                continue
            candidates.append(mask)
        for i in rng.permutation(len(candidates))[:per_image]:
            mask = candidates[i]
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_NONE)
            contour = max(contours, key=len)[:, 0, ::-1]  # (y, x)
            yield k, mask, contour
            count += 1
            if count >= n_max:
                return


def anchors_on(contour: np.ndarray, n: int, start: int) -> np.ndarray:
    idx = (start + np.round(np.arange(n) * len(contour) / n).astype(int)) % len(contour)
    return contour[idx]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / max((a | b).sum(), 1)


def polygon_mask(anchors: np.ndarray, shape) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [anchors[:, ::-1].astype(np.int32)], 1)
    return mask.astype(bool)


def opencv_mask(image: np.ndarray, anchors: np.ndarray, mask_shape) -> np.ndarray:
    pad = 20
    y0, x0 = np.maximum(anchors.min(0) - pad, 0)
    y1, x1 = np.minimum(anchors.max(0) + pad + 1, image.shape)
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    tool = cv2.segmentation.IntelligentScissorsMB()
    tool.setEdgeFeatureCannyParameters(32, 100)
    tool.setGradientMagnitudeMaxLimit(200)
    tool.applyImage(crop)
    points = []
    local = anchors - (y0, x0)
    for i in range(len(local)):
        a, b = local[i], local[(i + 1) % len(local)]
        tool.buildMap((int(a[1]), int(a[0])))
        contour = tool.getContour((int(b[1]), int(b[0]))).reshape(-1, 2)  # (x, y)
        points.append(contour)
    poly = np.concatenate(points) + np.array([x0, y0])
    mask = np.zeros(mask_shape, np.uint8)
    cv2.fillPoly(mask, [poly.astype(np.int32)], 1)
    cv2.polylines(mask, [poly.astype(np.int32)], True, 1)
    return mask.astype(bool)


def accuracy(n_max: int, split_name: str) -> None:
    for name, pairs in image_sets(split_name).items():
        rng = np.random.default_rng(0)
        scores = {n: {"image only": [], "with nuclei model": [], "polygon": [], "OpenCV MB": []}
                  for n in (4, 6)}
        outlines = {}
        count = 0
        for k, mask, contour in nuclei(pairs, n_max, rng):
            image = pairs[k][0]
            if k not in outlines:  # one map per image, computed tile by tile on demand
                outlines = {k: NetworkBoundary(image, "nuclei-2d")}
            count += 1
            start = int(rng.integers(len(contour)))
            for n in (4, 6):
                anchors = anchors_on(contour, n, start)
                row = scores[n]
                row["image only"].append(iou(path_to_mask(livewire_path(image, anchors),
                                                          mask.shape), mask))
                row["with nuclei model"].append(iou(path_to_mask(livewire_path(
                    image, anchors, boundary=outlines[k]), mask.shape), mask))
                row["polygon"].append(iou(polygon_mask(anchors, mask.shape), mask))
                row["OpenCV MB"].append(iou(opencv_mask(image, anchors, mask.shape), mask))
        print(f"Mean IoU of the filled closed path, {name}: {count} nuclei of "
              f"{len(pairs)} fluorescence images", flush=True)
        for n, row in scores.items():
            print(f"  {n} anchors: " + "  ".join(f"{k} {np.mean(v):.3f}" for k, v in row.items()),
                  flush=True)


def speed() -> None:
    image = image_sets("test")["train set, test split"][0][0]
    big = np.tile(image, (2048 // image.shape[0] + 1, 2048 // image.shape[1] + 1))[:2048, :2048]
    rng = np.random.default_rng(1)
    big = (big.astype(np.float32) * 200 + rng.normal(1000, 50, big.shape)).clip(0, 65535)
    big = big.astype(np.uint16)
    for boundary in (None, NetworkBoundary(big, "nuclei-2d")):
        t0 = time.perf_counter()
        wire = LiveWire(big, boundary=boundary)
        setup = time.perf_counter() - t0
        anchor_t, path_t = [], []
        for _ in range(20):
            a = rng.integers(200, 1848, 2)
            t0 = time.perf_counter()
            wire.anchor(a)
            anchor_t.append(time.perf_counter() - t0)
            for _ in range(25):
                d = rng.uniform(10, 90) * np.array([np.cos(t := rng.uniform(0, 6.3)),
                                                    np.sin(t)])
                t0 = time.perf_counter()
                wire.path_to(a + d)
                path_t.append(time.perf_counter() - t0)
        print(f"2048x2048 uint16, {'with the nuclei model' if boundary else 'image only'}: "
              f"LiveWire() {setup * 1e3:.0f} ms, anchor() median "
              f"{np.median(anchor_t) * 1e3:.1f} ms (max {np.max(anchor_t) * 1e3:.0f}), "
              f"path_to() median {np.median(path_t) * 1e3:.2f} ms "
              f"(p95 {np.percentile(path_t, 95) * 1e3:.2f})", flush=True)
    tool = cv2.segmentation.IntelligentScissorsMB()
    t0 = time.perf_counter()
    tool.applyImage((big // 256).astype(np.uint8))  # it takes 8-bit images only
    tool.buildMap((1024, 1024))
    opencv = time.perf_counter() - t0
    print(f"2048x2048 (as 8 bit): OpenCV IntelligentScissorsMB applyImage + buildMap "
          f"{opencv * 1e3:.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nuclei", type=int, default=600)
    parser.add_argument("--split", choices=("test", "validation", "train"), default="test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{processor_name()}, {args.threads} threads", flush=True)
    accuracy(args.nuclei, args.split)
    if not args.skip_speed:
        speed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
