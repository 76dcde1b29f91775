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

import math
import threading
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from napari_medseg._image import luminance, resized
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
from napari_medseg.object_size import (
    PASS_ZOOMS,
    UP_ZOOM,
    SizeEstimate,
    as_diameter,
    check_zoomed,
    diameter_from_passes,
    median_diameter,
    zoom_for,
)
from napari_medseg.planes import (
    add_interpolated,
    add_strided,
    from_isotropic,
    isotropic_zoom,
    source_index,
    to_isotropic,
)
from napari_medseg.runtime import Cancelled, best_device, bf16_native, run_steps
from napari_medseg.validation import holds_colour, is_colour, real_image

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
        x, ranges = self._prepare(image)
        if self._on_planes(x):
            prob = yield from self._planes(x, tile_shape, overlap, cancelled, spacing, ranges)
            return from_isotropic(prob, (prob.shape[0], *x.shape[1:]))
        out = None
        for done, total, z, prob in self._parts(x, tile_shape, overlap, cancelled, ranges):
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
                overlap: float = 0.25, interior_threshold: float | None = None,
                foreground_threshold: float | None = None, split_depth: float = 1.0,
                min_size: int = 8, *, spacing: Sequence[float] | None = None,
                ranges: np.ndarray | None = None, diameter: float | None = None,
                progress: bool = True) -> np.ndarray:
        """Integer labels: instances (instance models) or class indices (semantic models).

        Objects far from the size the model was trained at are segmented in the image
        zoomed to that size (:mod:`napari_medseg.object_size`) and mapped back.

        Parameters
        ----------
        image, tile_shape, overlap
            As for :meth:`predict`.
        interior_threshold, foreground_threshold, split_depth, min_size
            See :func:`instances_from_boundary` (``min_size`` in pixels of the zoomed
            image); the thresholds default to the model's (``info.interior_threshold``,
            ``info.foreground_threshold``).
        spacing : sequence of float, optional
            Voxel size ``(z, y, x)`` of a stack: the distance map of 3D instances,
            and the resampling of models that run on a stack's planes; default:
            isotropic.
        ranges : ndarray, shape (C, 2), optional
            The intensities that normalisation maps to 0 and 1, per input channel
            (:func:`~napari_medseg.normalization.intensity_ranges`); default: the
            image's own. Blockwise work passes the whole image's.
        diameter : float, optional
            The objects' median diameter in pixels (of a stack's yx planes); None:
            estimated (:meth:`estimate_diameter`). Models that record no training size
            (``info.diameter`` None) run on the image as it is.
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
                                            spacing=spacing, ranges=ranges, diameter=diameter),
                         progress=self._bar(image, progress, "Segmenting"))

    def segment_steps(self, image: np.ndarray, tile_shape: Sequence[int] | None = None,
                      overlap: float = 0.25, cancelled: Callable[[], bool] | None = None,
                      interior_threshold: float | None = None,
                      foreground_threshold: float | None = None,
                      split_depth: float = 1.0, min_size: int = 8, *,
                      spacing: Sequence[float] | None = None, probabilities: bool = False,
                      ranges: np.ndarray | None = None, diameter: float | None = None,
                      size: bool = False
                      ) -> Generator[tuple[int, int], None, np.ndarray | tuple]:
        """:meth:`segment` as a generator, like :meth:`predict_steps`. A 2D model's stack is
        labelled slice by slice (no probability stack is held in memory unless asked for),
        or on its planes (``info.volume == "planes"``: the probabilities of the resampled
        stack). With ``probabilities``, returns ``(labels, probabilities)`` (on the image's
        grid); with ``size``, the :class:`~napari_medseg.object_size.SizeEstimate` after
        them (None for models without a training size)."""
        options = self._post(interior_threshold, foreground_threshold, split_depth, min_size)
        why = self.info.mismatch(image)
        if why:
            warnings.warn(f"This is {why}: the result may be poor{self.alternative(image)}.",
                          UserWarning, stacklevel=3)
        x, ranges = self._prepare(image, ranges)
        estimate, first = yield from self._size_steps(x, diameter, spacing, tile_shape, overlap,
                                                      cancelled, ranges, options)
        zoom = estimate.zoom if estimate is not None else 1.0
        if zoom != 1:
            grid = np.multiply(x.shape[1:], isotropic_zoom(spacing)) if self._on_planes(x) \
                else x.shape[-2:] if self.info.dims == 2 else x.shape[1:]
            check_zoomed(tuple(int(n) for n in grid), estimate)
        prob = None
        if self._on_planes(x):
            iso = yield from self._planes(x, tile_shape, overlap, cancelled, spacing, ranges,
                                          zoom)
            labels = from_isotropic(self.labels_from_probabilities(iso, *options,
                                                                   spacing=(1.0, 1.0, 1.0)),
                                    x.shape[1:])
            if probabilities:
                prob = from_isotropic(iso, (iso.shape[0], *x.shape[1:]))
        elif first is not None and not probabilities:  # the estimate's own pass at zoom 1
            yield 1, 1
            labels = first
        else:
            labels, prob = yield from self._by_parts(x, tile_shape, overlap, cancelled, ranges,
                                                     zoom, options, spacing, probabilities)
        if zoom != 1 and estimate.source == "estimated":  # its result's objects, measured
            planes = labels if labels.ndim == 2 or self.info.dims == 3 else \
                [labels[z] for z in _depths(labels.shape[0])]
            estimate = estimate.remeasured(planes)
        out = (labels, *((prob,) if probabilities else ()), *((estimate,) if size else ()))
        return out if len(out) > 1 else labels

    def _by_parts(self, x, tile_shape, overlap, cancelled, ranges, zoom, options, spacing,
                  probabilities) -> Generator:
        """Labels (and probabilities, or None) of a whole image, or of a stack slice by
        slice, on the image's grid."""
        slices, maps = [], []
        for done, total, z, prob in self._parts(x, tile_shape, overlap, cancelled, ranges, zoom):
            yield done, total
            if prob is None:
                continue
            shape = x.shape[1:] if z is None else x.shape[2:]
            labels = from_isotropic(self.labels_from_probabilities(prob, *options,
                                                                   spacing=spacing), shape)
            if probabilities and zoom != 1:
                prob = from_isotropic(prob, (prob.shape[0], *shape))
            if z is None:
                return labels, prob if probabilities else None
            slices.append(labels)
            if probabilities:
                maps.append(prob)
        labels = np.stack(slices) if self.info.output == "semantic" else link_slices(slices)
        return labels, np.stack(maps, axis=1) if probabilities else None

    def estimate_diameter(self, image: np.ndarray, *, spacing: Sequence[float] | None = None,
                          tile_shape: Sequence[int] | None = None) -> SizeEstimate:
        """The objects' median diameter in ``image`` and the zoom :meth:`segment` applies.

        First passes of the network on the image as it is and shrunk 2 and 4 times
        (:data:`~napari_medseg.object_size.PASS_ZOOMS`; a stack's middle yx planes)
        measure its objects; where they are far from the model's training size, one more
        pass at the zoom that brings them there measures them again, as Cellpose refines
        its size estimate from its masks.

        Parameters
        ----------
        image : ndarray
            As for :meth:`segment`.
        spacing : sequence of float, optional
            Voxel size of a stack (its yx planes are measured).
        tile_shape : sequence of int, optional

        Returns
        -------
        SizeEstimate
            ``source`` "unsure" when too few objects were found to measure.

        Raises
        ------
        ValueError
            For a model that records no training object size (``info.diameter``).

        Examples
        --------
        >>> from napari_medseg import nuclei_2d
        >>> image, truth = nuclei_2d()
        >>> model = load_model("nuclei-2d", device="cpu")
        >>> estimate = model.estimate_diameter(image)
        >>> estimate.source, 10 < estimate.diameter < 30
        ('estimated', True)
        """
        if self.info.diameter is None:
            raise ValueError(f"{self.info.name or 'this model'} records no training object "
                             "size, so the objects' size cannot be matched to it.")
        x, ranges = self._prepare(image)
        options = self._post(None, None, 1.0, 8)
        estimate, _ = run_steps(self._size_steps(x, None, spacing, tile_shape, 0.25, None,
                                                 ranges, options, refine=True))
        return estimate

    def _size_steps(self, x: np.ndarray, diameter, spacing, tile_shape, overlap, cancelled,
                    ranges, options, refine: bool = False) -> Generator:
        """Yields progress; returns ``(estimate, labels)`` for the channel-first ``x``: the
        SizeEstimate (None for models without a training size, or semantic ones) and, for
        a 2D image that needs no zoom, the labels of the estimate's zoom-1 pass (else
        None). ``refine``: measure again at the chosen zoom (:meth:`estimate_diameter`;
        :meth:`segment` measures its result instead)."""
        diameter = as_diameter(diameter)
        trained = self.info.diameter
        if trained is None or self.info.output != "instance-boundary":
            if diameter is not None and trained is None:
                raise ValueError(f"{self.info.name or 'this model'} records no training "
                                 "object size: a diameter cannot be matched to it (leave "
                                 "it unset).")
            return None, None
        # a stack's yx pixels on the grid the network runs on (its finest spacing)
        on_grid = isotropic_zoom(spacing)[-1] if self._on_planes(x) else 1.0
        if diameter is not None:
            return SizeEstimate(diameter, 0, zoom_for(diameter * on_grid, trained),
                                "given"), None
        planes = self._sample_planes(x)
        if self._on_planes(x):
            # the passes see single yx planes, not the three planes' average the model's
            # thresholds were chosen for: they take the plain ones (0.8 on one plane merges
            # packed nuclei: GoNuclear 1136 measured 34.5 px for 18)
            options = (ModelInfo.interior_threshold, ModelInfo.foreground_threshold,
                       *options[2:])
        passes, found = {}, {}
        for zoom in PASS_ZOOMS:
            if zoom != 1 and min(planes[0].shape[1:]) * zoom < _SMALLEST_PASS:
                break
            found[zoom] = yield from self._labels_of(planes, tile_shape, overlap, cancelled,
                                                     ranges, zoom, options)
            passes[zoom] = median_diameter(found[zoom])
        if passes[1.0][0] < trained:  # small objects: measured again enlarged (a crop of them)
            crops = [_central(plane, _UP_CROP) for plane in planes]
            up = yield from self._labels_of(crops, tile_shape, overlap, cancelled, ranges,
                                            UP_ZOOM, options)
            passes[UP_ZOOM] = median_diameter(up)
        chosen = diameter_from_passes(passes, trained)
        if chosen is None:
            return SizeEstimate(trained, 0, 1.0, "unsure"), None
        zoom = zoom_for(chosen[0] * on_grid, trained)
        if zoom == 1:  # measured on the result it keeps: the zoom-1 pass
            whole = found[1.0][0] if x.ndim == 3 else None
            return SizeEstimate(*chosen, 1.0, "estimated").remeasured(found[1.0]), whole
        estimate = SizeEstimate(*chosen, zoom, "estimated")
        if refine:
            again = yield from self._labels_of(planes, tile_shape, overlap, cancelled, ranges,
                                               zoom, options)
            estimate = estimate.remeasured(again, zoom)
        return estimate, None

    def _labels_of(self, planes, tile_shape, overlap, cancelled, ranges, zoom, options
                   ) -> Generator:
        """Labels of each channel-first plane at ``zoom`` (on the zoomed grid)."""
        out = []
        for plane in planes:
            yield 0, 1
            prob = self._window(_zoomed(apply_ranges(plane, ranges), zoom),
                                self._tile(tile_shape), overlap, cancelled)
            out.append(self.labels_from_probabilities(prob, *options))
        return out

    def _sample_planes(self, x: np.ndarray) -> list[np.ndarray]:
        """The 2D planes (channel first) a size estimate measures: the image, or up to three
        yx planes of a stack (at a quarter, half and three quarters of its depth)."""
        if x.ndim == 3 or self.info.dims == 3:
            return [x]
        return [x[:, z] for z in _depths(x.shape[1])]

    def labels_from_probabilities(self, prob: np.ndarray,
                                  interior_threshold: float | None = None,
                                  foreground_threshold: float | None = None,
                                  split_depth: float = 1.0,
                                  min_size: int = 8, *, spacing: Sequence[float] | None = None
                                  ) -> np.ndarray:
        """Labels from :meth:`predict`'s output.

        Semantic models: the most probable class (0 = the first). Instance models:
        :func:`instances_from_boundary` on the interior and boundary maps (3D maps
        with the voxel ``spacing``, by default the model's); a 2D model's stack of
        maps is split slice by slice and linked across slices. Thresholds not given are the
        model's.
        """
        prob = real_image(prob, "prob")
        if prob.ndim not in (3, 4) or prob.shape[0] != len(self.info.classes):
            raise ValueError(f"prob must be the model's {len(self.info.classes)} maps, channel "
                             f"first (as predict returns them), got shape {prob.shape}.")
        if self.info.output == "semantic":
            if prob.shape[0] == 1:
                return (prob[0] > 0.5).astype(np.int32)
            return np.argmax(prob, axis=0).astype(np.int32)
        options = self._post(interior_threshold, foreground_threshold, split_depth, min_size)
        if prob.ndim - 1 == self.info.dims or self.info.volume == "planes":
            sampling = spacing if spacing is not None else self.info.spacing
            return instances_from_boundary(prob[1], prob[2], *options,
                                           sampling=sampling if prob.ndim == 4 else None)
        return link_slices([instances_from_boundary(prob[1, z], prob[2, z], *options)
                            for z in range(prob.shape[1])])

    # -- internals ---------------------------------------------------------------------------
    def _post(self, interior, foreground, split_depth, min_size) -> tuple:
        """Post-processing options, the thresholds not given being the model's."""
        return (self.info.interior_threshold if interior is None else interior,
                self.info.foreground_threshold if foreground is None else foreground,
                split_depth, min_size)

    def _bar(self, image: np.ndarray, progress: bool, description: str) -> str | None:
        """A progress bar's description for work on a stack, else None (one image is
        quick)."""
        spatial = np.ndim(image) - (1 if self.info.in_channels > 1 or is_colour(image) else 0)
        return description if progress and spatial > self.info.dims else None

    def alternative(self, image: np.ndarray) -> str:
        """"; try the built-in NAME" when a built-in model made for images like ``image`` is
        not this one, else ""."""
        name = suggested_model(holds_colour(image), np.ndim(image) - is_colour(image))
        return f"; try the built-in {name!r}" if name != self.info.name else ""

    def _on_planes(self, x: np.ndarray) -> bool:
        """Whether this model runs on the planes of the channel-first ``x``
        (:meth:`input_channels`): a 2D "planes" model on a stack."""
        return self.info.dims == 2 and self.info.volume == "planes" and x.ndim == 4

    def _planes(self, x, tile_shape, overlap, cancelled, spacing, ranges, zoom=1.0
                ) -> Generator:
        """Yields ``(done, total)`` planes over the three planes of the channel-first stack
        ``x`` resampled to isotropic voxels (and by ``zoom``); returns the averaged
        probabilities on that grid.

        The YX planes are the stack's own slices (resampled in-plane only; their
        probabilities interpolated along z): the isotropic grid's YX planes between two
        slices are blends of them, no new evidence. The ZX and ZY planes are taken every
        ``_SIDE_STRIDE``-th row / column, the probabilities between them interpolated.
        """
        tile = self._tile(tile_shape)
        full = tuple(z * zoom for z in isotropic_zoom(spacing))
        x = apply_ranges(x, ranges)
        iso = to_isotropic(x, full)
        slices = to_isotropic(x, (1.0, *full[1:]))  # (C, Z, Y', X'): the stack's own YX planes
        sources = (slices, iso, iso)
        strides = (1, *(_SIDE_STRIDE if n > 2 * _SIDE_STRIDE else 1 for n in iso.shape[2:]))
        positions = [np.arange(0, source.shape[axis + 1], stride) for axis, (source, stride)
                     in enumerate(zip(sources, strides, strict=True))]
        total, done, out = sum(map(len, positions)), 0, None
        for axis, (source, at) in enumerate(zip(sources, positions, strict=True)):
            # as many planes at a time as one network call takes windows of: small planes
            # go through together, the same outputs from far fewer calls
            step = _windows_per_call(tile, [s for a, s in enumerate(source.shape[1:])
                                            if a != axis])
            maps = None
            for k in range(0, len(at), step):
                yield done, total
                chunk = np.moveaxis(np.take(source, at[k:k + step], axis=axis + 1), axis + 1, 0)
                prob = self._windows(chunk, tile, overlap, cancelled)
                if maps is None:
                    maps = np.empty((prob.shape[1], *source.shape[1:axis + 1], len(at),
                                     *source.shape[axis + 2:]), np.float32)
                place = [slice(None)] * 4
                place[axis + 1] = slice(k, k + len(chunk))
                maps[tuple(place)] = np.moveaxis(prob, 0, axis + 1)
                done += len(chunk)
            if out is None:
                out = np.zeros((maps.shape[0], *iso.shape[1:]), np.float32)
            _add_between(out, maps, axis + 1, at if axis else None)
        yield total, total
        return out

    def _parts(self, x, tile_shape, overlap, cancelled, ranges, zoom=1.0) -> Generator:
        """Yields ``(done, total, z, probabilities)`` for the channel-first image ``x``:
        probabilities (of the piece zoomed by ``zoom``) are None on the progress step
        before each piece of work, ``z`` is None for a whole image and the slice index
        when a 2D model runs on a stack (normalised one slice at a time)."""
        tile = self._tile(tile_shape)
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}.")
        if x.ndim - 1 == self.info.dims:
            yield 0, 1, None, None
            yield 1, 1, None, self._window(_zoomed(apply_ranges(x, ranges), zoom), tile,
                                           overlap, cancelled)
            return
        depth = x.shape[1]
        for z in range(depth):
            yield z, depth, z, None
            yield z + 1, depth, z, self._window(_zoomed(apply_ranges(x[:, z], ranges), zoom),
                                                tile, overlap, cancelled)

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
        """Probabilities ``(K, *spatial)`` of the channel-first image ``x`` by sliding
        windows of ``tile``."""
        return self._windows(x[None], tile, overlap, cancelled)[0]

    def _windows(self, x: np.ndarray, tile, overlap, cancelled) -> np.ndarray:
        """:meth:`_window` of a batch ``(N, C, *spatial)`` of same-shaped images: windows
        of all of them batched, ``_BATCH`` tiles' pixels at a time."""
        from monai.inferers import sliding_window_inference

        roi = _roi(tile, x.shape[2:])
        batch = _windows_per_call(tile, x.shape[2:])
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

        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
            if all(r >= s for r, s in zip(roi, x.shape[2:], strict=True)):
                # one window per image: padded as sliding_window_inference pads (centred,
                # zeros), without its per-call window bookkeeping (a sixth of the planes
                # path's time on small planes)
                before = [(r - s) // 2 for r, s in zip(roi, x.shape[2:], strict=True)]
                pad = []  # torch.nn.functional.pad takes the last axis first
                for b, r, s in reversed(list(zip(before, roi, x.shape[2:], strict=True))):
                    pad += [b, r - s - b]
                crop = (slice(None), slice(None),
                        *(slice(b, b + s) for b, s in zip(before, x.shape[2:], strict=True)))
                padded = torch.nn.functional.pad(t, pad)
                logits = torch.cat([run(padded[k:k + batch])
                                    for k in range(0, len(padded), batch)])[crop]
            else:
                logits = sliding_window_inference(t, roi, batch, run, overlap=overlap,
                                                  mode="gaussian")
            prob = _activate(logits, self.info.activation)
        return prob.float().cpu().numpy()


def _add_between(out: np.ndarray, maps: np.ndarray, axis: int, at: np.ndarray | None = None
                 ) -> None:
    """Add a third of plane maps computed at positions ``at`` along ``axis`` to ``out`` (the
    isotropic grid), linearly interpolated between them: the side planes skipped between
    two computed ones, or (``at`` None) the isotropic YX planes between two of the stack's
    slices, placed as :func:`~napari_medseg.planes.to_isotropic` places them."""
    size = out.shape[axis]
    if at is not None and len(at) > 1 and np.array_equal(at, np.arange(len(at)) * at[1]):
        add_strided(out, maps, axis, int(at[1]), 1 / 3)  # every other plane: no gathering
        return
    source = source_index(maps.shape[axis], size) if at is None else \
        np.interp(np.arange(size), at, np.arange(len(at), dtype=float))
    add_interpolated(out, maps, axis, source, 1 / 3)


def _activate(logits: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "auto":
        activation = "sigmoid" if logits.shape[1] == 1 else "softmax"
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    return torch.softmax(logits, 1) if activation == "softmax" else logits


_FLIPS = ((), (-1,), (-2,), (-2, -1))
_BATCH = 4  # tiles per network call (sliding-window batch)
_SIDE_STRIDE = 2  # every other ZX / ZY plane of a stack goes through the network


def _roi(tile, shape) -> tuple[int, ...]:
    """The sliding window for images of ``shape``: the tile, or the image rounded up to
    multiples of 16 where it is smaller."""
    return tuple(min(t, ceil16(s)) for t, s in zip(tile, shape, strict=True))


def _windows_per_call(tile, shape) -> int:
    """Windows per network call for images of ``shape``: as many as ``_BATCH`` tiles'
    pixels hold (at least ``_BATCH``)."""
    return max(_BATCH, _BATCH * math.prod(tile) // math.prod(_roi(tile, shape)))
_BUILDING = threading.Lock()
_SMALLEST_PASS = 48  # a shrunk first pass is skipped when the image would be smaller
_UP_CROP = 384  # an enlarged pass measures at most this central square of the image


def _central(x: np.ndarray, side: int) -> np.ndarray:
    """The central ``side`` x ``side`` square of the last two axes of ``x`` (or all)."""
    h, w = x.shape[-2:]
    y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return x[..., y0:y0 + side, x0:x0 + side]


def _depths(depth: int) -> list[int]:
    """The slices of a stack a size estimate measures: a quarter, half and three quarters
    of its depth."""
    return sorted({depth // 4, depth // 2, (3 * depth) // 4})


def _zoomed(x: np.ndarray, zoom: float) -> np.ndarray:
    """A channel-first float image or volume zoomed by ``zoom`` along its spatial axes
    (:func:`~napari_medseg._image.resized` in 2D; linear, by scipy, in 3D)."""
    if zoom == 1:
        return x
    if x.ndim == 4:
        return to_isotropic(x, (zoom,) * 3)
    shape = tuple(max(1, round(n * zoom)) for n in x.shape[1:])
    return np.stack([resized(np.ascontiguousarray(c, np.float32), shape) for c in x])


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
