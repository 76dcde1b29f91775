"""Training segmentation models (instances or semantic classes) from label maps."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from napari_medseg.evaluation import match_annotated
from napari_medseg.model_files import read_replay_set
from napari_medseg.model_info import VOLUMES, ModelInfo
from napari_medseg.model_runner import SegmentationModel, load_model
from napari_medseg.networks import ARCHITECTURES, build_network
from napari_medseg.object_size import typical_diameter, zoom_for
from napari_medseg.runtime import run_steps
from napari_medseg.training.augment import Augmentation
from napari_medseg.training.averaging import BLEND, apply_blend
from napari_medseg.training.data import (
    PatchDraws,
    PatchSampler,
    check_pairs,
    check_patch,
    default_batch,
    default_patch_shape,
    split_validation,
)
from napari_medseg.training.loop import Optimisation, optimise, training_device, validation_score
from napari_medseg.training.loss import class_weights, segmentation_loss
from napari_medseg.training.progress import KEPT_START_ADVICE, TrainingProgress, blend_message
from napari_medseg.training.targets import IGNORE

__all__ = ["REPLAY_SHARE", "TASKS", "train_model", "train_steps"]

TASKS = ("instances", "semantic")
PERCENTILES = (1.0, 99.8)
_DEFAULT_KWARGS = {
    # batch norm: tiled and whole-image inference agree (instance norm would not)
    "unet": {2: {"channels": (32, 64, 128, 256), "num_res_units": 2, "norm": "batch"},
             3: {"channels": (16, 32, 64, 128), "num_res_units": 2, "norm": "batch"}},
    "vnet": {2: {}, 3: {}},
    "transunet": {2: {"base": 24}, 3: {"base": 16}},
}
_VALIDATION_PATCHES = 8
REPLAY_SHARE = 0.5  # of each fine-tuning batch's patches, with ``replay``


def train_model(images, labels, architecture: str = "unet", dims: int = 2, *,
                task: str = "instances", rgb: bool = False, epochs: int | None = None,
                time_limit: float | None = None, patch_shape: Sequence[int] | None = None,
                batch_size: int | None = None, learning_rate: float | None = None,
                init: str | Path | SegmentationModel | None = None,
                blend: float | str = BLEND, replay="auto",
                sparse: bool = False, background_label: int | None = None, validation=0.1,
                volume: str = "slices", spacing: Sequence[float] | None = None,
                zoom_range: tuple[float, float] | None = None,
                anisotropy: tuple[float, float] | None = None,
                network_kwargs: dict | None = None, name: str = "custom",
                description: str | None = None, seed: int = 0,
                device: str | None = None, mixed_precision: bool | None = None,
                compile_network: bool | None = None,
                callback: Callable[[TrainingProgress], None] | None = None,
                cancelled: Callable[[], bool] | None = None,
                progress: bool = True) -> SegmentationModel:
    """Train a segmentation network (from scratch or from a model) on labelled images.

    Parameters
    ----------
    images : ndarray or sequence of ndarray
        Images ``(Y, X)``, ``(Y, X, 3|4)`` colour (used as grey unless ``rgb``) or
        ``(Z, Y, X)`` stacks, any real dtype. A 2D model trains on the annotated
        slices of stacks.
    labels : ndarray or sequence of ndarray of int
        One label map per image, of its spatial shape: object ids (task
        "instances") or class ids (task "semantic"); 0 is background, or *not
        annotated* with ``sparse``.
    architecture : {"unet", "vnet", "transunet"}
    dims : {2, 3}
        The network's spatial dimensions.
    task : {"instances", "semantic"}
    rgb : bool
        Train on the red, green and blue channels of colour images (H&E,
        brightfield): a model with 3 input channels. Implied when ``init`` is one.
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
        :data:`~napari_medseg.training.averaging.BLEND_CHOICES`, the one that
        segments the validation data best (instances: F1@0.5 on its objects, checked
        objects of sparse labels; semantic: the lowest loss), the start model when
        fine-tuning did not help there (so a fine-tuned model never scores below its
        start on them), or
        :data:`~napari_medseg.training.averaging.FALLBACK_BLEND` without
        validation data. The last progress report says which.
    replay : "auto", (images, labels) or None
        Fine-tuning only: rehearsal. :data:`REPLAY_SHARE` of every batch's patches are
        drawn from these images (annotated as ``labels`` are, normalised as the start
        model normalises), typically some of the start model's own training data, so
        that the network goes on seeing what it was good at while it learns the new
        images; they are never held out or scored. "auto" (default): the start
        model's shipped rehearsal set where it has one (``info.replay``: nuclei-2d and
        the models fine-tuned from it), else none. None: no rehearsal.
    sparse : bool
        Label 0 is *not annotated* (ignored) instead of background.
    background_label : int, optional
        Label value that marks checked background (needed with ``sparse``).
    validation : float or (images, labels[, spacing])
        Fraction held out to report a validation loss: of the images when at
        least 4 are given, else of each image (a strip at the far end of its
        longest axis, when the image is large enough); or explicit validation
        data (with its own ``spacing``, for "planes"); 0 for none.
    volume : {"slices", "planes"}
        How the 2D model takes stacks, in training and later in inference: their
        annotated slices; or "planes", the annotated slices of all three planes of
        each stack resampled to isotropic voxels (by ``spacing``), and in inference
        the three planes' outputs averaged before one 3D watershed
        (:mod:`napari_medseg.planes`). Fine-tuning keeps the start model's unless
        "planes" is asked for.
    spacing : sequence of float, or one per image, optional
        Voxel size ``(z, y, x)`` of the stacks, for "planes" (default: isotropic).
    zoom_range : (float, float), optional
        Scale augmentation: half of the training patches show the objects zoomed by a
        factor drawn log-uniformly in this range (the image resampled as inference
        zooms images, the labels nearest), so that the network is less bound to its
        training images' magnification, e.g. ``(0.5, 2.0)`` (tried for nuclei-2d and
        not kept: docs/models.md). The model's recorded training size stays the
        images' own.
    anisotropy : (float, float), optional
        2D networks for stacks: half of the training patches are made to look like a
        stack's side planes (ZX, ZY) resampled to square pixels, for a slice spacing
        drawn in this range (times the pixel size): blurred along one axis, sampled
        coarsely along it and interpolated back
        (:class:`~napari_medseg.training.augment.RandAnisotropy`), so that the planes
        path's side planes are not new to the network.
    network_kwargs : dict, optional
        Architecture options for :func:`napari_medseg.networks.build_network`.
    name : str
        The model's name in its metadata.
    description : str, optional
        The model's description (default: how it was trained).
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
        Called with each :class:`~napari_medseg.training.progress.TrainingProgress`.
    cancelled : callable, optional
        Polled every step; once it returns True, training stops with
        :class:`~napari_medseg.runtime.Cancelled`.
    progress : bool
        Show a progress bar (with the loss) in a terminal or notebook.

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

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, labels = nuclei_2d()
    >>> model = train_model(image, labels, epochs=1, validation=0, device="cpu", progress=False,
    ...                     network_kwargs={"channels": (8, 16), "num_res_units": 1})
    >>> model.segment(image).shape
    (384, 384)
    """
    steps = train_steps(images, labels, architecture, dims, task=task, rgb=rgb, epochs=epochs,
                        time_limit=time_limit, patch_shape=patch_shape, batch_size=batch_size,
                        learning_rate=learning_rate, init=init, blend=blend, replay=replay,
                        sparse=sparse,
                        background_label=background_label, validation=validation,
                        volume=volume, spacing=spacing, zoom_range=zoom_range,
                        anisotropy=anisotropy,
                        network_kwargs=network_kwargs,
                        name=name, description=description,
                        seed=seed, device=device, mixed_precision=mixed_precision,
                        compile_network=compile_network, cancelled=cancelled)
    return run_steps(steps, callback, "Training" if progress else None)


def train_steps(images, labels, architecture: str = "unet", dims: int = 2, *,
                task: str = "instances", rgb: bool = False, epochs: int | None = None,
                time_limit: float | None = None, patch_shape: Sequence[int] | None = None,
                batch_size: int | None = None, learning_rate: float | None = None,
                init: str | Path | SegmentationModel | None = None,
                blend: float | str = BLEND, replay="auto",
                sparse: bool = False, background_label: int | None = None, validation=0.1,
                volume: str = "slices", spacing: Sequence[float] | None = None,
                zoom_range: tuple[float, float] | None = None,
                anisotropy: tuple[float, float] | None = None,
                network_kwargs: dict | None = None, name: str = "custom",
                description: str | None = None, seed: int = 0,
                device: str | None = None, mixed_precision: bool | None = None,
                compile_network: bool | None = None,
                cancelled: Callable[[], bool] | None = None,
                ) -> Generator[TrainingProgress, None, SegmentationModel]:
    """:func:`train_model` as a generator for GUIs: yields a
    :class:`~napari_medseg.training.progress.TrainingProgress` at the start and after
    every epoch, returns the model."""
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
    zoom_range = _check_range(zoom_range, "zoom_range", "zoom factors", 0.125, 8)
    anisotropy = _check_range(anisotropy, "anisotropy", "slice spacings", 1, 8)
    if anisotropy is not None and dims != 2:
        raise ValueError("anisotropy is for 2D networks (a stack's side planes); a 3D "
                         "network sees the stack's own spacing.")
    dev, mixed_precision = training_device(device, dims, mixed_precision, compile_network)
    start_model = _start_model(init, task, dims)
    rgb = rgb or (start_model is not None and start_model.info.in_channels == 3)
    if start_model is not None and start_model.info.in_channels != (3 if rgb else 1):
        raise ValueError(f"{start_model.info.name or 'the model'} takes "
                         f"{start_model.info.in_channels} channel(s); rgb=True trains on 3.")
    if volume not in VOLUMES:
        raise ValueError(f"volume must be one of {VOLUMES}, got {volume!r}.")
    if start_model is not None and volume == "slices":
        volume = start_model.info.volume
    norm = ((start_model.info.percentiles, start_model.info.normalization) if start_model
            else (PERCENTILES, "percentiles"))  # the start model's, when fine-tuning

    def check(images, labels, voxels=spacing):
        return check_pairs(images, labels, dims, norm, rgb, volume, voxels)

    val_pairs, pairs = split_validation(check(images, labels), validation, seed, check)
    zoom = _fine_tuning_zoom(pairs, task, dims, background_label, start_model)
    if zoom != 1:  # the objects as inference will show them to the network
        val_pairs, pairs = ([_zoomed_pair(p, zoom) for p in group] for group in (val_pairs, pairs))
    classes = _classes(pairs, task, sparse, background_label, start_model)
    rules = (task, sparse, background_label)
    samplers = [PatchSampler(image, lab, *rules) for image, lab in pairs]
    counts = _check_annotations(samplers, len(classes))
    patch = (check_patch(patch_shape, dims, [s.labels.shape for s in samplers])
             if patch_shape is not None
             else default_patch_shape([s.labels for s in samplers], dims, sparse,
                                      background_label))
    batch = batch_size or default_batch(patch)
    if batch < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    known = sum(s.known for s in samplers)
    per_epoch = max(4, math.ceil(known / (math.prod(patch) * batch)))
    if epochs is None:
        steps = 500 if init is not None else 1500  # fine-tuning needs fewer
        epochs = 10_000 if time_limit is not None else max(1, round(steps / per_epoch))

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    channels = 3 if rgb else 1
    if start_model is not None:
        info = replace(start_model.info, name=name, volume=volume,
                       description=description or
                       f"fine-tuned from {start_model.info.name or 'a model'} by "
                       f"napari_medseg.train_model ({len(samplers)} images)")
        network = copy.deepcopy(start_model.network).float()
    else:
        kwargs = {**_DEFAULT_KWARGS[architecture][dims], **(network_kwargs or {})}
        info = ModelInfo(architecture=architecture, dims=dims, in_channels=channels,
                         classes=classes,
                         output="instance-boundary" if task == "instances" else "semantic",
                         kwargs=kwargs, percentiles=PERCENTILES, volume=volume,
                         tile_shape=tuple(max(p, 256 if dims == 2 else 96) for p in patch),
                         name=name, description=description or
                         f"trained by napari_medseg.train_model ({task}, "
                         f"{len(samplers)} images{', RGB' if rgb else ''})")
        network = build_network(architecture, dims, channels, len(classes), **kwargs)
    info = replace(info, **_kind_of(images, labels, samplers, rgb),
                   diameter=_diameter(pairs, task, background_label, start_model))
    network = network.to(dev)
    weights = class_weights(counts, task).to(dev)

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return segmentation_loss(logits, target, weights)

    draws = PatchDraws(samplers, patch, rng, Augmentation(dims, channels, seed, anisotropy),
                       zoom_range)

    replayed = _replay_draws(replay, start_model, check, rules, patch, rng,
                             Augmentation(dims, channels, seed + 1, anisotropy))
    rehearsed = round(batch * REPLAY_SHARE) if replayed is not None else 0

    def batches() -> tuple[torch.Tensor, torch.Tensor]:
        x, y = draws.batch(batch - rehearsed)
        if rehearsed:
            old_x, old_y = replayed.batch(rehearsed)
            x, y = np.concatenate([x, old_x]), np.concatenate([y, old_y])
        return torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)

    val_samplers = [s for s in (PatchSampler(image, lab, *rules)
                                for image, lab in val_pairs) if s.known]
    val_batch = None
    if val_samplers:
        val_draws = PatchDraws(val_samplers, patch, rng, augment=None)
        x, y = val_draws.batch(_VALIDATION_PATCHES)
        val_batch = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)
    lr = learning_rate or (2e-4 if start_model is not None else 2e-3)
    plan = Optimisation(per_epoch, epochs, lr, dev, mixed_precision, compile_network,
                        time_limit, keep_norm=start_model is not None)
    report = yield from optimise(network, batches, loss, plan, val_batch, cancelled)
    if start_model is not None:
        measure, score, margin = _held_out_f1(val_pairs, info, dev, background_label) \
            if task == "instances" and val_pairs else ("validation loss", None, 0.0)
        if score is None and val_batch is not None:
            score = partial(validation_score, validation=val_batch, loss=loss)
        share, scores = apply_blend(network, start_model.network, blend, score, margin)
        if scores is not None and measure != "validation loss":
            scores = {k: -v for k, v in scores.items()}  # apply_blend minimises -F1
        report = replace(report, blend=share, blend_scores=scores,
                         blend_measure=measure if scores is not None else None)
        if share == 0 and blend == "auto":  # chosen, not asked for: say it up front
            # the start model whole: its weights and all it records (object size, thresholds;
            # a new size with the old weights once scored F1 0.001 where they scored 0.884)
            info = replace(start_model.info, name=info.name,
                           description=f"{start_model.info.description} (fine-tuning was "
                                       "tried and not kept: " + KEPT_START_ADVICE)
            warnings.warn(blend_message(report), UserWarning, stacklevel=3)
        else:
            chosen = f" (best {measure})" if scores else ""
            base = info.description.rstrip(". ")
            info = replace(info, description=f"{base}; fine-tuned share {share:g}{chosen}.")
    yield report
    return SegmentationModel(network.eval(), info, dev)


def _held_out_f1(val_pairs, info: ModelInfo, device, background_label: int | None
                 ) -> tuple[str, Callable[[torch.nn.Module], float] | None, float]:
    """How a fine-tuning's candidates are compared on held-out annotations: "F1@0.5 on N
    held-out objects", a score to minimise (-F1 of the candidate segmenting the held-out
    images, at the model's training size), or None when they hold no object, and the gain
    that counts: one object's worth of F1 (1 / N). Fine-tuning nuclei-2d on 5 stage-1 test
    images, candidates within 0.009 of the start on 50 held-out objects differed by 0.13 on
    the other 48 images: smaller gains are noise."""
    truths = [np.where(lab == background_label, 0, lab) if background_label is not None
              else lab for _, lab in val_pairs]
    objects = sum(len(np.unique(t[t > 0])) for t in truths)
    if not objects:
        return "validation loss", None, 0.0
    ranges = np.array([[0.0, 1.0]] * info.in_channels)  # the pairs are normalised already

    def score(network: torch.nn.Module) -> float:
        model = SegmentationModel(network.eval(), info, device)
        counts = np.zeros(3, int)
        for image, lab in val_pairs:
            grey = image[0] if info.in_channels == 1 else np.moveaxis(image, 0, -1)
            labels = model.segment(grey, ranges=ranges, diameter=info.diameter, progress=False)
            counts += match_annotated(labels, lab, background_label)
        tp, fp, fn = counts
        return -2 * tp / max(2 * tp + fp + fn, 1)

    return f"F1@0.5 on {objects} held-out objects", score, 1.0 / objects


def _replay_draws(replay, start_model, check, rules, patch, rng, augment) -> PatchDraws | None:
    """Patches of the ``replay`` pairs (checked as the training pairs are), or None."""
    if isinstance(replay, str) and replay == "auto":
        if start_model is None or start_model.info.replay is None:
            return None
        replay = read_replay_set(start_model.info.replay)
    if replay is None:
        return None
    if start_model is None:
        raise ValueError("replay is for fine-tuning (init=...): it rehearses what the start "
                         "model learnt from.")
    try:
        images, labels = replay
    except (TypeError, ValueError):
        raise ValueError("replay must be (images, labels): the images to rehearse and their "
                         "label maps.") from None
    samplers = [PatchSampler(image, lab, *rules) for image, lab in check(images, labels, None)]
    if not any(s.objects for s in samplers):
        raise ValueError("the replay labels hold no objects.")
    return PatchDraws(samplers, patch, rng, augment)


def _check_range(values, name: str, what: str, low: float, high: float
                 ) -> tuple[float, float] | None:
    """``values`` as a checked (low, high) pair within [``low``, ``high``], or None."""
    if values is None:
        return None
    try:
        a, b = (float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two {what} (low, high), got {values!r}.") from None
    if not (low <= a <= b <= high):
        raise ValueError(f"{name} must be two {what} with {low:g} <= low <= high <= "
                         f"{high:g}, got {values!r}.")
    return a, b


def _kind_of(images, labels, samplers: list[PatchSampler], rgb: bool) -> dict:
    """What the training images were: colour or grey, objects brighter or darker than
    their background (recorded in the model, so that it can say when an image does not
    fit)."""
    images = [images] if isinstance(images, np.ndarray) else list(images)
    labels = [labels] if isinstance(labels, np.ndarray) else list(labels)
    colour = rgb or any(np.ndim(i) == np.ndim(lab) + 1 and np.shape(i)[-1] in (3, 4)
                        for i, lab in zip(images, labels, strict=True))
    contrast = [float(s.image.mean(0)[s.target > 0].mean() - s.image.mean(0)[s.target == 0]
                      .mean()) for s in samplers if (s.target > 0).any() and (s.target == 0).any()]
    return {"colour": bool(colour),
            "bright_objects": bool(np.median(contrast) > 0) if contrast else None}


def _fine_tuning_zoom(pairs, task: str, dims: int, background_label: int | None,
                      start_model: SegmentationModel | None) -> float:
    """The zoom that brings a 2D fine-tuning's objects to the start model's training size,
    as its inference zooms images (1.0: none, or not a 2D instance model). Trained at
    their own size, large nuclei taught the network for minutes what it then had to do
    without the zoom that made the start model work: two 512 x 640 stage-1 test images of
    large nuclei, fine-tuned at their size, recorded it and scored F1 0.001 on six more of
    their kind (0.884 before)."""
    if start_model is None or start_model.info.diameter is None or task != "instances" \
            or dims != 2:
        return 1.0
    objects = [np.asarray(lab) if background_label is None
               else np.where(lab == background_label, 0, lab) for _, lab in pairs]
    found = typical_diameter(objects)
    return 1.0 if found is None else zoom_for(found, start_model.info.diameter)


def _zoomed_pair(pair, zoom: float):
    """A checked ``(image (C, Y, X), labels)`` pair resampled by ``zoom`` (the image as
    inference resamples it, the labels by nearest neighbours)."""
    from napari_medseg._image import resized
    from napari_medseg.planes import from_isotropic

    image, lab = pair[0], pair[1]
    shape = tuple(max(1, round(n * zoom)) for n in lab.shape)
    channels = np.stack([resized(np.ascontiguousarray(c), shape) for c in image])
    return (channels, from_isotropic(lab, shape), *pair[2:])


def _diameter(pairs, task: str, background_label: int | None,
              start_model: SegmentationModel | None) -> float | None:
    """The object size the model is trained at (recorded so that inference can zoom images
    to it): the training labels' typical diameter; when fine-tuning, the start model's,
    unless the new images' objects are of a size it would zoom them from."""
    if task != "instances":
        return None
    objects = (lab if background_label is None else np.where(lab == background_label, 0, lab)
               for _, lab in pairs)
    trained = typical_diameter([np.asarray(lab) for lab in objects])
    start = start_model.info.diameter if start_model is not None else None
    if start is None or trained is None or zoom_for(trained, start) != 1:  # stacks: their own
        return trained if trained is not None else start
    return start


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
    if info.dims != dims or info.in_channels not in (1, 3):
        raise ValueError(f"{info.name or 'the model'} is a {info.dims}D model with "
                         f"{info.in_channels} channel(s); training here is {dims}D, grey or "
                         "RGB.")
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


def _check_annotations(samplers: list[PatchSampler], n_classes: int) -> np.ndarray:
    """Annotated pixels per class; refuses labels without objects or background."""
    counts = np.zeros(n_classes, np.int64)
    for s in samplers:
        t = s.target[s.target != IGNORE]
        counts += np.bincount(t, minlength=n_classes)[:n_classes]  # CONTACT counts apart
    if counts[1:].sum() == 0:
        raise ValueError("the labels hold no objects (a single class, background): annotate "
                         "at least a few objects before training.")
    if counts[0] == 0:
        raise ValueError("the labels hold no background (a single class, objects): with "
                         "sparse labels, paint some checked background with the background "
                         "label.")
    return counts
