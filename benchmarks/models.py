"""Model runner: accuracy of the shipped nuclei models on both test sets, speed and memory.

Usage: python benchmarks/models.py [--threads 2] [--model nuclei-2d] [--skip-memory]
                                   [--skip-speed] [--split test|validation]

Accuracy, with Otsu + distance-transform watershed in the same run as the floor
(napari_medseg.datasets gives the images):
- fluorescence: the 57 fluorescence images of the DSB2018 stage-1 training set's test split
  (ids[::10]), and the 53 of the stage-1 test set (other annotators), all and less its 5
  fixed fine-tuning images (48);
- colour (nuclei-he-2d): the 10 brightfield / H&E images of that test split and the 12 of
  the stage-1 test set.
Per set: F1 and AP (TP / (TP + FP + FN)) at IoU 0.5 over all nuclei of all images
(napari_medseg.evaluation.match_instances), and the mean of AP over IoU 0.5:0.05:0.95
(as micro-sam reports DSB). ``--split validation`` scores the training set's validation
split instead (for choices made while training; never the test images).
3D (--stacks): 3D F1@0.5 (3D IoU) and AP on GoNuclear crop 1135 (test-only; with
``--split validation`` crop 1136), for the model given (``nuclei-3d`` on its three
planes; a slice-by-slice model as it runs), with the diameter estimated and at the model's
training size, beside Otsu + 3D watershed, and the seconds the model takes for the 100^3
crop; then the seconds and peak memory for a 64 x 512 x 512 stack (the crop mirrored out).
Magnification (--scales): the fluorescence images of the split (test: the 57 of the training
set's test split) resampled by 0.5x and 2x (datasets.magnified) and as they are: pooled F1@0.5
with the diameter estimated (the default) and at the model's training size (no zoom) in one
run, and the share of images whose estimated diameter is within 20% of the true nuclei's
median diameter (object_size.median_diameter of the labels).
Speed: segment() on a 512x512 image, the plain float32 path and the fast one (fused batch
norm, channels-last, bfloat16 where native) in one run; the network's achieved GFLOP/s on 4
tiles of 256 beside a plain channels-last 3x3 convolution's; sliding-window time against
MONAI's sliding_window_inference with the plain network (``--plain``: accuracy of both paths).
Memory: time and peak resident memory of segmenting a 64x1024x1024 uint16 stack of
test-split mosaics slice by slice, each path in a fresh process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

from napari_medseg.datasets import (
    DSB_TEST,
    DSB_TRAIN,
    GONUCLEAR,
    GONUCLEAR_TEST,
    GONUCLEAR_TRAIN,
    data_folder,
    dsb_split,
    finetune_ids,
    mosaic,
    read_dsb,
    read_gonuclear,
)
from napari_medseg.evaluation import match_instances
from napari_medseg.model_runner import load_model
from napari_medseg.runtime import processor_name

THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)


def otsu_watershed(image: np.ndarray, spacing=None) -> np.ndarray:
    """The classical floor: Otsu foreground split by a distance-transform watershed
    (dark objects on bright ground for colour images; 3D with the voxel ``spacing``)."""
    grey = image.astype(np.float32)
    if grey.ndim == 3 and spacing is None:
        grey = -grey @ np.array([0.299, 0.587, 0.114], np.float32)
    sigma = 1.0 if spacing is None else [min(spacing) / s for s in spacing]
    smooth = ndi.gaussian_filter(grey, sigma)
    mask = smooth > threshold_otsu(smooth)
    distance = ndi.distance_transform_edt(mask, sampling=spacing)
    min_distance = 4 if spacing is None else 3
    peaks = peak_local_max(distance, min_distance=min_distance, labels=ndi.label(mask)[0])
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=mask)


def scores(pairs, segment) -> dict[str, float]:
    """F1@0.5, AP@0.5 and AP over IoU 0.5:0.95 of ``segment`` on (image, truth) pairs."""
    counts = np.zeros((len(THRESHOLDS), 3), int)
    for image, truth in pairs:
        pred = segment(image)
        counts += [match_instances(pred, truth, t) for t in THRESHOLDS]
    tp, fp, fn = counts.T
    ap = tp / np.maximum(tp + fp + fn, 1)
    return {"F1@0.5": 2 * tp[0] / max(2 * tp[0] + fp[0] + fn[0], 1), "AP@0.5": ap[0],
            "AP@0.5:0.95": float(ap.mean()), "nuclei": int(tp[0] + fn[0]),
            "images": len(pairs)}


def report(name: str, result: dict) -> None:
    print(f"  {name:24s} F1@0.5 {result['F1@0.5']:.3f}  AP@0.5 {result['AP@0.5']:.3f}  "
          f"AP@0.5:0.95 {result['AP@0.5:0.95']:.3f}  ({result['images']} images, "
          f"{result['nuclei']} nuclei)", flush=True)


def test_sets(kind: str, split_name: str) -> dict[str, list]:
    """The named image sets of ``kind`` to score on."""
    train_dir = data_folder(DSB_TRAIN)
    split = dsb_split(train_dir)
    ids = split.of_kind(getattr(split, split_name), kind)
    sets = {f"stage-1 train, {split_name} split": read_dsb(train_dir, ids)}
    if split_name == "test":
        test_dir = data_folder(DSB_TEST)
        other = dsb_split(test_dir)
        test_ids = other.of_kind(other.test, kind)
        sets["stage-1 test"] = read_dsb(test_dir, test_ids)
        if kind == "fluorescence":
            held = set(finetune_ids(test_dir))
            sets["stage-1 test less 5"] = [p for i, p in zip(test_ids, sets["stage-1 test"],
                                                             strict=True) if i not in held]
    return sets


def accuracy(model, split_name: str, plain: bool = False) -> None:
    kind = "brightfield" if model.info.in_channels == 3 else "fluorescence"
    for set_name, pairs in test_sets(kind, split_name).items():
        print(f"{kind} nuclei, {set_name}:", flush=True)
        report(model.info.name, scores(pairs, model.segment))
        if plain:
            report(f"{model.info.name} plain float32", scores(pairs, plain_path(model).segment))
        report("Otsu + watershed", scores(pairs, otsu_watershed))


def stacks(model, split_name: str) -> None:
    folder = data_folder(GONUCLEAR)
    crops = GONUCLEAR_TEST if split_name == "test" else GONUCLEAR_TRAIN
    for crop in crops:
        image, truth, spacing = read_gonuclear(folder, crop)
        t0 = time.perf_counter()
        labels = model.segment(image, spacing=spacing)
        seconds = time.perf_counter() - t0
        print(f"GoNuclear crop {crop} ({image.shape}, {len(np.unique(truth)) - 1} nuclei):",
              flush=True)
        report(f"{model.info.name} ({seconds:.1f} s)", scores([(labels, truth)], lambda x: x))
        if model.info.diameter is not None:
            t0 = time.perf_counter()
            labels = model.segment(image, spacing=spacing, diameter=model.info.diameter)
            report(f"{model.info.name} at its training size ({time.perf_counter() - t0:.1f} s)",
                   scores([(labels, truth)], lambda x: x))
        report("Otsu + 3D watershed",
               scores([(image, truth)], lambda x, s=spacing: otsu_watershed(x, s)))
    # speed on a larger stack: the crop mirrored out to 64 x 512 x 512, its spacing
    image, _, spacing = read_gonuclear(folder, crops[0])
    big = np.pad(image, [(0, max(64 - n, 0)) if a == 0 else (0, 512 - n)
                         for a, n in enumerate(image.shape)], mode="symmetric")[:64]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    model.segment(big, spacing=spacing, diameter=model.info.diameter, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{model.info.name} on a {big.shape} stack (crop {crops[0]} mirrored, spacing "
          f"{tuple(round(s, 3) for s in spacing)}): {time.perf_counter() - t0:.1f} s at the "
          f"training size; peak resident memory {peak / 2**20:.2f} GiB (was "
          f"{before / 2**20:.2f} GiB before it)", flush=True)


def scales(model, split_name: str) -> None:
    """F1 at other magnifications, the diameter estimated and not, and the estimate's error."""
    from napari_medseg.datasets import magnified
    from napari_medseg.object_size import median_diameter
    from napari_medseg.runtime import run_steps

    folder = data_folder(DSB_TRAIN)
    split = dsb_split(folder)
    pairs = read_dsb(folder, split.of_kind(getattr(split, split_name), "fluorescence"))
    print(f"fluorescence nuclei of the training set's {split_name} split ({len(pairs)} images) "
          "at other magnifications:", flush=True)
    for factor in (0.5, 1.0, 2.0):
        scaled = [magnified(image, truth, factor) for image, truth in pairs]
        t0 = time.perf_counter()
        found = [run_steps(model.segment_steps(image, size=True)) for image, _ in scaled]
        seconds = time.perf_counter() - t0
        result = scores([(labels, truth) for (labels, _), (_, truth) in
                         zip(found, scaled, strict=True)], lambda labels: labels)
        close = sum(abs(estimate.diameter / median_diameter(truth)[0] - 1) <= 0.2
                    for (_, estimate), (_, truth) in zip(found, scaled, strict=True))
        zoomed = sum(estimate.zoom != 1 for _, estimate in found)
        fixed = scores(scaled, lambda x: model.segment(x, diameter=model.info.diameter,
                                                       progress=False))
        print(f" {factor}x: diameter estimated F1@0.5 {result['F1@0.5']:.3f} ({seconds:.0f} s, "
              f"{zoomed} images zoomed), at the training size {fixed['F1@0.5']:.3f}; estimate "
              f"within 20% of the true median diameter on {close}/{len(scaled)} images",
              flush=True)


def speed(model) -> None:
    """segment() on 512x512 and the network's achieved GFLOP/s, plain float32 path and the
    fast one (SegmentationModel(fast=True)) in one run, beside a plain 3x3 convolution."""
    from monai.inferers import sliding_window_inference
    from torch.utils.flop_counter import FlopCounterMode

    rng = np.random.default_rng(0)
    shape = (512, 512, 3) if model.info.in_channels == 3 else (512, 512)
    image = rng.normal(1000, 100, shape).astype(np.float32)
    paths = {"plain float32": plain_path(model), "fast": model}
    seconds = {}
    for name, runner in paths.items():
        runner.segment(image, progress=False)  # warm-up: builds the inference copy
        seconds[name] = best_of(3, lambda r=runner: r.segment(image, progress=False))
    print(f"segment() on 512x512: plain {seconds['plain float32']:.3f} s, fast "
          f"{seconds['fast']:.3f} s ({seconds['fast'] / seconds['plain float32']:.2f}x)")
    # the network on a batch of 4 tiles, as the sliding window feeds it
    tiles = torch.from_numpy(rng.normal(size=(4, model.info.in_channels, 256, 256))
                             .astype(np.float32))
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model.network(tiles)
    flops = counter.get_total_flops()
    fast_net = model._inference_network()  # what segment() runs (private: measured as is)
    bf16 = model._bfloat16()
    last = tiles.contiguous(memory_format=torch.channels_last)

    def run(network, x, low):
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=low):
            network(x)

    net_plain = flops / best_of(5, lambda: run(model.network, tiles, False)) / 1e9
    net_fast = flops / best_of(5, lambda: run(fast_net, last, bf16)) / 1e9
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval().to(memory_format=torch.channels_last)
    x = torch.randn(4, 64, 256, 256).contiguous(memory_format=torch.channels_last)
    conv_flops = 2 * 64 * 64 * 9 * 4 * 256 * 256
    conv32 = conv_flops / best_of(5, lambda: run(conv, x, False)) / 1e9
    conv16 = conv_flops / best_of(5, lambda: run(conv, x, True)) / 1e9
    reference = conv16 if bf16 else conv32
    print(f"network, 4 tiles of 256 ({flops / 1e9:.1f} GFLOP): plain {net_plain:.0f} GFLOP/s, "
          f"fast ({'bfloat16' if bf16 else 'float32'}) {net_fast:.0f} GFLOP/s = "
          f"{net_fast / reference:.0%} of a channels-last 3x3 convolution (64 channels) at "
          f"{reference:.0f} GFLOP/s (float32 {conv32:.0f}, bfloat16 {conv16:.0f})")
    big = rng.normal(size=(model.info.in_channels, 1024, 1024)).astype(np.float32)
    tile = model.info.tile_shape
    t0 = time.perf_counter()
    model.predict(big if model.info.in_channels > 1 else big[0], tile, 0.25, progress=False)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.inference_mode():
        sliding_window_inference(torch.from_numpy(big[None]), tile, 4, model.network,
                                 overlap=0.25, mode="gaussian")
    monai = time.perf_counter() - t0
    print(f"1024x1024 sliding window: ours (fast) {ours:.2f} s, MONAI with the plain network "
          f"{monai:.2f} s ({ours / monai:.2f}x)")


def plain_path(model):
    """The same network on the plain float32 path."""
    from napari_medseg.model_runner import SegmentationModel

    return SegmentationModel(model.network, model.info, model.device, fast=False)


def best_of(n: int, fn) -> float:
    runs = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return min(runs)


def _stack() -> np.ndarray:
    """64 slices of 1024x1024 mosaics of the test split's fluorescence images (each slice
    starts its tiling one image later), uint16."""
    pairs = read_dsb(*_test_split_fluorescence())
    return np.stack([mosaic(pairs[k % len(pairs):] + pairs[:k % len(pairs)], (1024, 1024))[0]
                     for k in range(64)]).astype(np.uint16) * 16


def _test_split_fluorescence():
    folder = data_folder(DSB_TRAIN)
    split = dsb_split(folder)
    return folder, split.of_kind(split.test, "fluorescence")


def _segment_stack(model_name: str, fast: bool, threads: int) -> tuple[float, float, float]:
    """In a fresh process: (seconds, peak RSS MiB, RSS MiB before segmenting)."""
    torch.set_num_threads(threads)
    model = load_model(model_name, device="cpu")
    runner = model if fast else plain_path(model)
    stack = _stack()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    runner.segment(stack, progress=False)
    seconds = time.perf_counter() - t0
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, before


def memory(model_name: str, threads: int) -> None:
    """A 64x1024x1024 real-data stack slice by slice, the plain and the fast path each in
    its own fresh process (spawned: a forked child's peak RSS would count the parent's)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    for name, fast in (("plain float32", False), ("fast", True)):
        with context.Pool(1) as pool:
            seconds, peak, before = pool.apply(_segment_stack, (model_name, fast, threads))
        print(f"64x1024x1024 uint16 stack (test-split mosaics), {name}: {seconds:.0f} s, "
              f"peak RSS {peak:.0f} MiB ({before:.0f} MiB with the stack and the model loaded)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="nuclei-2d", help="built-in name or model file")
    parser.add_argument("--split", choices=("test", "validation"), default="test")
    parser.add_argument("--stacks", action="store_true", help="only the 3D GoNuclear figures")
    parser.add_argument("--scales", action="store_true",
                        help="only F1 at 0.5x, 1x and 2x magnification")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--plain", action="store_true",
                        help="also score the plain float32 path (fast=False)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{processor_name()}, {args.threads} threads")
    model = load_model(args.model, device="cpu")
    if args.stacks:
        stacks(model, args.split)
        return 0
    if args.scales:
        scales(model, args.split)
        return 0
    if not args.skip_accuracy:
        accuracy(model, args.split, args.plain)
    if not args.skip_speed:
        speed(model)
    if not args.skip_memory and model.info.in_channels == 1:
        memory(args.model, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
