"""Train the shipped ``nuclei-2d`` model (napari_medseg/models/nuclei_2d.pt).

    python scripts/train_nuclei.py [--iterations 2500] [--threads 2] [--out PATH]

Data: the shared DSB2018 images; the split of scripts/train_box_click.py (sorted ids, every
5th held out). Trained on the grayscale fluorescence images of the training part. Target:
three classes per pixel, background / nucleus interior / nucleus boundary (the inner
one-pixel rim of each annotated nucleus), from which napari_medseg.model_runner splits touching
nuclei by a seeded watershed. 2D MONAI U-Net, 128x128 patches, flips/rotations, contrast,
gamma and noise, cross-entropy (boundary weighted x3) + soft Dice. Seeded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
import torch
from skimage.io import imread
from skimage.segmentation import find_boundaries

from napari_medseg.model_runner import ModelInfo, load_model, save_model
from napari_medseg.networks import build_network

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_box_click import DATA, ROOT, split_ids

INFO = ModelInfo(
    architecture="unet", dims=2, in_channels=1, classes=["background", "interior", "boundary"],
    output="instance-boundary",
    # Batch norm, not MONAI's default instance norm: per-tile statistics would make tiled
    # and whole-image predictions differ.
    kwargs={"channels": (32, 64, 128, 256), "strides": (2, 2, 2), "num_res_units": 2,
            "norm": "batch"},
    percentiles=(1.0, 99.8), spacing=None, tile_shape=(256, 256), name="nuclei-2d",
    description="Fluorescence nuclei (2D), trained on the shared DSB2018 images "
                "(scripts/train_nuclei.py).",
)
PATCH = 128


def fluorescence(ids: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(normalised image, 3-class target) for the grayscale images among ``ids``."""
    out = []
    for image_id in ids:
        rgb = imread(DATA / f"{image_id}_image.png")[..., :3]
        if np.ptp(rgb.astype(int), axis=-1).any():
            continue
        labels = tifffile.imread(DATA / f"{image_id}_labels.tif")
        image = rgb[..., 0].astype(np.float32)
        lo, hi = np.percentile(image, INFO.percentiles)
        image = (image - lo) / max(hi - lo, 1e-6)
        target = (labels > 0).astype(np.int64)
        target[find_boundaries(labels, mode="inner") & (labels > 0)] = 2
        out.append((image, target))
    return out


def sample(data, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    image, target = data[rng.integers(len(data))]
    h, w = image.shape
    py, px = max(PATCH - h, 0), max(PATCH - w, 0)
    if py or px:
        image = np.pad(image, ((0, py), (0, px)), mode="reflect")
        target = np.pad(target, ((0, py), (0, px)))
    y = rng.integers(image.shape[0] - PATCH + 1)
    x = rng.integers(image.shape[1] - PATCH + 1)
    img, tgt = image[y:y + PATCH, x:x + PATCH], target[y:y + PATCH, x:x + PATCH]
    k = rng.integers(4)
    img, tgt = np.rot90(img, k), np.rot90(tgt, k)
    if rng.random() < 0.5:
        img, tgt = img[:, ::-1], tgt[:, ::-1]
    img = np.clip(img, 0, None) ** rng.uniform(0.7, 1.4) * rng.uniform(0.7, 1.3)
    img = img + rng.uniform(-0.1, 0.1) + rng.normal(0, rng.uniform(0, 0.05), img.shape)
    return np.ascontiguousarray(img, np.float32), np.ascontiguousarray(tgt)


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    ce = torch.nn.functional.cross_entropy(logits, target, weight=torch.tensor([1.0, 1.0, 3.0]))
    prob = torch.softmax(logits, 1)
    onehot = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
    inter = (prob * onehot).sum((0, 2, 3))
    dice = 1 - (2 * inter + 1) / (prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + 1)
    return ce + dice[1:].mean()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2500)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--init", type=Path,
                        help="start from this checkpoint's weights (continue or fine-tune)")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "src" / "napari_medseg" / "models" / "nuclei_2d.pt")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data = fluorescence(split_ids()[0])
    print(f"training on {len(data)} fluorescence images", flush=True)
    if args.init:
        net = load_model(args.init, device="cpu").network.train()
    else:
        net = build_network(INFO.architecture, INFO.dims, INFO.in_channels, len(INFO.classes),
                            **INFO.kwargs)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.iterations,
                                                pct_start=0.1)
    start, running = time.perf_counter(), []
    for it in range(args.iterations):
        batch = [sample(data, rng) for _ in range(args.batch)]
        x = torch.from_numpy(np.stack([b[0] for b in batch])[:, None])
        y = torch.from_numpy(np.stack([b[1] for b in batch]))
        loss = loss_fn(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if (it + 1) % 100 == 0:
            print(f"it {it + 1}/{args.iterations} loss {np.mean(running):.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            running = []
            save_model(args.out, net, INFO)
    save_model(args.out, net, INFO)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
