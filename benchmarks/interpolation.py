"""Slice interpolation: Dice on filled slices and speed, ours vs ITK and plain SDF blending.

Usage: python benchmarks/interpolation.py [--objects N] [--skip-itk]

Cases (3D objects; every 2nd/3rd/4th slice kept, the rest filled, Dice on the filled slices):
- real: nuclei outlines from the shared DSB2018 fluorescence images (sorted ids, first 12
  grayscale images, nuclei >= 60 px), each stacked into 9-17 slices with an ellipsoid profile,
  random drift (up to 0.8 radius) and rotation (object_from_outline);
- shifted: disks changing size and moving 2 radii over the stack;
- split: a tube that splits into two branches;
- ring: an annulus whose hole grows and moves;
- thin: a 2-3 px wide arc that drifts.
Speed: a 96x512x512 uint16 volume with 12 ellipsoidal labels annotated every 5th slice.
ITK's MorphologicalContourInterpolator needs `pip install itk-morphologicalcontourinterpolation`.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.io import imread

from napari_medseg import interpolate_labels
from napari_medseg.synthetic import object_from_outline

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018-stage1-test"
GAPS = (2, 3, 4)


def plain_sdf(sparse: np.ndarray) -> np.ndarray:
    """Per-slice signed-distance blending without alignment (the textbook baseline)."""
    out = sparse.copy()
    for label in np.unique(sparse)[1:]:
        m = sparse == label
        ks = np.flatnonzero(m.any(axis=(1, 2)))
        for a, b in itertools.pairwise(ks):
            sa, sb = (ndi.distance_transform_edt(~m[k]) - ndi.distance_transform_edt(m[k])
                      for k in (a, b))
            for k in range(a + 1, b):
                t = (k - a) / (b - a)
                out[k][((1 - t) * sa + t * sb < 0) & (out[k] == 0)] = label
    return out


def itk_mci(sparse: np.ndarray) -> np.ndarray:
    import itk

    image = itk.image_view_from_array(np.ascontiguousarray(sparse))
    # ITK's axis 2 is numpy's axis 0 (z).
    return itk.array_from_image(itk.morphological_contour_interpolator(image, axis=2))


def dice_on_filled(truth: np.ndarray, result: np.ndarray, kept: np.ndarray) -> float:
    filled = np.setdiff1d(np.arange(kept[0], kept[-1] + 1), kept)
    t, r = truth[filled] > 0, result[filled] > 0
    denom = t.sum() + r.sum()
    return 1.0 if denom == 0 else 2 * (t & r).sum() / denom


def keep_every(obj: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero all slices but every ``gap``-th (starting at the first); also keep the last."""
    n = obj.shape[0]
    kept = np.arange(0, n, gap)
    if kept[-1] != n - 1 and (n - 1 - kept[-1]) > 0:
        kept = np.append(kept, n - 1)
    sparse = np.zeros_like(obj)
    sparse[kept] = obj[kept]
    return sparse, kept


def real_objects(n_max: int, rng: np.random.Generator) -> list[np.ndarray]:
    if not DATA.is_dir():
        return []
    objects = []
    ids = sorted(p.name[: -len("_image.png")] for p in DATA.glob("*_image.png"))
    grayscale = [i for i in ids if _is_gray(imread(DATA / f"{i}_image.png"))][:12]
    for image_id in grayscale:
        labels = imread(DATA / f"{image_id}_labels.tif")
        for box, label in zip(ndi.find_objects(labels), range(1, labels.max() + 1), strict=True):
            if box is None or (labels[box] == label).sum() < 60:
                continue
            mask = np.pad(labels[box] == label, 12)
            radius = np.sqrt(mask.sum() / np.pi)
            drift = rng.uniform(-0.8, 0.8, 2) * radius
            obj = object_from_outline(mask, int(rng.integers(9, 18)), drift,
                                      rotation=rng.uniform(-0.5, 0.5))
            objects.append(obj.astype(np.uint16))
            if len(objects) >= n_max:
                return objects
    return objects


def _is_gray(image: np.ndarray) -> bool:
    rgb = image[..., :3].astype(int)
    return image.ndim == 2 or (np.abs(rgb - rgb[..., :1]).max() == 0)


def synthetic_objects(rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    yy, xx = np.indices((96, 96))
    cases: dict[str, list[np.ndarray]] = {"shifted": [], "split": [], "ring": [], "thin": []}
    for _ in range(8):
        n = int(rng.integers(11, 18))
        r0, r1 = rng.uniform(8, 16, 2)
        move = rng.uniform(-1, 1, 2)
        move *= 2 * max(r0, r1) / np.linalg.norm(move)
        shifted = np.zeros((n, 96, 96), np.uint16)
        split = np.zeros_like(shifted)
        ring = np.zeros_like(shifted)
        thin = np.zeros_like(shifted)
        for k in range(n):
            t = k / (n - 1)
            c = np.array([48, 48]) + (t - 0.5) * move
            r = r0 + (r1 - r0) * t
            shifted[k] = np.hypot(yy - c[0], xx - c[1]) <= r
            # Split: one tube until the middle, then two branches moving apart.
            sep = max(0.0, t - 0.4) * 40
            for sign in (-1, 1):
                split[k] |= np.hypot(yy - 48, xx - 48 - sign * sep) <= 9 - 2 * (sep > 0)
            hole = 3 + 6 * t
            dist = np.hypot(yy - c[0], xx - c[1])
            ring[k] = (dist <= 20) & (np.hypot(yy - c[0] - 4 * t, xx - c[1]) > hole)
            arc = np.abs(np.hypot(yy - 48 - 10 * t, xx - 20) - 30) <= 1.2
            thin[k] = arc & (xx > 30)
        cases["shifted"].append(shifted)
        cases["split"].append(split)
        cases["ring"].append(ring)
        cases["thin"].append(thin)
    return cases


def accuracy(cases: dict[str, list[np.ndarray]], use_itk: bool) -> None:
    methods = {"ours": interpolate_labels, "plain SDF": plain_sdf}
    if use_itk:
        methods["ITK MCI"] = itk_mci
    print(f"\nDice on filled slices, mean over objects (gaps {GAPS}):")
    print(f"{'case':<10}{'objects':>8}  " + "".join(f"{m:>22}" for m in methods))
    for name, objects in cases.items():
        if not objects:
            continue
        row = f"{name:<10}{len(objects):>8}  "
        for method in methods.values():
            scores = []
            for gap in GAPS:
                vals = []
                for obj in objects:
                    sparse, kept = keep_every(obj, gap)
                    vals.append(dice_on_filled(obj, method(sparse), kept))
                scores.append(np.mean(vals))
            row += f"{' / '.join(f'{s:.3f}' for s in scores):>22}"
        print(row)


def ellipsoids(count: int, radii: tuple, seed: int, shape=(96, 512, 512)) -> np.ndarray:
    """``count`` ellipsoidal labels at random in a uint16 volume (later ids on top)."""
    rng = np.random.default_rng(seed)
    volume = np.zeros(shape, np.uint16)
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    for label in range(1, count + 1):
        r = rng.uniform(*radii)
        c = rng.uniform(r + 2, np.subtract(shape, r + 2))
        volume[((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2
               + ((xx - c[2]) / r[2]) ** 2 <= 1] = label
    return volume


def speed(use_itk: bool) -> None:
    cases = {"12 labels": ellipsoids(12, ((15, 25, 25), (30, 60, 60)), 7),
             "120 labels": ellipsoids(120, ((8, 10, 10), (20, 30, 30)), 8)}
    if use_itk:
        itk_mci(np.zeros((10, 64, 64), np.uint16))  # warm-up: ITK loads its modules lazily
    for case, volume in cases.items():
        sparse = np.zeros_like(volume)
        sparse[::5] = volume[::5]
        print(f"\nSpeed: {volume.shape} uint16, {case} annotated every 5th slice "
              f"({len(np.unique(sparse)) - 1} present)")
        timings = {"ours": lambda s: interpolate_labels(s, progress=False)}
        if use_itk:
            timings["ITK MCI"] = itk_mci
        runs = {name: [] for name in timings}
        for _ in range(4):  # interleaved, so both see the same machine
            for name, fn in timings.items():
                t0 = time.perf_counter()
                fn(sparse)
                runs[name].append(time.perf_counter() - t0)
        for name, fn in timings.items():
            print(f"  {name:<8} {min(runs[name]):7.2f} s (best of 4), Dice on filled slices "
                  f"{dice_on_filled(volume, fn(sparse), np.arange(0, 96, 5)):.3f}")
        if use_itk:
            print(f"  ours / ITK: {min(runs['ours']) / min(runs['ITK MCI']):.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=150, help="real nuclei to stack")
    parser.add_argument("--skip-itk", action="store_true")
    args = parser.parse_args(argv)
    use_itk = not args.skip_itk
    if use_itk:
        try:
            import itk  # noqa: F401
        except ImportError:
            print("itk-morphologicalcontourinterpolation not installed: ITK columns skipped")
            use_itk = False
    rng = np.random.default_rng(0)
    cases = {"real": real_objects(args.objects, rng), **synthetic_objects(rng)}
    if not cases["real"]:
        print(f"shared data not found at {DATA}: real case skipped")
    accuracy(cases, use_itk)
    speed(use_itk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
