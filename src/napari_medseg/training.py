"""Training and fine-tuning segmentation models from label images (no Qt, no napari).

:func:`train_model` turns images and their label maps into a
:class:`~napari_medseg.model_runner.SegmentationModel` that the runner, the
widgets and ``napari-medseg predict`` use like a shipped model, and that
:meth:`~napari_medseg.model_runner.SegmentationModel.save` writes as our checkpoint.

Two tasks:

- ``"instances"`` (default): label maps of objects (one id per nucleus or cell).
  The network learns background / interior / boundary maps, from which the
  runner splits touching objects (``output="instance-boundary"``).
- ``"semantic"``: label maps of classes (0 = background, 1..K = classes).

Sparse annotation: with ``sparse=True``, label 0 means *not annotated* and is
left out of the loss; pixels painted with ``background_label`` are background the
user has checked. Annotate a few objects completely, paint background around
them, and train. Everything else has automatic defaults: the patch size follows
the objects' size, half of the patches are drawn around objects, each object
equally likely (class balance), with flips, right-angle rotations and contrast, gamma and noise
augmentation; the loss is cross-entropy (boundary or rare classes weighted up)
plus soft Dice, with a warm-up and a cosine learning-rate decay over the run. The
weights returned are the moving average of the weights over the last few hundred steps.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from napari_medseg._image import luminance
from napari_medseg.model_runner import (
    Cancelled,
    ModelInfo,
    SegmentationModel,
    _best_device,
    _ceil16,
    _finish,
    _normalize,
    load_model,
)
from napari_medseg.networks import ARCHITECTURES, build_network

__all__ = ["TASKS", "TrainingProgress", "blend_message", "default_patch_shape",
           "read_training_pairs", "setup_message", "train_model", "train_steps"]

TASKS = ("instances", "semantic")
BLEND = "auto"  # fine-tuning: the share of fine-tuned weights is chosen on validation data
BLEND_CHOICES = (0.0, 0.25, 0.5, 0.75, 1.0)  # the shares "auto" compares
FALLBACK_BLEND = 0.75  # "auto" without validation data
IGNORE = -1  # target value of pixels left out of the loss
CONTACT = 3  # target value of boundary pixels where objects touch (class 2, weighted up)
_PERCENTILES = (1.0, 99.8)
_MIN_EXTENT = 16
# automatic torch.compile: only for runs long enough to repay its ~30 s of compiling
_COMPILE_FROM_SECONDS = 300
_COMPILE_FROM_STEPS = 3000
# The returned weights are an exponential moving average of the steps' weights (Polyak
# averaging), over about the last 1 / (1 - decay) = 500 steps.
_AVERAGE_DECAY = 0.998
_DEFAULT_KWARGS = {
    # batch norm: tiled and whole-image inference agree (instance norm would not)
    "unet": {2: {"channels": (32, 64, 128, 256), "num_res_units": 2, "norm": "batch"},
             3: {"channels": (16, 32, 64, 128), "num_res_units": 2, "norm": "batch"}},
    "vnet": {2: {}, 3: {}},
    "transunet": {2: {"base": 24}, 3: {"base": 16}},
}
_IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".nii", ".nii.gz")


@dataclass(frozen=True)
class TrainingProgress:
    """One report from :func:`train_steps` (after each epoch, and at the start).

    Attributes
    ----------
    iteration : int
        Optimiser steps done.
    epoch, epochs : int
        Epochs done, and planned (the time limit may stop training earlier).
    fraction : float
        Share of the run done, in [0, 1] (by iterations or by the time limit).
    loss : float or None
        Mean training loss over the last epoch.
    validation_loss : float or None
        Loss on the validation patches (None without validation data).
    elapsed : float
        Seconds since training started.
    blend : float or None
        Fine-tuning only, in the last report (after the last epoch): the share of
        the fine-tuned weights in the returned model.
    blend_losses : dict or None
        With ``blend="auto"`` and validation data, in the last report: the
        validation loss of each share compared, ``{share: loss}``.
    device : str
        Where the network trains ("cpu", "cuda", "mps").
    mixed_precision : bool
        Whether the forward passes run in bfloat16.
    compiled : bool
        Whether steps run through ``torch.compile`` (in the first report: whether they
        will; False from the first report after a failed compile on).
    """

    iteration: int
    epoch: int
    epochs: int
    fraction: float
    loss: float | None
    validation_loss: float | None
    elapsed: float
    blend: float | None = None
    blend_losses: dict[float, float] | None = None
    device: str = "cpu"
    mixed_precision: bool = False
    compiled: bool = False


def train_model(images, labels, architecture: str = "unet", dims: int = 2, *,
                task: str = "instances", epochs: int | None = None,
                time_limit: float | None = None, patch_shape: Sequence[int] | None = None,
                batch_size: int | None = None, learning_rate: float | None = None,
                init: str | Path | SegmentationModel | None = None,
                blend: float | str = BLEND,
                sparse: bool = False, background_label: int | None = None, validation=0.1,
                network_kwargs: dict | None = None, name: str = "custom", seed: int = 0,
                device: str | None = None, mixed_precision: bool | None = None,
                compile_network: bool | None = None,
                callback: Callable[[TrainingProgress], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> SegmentationModel:
    """Train a segmentation network (from scratch or from a model) on labelled images.

    Parameters
    ----------
    images : ndarray or sequence of ndarray
        Images ``(Y, X)``, ``(Y, X, 3|4)`` RGB (used as grey) or ``(Z, Y, X)``
        stacks, any real dtype. A 2D model trains on the annotated slices of stacks.
    labels : ndarray or sequence of ndarray of int
        One label map per image, of its spatial shape: object ids (task
        "instances") or class ids (task "semantic"); 0 is background, or *not
        annotated* with ``sparse``.
    architecture : {"unet", "vnet", "transunet"}
    dims : {2, 3}
        The network's spatial dimensions.
    task : {"instances", "semantic"}
    epochs : int, optional
        Passes over the training pixels (an epoch draws about as many patch
        pixels as there are annotated pixels). Default: about 1,500 iterations
        (500 when fine-tuning), or as many as ``time_limit`` allows when only
        that is given.
    time_limit : float, optional
        Stop after this many seconds (the learning-rate schedule follows it).
    patch_shape : sequence of int, optional
        Training patch, multiples of 16 (default: from the objects' size).
    batch_size : int, optional
        Patches per step (default: about 130k pixels in 2D, 2 patches in 3D).
    learning_rate : float, optional
        Peak learning rate (default 2e-3 from scratch, 2e-4 when fine-tuning).
    init : str, Path or SegmentationModel, optional
        Start from this model (a built-in name, a checkpoint, or a loaded
        model): fine-tuning. Its architecture, normalisation and outputs are kept.
    blend : float or "auto"
        Fine-tuning only: the returned weights are ``blend`` x the fine-tuned
        weights + (1 - ``blend``) x the start weights (WiSE-FT); 1 returns the
        fine-tuned weights as they are, 0 the start model unchanged. Fine-tuning
        on a few images can make a model forget images unlike them, or even do
        worse on new images like them; "auto" (default) takes, of the shares
        :data:`BLEND_CHOICES`, the one with the lowest loss on the validation
        data (the start model when fine-tuning did not help there), or
        :data:`FALLBACK_BLEND` without validation data. The last progress report
        says which (figures in docs/training.md).
    sparse : bool
        Label 0 is *not annotated* (ignored) instead of background.
    background_label : int, optional
        Label value that marks checked background (needed with ``sparse``).
    validation : float or (images, labels)
        Fraction held out to report a validation loss: of the images when at
        least 4 are given, else of each image (a strip at the far end of its
        longest axis, when the image is large enough); or explicit validation
        data; 0 for none.
    network_kwargs : dict, optional
        Architecture options for :func:`napari_medseg.networks.build_network`.
    name : str
        The model's name in its metadata.
    seed : int
        Seeds patch sampling, augmentation and weight initialisation.
    device : str, optional
        "cuda", "mps" or "cpu" (default: the best available).
    mixed_precision : bool, optional
        Compute the network's forward pass in bfloat16 (weights, loss and
        optimiser stay float32): more steps per minute where the processor
        computes bfloat16 natively (1.4 times on a 2-core AMD EPYC, in
        docs/training.md). Default (None): on for 2D networks wherever it does
        (x86 CPUs with AVX-512 BF16 or AMX, CUDA GPUs with bf16).
    compile_network : bool, optional
        Train through ``torch.compile`` (fused kernels: 1.5 times the steps per
        second on a 2-core AMD EPYC, after about 30 s of compiling, which counts
        against ``time_limit``). Needs a C++ compiler; if compiling fails,
        training goes on without it, with a warning. Default (None): on CPU and
        CUDA for long runs only (``time_limit`` of 5 minutes or more, or 3,000
        steps or more), where the compile time pays off.
    callback : callable, optional
        Called with each :class:`TrainingProgress`.
    cancelled : callable, optional
        Polled every step; once it returns True, training stops with
        :class:`~napari_medseg.model_runner.Cancelled`.

    Returns
    -------
    SegmentationModel
        In evaluation mode, on ``device``; ``.save(path)`` writes it. Its weights
        are an exponential moving average of the weights after each step (about
        the last 500 steps), which generalises better than the last step's.

    Raises
    ------
    ValueError
        For mismatched image/label shapes, no objects, a single class, images
        too small for the patch, or a model to fine-tune that does not fit the task.
    FloatingPointError
        When the loss stops being finite (training diverged).
    """
    steps = train_steps(images, labels, architecture, dims, task=task, epochs=epochs,
                        time_limit=time_limit, patch_shape=patch_shape, batch_size=batch_size,
                        learning_rate=learning_rate, init=init, blend=blend, sparse=sparse,
                        background_label=background_label, validation=validation,
                        network_kwargs=network_kwargs, name=name, seed=seed, device=device,
                        mixed_precision=mixed_precision, compile_network=compile_network,
                        cancelled=cancelled)
    return _finish(steps, callback)


def train_steps(images, labels, architecture: str = "unet", dims: int = 2, *,
                task: str = "instances", epochs: int | None = None,
                time_limit: float | None = None, patch_shape: Sequence[int] | None = None,
                batch_size: int | None = None, learning_rate: float | None = None,
                init: str | Path | SegmentationModel | None = None,
                blend: float | str = BLEND,
                sparse: bool = False, background_label: int | None = None, validation=0.1,
                network_kwargs: dict | None = None, name: str = "custom", seed: int = 0,
                device: str | None = None, mixed_precision: bool | None = None,
                compile_network: bool | None = None,
                cancelled: Callable[[], bool] | None = None,
                ) -> Generator[TrainingProgress, None, SegmentationModel]:
    """:func:`train_model` as a generator for GUIs: yields a :class:`TrainingProgress`
    at the start and after every epoch, returns the model."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of "
                         f"{ARCHITECTURES}.")
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}.")
    if sparse and background_label is None:
        raise ValueError("sparse labels need a background_label: the label value painted on "
                         "background you have checked.")
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}.")
    if blend != "auto" and not (isinstance(blend, int | float) and 0 <= blend <= 1):
        raise ValueError(f"blend must be between 0 and 1, or 'auto', got {blend!r}.")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be > 0 seconds, got {time_limit}.")
    dev = torch.device(device) if device is not None else _best_device()
    if mixed_precision is None:
        # 2D only: measured there; in 3D, oneDNN's bfloat16 Conv3d once turned finite inputs
        # into non-finite outputs (VNet, 32^3 patches)
        mixed_precision = dims == 2 and _bf16_native(dev)
    if mixed_precision and dev.type not in ("cpu", "cuda"):
        raise ValueError(f"mixed precision trains on 'cpu' or 'cuda', not {dev.type!r}.")
    if compile_network and dev.type not in ("cpu", "cuda"):
        raise ValueError(f"compiled training runs on 'cpu' or 'cuda', not {dev.type!r}.")
    pairs = _pairs(images, labels, dims)
    val_pairs, pairs = _split_validation(pairs, validation, dims, seed)
    start_model = _start_model(init, task, dims)
    classes = _classes(pairs, task, sparse, background_label, start_model)
    samples = [_Sample(image, lab, task, sparse, background_label, dims, start_model)
               for image, lab in pairs]
    _check_annotations(samples, len(classes))
    patch = (_check_patch(patch_shape, dims, samples) if patch_shape is not None
             else default_patch_shape([s.labels for s in samples], dims, sparse,
                                      background_label))
    batch = batch_size or _default_batch(patch)
    if batch < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    known = sum(s.known for s in samples)
    per_epoch = max(4, math.ceil(known / (math.prod(patch) * batch)))
    if epochs is None:
        steps = 500 if init is not None else 1500  # fine-tuning needs fewer
        epochs = 10_000 if time_limit is not None else max(1, round(steps / per_epoch))
    total = epochs * per_epoch
    if compile_network is None:
        compile_network = dev.type in ("cpu", "cuda") and (
            total >= _COMPILE_FROM_STEPS if time_limit is None
            else time_limit >= _COMPILE_FROM_SECONDS)

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if start_model is not None:
        info = replace(start_model.info, name=name,
                       description=f"fine-tuned from {start_model.info.name or 'a model'} by "
                                   f"napari_medseg.train_model ({len(samples)} images)")
        network = copy.deepcopy(start_model.network).float()
        lr = learning_rate or 2e-4
    else:
        kwargs = {**_DEFAULT_KWARGS[architecture][dims], **(network_kwargs or {})}
        info = ModelInfo(architecture=architecture, dims=dims, in_channels=1, classes=classes,
                         output="instance-boundary" if task == "instances" else "semantic",
                         kwargs=kwargs, percentiles=_PERCENTILES,
                         tile_shape=tuple(max(p, 256 if dims == 2 else 96) for p in patch),
                         name=name, description=f"trained by napari_medseg.train_model "
                                                f"({task}, {len(samples)} images)")
        network = build_network(architecture, dims, 1, len(classes), **kwargs)
        lr = learning_rate or 2e-3
    network = network.to(dev)
    _train_mode(network, keep_norm=start_model is not None)
    weights = _class_weights(samples, len(classes), task).to(dev)
    val_batch = _validation_patches(val_pairs, task, sparse, background_label, dims,
                                    start_model, patch, rng)
    if val_batch is not None:
        val_batch = tuple(t.to(dev) for t in val_batch)
    optimiser = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    # the compiled module shares the parameters; validation and the returned model use
    # `network` itself (switching the compiled one to eval mode would compile again)
    runner = torch.compile(network) if compile_network else network
    average = _WeightAverage(network)
    started = time.perf_counter()

    def step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        with torch.autocast(dev.type, torch.bfloat16, enabled=mixed_precision):
            logits = model(x)
        loss = _loss(logits.float(), y, weights)
        value = loss.item()
        if not math.isfinite(value):  # stop before the step spreads it to every weight
            raise FloatingPointError(
                f"training diverged at step {iteration + 1} (the loss is not finite)"
                + ("; try again without mixed precision" if mixed_precision else
                   "; try a lower learning rate"))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return value

    def fraction(iteration: int) -> float:
        done = iteration / total
        if time_limit is not None:
            done = max(done, (time.perf_counter() - started) / time_limit)
        return min(done, 1.0)

    setup = {"device": dev.type, "mixed_precision": bool(mixed_precision)}
    yield TrainingProgress(0, 0, epochs, 0.0, None, None, 0.0, **setup,
                           compiled=runner is not network)
    iteration = 0
    by_pixels = _shares([s.known for s in samples])
    by_objects = _shares([s.objects for s in samples])
    for epoch in range(1, epochs + 1):
        losses = []
        for _ in range(per_epoch):
            if cancelled is not None and cancelled():
                raise Cancelled
            for group in optimiser.param_groups:
                group["lr"] = _learning_rate(lr, fraction(iteration))
            draws = [_draw(samples, patch, rng, by_pixels, by_objects) for _ in range(batch)]
            x = torch.from_numpy(np.stack([d[0] for d in draws])[:, None]).to(dev)
            y = torch.from_numpy(np.stack([d[1] for d in draws])).to(dev)
            if runner is not network and iteration == 0:
                try:  # compiling happens here, in the first step
                    value = step(runner, x, y)
                except FloatingPointError:
                    raise
                except Exception as err:  # no C++ compiler, or a backend bug
                    first_line = (str(err).strip().splitlines() or [""])[0][:200]
                    warnings.warn(f"torch.compile failed ({type(err).__name__}: "
                                  f"{first_line}); training without it.", RuntimeWarning,
                                  stacklevel=2)
                    runner = network
                    value = step(runner, x, y)
            else:
                value = step(runner, x, y)
            average.update()
            losses.append(value)
            iteration += 1
            if fraction(iteration) >= 1.0:
                break
        validation_loss = None
        if val_batch is not None:
            validation_loss = _validation_loss(network, val_batch, weights)
            _train_mode(network, keep_norm=start_model is not None)
        done = fraction(iteration)
        report = TrainingProgress(iteration, epoch, epochs, done, float(np.mean(losses)),
                                  validation_loss, time.perf_counter() - started, **setup,
                                  compiled=runner is not network)
        if done >= 1.0:
            break
        yield report
    average.copy_to_network()
    if start_model is not None:
        share, blend_losses = _apply_blend(network, start_model.network, blend, val_batch,
                                           weights)
        report = replace(report, blend=share, blend_losses=blend_losses)
        info = replace(info, description=f"{info.description}; fine-tuned share {share:g}"
                                         f"{' (lowest validation loss)' if blend_losses else ''}")
    yield report
    return SegmentationModel(network.eval(), info, dev)


def _apply_blend(network, start, blend, val_batch, weights) -> tuple[float, dict | None]:
    """Blend ``network`` with ``start`` in place: by ``blend``, or for "auto" by the share
    with the lowest validation loss. Returns the share and, for "auto", each share's loss."""
    if blend == "auto" and val_batch is None:
        blend = FALLBACK_BLEND
    if blend != "auto":
        _blend_weights(network, start, float(blend))
        return float(blend), None
    tuned = copy.deepcopy(network.state_dict())
    losses = {}
    for share in BLEND_CHOICES:
        network.load_state_dict(tuned)
        _blend_weights(network, start, share)
        losses[share] = _validation_loss(network, val_batch, weights)
    best = min(losses, key=losses.get)  # ties go to the smaller share: closer to the start
    network.load_state_dict(tuned)
    _blend_weights(network, start, best)
    return best, losses


def _bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively, so mixed precision pays off."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # torch has no public probe of the CPU's bf16 instructions; without them bf16 is
        # emulated, so the gain measured here is not to be expected
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
    return False


def _validation_loss(network: torch.nn.Module, val_batch, weights: torch.Tensor) -> float:
    """The loss on the validation patches, in evaluation mode (left in it)."""
    network.eval()
    with torch.inference_mode():
        return float(_loss(network(val_batch[0]), val_batch[1], weights))


def setup_message(progress: TrainingProgress) -> str:
    """How a run trains, e.g. "cpu, bfloat16, compiled"."""
    return ", ".join([progress.device, "bfloat16" if progress.mixed_precision else "float32",
                      *(["compiled"] if progress.compiled else [])])


def blend_message(progress: TrainingProgress) -> str:
    """What a fine-tuning run's last report says about the share it kept, and why."""
    if progress.blend is None:
        return ""
    if progress.blend_losses is None:
        return f"Fine-tuned share {progress.blend:g}."
    losses = ", ".join(f"{b:g}: {loss:.3f}" for b, loss in progress.blend_losses.items())
    if progress.blend == 0:
        return (f"Fine-tuning did not lower the validation loss ({losses}): the start model "
                "is kept unchanged.")
    return f"Fine-tuned share {progress.blend:g}: the lowest validation loss ({losses})."


def _blend_weights(network: torch.nn.Module, start: torch.nn.Module, blend: float) -> None:
    """network <- blend * network + (1 - blend) * start, in place (float tensors only)."""
    if blend == 1:
        return
    reference = start.state_dict()
    with torch.no_grad():
        for key, value in network.state_dict().items():
            if value.is_floating_point():
                value.lerp_(reference[key].to(value), 1 - blend)


class _WeightAverage:
    """Exponential moving average of a network's floating-point weights and buffers.

    The average of the last few hundred steps' weights generalises better than the last
    step's: from scratch (20 DSB2018 images, 10 minutes) held-out F1 0.838 -> 0.855 with the
    same patches (seed 1).
    """

    def __init__(self, network: torch.nn.Module, decay: float = _AVERAGE_DECAY):
        # state_dict tensors share storage with the network's: updated in place by each step
        self._live = [v for v in network.state_dict().values() if v.is_floating_point()]
        self._average = [v.detach().clone() for v in self._live]
        self._decay = decay
        self._steps = 0

    def update(self) -> None:
        """Fold in the network's current weights (after an optimiser step)."""
        self._steps += 1
        # a short memory at first, so that the random initial weights are soon forgotten
        decay = min(self._decay, self._steps / (self._steps + 9))
        with torch.no_grad():
            for average, live in zip(self._average, self._live, strict=True):
                average.lerp_(live, 1 - decay)

    def copy_to_network(self) -> None:
        with torch.no_grad():
            for live, average in zip(self._live, self._average, strict=True):
                live.copy_(average)


def _train_mode(network: torch.nn.Module, keep_norm: bool) -> None:
    """Training mode; with ``keep_norm`` (fine-tuning) batch norm keeps the statistics it
    learnt on the original data instead of drifting to the few new images."""
    network.train()
    if keep_norm:
        for module in network.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


def default_patch_shape(labels: Sequence[np.ndarray], dims: int, sparse: bool = False,
                        background_label: int | None = None) -> tuple[int, ...]:
    """A training patch about eight objects across (2D; four in 3D), multiples of 16.

    Parameters
    ----------
    labels : sequence of ndarray of int
        Label maps of ``dims`` dimensions.
    dims : {2, 3}

    Returns
    -------
    tuple of int
        64-256 pixels per axis in 2D, 32-96 in 3D, no larger than the largest
        label map (rounded up to 16).
    """
    sizes = []
    for lab in labels:
        counts = np.bincount(lab.ravel().astype(np.int64))
        counts[0] = 0
        if background_label is not None and background_label < counts.size:
            counts[background_label] = 0
        sizes.append(counts[counts > 0])
    sizes = np.concatenate(sizes) if sizes else np.zeros(0)
    if sizes.size == 0:
        diameter = 16.0
    elif dims == 2:
        diameter = 2 * math.sqrt(float(np.median(sizes)) / math.pi)
    else:
        diameter = (6 * float(np.median(sizes)) / math.pi) ** (1 / 3)
    low, high, across = (64, 256, 8) if dims == 2 else (32, 96, 4)
    side = int(np.clip(16 * round(across * diameter / 16), low, high))
    largest = np.max([lab.shape for lab in labels], axis=0)
    return tuple(min(side, _ceil16(int(n))) for n in largest)


def read_training_pairs(folder: str | Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Image and label arrays from a folder of pairs.

    Two layouts: ``NAME_image.EXT`` next to ``NAME_labels.EXT`` (EXT: tif, png,
    nii...), or ``images/NAME.EXT`` with ``labels/NAME.EXT``.

    Returns
    -------
    (images, labels) : lists of ndarray, in the sorted order of the names

    Raises
    ------
    ValueError
        When the folder holds no pairs.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder.")
    files = {_stem(p): p for p in sorted(folder.iterdir())
             if p.name.lower().endswith(_IMAGE_SUFFIXES)}
    found = [(files[stem.removesuffix("_labels") + "_image"], path)
             for stem, path in sorted(files.items())
             if stem.endswith("_labels") and stem.removesuffix("_labels") + "_image" in files]
    if not found and (folder / "images").is_dir() and (folder / "labels").is_dir():
        label_files = {_stem(p): p for p in (folder / "labels").iterdir()}
        found = [(p, label_files[_stem(p)]) for p in sorted((folder / "images").iterdir())
                 if _stem(p) in label_files]
    if not found:
        raise ValueError(f"no image/label pairs in {str(folder)!r}: expected NAME_image.tif + "
                         "NAME_labels.tif files, or images/ and labels/ folders with the "
                         "same file names.")
    images = [_read_array(image) for image, _ in found]
    labels = [_read_array(lab) for _, lab in found]
    for path, lab in zip((p for _, p in found), labels, strict=True):
        if lab.dtype.kind not in "iub":
            raise ValueError(f"{path.name} holds {lab.dtype} values, not integer labels.")
    return images, labels


# -- data ------------------------------------------------------------------------------------
class _Sample:
    """One training image: normalised pixels, labels, and where to draw patches."""

    def __init__(self, image, labels, task, sparse, background_label, dims, start_model):
        norm = ((start_model.info.percentiles, start_model.info.normalization) if start_model
                else (_PERCENTILES, "percentiles"))  # the start model's, when fine-tuning
        self.image = _normalize(image[None], *norm)[0]  # float32
        self.labels = labels
        self._rules = (task, sparse, background_label)
        self.target = _target(labels, *self._rules)
        known = self.target != IGNORE
        self.known = int(np.count_nonzero(known))
        # at most 100k candidate centres per kind: bounded memory on big volumes
        self._known_at = _subsample(np.flatnonzero(known))
        self._object_at = _subsample(np.flatnonzero(self.target > 0))
        if task == "instances":
            # every object equally likely, whatever its size: F1 counts objects, and
            # drawing object pixels would spend most patches on a few big ones
            _, owner, area = np.unique(labels.ravel()[self._object_at], return_inverse=True,
                                       return_counts=True)
            self.objects = int(area.size)
            chance = np.cumsum(1.0 / area[owner])
        else:
            self.objects = int(self._object_at.size)
            chance = np.arange(1.0, self._object_at.size + 1)
        self._object_cdf = chance / chance[-1] if chance.size else chance

    def patch(self, shape, rng, on_object: bool) -> tuple[np.ndarray, np.ndarray]:
        """A random patch and its target, flipped, rotated and recontrasted, around a
        random object (``on_object``; instances equally likely) or annotated pixel."""
        if on_object:
            pick = np.searchsorted(self._object_cdf, rng.random(), side="right")
            at = self._object_at[min(int(pick), self._object_at.size - 1)]
        else:
            at = self._known_at[rng.integers(self._known_at.size)]
        centre = np.unravel_index(at, self.image.shape)
        corner = [int(c) - int(rng.integers(s)) for c, s in zip(centre, shape, strict=True)]
        source = [np.arange(c, c + s) for c, s in zip(corner, shape, strict=True)]
        inside = np.ones(shape, bool)
        for axis, (index, n) in enumerate(zip(source, self.image.shape, strict=True)):
            valid = (index >= 0) & (index < n)
            inside &= valid.reshape([-1 if a == axis else 1 for a in range(len(shape))])
        grid = np.ix_(*(np.clip(index, 0, n - 1)
                        for index, n in zip(source, self.image.shape, strict=True)))
        image, labels = self.image[grid], self.labels[grid]  # edges replicated
        target = _target(labels, *self._rules)
        target[~inside] = IGNORE
        return _augment(image, target, rng)


def _shares(counts: Sequence[int]) -> np.ndarray | None:
    total = sum(counts)
    return np.asarray(counts, float) / total if total else None


def _draw(samples, shape, rng, by_pixels, by_objects) -> tuple[np.ndarray, np.ndarray]:
    """One training patch: half of them around an object (class balance), drawn so that
    every object of every image is equally likely; the others anywhere annotated."""
    on_object = by_objects is not None and rng.random() < 0.5
    k = rng.choice(len(samples), p=by_objects if on_object else by_pixels)
    return samples[k].patch(shape, rng, on_object)


def _pairs(images, labels, dims) -> list[tuple[np.ndarray, np.ndarray]]:
    images = [images] if isinstance(images, np.ndarray) else list(images)
    labels = [labels] if isinstance(labels, np.ndarray) else list(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} label maps.")
    if not images:
        raise ValueError("no training images given.")
    pairs = []
    for k, (image, lab) in enumerate(zip(images, labels, strict=True)):
        image, lab = np.asarray(image), np.asarray(lab)
        if image.dtype.kind not in "biuf":
            raise ValueError(f"image {k} must be real-valued, got dtype {image.dtype}.")
        if lab.dtype.kind not in "biu":
            raise ValueError(f"label map {k} must hold integers, got dtype {lab.dtype}.")
        if image.ndim == 3 and image.shape[-1] in (3, 4) and lab.ndim == 2:
            image = luminance(image)
        if image.shape != lab.shape:
            raise ValueError(f"image {k} has shape {image.shape} but its labels "
                             f"{lab.shape}; they must match.")
        if image.ndim not in (2, 3) or image.ndim < dims:
            raise ValueError(f"image {k} has {image.ndim} dimensions; a {dims}D model "
                             f"trains on {'2D images or 3D stacks' if dims == 2 else 'stacks'}.")
        if min(image.shape[-dims:]) < _MIN_EXTENT:
            raise ValueError(f"image {k} ({image.shape}) is too small: training needs at "
                             f"least {_MIN_EXTENT} pixels along each axis.")
        if lab.min() < 0:
            raise ValueError(f"label map {k} has negative values.")
        if dims == 2 and image.ndim == 3:  # the annotated slices of a stack
            pairs += [(image[z], lab[z]) for z in range(lab.shape[0]) if lab[z].any()]
        else:
            pairs.append((image, lab.astype(np.int64, copy=False)))
    return pairs


def _split_validation(pairs, validation, dims, seed):
    if isinstance(validation, tuple):
        return _pairs(*validation, dims), pairs
    if not 0 <= float(validation) < 1:
        raise ValueError(f"validation must be a fraction in [0, 1) or (images, labels), got "
                         f"{validation!r}.")
    if float(validation) == 0:
        return [], pairs
    if len(pairs) < 4:
        return _hold_out_strips(pairs, float(validation), dims)
    count = max(1, round(len(pairs) * float(validation)))
    order = np.random.default_rng(seed).permutation(len(pairs))
    held = set(order[:count].tolist())
    return ([p for k, p in enumerate(pairs) if k in held],
            [p for k, p in enumerate(pairs) if k not in held])


def _hold_out_strips(pairs, fraction, dims):
    """With few images, hold out the far end of each along its longest axis (at least 16
    pixels, leaving at least 128) for validation, and train on the rest."""
    held, kept = [], []
    for image, lab in pairs:
        axis = image.ndim - dims + int(np.argmax(image.shape[-dims:]))
        n = image.shape[axis]
        width = max(16, round(fraction * n))
        if n - width < 128:
            kept.append((image, lab))
            continue
        far = [slice(None)] * image.ndim
        far[axis] = slice(n - width, None)
        near = list(far)
        near[axis] = slice(None, n - width)
        far, near = tuple(far), tuple(near)
        if not (lab[far].any() and lab[near].any()):  # both parts must hold annotations
            kept.append((image, lab))
            continue
        held.append((image[far], lab[far]))
        kept.append((image[near], lab[near]))
    return held, kept


def _start_model(init, task, dims) -> SegmentationModel | None:
    if init is None:
        return None
    model = init if isinstance(init, SegmentationModel) else load_model(init, device="cpu")
    info = model.info
    if info.architecture == "torchscript":
        raise ValueError("a TorchScript model cannot be fine-tuned; start from a "
                         "napari-medseg checkpoint or a built-in model.")
    wanted = "instance-boundary" if task == "instances" else "semantic"
    if info.output != wanted:
        raise ValueError(f"{info.name or 'the model'} is a {info.output} model; it cannot be "
                         f"fine-tuned for task {task!r}.")
    if info.dims != dims or info.in_channels != 1:
        raise ValueError(f"{info.name or 'the model'} is a {info.dims}D model with "
                         f"{info.in_channels} channel(s); training here is {dims}D, grey.")
    return model


def _classes(pairs, task, sparse, background_label, start_model) -> list[str]:
    if task == "instances":
        return ["background", "interior", "boundary"]
    values = set()
    for _, lab in pairs:
        values.update(np.unique(lab).tolist())
    values.discard(background_label)
    if sparse:
        values.discard(0)
    n = max(values | {0}) + 1
    if start_model is not None and n > len(start_model.info.classes):
        raise ValueError(f"the labels hold classes up to {n - 1}; the model has "
                         f"{len(start_model.info.classes)} classes.")
    if start_model is not None:
        return list(start_model.info.classes)
    return ["background", *(f"class {c}" for c in range(1, n))]


def _target(labels: np.ndarray, task: str, sparse: bool,
            background_label: int | None) -> np.ndarray:
    """Loss target: class per pixel, ``IGNORE`` where not annotated."""
    background = labels == background_label if background_label is not None else None
    objects = labels if background is None else np.where(background, 0, labels)
    if task == "instances":
        target = (objects > 0).astype(np.int64)
        target[find_boundaries(objects, mode="inner") & (objects > 0)] = 2
        target[_contacts(objects)] = CONTACT
    else:
        target = objects.astype(np.int64)
    if sparse:
        target[labels == 0] = IGNORE
    return target


def _contacts(objects: np.ndarray) -> np.ndarray:
    """Pixels with two different objects in their 3x3(x3) neighbourhood: where touching
    objects meet, and the background gaps of a pixel or two between them."""
    top = int(objects.max()) + 1
    largest = ndi.maximum_filter(objects, size=3)
    smallest = ndi.minimum_filter(np.where(objects > 0, objects, top), size=3)
    return (smallest < top) & (largest != smallest)


def _check_annotations(samples: list[_Sample], n_classes: int) -> None:
    counts = np.zeros(n_classes, np.int64)
    for s in samples:
        t = s.target[s.target != IGNORE]
        counts += np.bincount(t, minlength=n_classes)[:n_classes]
    if counts[1:].sum() == 0:
        raise ValueError("the labels hold no objects (a single class, background): annotate "
                         "at least a few objects before training.")
    if counts[0] == 0:
        raise ValueError("the labels hold no background (a single class, objects): with "
                         "sparse labels, paint some checked background with the background "
                         "label.")


def _check_patch(patch_shape, dims, samples) -> tuple[int, ...]:
    patch = tuple(int(p) for p in patch_shape)
    if len(patch) != dims or min(patch) < 16 or any(p % 16 for p in patch):
        raise ValueError(f"patch_shape must be {dims} multiples of 16, got {patch_shape}.")
    largest = np.max([s.image.shape for s in samples], axis=0)
    if any(p > _ceil16(int(n)) for p, n in zip(patch, largest, strict=True)):
        raise ValueError(f"patch {patch} is larger than every training image (largest "
                         f"{tuple(int(n) for n in largest)}); choose at most "
                         f"{tuple(_ceil16(int(n)) for n in largest)}.")
    return patch


def _default_batch(patch: tuple[int, ...]) -> int:
    if len(patch) == 3:
        return 2
    return int(np.clip(round(8 * 128 * 128 / math.prod(patch)), 2, 32))


def _class_weights(samples, n_classes, task) -> torch.Tensor:
    if task == "instances":
        # thin boundaries decide the splits, and where objects touch most of all (the
        # weight map of Ronneberger et al., 2015, in its simplest form)
        return torch.tensor([1.0, 1.0, 3.0, 10.0])
    counts = np.ones(n_classes)
    for s in samples:
        t = s.target[s.target != IGNORE]
        counts += np.bincount(t, minlength=n_classes)[:n_classes]
    weights = (counts / counts.sum()) ** -0.5
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def _validation_patches(pairs, task, sparse, background_label, dims, start_model, patch, rng):
    if not pairs:
        return None
    samples = [_Sample(image, lab, task, sparse, background_label, dims, start_model)
               for image, lab in pairs]
    samples = [s for s in samples if s.known]
    if not samples:
        return None
    draws = []
    for k in range(8):
        sample = samples[k % len(samples)]
        draws.append(sample.patch(patch, rng, sample.objects > 0 and rng.random() < 0.5))
    return (torch.from_numpy(np.stack([d[0] for d in draws])[:, None]),
            torch.from_numpy(np.stack([d[1] for d in draws])))


def _augment(image, target, rng) -> tuple[np.ndarray, np.ndarray]:
    for axis in range(image.ndim):
        if rng.random() < 0.5:
            image, target = np.flip(image, axis), np.flip(target, axis)
    k = int(rng.integers(4))
    image, target = np.rot90(image, k, axes=(-2, -1)), np.rot90(target, k, axes=(-2, -1))
    image = np.clip(image, 0, None) ** rng.uniform(0.7, 1.4) * rng.uniform(0.7, 1.3)
    image = image + rng.uniform(-0.1, 0.1) + rng.normal(0, rng.uniform(0, 0.05), image.shape)
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(target)


def _subsample(positions: np.ndarray, limit: int = 100_000) -> np.ndarray:
    if positions.size <= limit:
        return positions
    return positions[:: positions.size // limit]


# -- optimisation ----------------------------------------------------------------------------
def _loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted cross-entropy + soft Dice of the non-background classes, over annotated
    pixels. ``weights`` holds one weight per target value (CONTACT included)."""
    known = target != IGNORE
    classes = torch.where(target == CONTACT, 2, target).clamp(min=0)
    pixel_weight = weights[target.clamp(min=0)] * known
    ce = torch.nn.functional.cross_entropy(logits, classes, reduction="none")
    ce = (ce * pixel_weight).sum() / pixel_weight.sum().clamp(min=1e-6)
    prob = torch.softmax(logits, 1) * known.unsqueeze(1)
    onehot = torch.nn.functional.one_hot(classes, logits.shape[1])
    onehot = onehot.movedim(-1, 1) * known.unsqueeze(1)
    axes = (0, *range(2, logits.ndim))
    inter = (prob * onehot).sum(axes)
    dice = 1 - (2 * inter + 1) / (prob.sum(axes) + onehot.sum(axes) + 1)
    return ce + dice[1:].mean()


def _learning_rate(peak: float, done: float) -> float:
    """Linear warm-up over the first 5% of the run, then cosine decay to zero."""
    if done < 0.05:
        return peak * (0.1 + 0.9 * done / 0.05)
    return peak * 0.5 * (1 + math.cos(math.pi * (done - 0.05) / 0.95))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".ome.tif", ".ome.tiff"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _read_array(path: Path) -> np.ndarray:
    from napari_medseg.io import is_nifti_path, is_tiff_path, read_image

    if is_nifti_path(path) or is_tiff_path(path):
        return np.asarray(read_image(path)[0].data)
    from skimage.io import imread

    image = imread(path)
    return luminance(image) if image.ndim == 3 and image.shape[-1] in (3, 4) else image
