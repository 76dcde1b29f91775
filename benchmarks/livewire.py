"""Live-wire: IoU of closed paths through 4 and 6 anchors on real nuclei, and latency.

Usage: python benchmarks/livewire.py [--nuclei N]

Accuracy protocol: shared DSB2018 fluorescence images (grayscale, bright nuclei; all of them),
nuclei of >= 40 px not touching the image border, up to N nuclei taken evenly over the images
in sorted-id order. Anchors are placed evenly (by contour index, from a random start) along the
annotated outer boundary; the closed path is filled (path pixels + interior) and compared with the
annotation. Baselines in the same run: a straight polygon through the anchors, and OpenCV's
IntelligentScissorsMB (run on a crop around the nucleus, which only makes it faster).
Speed: a 2048x2048 uint16 image (a real image tiled and scaled to 16 bit, plus noise):
median time of LiveWire.anchor() and of LiveWire.path_to() to points 10-90 px away.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage.io import imread

from napari_medseg.livewire import LiveWire, livewire_path, path_to_mask

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018-stage1-test"


def fluorescence_ids() -> list[str]:
    ids = sorted(p.name[: -len("_image.png")] for p in DATA.glob("*_image.png"))
    keep = []
    for image_id in ids:
        image = imread(DATA / f"{image_id}_image.png")[..., :3].astype(int)
        labels = imread(DATA / f"{image_id}_labels.tif")
        gray = np.abs(image - image[..., :1]).max() == 0
        if gray and image[..., 0][labels > 0].mean() > image[..., 0][labels == 0].mean():
            keep.append(image_id)
    return keep


def load(image_id: str) -> tuple[np.ndarray, np.ndarray]:
    return (imread(DATA / f"{image_id}_image.png")[..., 0],
            imread(DATA / f"{image_id}_labels.tif"))


def nuclei(n_max: int, rng: np.random.Generator):
    """Yield (image, mask, outer contour (K, 2) as (y, x)) for evaluation nuclei."""
    ids = fluorescence_ids()
    per_image = max(1, n_max // len(ids) + 1)
    count = 0
    for image_id in ids:
        image, labels = load(image_id)
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
            yield image, mask, contour
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


def accuracy(n_max: int) -> None:
    rng = np.random.default_rng(0)
    scores = {n: {"ours": [], "polygon": [], "OpenCV MB": []} for n in (4, 6)}
    count = 0
    for image, mask, contour in nuclei(n_max, rng):
        count += 1
        start = int(rng.integers(len(contour)))
        for n in (4, 6):
            anchors = anchors_on(contour, n, start)
            ours = path_to_mask(livewire_path(image, anchors), mask.shape)
            scores[n]["ours"].append(iou(ours, mask))
            scores[n]["polygon"].append(iou(polygon_mask(anchors, mask.shape), mask))
            scores[n]["OpenCV MB"].append(iou(opencv_mask(image, anchors, mask.shape), mask))
    print(f"Mean IoU of the filled closed path, {count} real nuclei "
          f"({len(fluorescence_ids())} DSB2018 fluorescence images):")
    for n, row in scores.items():
        print(f"  {n} anchors: " + "  ".join(f"{k} {np.mean(v):.3f}" for k, v in row.items()))


def speed() -> None:
    image, _ = load(fluorescence_ids()[0])
    big = np.tile(image, (2048 // image.shape[0] + 1, 2048 // image.shape[1] + 1))[:2048, :2048]
    rng = np.random.default_rng(1)
    big = (big.astype(np.float32) * 200 + rng.normal(1000, 50, big.shape)).clip(0, 65535)
    big = big.astype(np.uint16)
    t0 = time.perf_counter()
    wire = LiveWire(big)
    setup = time.perf_counter() - t0
    anchor_t, path_t = [], []
    for _ in range(20):
        a = rng.integers(200, 1848, 2)
        t0 = time.perf_counter()
        wire.anchor(a)
        anchor_t.append(time.perf_counter() - t0)
        for _ in range(25):
            d = rng.uniform(10, 90) * np.array([np.cos(t := rng.uniform(0, 6.3)), np.sin(t)])
            t0 = time.perf_counter()
            wire.path_to(a + d)
            path_t.append(time.perf_counter() - t0)
    tool = cv2.segmentation.IntelligentScissorsMB()
    t0 = time.perf_counter()
    tool.applyImage((big // 256).astype(np.uint8))  # it takes 8-bit images only
    tool.buildMap((1024, 1024))
    opencv = time.perf_counter() - t0
    print(f"2048x2048 (as 8 bit): OpenCV IntelligentScissorsMB applyImage + buildMap "
          f"{opencv * 1e3:.0f} ms")
    print(f"2048x2048 uint16: LiveWire() {setup * 1e3:.0f} ms, anchor() median "
          f"{np.median(anchor_t) * 1e3:.1f} ms (max {np.max(anchor_t) * 1e3:.0f}), path_to() "
          f"median {np.median(path_t) * 1e3:.2f} ms (p95 {np.percentile(path_t, 95) * 1e3:.2f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nuclei", type=int, default=600)
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}")
        return 1
    accuracy(args.nuclei)
    speed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
