"""Running segmentation models: tiled inference and labels from the network's maps.

Inference normalises the image (percentiles, or mean and standard deviation), runs MONAI's
``sliding_window_inference`` with Gaussian blending over tiles, and turns the
network's maps into labels: classes for semantic models, instances for
``"instance-boundary"`` models (background / interior / boundary outputs, split
by a watershed seeded from the interior's distance map,
:func:`~napari_medseg.instances.instances_from_boundary`). A 2D model applied to a
stack runs slice by slice and links instances across slices. Model files are read
and written by :mod:`napari_medseg.model_files`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from napari_medseg._image import luminance
from napari_medseg.instances import instances_from_boundary, link_slices
from napari_medseg.model_files import (
    BUILTIN,
    builtin_model,
    read_model_file,
    save_model,
    suggested_model,
)
from napari_medseg.model_info import ModelInfo
from napari_medseg.networks import ARCHITECTURES, ceil16, for_inference
from napari_medseg.normalization import apply_ranges, intensity_ranges
from napari_medseg.planes import from_isotropic, isotropic_zoom, to_isotropic
from napari_medseg.runtime import Cancelled, best_device, bf16_native, run_steps
from napari_medseg.validation import is_colour, real_image

__all__ = ["SegmentationModel", "load_model"]


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
    fast : bool
        Run an inference copy of the network made for speed (batch norm folded into
        the convolutions, channels-last memory; :attr:`network` itself is unchanged),
        in bfloat16 where the processor computes it natively (2D models). False: the
        plain float32 path. F1 on held-out nuclei moves by less than 0.002
        (docs/models.md).
    """

    def __init__(self, network: torch.nn.Module, info: ModelInfo,
                 device: str | torch.device | None = None, test_time_flips: bool = False,
                 fast: bool = True):
        self.info = info
        self.test_time_flips = test_time_flips
        self.fast = fast
        self.device = torch.device(device) if device is not None else best_device()
        self.network = network.to(self.device).eval()
        self._fast_network: torch.nn.Module | None = None

    def __repr__(self) -> str:
        i = self.info
        return (f"SegmentationModel({i.name or i.architecture!r}, {i.dims}D {i.architecture}, "
                f"{i.output}, classes={i.classes}, device={self.device})")

    def __getstate__(self) -> dict:
        # sent to dask workers: the inference copy is rebuilt there, on first use
        return {**self.__dict__, "_fast_network": None}

    def save(self, path: str | Path, half: bool = True, overwrite: bool = False) -> Path:
        """Write the model as a napari-medseg checkpoint (see
        :func:`~napari_medseg.model_files.save_model`)."""
        if self.info.architecture not in ARCHITECTURES:
            raise ValueError(f"a {self.info.architecture} model cannot be saved as a "
                             f"napari-medseg checkpoint (architectures: {ARCHITECTURES}); "
                             "keep its original file.")
        return save_model(path, self.network, self.info, half, overwrite)

    # -- inference ---------------------------------------------------------------------------
    def predict(self, image: np.ndarray, tile_shape: Sequence[int] | None = None,
                overlap: float = 0.25, *, spacing: Sequence[float] | None = None,
                progress: bool = True) -> np.ndarray:
        """Per-class probabilities (softmax; sigmoid for one output), channel first.

        Parameters
        ----------
        image : ndarray
            ``(Y, X)``, ``(Y, X, 3|4)`` RGB (grey for a grey model), ``(Z, Y, X)``;
            or channel first ``(C, ...)`` when the model takes C > 1 channels (RGB
            models also take ``(Y, X, 3|4)`` and ``(Z, Y, X, 3|4)``). Any real dtype.
        tile_shape : sequence of int, optional
            Sliding-window tile, multiples of 16 (default: the model's); larger
            than the image is fine.
        overlap : float
            Fraction of a tile shared with its neighbours, in [0, 1).
        spacing : sequence of float, optional
            Voxel size ``(z, y, x)`` of a stack, for models that run on its planes
            (``info.volume == "planes"``); default: isotropic.
        progress : bool
            Show a progress bar for stacks, in a terminal or notebook.

        Returns
        -------
        ndarray of float32, shape (n_classes, *spatial)
        """
        return run_steps(self.predict_steps(image, tile_shape, overlap, spacing=spacing),
                         progress=self._bar(image, progress, "Predicting"))

    def predict_steps(self, image: np.ndarray, tile_shape: Sequence[int] | None = None,
                      overlap: float = 0.25, cancelled: Callable[[], bool] | None = None, *,
                      spacing: Sequence[float] | None = None
                      ) -> Generator[tuple[int, int], None, np.ndarray]:
        """:meth:`predict` as a generator for GUIs: yields ``(done, total)`` slices, returns
        the probabilities; raises :class:`Cancelled` between tiles once ``cancelled()``."""
        if self._on_planes(image):
            prob = yield from self._planes(image, tile_shape, overlap, cancelled, spacing)
            return from_isotropic(prob, (prob.shape[0], *np.shape(image)[-3:]))
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
                min_size: int = 8, *, spacing: Sequence[float] | None = None,
                ranges: np.ndarray | None = None, progress: bool = True) -> np.ndarray:
        """Integer labels: instances (instance models) or class indices (semantic models).

        Parameters
        ----------
        image, tile_shape, overlap
            As for :meth:`predict`.
        interior_threshold, foreground_threshold, split_depth, min_size
            See :func:`instances_from_boundary`.
        spacing : sequence of float, optional
            Voxel size ``(z, y, x)`` of a stack: the distance map of 3D instances,
            and the resampling of models that run on a stack's planes; default:
            isotropic.
        ranges : ndarray, shape (C, 2), optional
            The intensities that normalisation maps to 0 and 1, per input channel
            (:func:`~napari_medseg.normalization.intensity_ranges`); default: the
            image's own. Blockwise work passes the whole image's.
        progress : bool
            Show a progress bar for stacks, in a terminal or notebook.

        Returns
        -------
        ndarray of int32, the image's spatial shape

        Examples
        --------
        >>> from napari_medseg import nuclei_2d
        >>> image, truth = nuclei_2d()
        >>> labels = load_model("nuclei-2d", device="cpu").segment(image)
        >>> labels.shape, labels.max() > 30
        ((384, 384), np.True_)
        """
        return run_steps(self.segment_steps(image, tile_shape, overlap, None, interior_threshold,
                                            foreground_threshold, split_depth, min_size,
                                            spacing=spacing, ranges=ranges),
                         progress=self._bar(image, progress, "Segmenting"))

    def segment_steps(self, image: np.ndarray, tile_shape: Sequence[int] | None = None,
                      overlap: float = 0.25, cancelled: Callable[[], bool] | None = None,
                      interior_threshold: float = 0.5, foreground_threshold: float = 0.5,
                      split_depth: float = 1.0, min_size: int = 8, *,
                      spacing: Sequence[float] | None = None, probabilities: bool = False,
                      ranges: np.ndarray | None = None
                      ) -> Generator[tuple[int, int], None, np.ndarray | tuple]:
        """:meth:`segment` as a generator, like :meth:`predict_steps`. A 2D model's stack is
        labelled slice by slice (no probability stack is held in memory unless asked for),
        or on its planes (``info.volume == "planes"``: the probabilities of the resampled
        stack). With ``probabilities``, returns ``(labels, probabilities)``."""
        options = (interior_threshold, foreground_threshold, split_depth, min_size)
        why = self.info.mismatch(image)
        if why:
            warnings.warn(f"This is {why}: the result may be poor{self.alternative(image)}.",
                          UserWarning, stacklevel=3)
        if self._on_planes(image):
            prob = yield from self._planes(image, tile_shape, overlap, cancelled, spacing,
                                           ranges)
            labels = self.labels_from_probabilities(prob, *options, spacing=(1.0, 1.0, 1.0))
            shape = np.shape(image)[-3:]
            labels = from_isotropic(labels, shape)
            return (labels, from_isotropic(prob, (prob.shape[0], *shape))) if probabilities \
                else labels
        slices, maps = [], []
        for done, total, z, prob in self._parts(image, tile_shape, overlap, cancelled, ranges):
            yield done, total
            if prob is None:
                continue
            labels = self.labels_from_probabilities(prob, *options, spacing=spacing)
            if z is None:
                return (labels, prob) if probabilities else labels
            slices.append(labels)
            if probabilities:
                maps.append(prob)
        labels = np.stack(slices) if self.info.output == "semantic" else link_slices(slices)
        return (labels, np.stack(maps, axis=1)) if probabilities else labels

    def labels_from_probabilities(self, prob: np.ndarray, interior_threshold: float = 0.5,
                                  foreground_threshold: float = 0.5, split_depth: float = 1.0,
                                  min_size: int = 8, *, spacing: Sequence[float] | None = None
                                  ) -> np.ndarray:
        """Labels from :meth:`predict`'s output.

        Semantic models: the most probable class (0 = the first). Instance models:
        :func:`instances_from_boundary` on the interior and boundary maps (3D maps
        with the voxel ``spacing``, by default the model's); a 2D model's stack of
        maps is split slice by slice and linked across slices.
        """
        prob = real_image(prob, "prob")
        if prob.ndim not in (3, 4) or prob.shape[0] != len(self.info.classes):
            raise ValueError(f"prob must be the model's {len(self.info.classes)} maps, channel "
                             f"first (as predict returns them), got shape {prob.shape}.")
        if self.info.output == "semantic":
            if prob.shape[0] == 1:
                return (prob[0] > 0.5).astype(np.int32)
            return np.argmax(prob, axis=0).astype(np.int32)
        options = (interior_threshold, foreground_threshold, split_depth, min_size)
        if prob.ndim - 1 == self.info.dims or self.info.volume == "planes":
            sampling = spacing if spacing is not None else self.info.spacing
            return instances_from_boundary(prob[1], prob[2], *options,
                                           sampling=sampling if prob.ndim == 4 else None)
        return link_slices([instances_from_boundary(prob[1, z], prob[2, z], *options)
                            for z in range(prob.shape[1])])

    # -- internals ---------------------------------------------------------------------------
    def _bar(self, image: np.ndarray, progress: bool, description: str) -> str | None:
        """A progress bar's description for work on a stack, else None (one image is
        quick)."""
        spatial = np.ndim(image) - (1 if self.info.in_channels > 1 or is_colour(image) else 0)
        return description if progress and spatial > self.info.dims else None

    def alternative(self, image: np.ndarray) -> str:
        """"; try the built-in NAME" when a built-in model made for images like ``image`` is
        not this one, else ""."""
        colour = is_colour(image)
        name = suggested_model(colour, np.ndim(image) - colour)
        return f"; try the built-in {name!r}" if name != self.info.name else ""

    def _on_planes(self, image: np.ndarray) -> bool:
        """Whether this model runs on the planes of ``image``: a 2D "planes" model on a
        stack."""
        spatial = np.ndim(image) - (1 if self.info.in_channels > 1 else 0)
        return self.info.dims == 2 and self.info.volume == "planes" and spatial == 3

    def _planes(self, image, tile_shape, overlap, cancelled, spacing, ranges=None
                ) -> Generator:
        """Yields ``(done, total)`` slices over the three planes of the stack resampled to
        isotropic voxels; returns the averaged probabilities on that grid."""
        x, ranges = self._prepare(image, ranges)
        tile = self._tile(tile_shape)
        iso = to_isotropic(apply_ranges(x, ranges), isotropic_zoom(spacing))
        total, done, out = sum(iso.shape[1:]), 0, None
        for axis in range(3):
            for k in range(iso.shape[axis + 1]):
                yield done, total
                prob = self._window(np.take(iso, k, axis=axis + 1), tile, overlap, cancelled)
                if out is None:
                    out = np.zeros((prob.shape[0], *iso.shape[1:]), np.float32)
                place = [slice(None)] * 4
                place[axis + 1] = k
                out[tuple(place)] += prob / 3
                done += 1
        yield total, total
        return out

    def _parts(self, image, tile_shape, overlap, cancelled, ranges=None) -> Generator:
        """Yields ``(done, total, z, probabilities)``: probabilities are None on the
        progress step before each piece of work, ``z`` is None for a whole image and the
        slice index when a 2D model runs on a stack (normalised one slice at a time)."""
        x, ranges = self._prepare(image, ranges)
        tile = self._tile(tile_shape)
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}.")
        if x.ndim - 1 == self.info.dims:
            yield 0, 1, None, None
            yield 1, 1, None, self._window(apply_ranges(x, ranges), tile, overlap, cancelled)
            return
        depth = x.shape[1]
        for z in range(depth):
            yield z, depth, z, None
            yield z + 1, depth, z, self._window(apply_ranges(x[:, z], ranges), tile, overlap,
                                                cancelled)

    def input_channels(self, image: np.ndarray) -> np.ndarray:
        """``image`` laid out as the network takes it, channel first ``(C, ...)`` (a view
        where possible): a colour image is made grey for a grey model, RGB moved first
        for a colour one.

        Raises
        ------
        ValueError
            If the image does not fit the model (channels, dimensions) or is empty.
        """
        image = real_image(image)
        c = self.info.in_channels
        if c == 1:
            if is_colour(image) and self.info.dims == 2:
                image = luminance(image)
            image = image[None]
        elif c == 3 and image.ndim in (3, 4) and image.shape[-1] in (3, 4):
            image = np.moveaxis(image[..., :3], -1, 0)  # colour, channels last: a view
        elif image.shape[0] != c:
            raise ValueError(f"{self.info.name or 'the model'} takes {c} channels"
                             + (" (a colour image, Y x X x 3)" if c == 3 else " first")
                             + f"; got an image of shape {image.shape}.")
        spatial = image.ndim - 1
        if spatial < self.info.dims or spatial > 3:
            raise ValueError(f"a {self.info.dims}D model cannot run on an image of spatial "
                             f"shape {image.shape[1:]}.")
        if min(image.shape[1:]) < 1:
            raise ValueError(f"the image is empty (shape {image.shape[1:]}).")
        return image

    def _prepare(self, image: np.ndarray, ranges: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """The image channel first and its normalisation ranges (``ranges`` if given)."""
        image = self.input_channels(image)
        if ranges is None:
            return image, intensity_ranges(image, self.info.percentiles,
                                           self.info.normalization)
        ranges = np.asarray(ranges, np.float64)
        if ranges.shape != (image.shape[0], 2) or not np.isfinite(ranges).all():
            raise ValueError(f"ranges must be finite, one (low, high) pair per input channel "
                             f"(shape ({image.shape[0]}, 2)), got {ranges.tolist()}.")
        return image, ranges

    def _tile(self, tile_shape: Sequence[int] | None) -> tuple[int, ...]:
        tile = tuple(int(t) for t in (tile_shape or self.info.tile_shape))
        if len(tile) != self.info.dims or min(tile) < 16 or any(t % 16 for t in tile):
            raise ValueError(f"tile_shape must be {self.info.dims} multiples of 16, got {tile}.")
        return tile

    def _bfloat16(self) -> bool:
        """Whether the fast path computes in bfloat16: 2D models of ours, on a device with
        native bfloat16 (3D convolutions in bfloat16 once went non-finite in training)."""
        return (self.fast and self.info.dims == 2 and self.info.architecture in ARCHITECTURES
                and self.device.type in ("cpu", "cuda") and bf16_native(self.device))

    def _inference_network(self) -> torch.nn.Module:
        """The network to run: with ``fast``, a copy with batch norm folded into the
        convolutions and channels-last weights (made once), else :attr:`network`."""
        if not self.fast or self.info.architecture not in ARCHITECTURES:
            return self.network
        with _BUILDING:  # blocks segmented in parallel threads share one copy
            if self._fast_network is None:
                self._fast_network = for_inference(self.network, self.info.dims)
        return self._fast_network

    def _window(self, x: np.ndarray, tile, overlap, cancelled) -> np.ndarray:
        from monai.inferers import sliding_window_inference

        roi = tuple(min(t, ceil16(s)) for t, s in zip(tile, x.shape[1:], strict=True))
        network = self._inference_network()
        layout = (torch.channels_last if self.info.dims == 2 else torch.channels_last_3d) \
            if network is not self.network else torch.contiguous_format

        bfloat16 = self._bfloat16()

        def forward(batch: torch.Tensor) -> torch.Tensor:
            with torch.autocast(self.device.type, torch.bfloat16, enabled=bfloat16):
                return network(batch.contiguous(memory_format=layout)).float()

        def run(batch: torch.Tensor) -> torch.Tensor:
            if cancelled is not None and cancelled():
                raise Cancelled
            if not self.test_time_flips:
                return forward(batch)
            total = 0
            for axes in _FLIPS:  # mirrored copies of the tile, mirrored back and averaged
                flipped = forward(batch.flip(axes) if axes else batch)
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
_BUILDING = threading.Lock()


def load_model(name_or_path: str | Path, device: str | None = None) -> SegmentationModel:
    """Load a shipped model by name, or a checkpoint, TorchScript file or bioimage.io
    model package (see :mod:`napari_medseg.model_files`).

    Parameters
    ----------
    name_or_path : str or Path
        A name of :func:`~napari_medseg.model_files.available_models`, or a file.
    device : str, optional
        "cuda", "mps" or "cpu" (default: the best available).

    Returns
    -------
    SegmentationModel

    Raises
    ------
    ValueError
        For unknown names, files that are not a model, or weights that do not
        fit the architecture they claim.
    FileNotFoundError
        For a path that does not exist.

    Examples
    --------
    >>> model = load_model("nuclei-2d", device="cpu")
    >>> model.info.output
    'instance-boundary'
    """
    name = str(name_or_path)
    if name in BUILTIN:
        with builtin_model(name) as path:
            network, info = read_model_file(path, name=name)
        return SegmentationModel(network, replace(info, **BUILTIN[name][1]), device)
    path = Path(name_or_path)
    if not path.exists():
        if path.suffix == "" and "/" not in name:
            raise ValueError(f"unknown model {name!r}; built-in models: "
                             f"{', '.join(sorted(BUILTIN))}, or give a file path.")
        raise FileNotFoundError(f"model file {name!r} does not exist.")
    return SegmentationModel(*read_model_file(path), device)
