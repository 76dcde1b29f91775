"""Box + click segmentation: accuracy, clicks and latency on real nuclei; GrabCut as baseline.

Usage: python benchmarks/box_click.py [--max-nuclei N] [--threads 2] [--margins 0,2,4]

Data: the 13 held-out shared DSB2018 images (sorted ids, every 5th; never used in training,
see scripts/train_box_click.py), split into fluorescence (grayscale) and colour images.
Every annotated nucleus of >= 10 px: box = its bounding box + 2 px, clipped to the image.
Clicks: the standard simulation (napari_medseg.evaluation.next_click: innermost point of the
largest error region, positive for a miss), at most 20 clicks; NoC@90 counts the box as
click 1 and is 20 when 0.90 is never reached.
Baseline in the same run: OpenCV grabCut initialised with the same box (5 iterations).
Latency: median time per click on the nucleus boxes, and per click on a 512x512 box.
With --margins 0,2,4: only box-only mIoU on the fluorescence nuclei for boxes of those margins.
3D: box-only IoU on 3D nuclei, box = the nucleus' 3D bounding box + 2 px (in y/x; + 1 slice
in z), on synthetic anisotropic stacks (napari_medseg.nuclei_3d, 3 seeds) and on real
held-out outlines stacked into 3D (napari_medseg.object_from_outline) over a real image.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np
import tifffile
import torch
from scipy import ndimage as ndi
from skimage.io import imread

from napari_medseg import BoxSession, nuclei_3d, object_from_outline, segment_box
from napari_medseg.evaluation import iou, next_click

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "scripts"))
from train_box_click import DATA, split_ids

MAX_CLICKS = 20


def held_out_images():
    """Yield (id, rgb uint8 image, labels, is_fluorescence)."""
    for image_id in split_ids()[1]:
        rgb = imread(DATA / f"{image_id}_image.png")[..., :3]
        labels = tifffile.imread(DATA / f"{image_id}_labels.tif")
        yield image_id, rgb, labels, not np.ptp(rgb.astype(int), axis=-1).any()


def boxes(labels: np.ndarray, margin: int = 2):
    for label, (ys, xs) in enumerate(ndi.find_objects(labels), start=1):
        if ys is None or (labels[ys, xs] == label).sum() < 10:
            continue
        yield label, (max(ys.start - margin, 0), max(xs.start - margin, 0),
                      min(ys.stop + margin, labels.shape[0]),
                      min(xs.stop + margin, labels.shape[1]))


def interactive(gray: np.ndarray, truth: np.ndarray, box) -> tuple[list[float], list[float]]:
    """IoU after the box and after each simulated click; time of each click."""
    y0, x0, y1, x1 = box
    session = BoxSession(gray, box)
    local = truth[y0:y1, x0:x1]
    scores, times = [iou(session.mask, local)], []
    while len(scores) < MAX_CLICKS and scores[-1] < 0.999:
        click = next_click(session.mask, local)
        if click is None:
            break
        (cy, cx), positive = click
        t0 = time.perf_counter()
        session.add_click((cy + y0, cx + x0), positive=positive)
        times.append(time.perf_counter() - t0)
        scores.append(iou(session.mask, local))
    return scores, times


def noc(scores: list[float], target: float = 0.90) -> int:
    reached = [k + 1 for k, s in enumerate(scores) if s >= target]
    return min(reached[0], MAX_CLICKS) if reached else MAX_CLICKS


def grabcut(rgb: np.ndarray, box) -> np.ndarray:
    y0, x0, y1, x1 = box
    mask = np.zeros(rgb.shape[:2], np.uint8)
    if min(y1 - y0, x1 - x0) < 2:
        return mask.astype(bool)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(rgb), mask, (x0, y0, x1 - x0, y1 - y0), bgd, fgd, 5,
                cv2.GC_INIT_WITH_RECT)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def two_d(max_nuclei: int) -> None:
    rows = {True: [], False: []}
    click_times = []
    for _, rgb, labels, fluo in held_out_images():
        gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        found = list(boxes(labels))
        for label, box in found[:: max(1, len(found) // max_nuclei + 1)] if max_nuclei else found:
            truth = labels == label
            scores, times = interactive(gray, truth, box)
            click_times += times
            y0, x0, y1, x1 = box
            cut = grabcut(rgb, box)[y0:y1, x0:x1]
            rows[fluo].append((scores[0], noc(scores), iou(cut, truth[y0:y1, x0:x1]),
                               (y1 - y0) * (x1 - x0)))
    for fluo, name in ((True, "fluorescence"), (False, "colour (H&E/brightfield)")):
        r = np.array(rows[fluo])
        if not len(r):
            continue
        print(f"{name}: {len(r)} nuclei | box-only mIoU ours {r[:, 0].mean():.3f}, "
              f"GrabCut {r[:, 2].mean():.3f} | NoC@90 ours {r[:, 1].mean():.2f} "
              f"(reached 0.90 within 20: {np.mean(r[:, 1] < MAX_CLICKS):.1%})")
    print(f"latency per click, nucleus boxes: median {np.median(click_times) * 1e3:.1f} ms "
          f"(p95 {np.percentile(click_times, 95) * 1e3:.1f} ms, {len(click_times)} clicks)")


def margin_sweep(margins: list[int]) -> None:
    """Box-only mIoU on the held-out fluorescence nuclei by the box's margin."""
    found = [(rgb[..., 0].astype(np.float32), labels)
             for _, rgb, labels, fluo in held_out_images() if fluo]
    for margin in margins:
        scores = [iou(segment_box(gray, box)[box[0]:box[2], box[1]:box[3]],
                      labels[box[0]:box[2], box[1]:box[3]] == label)
                  for gray, labels in found for label, box in boxes(labels, margin)]
        print(f"box-only mIoU, box = bounding box + {margin} px: {np.mean(scores):.3f} "
              f"({len(scores)} fluorescence nuclei)", flush=True)


def big_box() -> None:
    _, rgb, _, _ = next(held_out_images())
    gray = rgb[..., 0].astype(np.float32)
    image = np.tile(gray, (600 // gray.shape[0] + 1, 600 // gray.shape[1] + 1))[:600, :600]
    t0 = time.perf_counter()
    session = BoxSession(image, (40, 40, 552, 552))
    setup = time.perf_counter() - t0
    times = []
    rng = np.random.default_rng(0)
    for _ in range(15):
        t0 = time.perf_counter()
        session.add_click(rng.integers(40, 552, 2), positive=bool(rng.integers(2)))
        times.append(time.perf_counter() - t0)
    print(f"512x512 box: session setup {setup * 1e3:.0f} ms, per click median "
          f"{np.median(times) * 1e3:.1f} ms")


def three_d(max_nuclei: int) -> None:
    synthetic, stacked = [], []
    for seed in range(3):
        image, labels, _ = nuclei_3d(seed=seed)
        synthetic += box_only_3d(image, labels, max_nuclei // 3)
    # Real held-out outlines stacked into 3D, textured with the real image.
    rng = np.random.default_rng(0)
    for _, rgb, labels, fluo in held_out_images():
        if not fluo or len(stacked) >= max_nuclei:
            continue
        gray = rgb[..., 0].astype(np.float32)
        for label, (ys, xs) in list(enumerate(ndi.find_objects(labels), start=1))[::4]:
            if ys is None or (labels[ys, xs] == label).sum() < 60:
                continue
            pad = 12
            ys = slice(max(ys.start - pad, 0), ys.stop + pad)
            xs = slice(max(xs.start - pad, 0), xs.stop + pad)
            outline = labels[ys, xs] == label
            n = int(rng.integers(9, 17))
            obj = object_from_outline(outline, n, drift=tuple(rng.uniform(-3, 3, 2)))
            vol_labels = np.pad(obj, ((2, 2), (0, 0), (0, 0))).astype(np.uint16)
            inside = ndi.gaussian_filter(vol_labels.astype(np.float32), (0.7, 1.0, 1.0))
            background = gray[ys, xs][~(labels[ys, xs] > 0)]
            bg = np.median(background) if background.size else 0
            signal = np.median(gray[ys, xs][outline]) - bg
            image = bg + inside * signal + rng.normal(0, 0.05 * max(signal, 1), inside.shape)
            stacked += box_only_3d(image, vol_labels, 1)
            if len(stacked) >= max_nuclei:
                break
    print(f"3D box-only mIoU: synthetic stacks {np.mean(synthetic):.3f} ({len(synthetic)} nuclei), "
          f"real outlines stacked {np.mean(stacked):.3f} ({len(stacked)} nuclei)")


def box_only_3d(image: np.ndarray, labels: np.ndarray, limit: int) -> list[float]:
    scores = []
    for label, where in enumerate(ndi.find_objects(labels), start=1):
        if where is None or len(scores) >= limit:
            continue
        zs, ys, xs = where
        box = (zs.start - 1, ys.start - 2, xs.start - 2, zs.stop + 1, ys.stop + 2, xs.stop + 2)
        scores.append(iou(segment_box(image, box), labels == label))
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-nuclei", type=int, default=0, help="per image; 0 = all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--margins", help="only the box-only mIoU for these box margins, "
                                          "e.g. 0,1,2,3,4,6")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}")
        return 1
    torch.set_num_threads(args.threads)
    if args.margins:
        margin_sweep([int(m) for m in args.margins.split(",")])
        return 0
    two_d(args.max_nuclei)
    big_box()
    three_d(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
