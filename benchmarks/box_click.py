"""Box + click segmentation: accuracy, clicks and latency on real data; GrabCut as baseline.

Usage: python benchmarks/box_click.py [--max-nuclei N] [--threads 2]
                                      [--parts 2d,point,3d,ct,organs,speed]
                                      [--margins 0,2,4,6] [--network FILE]

Data (napari_medseg.datasets; none of it is trained on):
- 2D nuclei: the DSB2018 stage-1 training set's test split (ids[::10]: 57 fluorescence,
  10 colour images) and the stage-1 test set (other annotators: 53 fluorescence, 12 colour).
  Every annotated nucleus of >= 10 px; box = its bounding box + 2 px, clipped to the image
  (``--margins``: box-only mIoU of the fluorescence nuclei at each margin as well). Clicks:
  the standard simulation (napari_medseg.evaluation.next_click: innermost point of the
  largest error region, positive for a miss), one network pass per click as the widget
  does, at most 20 clicks; NoC@90 counts the box as click 1 and is 20 when 0.90 is never
  reached. Baseline in the same run: OpenCV grabCut initialised with the same box (on the box grown
  by its size per side).
- 3D nuclei: GoNuclear crop 1135 (test-only): a 3D box around each nucleus (its bounding
  box + 1 voxel along every axis), box-only 3D IoU; and propagate_mask from the true mask of
  each nucleus' middle slice, 3D IoU.
- CT: the TotalSegmentator CT (its labels are that tool's output: a sanity figure): a 2D box
  (+2 px) around each organ's cross-section of >= 500 px on every 4th axial slice, box-only
  IoU by cross-section size; propagation (network, intensity) from each organ's true middle
  axial slice; and the user's way: a box (+2 px) on the organ's largest axial slice, its mask,
  propagated by intensity (3D IoU and the share of the organ's volume outside it).
- Organs (``--parts organs``): the same from a box on the set the intensity propagation is
  chosen on (every organ of >= 1,500 voxels of the MR, and the CT's other organs).
- One click (``--parts point``): napari_medseg.segment_point at the innermost point of each
  fluorescence nucleus (no box), mIoU of that click alone and NoC@90 (the first click counts
  as 1; then the same click simulation), on both test sets.
- Speed: median time per click on the nucleus boxes; the plain float32 torch network and
  the tools' (box_segmentation.inference_copy: ONNX Runtime where installed), nucleus by
  nucleus in one run on the test split's fluorescence nuclei: box-only mIoU, NoC@90 and
  median time per click of each;
  session setup and per-click time on a 512x512 box; and how sharply a 300x300 px object's
  boundary is resolved (the mean distance of the mask's boundary to the true one, in pixels).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from importlib import resources

import cv2
import numpy as np
import torch
from scipy import ndimage as ndi

from napari_medseg import BoxSession, box_segmentation, propagate_mask, read_image, segment_box
from napari_medseg.box_segmentation import load_box_click_network, propagate_mask_with_report
from napari_medseg.datasets import (
    DSB_TEST,
    DSB_TRAIN,
    GONUCLEAR,
    GONUCLEAR_TEST,
    data_folder,
    dsb_split,
    read_dsb,
    read_gonuclear,
)
from napari_medseg.evaluation import innermost_point, iou, next_click
from napari_medseg.runtime import processor_name

MAX_CLICKS = 20


def boxes(labels: np.ndarray, margin: int = 2, max_nuclei: int = 0):
    """(label, box) of every nucleus of >= 10 px (every k-th to keep at most
    ``max_nuclei``), box = its bounding box + ``margin``, clipped."""
    found = list(_boxes(labels, margin))
    step = max(1, len(found) // max_nuclei + 1) if max_nuclei else 1
    return found[::step]


def box_around(mask: np.ndarray, margin: int = 2) -> tuple[int, int, int, int]:
    """The bounding box of a 2D mask + ``margin`` px per side, clipped to the mask's shape."""
    ys, xs = np.nonzero(mask)
    return (max(ys.min() - margin, 0), max(xs.min() - margin, 0),
            min(ys.max() + 1 + margin, mask.shape[0]), min(xs.max() + 1 + margin, mask.shape[1]))


def _boxes(labels: np.ndarray, margin: int):
    for label, (ys, xs) in enumerate(ndi.find_objects(labels), start=1):
        if ys is None or (labels[ys, xs] == label).sum() < 10:
            continue
        yield label, (max(ys.start - margin, 0), max(xs.start - margin, 0),
                      min(ys.stop + margin, labels.shape[0]),
                      min(xs.stop + margin, labels.shape[1]))


def interactive(gray: np.ndarray, truth: np.ndarray, box, clicks: bool = True,
                network=None) -> tuple[list[float], list[float]]:
    """IoU after the box and after each simulated click; time of each click (``network``:
    the tools' by default)."""
    y0, x0, y1, x1 = box
    session = BoxSession(gray, box, network=network)
    local = truth[y0:y1, x0:x1]
    scores, times = [iou(session.mask, local)], []
    while clicks and len(scores) < MAX_CLICKS and scores[-1] < 0.999:
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
    """GrabCut from the box, on the box grown by its own size per side (its background
    model sees the object's surroundings, not the whole image: 100x faster on large ones)."""
    y0, x0, y1, x1 = box
    out = np.zeros(rgb.shape[:2], bool)
    if min(y1 - y0, x1 - x0) < 2:
        return out
    h, w = y1 - y0, x1 - x0
    cy0, cx0 = max(y0 - h, 0), max(x0 - w, 0)
    cy1, cx1 = min(y1 + h, rgb.shape[0]), min(x1 + w, rgb.shape[1])
    mask = np.zeros((cy1 - cy0, cx1 - cx0), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1]), mask, (x0 - cx0, y0 - cy0, w, h),
                bgd, fgd, 5, cv2.GC_INIT_WITH_RECT)
    out[cy0:cy1, cx0:cx1] = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return out


def image_sets() -> dict[str, list]:
    """{name: [(rgb uint8, grey float32, labels)]} of the two test sets by kind."""
    sets = {}
    for name, folder_name in (("train set, test split", DSB_TRAIN), ("stage-1 test", DSB_TEST)):
        folder = data_folder(folder_name)
        split = dsb_split(folder)
        for kind in ("fluorescence", "brightfield"):
            pairs = read_dsb(folder, split.of_kind(split.test, kind), rgb=True)
            sets[f"{kind}, {name}"] = [
                (rgb, rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32),
                 labels) for rgb, labels in pairs]
    return sets


def two_d(max_nuclei: int, margins: list[int]) -> list[float]:
    click_times = []
    for name, images in image_sets().items():
        rows = []
        for rgb, gray, labels in images:
            for label, box in boxes(labels, max_nuclei=max_nuclei):
                truth = labels == label
                scores, times = interactive(gray, truth, box)
                click_times += times
                y0, x0, y1, x1 = box
                cut = grabcut(rgb, box)[y0:y1, x0:x1]
                rows.append((scores[0], noc(scores), iou(cut, truth[y0:y1, x0:x1])))
        r = np.array(rows)
        print(f"{name}: {len(r)} nuclei | box-only mIoU ours {r[:, 0].mean():.3f}, "
              f"GrabCut {r[:, 2].mean():.3f} | NoC@90 ours {r[:, 1].mean():.2f} "
              f"(reached 0.90 within 20: {np.mean(r[:, 1] < MAX_CLICKS):.1%})", flush=True)
        if name.startswith("fluorescence"):
            for margin in margins:
                scores = [interactive(gray, labels == label, box, clicks=False)[0][0]
                          for _, gray, labels in images
                          for label, box in boxes(labels, margin)]
                print(f"  box-only mIoU at margin {margin} px: {np.mean(scores):.3f}",
                      flush=True)
    return click_times


def one_click(max_nuclei: int) -> None:
    """A click at each nucleus' innermost point, then simulated corrections (anywhere: a
    positive click outside the inferred box grows it) up to MAX_CLICKS. A nucleus the
    model finds nothing under ("No object here") scores 0 and MAX_CLICKS: its user draws a
    box instead."""
    from napari_medseg.point_segmentation import point_session

    for name, images in image_sets().items():
        if not name.startswith("fluorescence"):
            continue
        first, clicks, times, missed = [], [], [], 0
        for _, gray, labels in images:
            for label, _ in boxes(labels, max_nuclei=max_nuclei):
                truth = labels == label
                t0 = time.perf_counter()
                try:
                    session = point_session(gray, innermost_point(truth))
                except ValueError:
                    missed += 1
                    first.append(0.0)
                    clicks.append(MAX_CLICKS)
                    continue
                times.append(time.perf_counter() - t0)
                ys, xs = ndi.find_objects(truth.astype(np.uint8))[0]
                scores = [iou(*_local(session, truth, ys, xs)[:2])]
                while len(scores) < MAX_CLICKS and scores[-1] < 0.999:
                    pred, local, (oy, ox) = _local(session, truth, ys, xs)
                    click = next_click(pred, local)
                    if click is None:
                        break
                    (cy, cx), positive = click
                    session.add_click((cy + oy, cx + ox), positive=positive)
                    scores.append(iou(*_local(session, truth, ys, xs)[:2]))
                first.append(scores[0])
                clicks.append(noc(scores))
        print(f"one click, {name}: {len(first)} nuclei | mIoU after 1 click {np.mean(first):.3f}"
              f" | NoC@90 {np.mean(clicks):.2f} (up to {MAX_CLICKS}) | no object found under "
              f"{missed} | first click median {np.median(times) * 1e3:.0f} ms", flush=True)


def _local(session, truth: np.ndarray, ys: slice, xs: slice):
    """The session's mask and the truth on their joint extent (+1 px): errors lie there.
    Returns (mask crop, truth crop, the crop's corner)."""
    y0, x0, y1, x1 = session.box
    a, b = max(min(ys.start, y0) - 1, 0), max(min(xs.start, x0) - 1, 0)
    c, d = min(max(ys.stop, y1) + 1, truth.shape[0]), min(max(xs.stop, x1) + 1, truth.shape[1])
    out = np.zeros((c - a, d - b), bool)
    out[y0 - a:y1 - a, x0 - b:x1 - b] = session.mask
    return out, truth[a:c, b:d], (a, b)


def three_d(max_nuclei: int) -> None:
    folder = data_folder(GONUCLEAR)
    for crop in GONUCLEAR_TEST:
        image, labels, _ = read_gonuclear(folder, crop)
        boxed, propagated = [], []
        for label, where in enumerate(ndi.find_objects(labels), start=1):
            if where is None or (max_nuclei and len(boxed) >= max_nuclei):
                continue
            truth = labels == label
            zs, ys, xs = where
            box = (zs.start - 1, ys.start - 1, xs.start - 1, zs.stop + 1, ys.stop + 1,
                   xs.stop + 1)
            boxed.append(iou(segment_box(image, box), truth))
            z = (zs.start + zs.stop - 1) // 2
            middle = truth[z, ys, xs]
            stack, (cz, cy, cx) = propagate_mask(image, z, middle, (ys.start, xs.start))
            out = np.zeros(labels.shape, bool)
            out[cz:cz + stack.shape[0], cy:cy + stack.shape[1], cx:cx + stack.shape[2]] = stack
            propagated.append(iou(out, truth))
        print(f"GoNuclear crop {crop}, {len(boxed)} nuclei: 3D box (+1 voxel) box-only mIoU "
              f"{np.mean(boxed):.3f}; propagation from the true middle slice mIoU "
              f"{np.mean(propagated):.3f}", flush=True)


def ct() -> None:
    folder = data_folder("totalseg-ct")
    [image] = read_image(folder / "example_ct_sm.nii.gz")
    [labels] = read_image(folder / "example_seg.nii.gz")
    image, labels = np.asarray(image.data, np.float32), np.asarray(labels.data)
    rows = []
    for z in range(0, labels.shape[0], 4):
        for organ in np.unique(labels[z])[1:]:
            truth = ndi.label(labels[z] == organ)[0]
            for part in range(1, truth.max() + 1):
                piece = truth == part
                if piece.sum() < 500:
                    continue
                rows.append((piece.sum(), interactive(image[z], piece, box_around(piece),
                                                      clicks=False)[0][0]))
    rows = np.array(rows)
    print(f"CT: {len(rows)} organ cross-sections >= 500 px, box-only mIoU {rows[:, 1].mean():.3f}",
          flush=True)
    # propagation from the true mask of each organ's middle axial slice, with the reasons it
    # stopped; and whether any voxel leaks outside the body (HU > -500, holes filled)
    body = ndi.binary_fill_holes(image > -500, structure=np.ones((3, 3, 3)))
    for method, organ in itertools.product(("network", "intensity"), CT_ORGANS):
        truth, name = labels == organ, CT_ORGANS[organ]
        zs = np.flatnonzero(truth.any((1, 2)))
        z = int(zs[len(zs) // 2])
        ys, xs = ndi.find_objects(truth[z].astype(np.uint8))[0]
        stack, (cz, cy, cx), report = propagate_mask_with_report(
            image, z, truth[z][ys, xs], (ys.start, xs.start), method=method)
        out = np.zeros(truth.shape, bool)
        out[cz:cz + stack.shape[0], cy:cy + stack.shape[1], cx:cx + stack.shape[2]] = stack
        print(f"  propagation by {method}, {name}: 3D IoU {iou(out, truth):.3f} "
              f"({int(out.sum())} voxels, truth {int(truth.sum())}; outside the body "
              f"{int((out & ~body).sum())}); {report.message()}", flush=True)
    for organ, name in CT_ORGANS.items():
        first, found, outside, report = organ_from_box(image, labels == organ)
        print(f"  from a box, {name}: first slice IoU {first:.3f}, 3D IoU {found:.3f}, "
              f"outside it {outside:.0%} of its volume; {report.message()}", flush=True)
    for low, high in ((500, 1000), (1000, 2000), (2000, 10**9)):
        pick = (rows[:, 0] >= low) & (rows[:, 0] < high)
        if pick.any():
            print(f"  {low}-{high if high < 10**9 else 'more'} px: {pick.sum()} sections, "
                  f"mIoU {rows[pick, 1].mean():.3f}", flush=True)


CT_ORGANS = {5: "liver", 1: "spleen", 2: "right kidney", 3: "left kidney"}
MR = ("example_mr_sm.nii.gz", "example_seg_mr.nii.gz")


def organ_from_box(image: np.ndarray, truth: np.ndarray):
    """The user's way: a box 2 px around the organ on its largest axial slice, the box's
    mask, propagated by intensity (the widget's default for NIfTI volumes). (first slice
    IoU, 3D IoU, voxels outside the organ / its voxels, PropagationReport)."""
    z = int(np.argmax(truth.sum((1, 2))))
    session = BoxSession(image[z], box_around(truth[z]))
    stack, (cz, cy, cx), report = propagate_mask_with_report(
        image, z, session.mask, session.offset, method="intensity")
    out = np.zeros(truth.shape, bool)
    out[cz:cz + stack.shape[0], cy:cy + stack.shape[1], cx:cx + stack.shape[2]] = stack
    return (iou(session.full_mask(), truth[z]), iou(out, truth),
            (out & ~truth).sum() / truth.sum(), report)


def organ_tuning() -> None:
    """The organs the intensity propagation is chosen on: every organ of >= 1,500 voxels
    of the shared MR and the CT's organs other than the four reported, from a box."""
    folder = data_folder("totalseg-ct")
    rows = []
    for files, skip in ((MR, ()), (("example_ct_sm.nii.gz", "example_seg.nii.gz"), CT_ORGANS)):
        [image] = read_image(folder / files[0])
        [labels] = read_image(folder / files[1])
        image, labels = np.asarray(image.data, np.float32), np.asarray(labels.data)
        ids, counts = np.unique(labels, return_counts=True)
        rows += [organ_from_box(image, labels == organ)[:3]
                 for organ, count in zip(ids[1:], counts[1:], strict=True)
                 if count >= 1500 and organ not in skip]
    rows = np.array(rows)
    print(f"organ tuning set ({len(rows)} organs of the MR and the CT's others), from a box: "
          f"first slice mIoU {rows[:, 0].mean():.3f}, 3D mIoU {rows[:, 1].mean():.3f}, "
          f"median share outside {np.median(rows[:, 2]):.0%}", flush=True)


def speed(click_times: list[float], plain: torch.nn.Module, max_nuclei: int) -> None:
    if click_times:
        print(f"latency per click, nucleus boxes: median {np.median(click_times) * 1e3:.1f} ms "
              f"(p95 {np.percentile(click_times, 95) * 1e3:.1f} ms, {len(click_times)} clicks)")
    # the tools' network (ONNX Runtime where installed, else torch with batch norm folded)
    # against the plain float32 torch network, nucleus by nucleus in one run: answers and
    # time per click, on the fluorescence nuclei of the training set's test split
    fast = box_segmentation._shipped_network()
    names = {"plain float32 torch": plain, f"tools' ({type(fast).__name__})": fast}
    found = {name: ([], [], []) for name in names}
    for _, gray, labels in image_sets()["fluorescence, train set, test split"]:
        for label, box in boxes(labels, max_nuclei=max_nuclei):
            for name, network in names.items():
                scores, times = interactive(gray, labels == label, box, network=network)
                found[name][0].append(scores[0])
                found[name][1].append(noc(scores))
                found[name][2].extend(times)
    for name, (first, clicks, times) in found.items():
        print(f"  {name}: {len(first)} nuclei, box-only mIoU {np.mean(first):.4f}, NoC@90 "
              f"{np.mean(clicks):.3f}, per click median {np.median(times) * 1e3:.2f} ms")
    (plain_first, _, plain_times), (fast_first, _, fast_times) = found.values()
    change = abs(np.mean(fast_first) - np.mean(plain_first))
    print(f"  per click: {np.median(fast_times) / np.median(plain_times):.2f}x the plain "
          f"network's; box-only mIoU differs by {change:.4f}")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:600, :600]
    # a 300 px wide blob with a wavy outline, blurred, on noise: a large object
    radius = 150 + 12 * np.sin(8 * np.arctan2(yy - 300, xx - 300))
    truth = np.hypot(yy - 300, xx - 300) < radius
    image = ndi.gaussian_filter(truth.astype(np.float32), 2) + rng.normal(0, 0.1, truth.shape)
    t0 = time.perf_counter()
    session = BoxSession(image, (130, 130, 471, 471))
    setup = time.perf_counter() - t0
    y0, x0 = session.offset
    local = truth[y0:y0 + session.mask.shape[0], x0:x0 + session.mask.shape[1]]
    edge = ndi.distance_transform_edt(~_boundary(local)) if local.any() else None
    error = edge[_boundary(session.mask)].mean() if edge is not None else float("nan")
    print(f"300x300 px object: box-only IoU {iou(session.mask, local):.3f}, mean boundary "
          f"error {error:.2f} px", flush=True)
    session = BoxSession(image, (40, 40, 552, 552))
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        session.add_click(rng.integers(40, 552, 2), positive=bool(rng.integers(2)))
        times.append(time.perf_counter() - t0)
    print(f"512x512 box: session setup {setup * 1e3:.0f} ms, per click median "
          f"{np.median(times) * 1e3:.1f} ms")


def _boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndi.binary_erosion(mask)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-nuclei", type=int, default=0, help="per image; 0 = all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", default="2d,point,3d,ct,speed")
    parser.add_argument("--margins", default="0,4,6",
                        help="box margins for the extra box-only figures (default: %(default)s)")
    parser.add_argument("--network", help="a box + click network file (default: the shipped)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.network:  # every tool (sessions, 3D boxes, propagation) takes the shipped one
        plain = load_box_click_network(args.network)
        fast = box_segmentation.inference_copy(plain)
        box_segmentation._shipped_network = lambda: fast
    else:
        with resources.as_file(resources.files("napari_medseg.models")
                               .joinpath(box_segmentation.WEIGHTS)) as file:
            plain = load_box_click_network(file)
    print(f"{processor_name()}, {args.threads} threads", flush=True)
    parts = args.parts.split(",")
    margins = [int(m) for m in args.margins.split(",") if m]
    click_times = two_d(args.max_nuclei, margins) if "2d" in parts else []
    if "point" in parts:
        one_click(args.max_nuclei)
    if "3d" in parts:
        three_d(args.max_nuclei)
    if "ct" in parts:
        ct()
    if "organs" in parts:
        organ_tuning()
    if "speed" in parts:
        speed(click_times, plain, args.max_nuclei)
    return 0


if __name__ == "__main__":
    sys.exit(main())
