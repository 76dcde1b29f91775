"""Segmentation models: loading model files, tiled inference, and instance labels.

A model file is one of:

- our checkpoint (``.pt``, written by :func:`save_model`): a dict holding the
  weights, the architecture name and keyword arguments, the normalisation, what
  the outputs mean, the training pixel spacing and a format version. It is read
  with ``torch.load(weights_only=True)``, so loading runs no code from the file;
- a TorchScript file (``torch.jit.save``), which carries its own code; its
  metadata comes from an embedded ``medseg.json`` extra file when present;
- a bioimage.io model package (:mod:`napari_medseg.bioimageio`).

Inference normalises the image (percentiles, or mean and standard deviation), runs MONAI's
``sliding_window_inference`` with Gaussian blending over tiles, and turns the
network's maps into labels: classes for semantic models, instances for
``"instance-boundary"`` models (background / interior / boundary outputs, split
by a watershed seeded from the interior's distance map). A 2D model applied to a
stack runs slice by slice and links instances across slices.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from napari_medseg._image import luminance
from napari_medseg.networks import ARCHITECTURES, build_network

__all__ = ["Cancelled", "ModelInfo", "SegmentationModel", "available_models", "load_model",
           "save_model"]

FORMAT = "napari-medseg/model"
VERSION = 1
_BUILTIN = {"nuclei-2d": "nuclei_2d.pt"}
OUTPUTS = ("semantic", "instance-boundary")
ACTIVATIONS = ("auto", "sigmoid", "softmax", "none")
NORMALIZATIONS = ("percentiles", "mean-std")


class Cancelled(Exception):
    """Raised by :meth:`SegmentationModel.predict_steps` when its ``cancelled()`` says so."""


@dataclass
class ModelInfo:
    """What a model is and how to feed it.

    Attributes
    ----------
    architecture : str
        "unet", "vnet", "transunet" (see :mod:`napari_medseg.networks`) or "torchscript".
    dims : int
        2 or 3.
    in_channels : int
    classes : list of str
        Output channel names; for "instance-boundary" models
        ``["background", "interior", "boundary"]``.
    output : {"semantic", "instance-boundary"}
    kwargs : dict
        Architecture options.
    percentiles : (float, float)
        Intensity normalisation: these percentiles map to 0 and 1.
    normalization : {"percentiles", "mean-std"}
        "percentiles" as above; "mean-std" maps each image channel to zero mean
        and unit standard deviation (models from elsewhere), ignoring
        ``percentiles``.
    spacing : tuple of float or None
        Pixel spacing of the training data (informative).
    tile_shape : tuple of int
        Default sliding-window tile.
    name : str
    description : str
    activation : {"auto", "sigmoid", "softmax", "none"}
        What turns the network's output into probabilities: "auto" is sigmoid
        for one output channel, softmax for more; "none" when the network's
        output already is (models from elsewhere).
    """

    architecture: str
    dims: int
    in_channels: int
    classes: list[str]
    output: str = "semantic"
    kwargs: dict[str, Any] = field(default_factory=dict)
    percentiles: tuple[float, float] = (1.0, 99.8)
    spacing: tuple[float, ...] | None = None
    tile_shape: tuple[int, ...] = (256, 256)
    name: str = ""
    description: str = ""
    activation: str = "auto"
    normalization: str = "percentiles"

    def __post_init__(self):
        if self.dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {self.dims}.")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got "
                             f"{self.activation!r}.")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got "
                             f"{self.normalization!r}.")
        if self.output == "instance-boundary" and len(self.classes) != 3:
            raise ValueError("an instance-boundary model has 3 outputs: background, interior, "
                             "boundary.")
        self.percentiles = tuple(float(p) for p in self.percentiles)
        self.tile_shape = tuple(int(t) for t in self.tile_shape)
        if self.spacing is not None:
            self.spacing = tuple(float(s) for s in self.spacing)


_LATER_FIELDS = ("activation", "normalization")  # ModelInfo fields newer than format version 1
_DEFAULTS = {f.name: f.default for f in fields(ModelInfo)}


class SegmentationModel:
    """A network with what it needs to run on images.

    Parameters
    ----------
    network : torch.nn.Module
    info : ModelInfo
    device : str or torch.device, optional
        "cuda", "mps" or "cpu"; the best available when None.
    test_time_flips : bool
        Average the network's output over the image and its mirror images along
        y, x and both: usually a little more accurate, four times slower.
    """

    def __init__(self, network: torch.nn.Module, info: ModelInfo,
                 device: str | torch.device | None = None, test_time_flips: bool = False):
        self.info = info
        self.test_time_flips = test_time_flips
        self.device = torch.device(device) if device is not None else _best_device()
        self.network = network.to(self.device).eval()

    def __repr__(self) -> str:
        i = self.info
        return (f"SegmentationModel({i.name or i.architecture!r}, {i.dims}D {i.architecture}, "
                f"{i.output}, classes={i.classes}, device={self.device})")

    def save(self, path: str | Path, half: bool = True) -> Path:
        """Write the model as a napari-medseg checkpoint (see :func:`save_model`)."""
        if self.info.architecture not in ARCHITECTURES:
            raise ValueError(f"a {self.info.architecture} model cannot be saved as a "
                             f"napari-medseg checkpoint (architectures: {ARCHITECTURES}); "
                             "keep its original file.")
        return save_model(path, self.network, self.info, half)

    # -- inference ---------------------------------------------------------------------------
    def predict(self, image: np.ndarray, tile_shape: Sequence[int] | None = None,
                overlap: float = 0.25) -> np.ndarray:
        """Per-class probabilities (softmax; sigmoid for one output), channel first.

        Parameters
        ----------
        image : ndarray
            ``(Y, X)``, ``(Y, X, 3|4)`` RGB, ``(Z, Y, X)``; or channel first
            ``(C, ...)`` when the model takes C > 1 channels. Any real dtype.
        tile_shape : sequence of int, optional
            Sliding-window tile, multiples of 16 (default: the model's); larger
            than the image is fine.
        overlap : float
            Fraction of a tile shared with its neighbours, in [0, 1).

        Returns
        -------
        ndarray of float32, shape (n_classes, *spatial)
        """
        return _finish(self.predict_steps(image, tile_shape, overlap))

    def predict_steps(self, image: np.ndarray, tile_shape: Sequence[int] | None = None,
                      overlap: float = 0.25, cancelled: Callable[[], bool] | None = None
                      ) -> Generator[tuple[int, int], None, np.ndarray]:
        """:meth:`predict` as a generator for GUIs: yields ``(done, total)`` slices, returns
        the probabilities; raises :class:`Cancelled` between tiles once ``cancelled()``."""
        out = None
        for done, total, z, prob in self._parts(image, tile_shape, overlap, cancelled):
            yield done, total
            if prob is None:
                continue
            if z is None:
                out = prob
            else:
                if out is None:
                    out = np.empty((prob.shape[0], total, *prob.shape[1:]), np.float32)
                out[:, z] = prob
        return out

    def segment(self, image: np.ndarray, tile_shape: Sequence[int] | None = None,
                overlap: float = 0.25, interior_threshold: float = 0.5,
                foreground_threshold: float = 0.5, split_depth: float = 1.0,
                min_size: int = 8) -> np.ndarray:
        """Integer labels: instances (instance models) or class indices (semantic models).

        Parameters
        ----------
        image, tile_shape, overlap
            As for :meth:`predict`.
        interior_threshold, foreground_threshold, split_depth, min_size
            See :func:`instances_from_boundary`.

        Returns
        -------
        ndarray of int32, the image's spatial shape
        """
        return _finish(self.segment_steps(image, tile_shape, overlap, None, interior_threshold,
                                          foreground_threshold, split_depth, min_size))

    def segment_steps(self, image: np.ndarray, tile_shape: Sequence[int] | None = None,
                      overlap: float = 0.25, cancelled: Callable[[], bool] | None = None,
                      interior_threshold: float = 0.5, foreground_threshold: float = 0.5,
                      split_depth: float = 1.0, min_size: int = 8
                      ) -> Generator[tuple[int, int], None, np.ndarray]:
        """:meth:`segment` as a generator, like :meth:`predict_steps`. A 2D model's stack is
        labelled slice by slice, so no probability stack is ever held in memory."""
        options = (interior_threshold, foreground_threshold, split_depth, min_size)
        slices = []
        for done, total, z, prob in self._parts(image, tile_shape, overlap, cancelled):
            yield done, total
            if prob is None:
                continue
            labels = self.labels_from_probabilities(prob, *options)
            if z is None:
                return labels
            slices.append(labels)
        return np.stack(slices) if self.info.output == "semantic" else link_slices(slices)

    def labels_from_probabilities(self, prob: np.ndarray, interior_threshold: float = 0.5,
                                  foreground_threshold: float = 0.5, split_depth: float = 1.0,
                                  min_size: int = 8) -> np.ndarray:
        """Labels from :meth:`predict`'s output.

        Semantic models: the most probable class (0 = the first). Instance models:
        :func:`instances_from_boundary` on the interior and boundary maps; a 2D
        model's stack is split slice by slice and linked across slices.
        """
        if self.info.output == "semantic":
            if prob.shape[0] == 1:
                return (prob[0] > 0.5).astype(np.int32)
            return np.argmax(prob, axis=0).astype(np.int32)
        options = (interior_threshold, foreground_threshold, split_depth, min_size)
        if prob.ndim - 1 == self.info.dims:
            return instances_from_boundary(prob[1], prob[2], *options, sampling=self.info.spacing)
        return link_slices([instances_from_boundary(prob[1, z], prob[2, z], *options)
                            for z in range(prob.shape[1])])

    # -- internals ---------------------------------------------------------------------------
    def _parts(self, image, tile_shape, overlap, cancelled) -> Generator:
        """Yields ``(done, total, z, probabilities)``: probabilities are None on the
        progress step before each piece of work, ``z`` is None for a whole image and the
        slice index when a 2D model runs on a stack (normalised one slice at a time)."""
        x, ranges = self._prepare(image)
        tile = self._tile(tile_shape)
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}.")
        if x.ndim - 1 == self.info.dims:
            yield 0, 1, None, None
            yield 1, 1, None, self._window(_apply_ranges(x, ranges), tile, overlap, cancelled)
            return
        depth = x.shape[1]
        for z in range(depth):
            yield z, depth, z, None
            yield z + 1, depth, z, self._window(_apply_ranges(x[:, z], ranges), tile, overlap,
                                                cancelled)

    def _prepare(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The image channel first (a view where possible) and its normalisation ranges."""
        image = np.asarray(image)
        if image.dtype.kind not in "biuf":
            raise ValueError(f"image must be real-valued, got dtype {image.dtype}.")
        c = self.info.in_channels
        if c == 1:
            if image.ndim == 3 and image.shape[-1] in (3, 4) and self.info.dims == 2 \
                    and image.shape[0] > 4:
                image = luminance(image)
            image = image[None]
        elif image.shape[0] != c:
            raise ValueError(f"the model takes {c} channels first, got shape {image.shape}.")
        spatial = image.ndim - 1
        if spatial < self.info.dims or spatial > 3:
            raise ValueError(f"a {self.info.dims}D model cannot run on an image of spatial "
                             f"shape {image.shape[1:]}.")
        return image, _intensity_ranges(image, self.info.percentiles, self.info.normalization)

    def _tile(self, tile_shape: Sequence[int] | None) -> tuple[int, ...]:
        tile = tuple(int(t) for t in (tile_shape or self.info.tile_shape))
        if len(tile) != self.info.dims or min(tile) < 16 or any(t % 16 for t in tile):
            raise ValueError(f"tile_shape must be {self.info.dims} multiples of 16, got {tile}.")
        return tile

    def _window(self, x: np.ndarray, tile, overlap, cancelled) -> np.ndarray:
        from monai.inferers import sliding_window_inference

        roi = tuple(min(t, _ceil16(s)) for t, s in zip(tile, x.shape[1:], strict=True))

        def run(batch: torch.Tensor) -> torch.Tensor:
            if cancelled is not None and cancelled():
                raise Cancelled
            if not self.test_time_flips:
                return self.network(batch)
            total = 0
            for axes in _FLIPS:  # mirrored copies of the tile, mirrored back and averaged
                flipped = self.network(batch.flip(axes) if axes else batch)
                total = total + (flipped.flip(axes) if axes else flipped)
            return total / len(_FLIPS)

        # A small image is padded to one tile (multiple of 16) by sliding_window_inference.
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x[None])).to(self.device)
            logits = sliding_window_inference(t, roi, 4, run, overlap=overlap, mode="gaussian")
            prob = _activate(logits, self.info.activation)
        return prob[0].float().cpu().numpy()


def _activate(logits: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "auto":
        activation = "sigmoid" if logits.shape[1] == 1 else "softmax"
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    return torch.softmax(logits, 1) if activation == "softmax" else logits


_FLIPS = ((), (-1,), (-2,), (-2, -1))


# -- post-processing -------------------------------------------------------------------------
def instances_from_boundary(interior: np.ndarray, boundary: np.ndarray,
                            interior_threshold: float = 0.5, foreground_threshold: float = 0.5,
                            split_depth: float = 1.0, min_size: int = 8,
                            sampling: Sequence[float] | None = None) -> np.ndarray:
    """Instances from interior and boundary probability maps (2D or 3D).

    The interior (``interior > interior_threshold``) is split where its distance
    map has separate peaks: one seed per regional maximum of the (lightly
    smoothed) distance to the interior's edge that stands at least
    ``split_depth`` above its surroundings. Seeds grow by watershed over the
    foreground (``interior + boundary > foreground_threshold``). Touching nuclei
    whose interiors the network leaves joined by a narrow neck are split there,
    which seeding from connected interior regions alone cannot do.

    Parameters
    ----------
    interior, boundary : ndarray of float, same shape
        Probabilities in [0, 1].
    interior_threshold, foreground_threshold : float
    split_depth : float
        Minimum depth, in pixels of distance, of the dip between two seeds; lower
        splits more. ``inf`` keeps one seed per connected interior region.
    min_size : int
        Objects smaller than this (pixels) are dropped.
    sampling : sequence of float, optional
        Pixel spacing per axis for the distance map (anisotropic stacks).

    Returns
    -------
    ndarray of int32, the maps' shape
    """
    if interior.shape != boundary.shape:
        raise ValueError(f"interior {interior.shape} and boundary {boundary.shape} differ.")
    if not split_depth > 0:
        raise ValueError(f"split_depth must be > 0, got {split_depth}.")
    core = interior > interior_threshold
    foreground = core | ((interior + boundary) > foreground_threshold)
    distance = ndi.gaussian_filter(ndi.distance_transform_edt(core, sampling=sampling), 1.0)
    if np.isfinite(split_depth):
        seeds, _ = ndi.label(h_maxima(distance, split_depth) & core)
    else:
        seeds, _ = ndi.label(core)
    labels = watershed(-distance, seeds, mask=foreground)
    sizes = np.bincount(labels.ravel())
    labels[sizes[labels] < min_size] = 0
    return _relabel(labels)


def link_slices(slices: Sequence[np.ndarray], min_iou: float = 0.3) -> np.ndarray:
    """Join per-slice instance labels into 3D objects by overlap with the previous slice.

    Each object of a slice takes the id of the object of the previous slice it
    overlaps best (IoU >= ``min_iou``, one-to-one, best pairs first); the others
    get new ids.

    Returns
    -------
    ndarray of int32, shape (Z, Y, X)
    """
    out = np.zeros((len(slices), *slices[0].shape), np.int32)
    next_id = 1
    previous = None
    for z, current in enumerate(slices):
        mapping = {}
        if previous is not None and current.any() and previous.any():
            pairs = np.stack([current.ravel(), previous.ravel()], 1)
            pairs = pairs[(pairs[:, 0] > 0) & (pairs[:, 1] > 0)]
            keys, inter = np.unique(pairs, axis=0, return_counts=True)
            area_c = np.bincount(current.ravel())
            area_p = np.bincount(previous.ravel())
            scores = inter / (area_c[keys[:, 0]] + area_p[keys[:, 1]] - inter)
            used = set()
            for k in np.argsort(-scores):
                a, b = keys[k]
                if scores[k] < min_iou:
                    break
                if a not in mapping and b not in used:
                    mapping[a] = b
                    used.add(b)
        linked = np.zeros_like(out[z])
        for label in np.unique(current)[1:]:
            if label in mapping:
                linked[current == label] = mapping[label]
            else:
                linked[current == label] = next_id
                next_id += 1
        out[z] = linked
        previous = linked
        next_id = max(next_id, int(linked.max()) + 1)
    return out


# -- files -----------------------------------------------------------------------------------
def available_models() -> list[str]:
    """Names of the models shipped in the package."""
    return sorted(_BUILTIN)


def load_model(name_or_path: str | Path, device: str | None = None) -> SegmentationModel:
    """Load a shipped model by name, or a checkpoint, TorchScript file or bioimage.io
    model package (see :mod:`napari_medseg.bioimageio`).

    Raises
    ------
    ValueError
        For unknown names, files that are not a model, or weights that do not
        fit the architecture they claim.
    FileNotFoundError
        For a path that does not exist.
    """
    if str(name_or_path) in _BUILTIN:
        ref = resources.files("napari_medseg.models").joinpath(_BUILTIN[str(name_or_path)])
        with resources.as_file(ref) as path:
            return _load_file(Path(path), device, name=str(name_or_path))
    path = Path(name_or_path)
    if not path.exists():
        if path.suffix == "" and "/" not in str(name_or_path):
            raise ValueError(f"unknown model {str(name_or_path)!r}; built-in models: "
                             f"{', '.join(available_models())}, or give a file path.")
        raise FileNotFoundError(f"model file {str(path)!r} does not exist.")
    return _load_file(path, device, name=path.name)


def save_model(path: str | Path, network: torch.nn.Module, info: ModelInfo,
               half: bool = True) -> Path:
    """Write ``network`` and ``info`` as a napari-medseg checkpoint (float16 if ``half``)."""
    state = {k: (v.half() if half and v.is_floating_point() else v)
             for k, v in network.state_dict().items()}
    path = Path(path)
    meta = asdict(info)
    for key in _LATER_FIELDS:
        if meta[key] == _DEFAULTS[key]:
            del meta[key]  # the default; keeps the file readable by older versions
    torch.save({"format": FORMAT, "version": VERSION, "info": meta,
                "state_dict": state}, path)
    return path


def _load_file(path: Path, device, name: str) -> SegmentationModel:
    from napari_medseg.bioimageio import is_bioimageio_package, load_bioimageio

    if is_bioimageio_package(path):
        return load_bioimageio(path, device)
    if _is_torchscript(path):
        extra = {"medseg.json": ""}
        try:
            network = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except RuntimeError as err:
            raise ValueError(f"{path.name!r} is a broken TorchScript file: {err}") from None
        if not extra["medseg.json"]:
            raise ValueError(f"TorchScript file {path.name!r} has no 'medseg.json' metadata "
                             "(save it with _extra_files={'medseg.json': json.dumps(info)}).")
        info = ModelInfo(**{**json.loads(extra["medseg.json"]), "architecture": "torchscript"})
        return SegmentationModel(network, _named(info, name), device)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors all mean "not our file"
        raise ValueError(f"{path.name!r} is not a napari-medseg checkpoint or TorchScript "
                         f"model ({type(err).__name__}).") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path.name!r} is not a napari-medseg model checkpoint.")
    if checkpoint.get("version", 0) > VERSION:
        raise ValueError(f"{path.name!r} needs a newer napari-medseg (checkpoint version "
                         f"{checkpoint['version']}, this one reads up to {VERSION}).")
    info = ModelInfo(**checkpoint["info"])
    if info.architecture not in ARCHITECTURES:
        raise ValueError(f"{path.name!r}: unknown architecture {info.architecture!r}.")
    network = build_network(info.architecture, info.dims, info.in_channels, len(info.classes),
                            **info.kwargs)
    try:
        network.load_state_dict({k: v.float() if v.is_floating_point() else v
                                 for k, v in checkpoint["state_dict"].items()})
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise ValueError(f"weights in {path.name!r} do not fit a {info.dims}D "
                         f"{info.architecture} with {info.kwargs}: {first}") from None
    return SegmentationModel(network, _named(info, name), device)


def _named(info: ModelInfo, name: str) -> ModelInfo:
    if not info.name:
        info.name = name
    return info


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())


def _best_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _intensity_ranges(x: np.ndarray, percentiles: tuple[float, float],
                      normalization: str = "percentiles") -> np.ndarray:
    """Per channel of ``x`` (C, ...), from its finite values (a subsample of at most 4
    million): the values that normalisation maps to 0 and 1, as a ``(C, 2)`` float64
    array: those at ``percentiles``, or mean and mean + standard deviation."""
    ranges = np.zeros((x.shape[0], 2))
    for c in range(x.shape[0]):
        flat = x[c].reshape(-1)
        if flat.size > 4_000_000:
            flat = flat[:: flat.size // 4_000_000]
        if flat.dtype.kind == "b":  # np.percentile cannot interpolate booleans
            flat = flat.astype(np.uint8)
        finite = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
        if not finite.size:
            continue
        if normalization == "mean-std":
            mean = finite.mean(dtype=np.float64)
            ranges[c] = mean, mean + finite.std(dtype=np.float64)
        else:
            ranges[c] = np.percentile(finite, percentiles)
    return ranges


def _apply_ranges(x: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """``x`` (C, ...) as float32 with each channel's range mapped to [0, 1] (NaN -> 0)."""
    out = np.empty(x.shape, np.float32)
    for c, (lo, hi) in enumerate(ranges):
        scale = hi - lo if hi > lo else 1.0
        out[c] = x[c]
        out[c] -= lo
        out[c] /= scale
    return np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)


def _normalize(x: np.ndarray, percentiles: tuple[float, float],
               normalization: str = "percentiles") -> np.ndarray:
    """Per channel: ``percentiles`` (or mean, mean + std) map to 0 and 1 (computed on a
    subsample of big images)."""
    return _apply_ranges(x, _intensity_ranges(x, percentiles, normalization))


def _finish(steps: Generator, on_step: Callable[[Any], None] | None = None) -> Any:
    """Run a generator to its end, passing what it yields to ``on_step``; return its
    return value."""
    while True:
        try:
            step = next(steps)
        except StopIteration as stop:
            return stop.value
        if on_step is not None:
            on_step(step)


def _ceil16(n: int) -> int:
    return int(np.ceil(n / 16) * 16)


def _relabel(labels: np.ndarray) -> np.ndarray:
    ids = np.unique(labels)
    ids = ids[ids > 0]
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    lut[ids] = np.arange(1, len(ids) + 1)
    return lut[labels]
