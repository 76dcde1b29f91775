"""Training the box + click network (:mod:`napari_medseg.box_segmentation`) on objects.

The network is class-agnostic: it learns "the object this box and these clicks
point at" from any instance label maps (nuclei, cells, organs). Each sample is one
object: its bounding box grown by a random 0-7 px per side (users do not draw
boxes to the pixel), the square crop around it as
:class:`~napari_medseg.box_segmentation.CropFrame` prepares it, flips, right-angle
rotations, contrast, noise and inversion (dark objects on bright ground). In a
quarter of the samples, as in 3D propagation, a prior mask (the object scaled by
0.6-1.25, shifted, grown or shrunk by a pixel) is given and the box is its bounding
box grown by 15% + 2 px. Clicks are simulated the RITM way: for a random 0-3 rounds
the current network predicts the batch and each sample gets a click at the innermost
point of its largest error region (:func:`napari_medseg.evaluation.next_click`), its
prediction becoming the prior of the next pass, so the network learns to correct its
own mistakes locally. Loss: BCE + soft Dice (MONAI ``DiceCELoss``). Optimisation is
:func:`napari_medseg.training.loop.optimise`, as for every network here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.transforms import (
    Compose,
    RandFlip,
    RandGaussianNoise,
    RandRotate90,
    RandScaleIntensity,
    RandShiftIntensity,
)
from scipy import ndimage as ndi

from napari_medseg._image import luminance
from napari_medseg.box_segmentation import (
    CropFrame,
    box_click_network,
    click_channels,
    clip_box,
    load_box_click_network,
    normalize_crop,
    prior_box,
)
from napari_medseg.evaluation import next_click
from napari_medseg.runtime import run_steps
from napari_medseg.training.loop import Optimisation, optimise, train_mode, training_device
from napari_medseg.training.progress import TrainingProgress

__all__ = ["BoxClickObjects", "train_box_click", "train_box_click_steps"]

MIN_OBJECT = 10  # pixels: smaller objects are not trained on
MAX_MARGIN = 7  # box margin drawn from 0..MAX_MARGIN per side
_ROUNDS = (0.4, 0.2, 0.2, 0.2)  # chance of 0, 1, 2, 3 simulated click rounds
_PRIOR = 0.25  # share of samples with a prior mask (propagation)
_INVERT = 0.25  # share of samples with inverted intensities
_VALIDATION_BOXES = 64


@dataclass
class _Source:
    image: np.ndarray  # float32 (Y, X)
    labels: np.ndarray
    objects: list[tuple[int, tuple[slice, slice]]]


class BoxClickObjects:
    """Objects to train on: 2D images with instance labels, in weighted groups.

    Parameters
    ----------
    groups : sequence of (images, labels, weight)
        Images ``(Y, X)`` or colour ``(Y, X, 3|4)`` (used as grey) and their
        instance label maps; a group's ``weight`` is its share of the samples
        (objects within a group equally likely).

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, labels = nuclei_2d()
    >>> objects = BoxClickObjects([([image], [labels], 1.0)])
    >>> len(objects)
    59
    """

    def __init__(self, groups: Sequence[tuple[Sequence[np.ndarray], Sequence[np.ndarray],
                                              float]]):
        self._groups, weights = [], []
        for images, labels, weight in groups:
            sources = [self._source(image, lab) for image, lab in zip(images, labels,
                                                                      strict=True)]
            index = [(k, j) for k, s in enumerate(sources) for j in range(len(s.objects))]
            if not index:
                continue
            self._groups.append((sources, index))
            weights.append(float(weight))
        if not self._groups:
            raise ValueError(f"no objects of at least {MIN_OBJECT} pixels to train on.")
        self._weights = np.asarray(weights) / sum(weights)

    @staticmethod
    def _source(image, labels) -> _Source:
        image, labels = np.asarray(image), np.asarray(labels)
        if image.ndim == 3 and image.shape[-1] in (3, 4):
            image = luminance(image)
        if image.shape != labels.shape or image.ndim != 2:
            raise ValueError(f"a 2D image and labels of its shape are needed, got "
                             f"{image.shape} and {labels.shape}.")
        objects = [(label, where) for label, where in enumerate(ndi.find_objects(labels), 1)
                   if where is not None and np.count_nonzero(labels[where] == label)
                   >= MIN_OBJECT]
        return _Source(image.astype(np.float32), labels, objects)

    def __len__(self) -> int:
        return sum(len(index) for _, index in self._groups)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One object: crop, box channel and prior ``(3, S, S)`` float32, truth ``(S, S)``
        bool, unaugmented."""
        sources, index = self._groups[rng.choice(len(self._groups), p=self._weights)]
        k, j = index[rng.integers(len(index))]
        source = sources[k]
        label, (ys, xs) = source.objects[j]
        h, w = source.image.shape
        truth_full = source.labels == label
        prior_full = _perturb(truth_full, (ys, xs), rng) if rng.random() < _PRIOR else None
        if prior_full is not None and prior_full.any():
            box = clip_box(prior_box(prior_full), (h, w))
        else:
            prior_full = None
            grow = rng.integers(0, MAX_MARGIN + 1, 4)
            box = (max(ys.start - grow[0], 0), max(xs.start - grow[1], 0),
                   min(ys.stop + grow[2], h), min(xs.stop + grow[3], w))
        frame = CropFrame.around(box)
        crop = normalize_crop(frame.sample(source.image))
        truth = frame.sample(truth_full.astype(np.float32)) > 0.5
        prior = (np.zeros_like(crop) if prior_full is None
                 else (frame.sample(prior_full.astype(np.float32)) > 0.5).astype(np.float32))
        return np.stack([crop, frame.box_channel(), prior]), truth


def _perturb(mask: np.ndarray, where: tuple[slice, slice], rng: np.random.Generator
             ) -> np.ndarray:
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


class _Augment:
    """Flips and right-angle rotations of all channels; contrast, shift, noise and
    inversion of the image channel (MONAI transforms, seeded)."""

    def __init__(self, seed: int):
        self._spatial = Compose([RandFlip(prob=0.5, spatial_axis=1),
                                 RandRotate90(prob=0.75, max_k=3, spatial_axes=(0, 1))])
        self._intensity = Compose([RandScaleIntensity(factors=0.25, prob=1.0),
                                   RandShiftIntensity(offsets=0.15, prob=1.0),
                                   RandGaussianNoise(prob=1.0, std=0.06, sample_std=True)])
        self._spatial.set_random_state(seed)
        self._intensity.set_random_state(seed + 1)
        self._rng = np.random.default_rng(seed + 2)

    def __call__(self, static: np.ndarray, truth: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        both = np.asarray(self._spatial(np.concatenate([static, truth[None]])), np.float32)
        image = np.asarray(self._intensity(both[:1]), np.float32)
        if self._rng.random() < _INVERT:  # dark objects on bright ground (H&E, CT)
            image = 1.0 - image
        both[:1] = image
        return both[:3], both[3] > 0.5


def train_box_click(objects: BoxClickObjects, *, epochs: int = 40, steps_per_epoch: int = 100,
                    batch_size: int = 32, learning_rate: float | None = None,
                    init: str | Path | torch.nn.Module | None = None, seed: int = 0,
                    validation: BoxClickObjects | None = None,
                    time_limit: float | None = None, device: str | None = None,
                    mixed_precision: bool | None = None, compile_network: bool | None = None,
                    callback: Callable[[TrainingProgress], None] | None = None,
                    cancelled: Callable[[], bool] | None = None,
                    progress: bool = True) -> torch.nn.Module:
    """Train (or fine-tune, with ``init``) the box + click network.

    Parameters
    ----------
    objects : BoxClickObjects
    epochs, steps_per_epoch : int
        The run's length: ``epochs`` reports of ``steps_per_epoch`` steps.
    batch_size : int
    learning_rate : float, optional
        Peak learning rate (default 3e-3 from scratch, 5e-4 from ``init``).
    init : str, Path or torch.nn.Module, optional
        Start from this network or a file of :func:`save_box_click_network`.
    seed : int
        Seeds sampling, augmentation, click simulation and initialisation.
    validation : BoxClickObjects, optional
        Objects for the validation loss of each report (64 boxes, no clicks).
    time_limit, device, mixed_precision, compile_network, callback, cancelled, progress
        As for :func:`napari_medseg.train_model`.

    Returns
    -------
    torch.nn.Module
        In evaluation mode (weights averaged over about the last 500 steps); save it
        with :func:`~napari_medseg.box_segmentation.save_box_click_network`.

    Examples
    --------
    >>> from napari_medseg import nuclei_2d, BoxSession
    >>> image, labels = nuclei_2d()
    >>> net = train_box_click(BoxClickObjects([([image], [labels], 1.0)]), epochs=1,
    ...                       steps_per_epoch=2, batch_size=4, device="cpu", progress=False)
    >>> BoxSession(image, (10, 10, 40, 40), network=net).mask.shape
    (30, 30)
    """
    return run_steps(train_box_click_steps(
        objects, epochs=epochs, steps_per_epoch=steps_per_epoch, batch_size=batch_size,
        learning_rate=learning_rate, init=init, seed=seed, validation=validation,
        time_limit=time_limit,
        device=device, mixed_precision=mixed_precision, compile_network=compile_network,
        cancelled=cancelled), callback, "Training box + click" if progress else None)


def train_box_click_steps(objects: BoxClickObjects, *, epochs: int = 40,
                          steps_per_epoch: int = 100, batch_size: int = 32,
                          learning_rate: float | None = None,
                          init: str | Path | torch.nn.Module | None = None, seed: int = 0,
                          validation: BoxClickObjects | None = None,
                          time_limit: float | None = None, device: str | None = None,
                          mixed_precision: bool | None = None,
                          compile_network: bool | None = None,
                          cancelled: Callable[[], bool] | None = None):
    """:func:`train_box_click` as a generator of progress reports; returns the network."""
    if epochs < 1 or steps_per_epoch < 1 or batch_size < 1:
        raise ValueError(f"epochs, steps_per_epoch and batch_size must be >= 1, got {epochs}, "
                         f"{steps_per_epoch}, {batch_size}.")
    dev, mixed_precision = training_device(device, 2, mixed_precision, compile_network)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if init is None:
        network = box_click_network()
    elif isinstance(init, torch.nn.Module):
        network = init
    else:
        network = load_box_click_network(init)
    network = network.to(dev)
    augment = _Augment(seed)
    criterion = DiceCELoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)

    def batches() -> tuple[torch.Tensor, torch.Tensor]:
        draws = [augment(*objects.sample(rng)) for _ in range(batch_size)]
        static = np.stack([d[0] for d in draws])
        truth = np.stack([d[1] for d in draws])
        positive = [[] for _ in range(batch_size)]
        negative = [[] for _ in range(batch_size)]
        network.eval()
        for _ in range(rng.choice(len(_ROUNDS), p=_ROUNDS)):
            x = _inputs(static, positive, negative)
            with torch.inference_mode(), torch.autocast(dev.type, torch.bfloat16,
                                                        enabled=mixed_precision):
                pred = (network(torch.from_numpy(x).to(dev))[:, 0] > 0).float().cpu().numpy()
            for i in range(batch_size):
                click = next_click(pred[i] > 0, truth[i])
                if click is not None:
                    (positive if click[1] else negative)[i].append(click[0])
            static[:, 2] = pred  # the previous prediction is the next pass's prior (RITM)
        train_mode(network, keep_norm=False)
        x = torch.from_numpy(_inputs(static, positive, negative)).to(dev)
        return x, torch.from_numpy(truth[:, None].astype(np.float32)).to(dev)

    val_batch = None
    if validation is not None:
        val_rng = np.random.default_rng(seed + 3)
        draws = [validation.sample(val_rng) for _ in range(_VALIDATION_BOXES)]
        static = np.stack([d[0] for d in draws])
        none = [[] for _ in draws]
        val_batch = (torch.from_numpy(_inputs(static, none, none)).to(dev),
                     torch.from_numpy(np.stack([d[1] for d in draws])[:, None]
                                      .astype(np.float32)).to(dev))
    lr = learning_rate or (5e-4 if init is not None else 3e-3)
    plan = Optimisation(steps_per_epoch, epochs, lr, dev, mixed_precision, compile_network,
                        time_limit)
    report = yield from optimise(network, batches, criterion, plan, val_batch, cancelled)
    yield report
    return network.eval()


def _inputs(static: np.ndarray, positive: list, negative: list) -> np.ndarray:
    """Network input (N, 5, S, S): image, box, positive and negative clicks, prior."""
    clicks = np.stack([click_channels(p, n) for p, n in zip(positive, negative, strict=True)])
    return np.ascontiguousarray(np.concatenate([static[:, :2], clicks, static[:, 2:]], 1))
