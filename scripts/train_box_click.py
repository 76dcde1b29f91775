"""Train the box + click network shipped as ``napari_medseg/models/box_click_2d.pt``.

    python scripts/train_box_click.py [--iterations 4000] [--threads 2] [--out PATH]
                                      [--init CHECKPOINT --lr 1e-3]

Data: the shared DSB2018 images (../shared/data/dsb2018-stage1-test, or $MEDSEG_DATA).
Split: ids sorted; every 5th (ids[::5], 13 images) is held out and never read here; the
other 52 (fluorescence and colour, colour converted to luminance) are used for training.

Each sample is one annotated nucleus: its bounding box grown by a random 0-6 px per side,
the square crop around it (as napari_medseg.box_segmentation prepares it), flips/rotations,
contrast, noise and inversion. In 25% of samples, as in 3D propagation, a prior mask (the
nucleus scaled by 0.6-1.25, shifted, grown or shrunk by a pixel) is given and the box is its
bounding box grown by 15% + 2 px. Clicks are simulated the RITM way: for a random 0-3 rounds
the current network predicts the batch (no gradient) and each sample gets a click at the
innermost point of its largest error region (napari_medseg.evaluation.next_click), and its
prediction becomes the prior mask of the next pass, so the network learns to correct its own
mistakes locally. Loss: BCE + soft Dice. Seeded; on CPU the run
is reproducible for a given --threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import tifffile
import torch
from scipy import ndimage as ndi
from skimage.io import imread

from napari_medseg.box_segmentation import (
    CROP,
    WEIGHTS,
    CropFrame,
    box_click_network,
    click_channels,
    normalize_crop,
)
from napari_medseg.evaluation import next_click

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEDSEG_DATA", ROOT.parent / "shared" / "data")) / "dsb2018-stage1-test"


def split_ids(data: Path = DATA) -> tuple[list[str], list[str]]:
    """(train, held-out) ids: sorted, every 5th held out."""
    ids = sorted(p.name[: -len("_labels.tif")] for p in data.glob("*_labels.tif"))
    held = ids[::5]
    return [i for i in ids if i not in held], held


def fluorescence_pairs(ids: list[str], data: Path = DATA) -> list[tuple[np.ndarray, np.ndarray]]:
    """(grey image, instance labels) of the grayscale fluorescence images among ``ids``."""
    return [(rgb[..., 0], labels) for rgb, labels in _pairs(ids, data, colour=False)]


def colour_pairs(ids: list[str], data: Path = DATA) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB image, instance labels) of the colour (H&E, brightfield) images among ``ids``."""
    return _pairs(ids, data, colour=True)


def _pairs(ids: list[str], data: Path, colour: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for image_id in ids:
        rgb = imread(data / f"{image_id}_image.png")[..., :3]
        if bool(np.ptp(rgb.astype(int), axis=-1).any()) == colour:
            out.append((rgb, tifffile.imread(data / f"{image_id}_labels.tif")))
    return out


def load_gray(data: Path, image_id: str) -> np.ndarray:
    rgb = imread(data / f"{image_id}_image.png")[..., :3].astype(np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


class Nuclei:
    """All annotated nuclei of the training images, sampled as network crops."""

    def __init__(self, ids: list[str], data: Path = DATA):
        self.images, self.labels, self.objects = [], [], []
        for k, image_id in enumerate(ids):
            labels = tifffile.imread(data / f"{image_id}_labels.tif")
            self.images.append(load_gray(data, image_id))
            self.labels.append(labels)
            for label, where in enumerate(ndi.find_objects(labels), start=1):
                if where is not None and (labels[where] == label).sum() >= 10:
                    self.objects.append((k, label, where))

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One (image crop, box channel, prior channel: (3, S, S), truth (S, S) bool)."""
        k, label, (ys, xs) = self.objects[rng.integers(len(self.objects))]
        image, labels = self.images[k], self.labels[k]
        h, w = image.shape
        truth_full = labels == label
        prior_full = None
        if rng.random() < 0.25:
            # As in 3D propagation: the neighbouring slice's mask (here the object scaled,
            # shifted and grown/shrunk) is the prior, its grown bounding box the box.
            prior_full = _perturb(truth_full, (ys, xs), rng)
        if prior_full is not None and prior_full.any():
            py, px = np.nonzero(prior_full)
            margin = int(np.ceil(0.15 * (max(np.ptp(py), np.ptp(px)) + 1))) + 2
            box = (max(py.min() - margin, 0), max(px.min() - margin, 0),
                   min(py.max() + 1 + margin, h), min(px.max() + 1 + margin, w))
        else:
            prior_full = None
            grow = rng.integers(0, 7, 4)
            box = (max(ys.start - grow[0], 0), max(xs.start - grow[1], 0),
                   min(ys.stop + grow[2], h), min(xs.stop + grow[3], w))
        frame = CropFrame.around(box)
        crop = normalize_crop(frame.sample(image))
        truth = frame.sample(truth_full.astype(np.float32)) > 0.5
        prior = (np.zeros_like(crop) if prior_full is None
                 else (frame.sample(prior_full.astype(np.float32)) > 0.5).astype(np.float32))
        crop = crop * rng.uniform(0.75, 1.25) + rng.uniform(-0.15, 0.15)
        crop = crop + rng.normal(0, rng.uniform(0, 0.06), crop.shape)
        if rng.random() < 0.25:  # dark objects on bright ground (H&E, brightfield, CT)
            crop = 1.0 - crop
        stack = np.stack([crop, frame.box_channel(), prior, truth.astype(np.float32)])
        stack = np.rot90(stack, rng.integers(4), axes=(1, 2))
        if rng.random() < 0.5:
            stack = stack[:, :, ::-1]
        stack = np.ascontiguousarray(stack, dtype=np.float32)
        return stack[:3], stack[3] > 0.5


def _perturb(mask: np.ndarray, where: tuple[slice, slice], rng: np.random.Generator) -> np.ndarray:
    """The object as a neighbouring slice might show it: scaled, shifted, grown or shrunk."""
    ys, xs = where
    size = max(ys.stop - ys.start, xs.stop - xs.start)
    cy, cx = (ys.start + ys.stop) / 2, (xs.start + xs.stop) / 2
    scale = rng.uniform(0.6, 1.25)
    dy, dx = rng.uniform(-0.12, 0.12, 2) * size
    matrix = np.array([[scale, 0, cx + dx - scale * cx], [0, scale, cy + dy - scale * cy]])
    out = cv2.warpAffine(mask.astype(np.uint8), matrix, mask.shape[::-1],
                         flags=cv2.INTER_NEAREST)
    grow = int(rng.integers(-1, 2))
    if grow:
        kernel = np.ones((3, 3), np.uint8)
        out = cv2.dilate(out, kernel) if grow > 0 else cv2.erode(out, kernel)
    return out.astype(bool)


def loss_fn(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, truth)
    prob = torch.sigmoid(logits)
    inter = (prob * truth).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (prob.sum((1, 2, 3)) + truth.sum((1, 2, 3)) + 1)
    return bce + dice.mean()


def train(iterations: int, batch: int, seed: int, out: Path, lr: float = 3e-3,
          init: Path | None = None, log_every: int = 100) -> None:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    train_ids, held = split_ids()
    nuclei = Nuclei(train_ids)
    print(f"training on {len(nuclei.objects)} nuclei from {len(train_ids)} images; "
          f"{len(held)} images held out", flush=True)
    net = box_click_network()
    done = 0
    if init is not None:  # continue from a checkpoint written by save()
        checkpoint = torch.load(init, map_location="cpu", weights_only=True)
        net.load_state_dict({k: v.float() for k, v in checkpoint["state_dict"].items()})
        done = int(checkpoint.get("iterations", 0))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=iterations,
                                                pct_start=0.1)
    start, running = time.perf_counter(), []
    for it in range(iterations):
        samples = [nuclei.sample(rng) for _ in range(batch)]
        static = np.stack([s[0] for s in samples])
        truth = np.stack([s[1] for s in samples])
        pos = [[] for _ in range(batch)]
        neg = [[] for _ in range(batch)]
        rounds = rng.choice(4, p=[0.4, 0.2, 0.2, 0.2])
        for _ in range(rounds):
            clicks = np.stack([click_channels(p, n) for p, n in zip(pos, neg, strict=True)])
            net.eval()
            with torch.no_grad():
                x = np.concatenate([static[:, :2], clicks, static[:, 2:]], 1)
                pred = (net(torch.from_numpy(x))[:, 0] > 0).numpy()
            net.train()
            for i in range(batch):
                click = next_click(pred[i], truth[i])
                if click is not None:
                    (pos if click[1] else neg)[i].append(click[0])
            # As in a session: the previous prediction is the prior for the next pass (RITM).
            static[:, 2] = pred
        clicks = np.stack([click_channels(p, n) for p, n in zip(pos, neg, strict=True)])
        x = torch.from_numpy(np.concatenate([static[:, :2], clicks, static[:, 2:]], 1))
        y = torch.from_numpy(truth[:, None].astype(np.float32))
        loss = loss_fn(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if (it + 1) % log_every == 0:
            print(f"it {it + 1}/{iterations} loss {np.mean(running):.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            running = []
            save(net, out, iterations=done + it + 1, seed=seed, train_ids=train_ids, init=init)
    save(net, out, iterations=done + iterations, seed=seed, train_ids=train_ids, init=init)
    print(f"saved {out}")


def save(net: torch.nn.Module, out: Path, init: Path | None = None, **meta) -> None:
    meta["init"] = None if init is None else Path(init).name
    state = {k: v.half() for k, v in net.state_dict().items()}  # halves the package size
    torch.save({"format": "napari-medseg/box-click", "version": 1, "crop": CROP,
                "state_dict": state, **meta}, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--init", type=Path, help="checkpoint to continue from")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "src" / "napari_medseg" / "models" / WEIGHTS)
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    train(args.iterations, args.batch, args.seed, args.out, lr=args.lr, init=args.init)
    return 0


if __name__ == "__main__":
    sys.exit(main())
