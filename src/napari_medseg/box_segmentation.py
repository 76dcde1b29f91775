"""Box + click segmentation ("frame cut") of one object in a 2D image or 3D stack.

A box around an object, and optionally positive/negative clicks, give its mask.
The work is done by a small click-conditioned U-Net (RITM-style: the clicks are
extra input channels, and so is an optional prior mask) that sees a square crop
around the box resized to a fixed size, so its cost does not depend on the image
or box size. The network is
trained by ``scripts/train_box_click.py`` on the shared DSB2018 nuclei and
shipped in the package.

In 3D the box's middle slice is segmented first and the object is followed
slice by slice up and down (:func:`propagate_mask`), each slice prompted by the
previous slice's mask: as the prior mask channel, and its bounding box (grown by
a margin) as the box.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from scipy import ndimage as ndi

from napari_medseg._image import luminance
from napari_medseg.validation import as_gray2d, as_integer, as_integers, as_point, real_source

if TYPE_CHECKING:  # torch is imported on first use: it takes seconds to load
    import torch

    from napari_medseg.onnx_runtime import OnnxNetwork

__all__ = ["BoxSession", "PropagationReport", "box_click_network", "inference_copy",
           "load_box_click_network",
           "propagate_mask", "propagate_mask_with_report", "save_box_click_network",
           "segment_box"]

CROP = 64  # network input size (pixels)
_CHANNELS = 5  # network input channels: image, box, positive and negative clicks, prior
_CONTEXT = 1.4  # the crop's side, relative to the box's longer side
_CONTEXT_PAD = 8  # extra context (image pixels) for tiny boxes
_CLICK_RADIUS = 3  # click disks in the crop (pixels)
# Masks from a box alone keep probability > 0.35, not 0.5: annotators outline generously
# (chosen on the training set's validation split; figures in docs/box_click.md). With clicks
# or a prior mask, 0.5, what the network's response to them was trained for (lower costs
# clicks there and lets masks grow slice by slice in propagation).
_BOX_ONLY_THRESHOLD = 0.35
WEIGHTS = "box_click_2d.pt"
BOX_CLICK_FORMAT = "napari-medseg/box-click"


def box_click_network() -> torch.nn.Module:
    """The (untrained) network; input channels: image, box, positive and negative clicks, prior."""
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=_CHANNELS, out_channels=1, channels=(24, 48, 96, 192),
                strides=(2, 2, 2), num_res_units=1)


def save_box_click_network(path: str | Path, network: torch.nn.Module,
                           overwrite: bool = False, **meta) -> Path:
    """Write a box + click network (float16 weights) with ``meta`` (how it was trained),
    atomically; an existing file only with ``overwrite``."""
    from napari_medseg.model_files import half_state, save_checkpoint

    return save_checkpoint(path, {"format": BOX_CLICK_FORMAT, "version": 1, "crop": CROP,
                                  "state_dict": half_state(network), **meta}, overwrite)


def load_box_click_network(path: str | Path) -> torch.nn.Module:
    """A box + click network written by :func:`save_box_click_network`, in evaluation
    mode on the CPU (pass it to :class:`BoxSession` as ``network``).

    Raises
    ------
    ValueError
        For a file that is not a box + click network.
    """
    import torch

    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors all mean "not our file"
        raise ValueError(f"{path.name!r} is not a box + click network "
                         f"({type(err).__name__}).") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != BOX_CLICK_FORMAT:
        raise ValueError(f"{path.name!r} is not a box + click network.")
    net = box_click_network()
    try:
        net.load_state_dict({k: v.float() for k, v in checkpoint["state_dict"].items()})
    except RuntimeError as err:
        raise ValueError(f"weights in {path.name!r} do not fit the box + click network: "
                         f"{str(err).splitlines()[0]}") from None
    return net.eval()


def inference_copy(network: torch.nn.Module) -> torch.nn.Module | OnnxNetwork:
    """A box + click network as the tools run it: through ONNX Runtime where it is
    installed (:mod:`napari_medseg.onnx_runtime`: about twice as fast per click), else an
    inference copy with batch norm folded; ``network`` is unchanged."""
    import torch

    from napari_medseg.networks import for_inference
    from napari_medseg.onnx_runtime import onnx_copy

    copy = for_inference(network, 2, channels_last=False)
    return onnx_copy(copy, torch.zeros(1, _CHANNELS, CROP, CROP)) or copy


_MAKING = threading.Lock()


def _shipped_network() -> torch.nn.Module | OnnxNetwork:
    """The shipped network's :func:`inference_copy`, made once: a tool preloads it in a
    thread while the first box may already ask for it, which then waits."""
    with _MAKING:
        return _make_shipped_network()


@functools.cache
def _make_shipped_network() -> torch.nn.Module | OnnxNetwork:
    with resources.as_file(resources.files("napari_medseg.models").joinpath(WEIGHTS)) as file:
        return inference_copy(load_box_click_network(file))


# -- geometry of the crop ----------------------------------------------------------------------
@dataclass(frozen=True)
class CropFrame:
    """Where the network's square crop lies in the image.

    Attributes
    ----------
    box : (y0, x0, y1, x1)
        The (clipped, half-open) box in image pixels.
    origin : (float, float)
        Image ``(y, x)`` of the crop's top-left corner.
    step : float
        Image pixels per crop pixel.
    """

    box: tuple[int, int, int, int]
    origin: tuple[float, float]
    step: float

    @classmethod
    def around(cls, box: tuple[int, int, int, int]) -> CropFrame:
        y0, x0, y1, x1 = box
        side = max(y1 - y0, x1 - x0) * _CONTEXT + _CONTEXT_PAD
        cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
        return cls(box=box, origin=(cy - side / 2, cx - side / 2), step=side / CROP)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Image ``(y, x)`` pixel centres (N, 2) to crop coordinates."""
        return (np.asarray(points, float) + 0.5 - self.origin) / self.step - 0.5

    def sample(self, image: np.ndarray) -> np.ndarray:
        """The crop of a 2D float32 image, (CROP, CROP), border pixels replicated outside."""
        # Read only the region the crop covers (plus one pixel for interpolation).
        h, w = image.shape
        y0 = int(np.clip(np.floor(self.origin[0]) - 1, 0, h - 1))
        x0 = int(np.clip(np.floor(self.origin[1]) - 1, 0, w - 1))
        y1 = int(np.clip(np.ceil(self.origin[0] + CROP * self.step) + 2, y0 + 1, h))
        x1 = int(np.clip(np.ceil(self.origin[1] + CROP * self.step) + 2, x0 + 1, w))
        region = np.ascontiguousarray(image[y0:y1, x0:x1], dtype=np.float32)
        # crop pixel (i, j) centre <- image ((i + .5) * step + origin - .5)
        shift_x = self.origin[1] + 0.5 * self.step - 0.5 - x0
        shift_y = self.origin[0] + 0.5 * self.step - 0.5 - y0
        matrix = np.array([[self.step, 0, shift_x], [0, self.step, shift_y]], np.float64)
        k = int(self.step)
        if k >= 2:  # shrinking: average k x k blocks first (warpAffine does not area-average)
            rh, rw = region.shape[0] // k * k, region.shape[1] // k * k
            if rh and rw:
                region = cv2.resize(region[:rh, :rw], (rw // k, rh // k),
                                    interpolation=cv2.INTER_AREA)
                # block j's centre is at region coordinate k * j + (k - 1) / 2
                matrix = (matrix - [[0, 0, (k - 1) / 2], [0, 0, (k - 1) / 2]]) / k
        return cv2.warpAffine(region, matrix, (CROP, CROP), flags=cv2.INTER_LINEAR
                              | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)

    def to_box(self, crop_map: np.ndarray) -> np.ndarray:
        """A (CROP, CROP) float map resampled onto the box's pixels: (y1 - y0, x1 - x0)."""
        y0, x0, y1, x1 = self.box
        # box pixel (r, c) centre -> crop coordinate
        a = 1.0 / self.step
        bx = (x0 + 0.5 - self.origin[1]) / self.step - 0.5
        by = (y0 + 0.5 - self.origin[0]) / self.step - 0.5
        matrix = np.array([[a, 0, bx], [0, a, by]], np.float64)
        return cv2.warpAffine(np.ascontiguousarray(crop_map, np.float32), matrix,
                              (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)

    def box_channel(self) -> np.ndarray:
        y0, x0, y1, x1 = self.box
        (cy0, cx0), (cy1, cx1) = self.to_crop(np.array([[y0, x0], [y1 - 1, x1 - 1]]))
        channel = np.zeros((CROP, CROP), np.float32)
        channel[max(int(round(cy0)), 0):int(round(cy1)) + 1,
                max(int(round(cx0)), 0):int(round(cx1)) + 1] = 1.0
        return channel


def normalize_crop(crop: np.ndarray) -> np.ndarray:
    """Percentile (1, 99) normalisation of a crop to about [0, 1]; NaN-safe, constant-safe."""
    finite = np.isfinite(crop)
    if not finite.all():
        crop = np.where(finite, crop, crop[finite].min() if finite.any() else 0.0)
    lo, hi = np.percentile(crop, (1, 99))
    if hi - lo < 1e-6 * max(abs(hi), 1.0):
        return np.zeros_like(crop, dtype=np.float32)
    return np.clip((crop - lo) / (hi - lo), -0.5, 1.5).astype(np.float32)


def click_channels(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Disks at clicks given in crop coordinates (N, 2): (2, CROP, CROP) float32."""
    maps = np.zeros((2, CROP, CROP), np.uint8)
    for channel, points in zip(maps, (positive, negative), strict=True):
        for y, x in np.asarray(points, float).reshape(-1, 2):
            cv2.circle(channel, (int(round(x)), int(round(y))), _CLICK_RADIUS, 1, -1)
    return maps.astype(np.float32)


def clean_mask(prob: np.ndarray, positive: np.ndarray, negative: np.ndarray,
               threshold: float = 0.5) -> np.ndarray:
    """Threshold, keep the components the clicks (or the largest) select, fill holes.

    ``positive``/``negative`` are (N, 2) box-relative pixel coordinates.
    """
    mask = prob > threshold
    mask[negative[:, 0], negative[:, 1]] = False
    mask[positive[:, 0], positive[:, 1]] = True
    components, n = ndi.label(mask)
    if n > 1:
        keep = set(components[positive[:, 0], positive[:, 1]].tolist()) - {0}
        if not keep:  # box only: the biggest, weighted by confidence
            scores = ndi.sum(prob, components, index=np.arange(1, n + 1))
            keep = {int(np.argmax(scores)) + 1}
        mask = np.isin(components, list(keep))
    mask = ndi.binary_fill_holes(mask)
    mask[negative[:, 0], negative[:, 1]] = False  # a negative click wins over hole filling
    return mask


def prior_box(mask: np.ndarray, offset: Sequence[int] = (0, 0)) -> tuple[int, int, int, int]:
    """The box a prior mask is given with: its bounding box grown by 15% of its longer
    side + 2 px (training draws its boxes so; unclipped, half-open ``(y0, x0, y1, x1)``).

    Examples
    --------
    >>> mask = np.zeros((10, 10), bool)
    >>> mask[2:6, 3:5] = True
    >>> prior_box(mask, offset=(100, 0))
    (99, 0, 109, 8)
    """
    ys, xs = np.nonzero(mask)
    margin = int(np.ceil(0.15 * (max(np.ptp(ys), np.ptp(xs)) + 1))) + 2
    return (int(offset[0] + ys.min() - margin), int(offset[1] + xs.min() - margin),
            int(offset[0] + ys.max() + 1 + margin), int(offset[1] + xs.max() + 1 + margin))


# -- the session -------------------------------------------------------------------------------
@dataclass
class BoxSession:
    """Interactive segmentation of one object given its box, refined by clicks.

    The crop around the box is prepared once; each click costs one small
    network pass (a few ms on a CPU whatever the box size).

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Y, X, 3|4)
        Any real dtype (colour is converted to luminance). Not modified.
    box : (y0, x0, y1, x1)
        Half-open box in pixels; clipped to the image.
    prior : ndarray of bool, optional
        A rough mask of the object to start from (e.g. the object on the
        neighbouring slice): image-sized, or a crop placed at ``prior_offset``.
    prior_offset : (int, int)
        Position of ``prior`` in the image.

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, labels = nuclei_2d()
    >>> session = BoxSession(image, (234, 100, 251, 118))  # around nucleus 1
    >>> session.mask.shape             # bool, placed at session.offset
    (17, 18)
    >>> mask = session.add_click((242, 108))  # a positive click refines it
    """

    image: np.ndarray
    box: tuple[int, int, int, int]
    prior: np.ndarray | None = None
    prior_offset: tuple[int, int] = (0, 0)
    network: torch.nn.Module | OnnxNetwork | None = None
    positive: list[tuple[int, int]] = field(default_factory=list)
    negative: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self):
        self.image = as_gray2d(self.image)
        self.network = self.network or _shipped_network()
        if self.prior is not None and np.ndim(self.prior) != 2:
            raise ValueError(f"prior mask must be 2D, got shape {np.shape(self.prior)}.")
        self._set_box(self.box)
        prior = (np.zeros((CROP, CROP), np.float32) if self.prior is None
                 else self._prior_channel(self.prior, self.prior_offset))
        # The prior channel of each pass: the given prior, then (RITM-style) the mask that the
        # click being added corrects, so clicks change the mask locally.
        self._priors = [prior]
        self._order: list[bool] = []  # click order (True = positive), for undo
        self._grown: dict[int, tuple] = {}  # click index -> the state before it grew the box
        self.mask = self._predict()

    def _set_box(self, box: Sequence[int]) -> None:
        """Take ``box`` (clipped): its crop frame and the crop and box channels."""
        self.box = clip_box(box, self.image.shape)
        self._frame = CropFrame.around(self.box)
        y0, x0, y1, x1 = self.box
        # nothing to segment in a constant box (non-finite values are constant too here)
        self._flat = bool(np.ptp(self.image[y0:y1, x0:x1]) == 0)
        self._static = np.stack([normalize_crop(self._frame.sample(self.image)),
                                 self._frame.box_channel()])

    def _prior_channel(self, mask: np.ndarray, offset: Sequence[int]) -> np.ndarray:
        """A mask placed at ``offset`` in the image as the crop's prior channel. Outside the
        mask's array it is False (a tight crop's edge pixels are not smeared outwards),
        except beyond the image's own edges, which the crop replicates as training did."""
        mask = np.asarray(mask, np.uint8)
        (oy, ox), (h, w) = offset, self.image.shape
        pad = ((int(oy > 0), int(oy + mask.shape[0] < h)),
               (int(ox > 0), int(ox + mask.shape[1] < w)))
        mask = np.pad(mask, pad)
        shifted = CropFrame(self.box, (self._frame.origin[0] - oy + pad[0][0],
                                       self._frame.origin[1] - ox + pad[1][0]),
                            self._frame.step)
        return (shifted.sample(mask) > 0.5).astype(np.float32)

    @property
    def clicks(self) -> int:
        """How many clicks the mask holds (a negative click outside the box is not one)."""
        return len(self._order)

    @property
    def offset(self) -> tuple[int, int]:
        """Position of :attr:`mask` in the image: the box's top-left corner."""
        return self.box[0], self.box[1]

    def add_click(self, point: Sequence[float], positive: bool = True) -> np.ndarray:
        """Add a click ``(y, x)``; return the updated box-sized mask.

        A positive click outside the box says the object reaches there: the box grows to
        take it in (with the current mask as the prior of the larger crop). A negative
        click outside it is already satisfied: nothing changes and nothing is recorded.
        """
        h, w = self.image.shape
        y, x = as_point(point, "click", (0, 0, h, w), f"the {h}x{w} image")
        y0, x0, y1, x1 = self.box
        if not (y0 <= y < y1 and x0 <= x < x1):
            if not positive:
                return self.mask
            self._grow_to((y, x))
        (self.positive if positive else self.negative).append((y, x))
        self._order.append(bool(positive))
        self._priors.append((self._logits > 0).astype(np.float32))
        self.mask = self._predict()
        return self.mask

    def _grow_to(self, point: tuple[int, int]) -> None:
        """Grow the box to hold ``point``: the prior box of the current mask and the
        point, joined with the old box."""
        self._grown[len(self._order)] = (self.box, self._frame, self._static, self._flat,
                                         self._priors, self._logits, self._prob, self.mask)
        y0, x0, y1, x1 = self.box
        mask = np.zeros((max(y1, point[0] + 1) - min(y0, point[0]),
                         max(x1, point[1] + 1) - min(x0, point[1])), bool)
        corner = (min(y0, point[0]), min(x0, point[1]))
        mask[y0 - corner[0]:y1 - corner[0], x0 - corner[1]:x1 - corner[1]] = self.mask
        mask[point[0] - corner[0], point[1] - corner[1]] = True
        grown = prior_box(mask, corner)
        self._set_box((min(grown[0], y0), min(grown[1], x0), max(grown[2], y1),
                       max(grown[3], x1)))
        prior = self._prior_channel(self.mask, (y0, x0))
        self._priors = [prior]
        self._logits = np.where(prior > 0, 20.0, -20.0).astype(np.float32)

    def undo_click(self) -> np.ndarray:
        """Remove the most recent click (and the growth of the box it caused); return the
        updated mask."""
        if self._order:
            (self.positive if self._order.pop() else self.negative).pop()
            grown = self._grown.pop(len(self._order), None)
            if grown is None:
                self._priors.pop()
                self.mask = self._predict()
            else:
                (self.box, self._frame, self._static, self._flat, self._priors,
                 self._logits, self._prob, self.mask) = grown
        return self.mask

    def full_mask(self) -> np.ndarray:
        """The mask in a full-size image array (for small images and tests)."""
        full = np.zeros(self.image.shape, bool)
        y0, x0, y1, x1 = self.box
        full[y0:y1, x0:x1] = self.mask
        return full

    def probabilities(self) -> np.ndarray:
        """Object probability on the box's pixels, float32."""
        return self._prob

    def _predict(self) -> np.ndarray:
        pos = np.asarray(self.positive, float).reshape(-1, 2)
        neg = np.asarray(self.negative, float).reshape(-1, 2)
        clicks = click_channels(self._frame.to_crop(pos), self._frame.to_crop(neg))
        x = np.concatenate([self._static, clicks, self._priors[-1][None]])
        if self._flat:
            self._logits = np.full((CROP, CROP), -20.0, np.float32)
            self._prob = np.zeros((self.box[2] - self.box[0], self.box[3] - self.box[1]),
                                  np.float32)
            return self._prob > 0
        import torch

        with torch.inference_mode():
            self._logits = self.network(torch.from_numpy(x[None]))[0, 0].float().numpy()
        self._prob = 1.0 / (1.0 + np.exp(-self._frame.to_box(self._logits)))
        corner = np.array(self.box[:2])
        return clean_mask(self._prob, (pos - corner).astype(int), (neg - corner).astype(int),
                          threshold=0.5 if self._order or self.prior is not None
                          else _BOX_ONLY_THRESHOLD)


# -- public functions --------------------------------------------------------------------------
def segment_box(
    image: np.ndarray,
    box: Sequence[int],
    positive: Sequence[Sequence[float]] = (),
    negative: Sequence[Sequence[float]] = (),
) -> np.ndarray:
    """Mask of the object inside ``box``, refined by positive/negative clicks.

    Parameters
    ----------
    image : ndarray, shape (Y, X), (Y, X, 3|4) or (Z, Y, X)
        Any real dtype (8/16-bit, float, negative CT values). Not modified.
    box : (y0, x0, y1, x1) or (z0, y0, x0, z1, y1, x1)
        Half-open pixel box, clipped to the image.
    positive, negative : sequence of (y, x) or (z, y, x)
        Clicks on the object / on what is not the object, inside the image. A positive
        click outside the box grows the box to take it in; a negative one outside it is
        already satisfied.

    Returns
    -------
    ndarray of bool, the image's spatial shape

    Raises
    ------
    ValueError
        For a box that is empty after clipping, clicks outside the image, or an
        image that is not 2D, 2D colour or 3D real-valued.

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, labels = nuclei_2d()
    >>> mask = segment_box(image, (234, 100, 251, 118))  # around nucleus 1
    >>> mask.shape, bool(mask[242, 108])
    ((384, 384), True)
    """
    image = np.asarray(image)
    values = np.asarray(box, float).ravel()
    if not np.isfinite(values).all():
        raise ValueError(f"box coordinates must be finite numbers, got {box!r}.")
    box = tuple(int(round(v)) for v in values)
    if len(box) == 4:
        session = BoxSession(image, box)
        for point in positive:
            session.add_click(point, positive=True)
        for point in negative:
            session.add_click(point, positive=False)
        return session.full_mask()
    if len(box) != 6:
        raise ValueError(f"box must be (y0, x0, y1, x1) or (z0, y0, x0, z1, y1, x1), got {box}.")
    if image.ndim != 3:
        raise ValueError(f"a 3D box needs a 3D (Z, Y, X) image, got shape {image.shape}.")
    z0, y0, x0, z1, y1, x1 = box
    z0, z1 = max(z0, 0), min(z1, image.shape[0])
    if z1 <= z0:
        raise ValueError(f"box {box} has no slice inside the {image.shape[0]}-slice image.")
    yx_box = clip_box((y0, x0, y1, x1), image.shape[1:])
    # a positive click outside the box says the object reaches there: the box takes it in;
    # a negative one outside it is already satisfied
    clicks, inside = {}, (0, 0, 0, *image.shape)
    for sign, points in ((True, positive), (False, negative)):
        for p in points:
            z, y, x = as_point(p, "click", inside, f"the {image.shape} image")
            if not (z0 <= z < z1 and yx_box[0] <= y < yx_box[2] and yx_box[1] <= x < yx_box[3]):
                if not sign:
                    continue
                z0, z1 = min(z0, z), max(z1, z + 1)
                yx_box = clip_box((min(yx_box[0], y - 2), min(yx_box[1], x - 2),
                                   max(yx_box[2], y + 3), max(yx_box[3], x + 3)), image.shape[1:])
            clicks.setdefault(z, []).append(((y, x), sign))
    start = min(clicks, key=lambda z: abs(z - (z0 + z1 - 1) / 2)) if clicks else (z0 + z1) // 2
    session = BoxSession(image[start], yx_box)
    for point, sign in clicks.get(start, []):
        session.add_click(point, positive=sign)
    out = np.zeros(image.shape, bool)
    stack, (z, y, x) = propagate_mask(image, start, session.mask, session.offset,
                                      z_range=(z0, z1), clicks=clicks, limit_box=yx_box)
    out[z:z + stack.shape[0], y:y + stack.shape[1], x:x + stack.shape[2]] = stack
    return out


@dataclass
class PropagationReport:
    """Where and why propagation ended on each side.

    Attributes
    ----------
    ends : dict
        ``{-1: reason, 1: reason}`` for the slices below and above the start: why
        the object was not continued there ("the volume's first slice", "the
        mask grew 1.9 times from one slice to the next", ...).
    stopped_at : dict
        ``{-1: z, 1: z}``: the first slice not taken on each side (the range's end
        when the range ran out).
    """

    ends: dict[int, str] = field(default_factory=dict)
    stopped_at: dict[int, int] = field(default_factory=dict)

    def message(self) -> str:
        """The ends in words, e.g. "below: ...; above: ..."."""
        return "; ".join(f"{'below' if d < 0 else 'above'} slice {self.stopped_at[d]}: "
                         f"{self.ends[d]}" for d in sorted(self.ends))


def propagate_mask(
    volume: np.ndarray,
    index: int,
    mask: np.ndarray,
    offset: tuple[int, int] = (0, 0),
    z_range: tuple[int, int] | None = None,
    clicks: dict | None = None,
    min_fraction: float = 0.2,
    limit_box: tuple[int, int, int, int] | None = None,
    min_contrast: float = 0.4,
    max_growth: float = 1.5,
    method: str = "network",
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Follow an object from slice ``index`` up and down a (Z, Y, X) volume.

    Each next slice is segmented with the previous slice's mask as the prior and
    its bounding box (grown by a margin) as the box. The object ends, on each side,
    at the first slice whose mask is empty, does not overlap the previous one,
    shrinks below ``min_fraction`` of it, grows by more than ``max_growth`` times
    from one slice to the next or to more than twice ``max_growth`` times the first
    slice's area (a leak into the surroundings), runs into the image border where
    the first slice did not, or stands out from its surroundings by less than
    ``min_contrast`` of the contrast on slice ``index``
    (:func:`propagate_mask_with_report` says which). Only the region around the
    object is read.

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X) or (Z, Y, X, 3|4)
        Any real dtype, or RGB(A); a view (e.g. ``np.moveaxis`` of a larger array)
        is fine. Only the region around the object is read (and converted).
    index : int
        Slice holding ``mask``.
    mask : ndarray of bool, shape (H, W)
        The object on slice ``index``, a crop placed at ``offset`` ``(y, x)``.
    offset : (int, int)
        Position of ``mask`` in the slice.
    z_range : (int, int), optional
        Half-open slice range to stay in (default: the whole volume).
    clicks : dict, optional
        ``{z: [((y, x), positive), ...]}`` extra clicks per slice.
    min_fraction : float
        Smallest area, relative to the previous slice, that still continues the object.
    limit_box : (y0, x0, y1, x1), optional
        Keep every slice's box inside this one (the user's 3D box).
    min_contrast : float
        Fraction of the first slice's object/surroundings contrast below which
        the object has ended (the network would otherwise copy its prior).
    max_growth : float
        Largest growth of the area from one slice to the next (by more than 50
        pixels) that still continues the object.
    method : {"network", "intensity"}
        How each next slice is segmented: the box + click network with the previous
        mask as its prior, or, for organs of CT and MR volumes, which the network
        knows little of, the pixels within ``INTENSITY_REACH`` pixels of the previous
        mask whose smoothed value lies within ``INTENSITY_SPREAD`` standard deviations
        of the first slice's object and is more common in that object than around it
        (``clicks`` are the network's only).

    Returns
    -------
    stack : ndarray of bool, shape (K, H', W')
        The object on ``K`` consecutive slices (``mask``'s slice included), cropped
        to its bounding box.
    corner : (z, y, x)
        Position of ``stack`` in the volume.

    Examples
    --------
    >>> from napari_medseg import nuclei_3d
    >>> volume, labels, _ = nuclei_3d()
    >>> start = labels[16] == 30  # nucleus 30 on slice 16
    >>> stack, corner = propagate_mask(volume, 16, start)
    >>> stack.dtype, len(corner)
    (dtype('bool'), 3)
    """
    stack, corner, _ = propagate_mask_with_report(
        volume, index, mask, offset, z_range, clicks, min_fraction, limit_box, min_contrast,
        max_growth, method)
    return stack, corner


def propagate_mask_with_report(
    volume: np.ndarray,
    index: int,
    mask: np.ndarray,
    offset: tuple[int, int] = (0, 0),
    z_range: tuple[int, int] | None = None,
    clicks: dict | None = None,
    min_fraction: float = 0.2,
    limit_box: tuple[int, int, int, int] | None = None,
    min_contrast: float = 0.4,
    max_growth: float = 1.5,
    method: str = "network",
) -> tuple[np.ndarray, tuple[int, int, int], PropagationReport]:
    """:func:`propagate_mask`, also returning where and why the object ended on each side.

    Examples
    --------
    >>> from napari_medseg import nuclei_3d
    >>> volume, labels, _ = nuclei_3d()
    >>> stack, corner, report = propagate_mask_with_report(volume, 16, labels[16] == 30)
    >>> sorted(report.ends)
    [-1, 1]
    """
    volume = real_source(volume, "volume")  # a lazy volume is read slice region by region
    if not (volume.ndim == 3 or (volume.ndim == 4 and volume.shape[-1] in (3, 4))):
        raise ValueError(f"propagation needs a (Z, Y, X) volume (or RGB), got shape "
                         f"{volume.shape}.")
    index = as_integer(index, "index", 0, volume.shape[0] - 1)
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != bool:
        raise ValueError(f"mask must be a 2D boolean array, got shape {mask.shape} and dtype "
                         f"{mask.dtype}.")
    offset = as_integers(offset, "offset", length=2)
    if method not in ("network", "intensity"):
        raise ValueError(f"method must be 'network' or 'intensity', got {method!r}.")
    if not all(-m < o < n for o, m, n in zip(offset, mask.shape, volume.shape[1:3],
                                               strict=True)):
        raise ValueError(f"the mask ({mask.shape}) at offset {offset} lies outside the "
                         f"{volume.shape[1]}x{volume.shape[2]} slice.")
    lo, hi = z_range or (0, volume.shape[0])
    limit = clip_box(limit_box, volume.shape[1:3]) if limit_box is not None else None
    clicks = clicks or {}
    slices = {index: (np.asarray(mask, bool), tuple(int(v) for v in offset))}
    reference = _contrast(volume[index], *slices[index])
    start_area = int(mask.sum())
    start_border = _on_border(mask, slices[index][1], volume.shape[1:3])
    if method == "intensity":
        step = _IntensityStep(volume[index], *slices[index])
    report = PropagationReport()
    for direction in (-1, 1):
        previous, at = slices[index]
        z = index + direction
        report.ends[direction] = ("the volume's first slice" if direction < 0
                                  else "the volume's last slice")
        if z_range is not None:
            report.ends[direction] = "the end of the slice range"
        while lo <= z < hi and previous.any():
            box = prior_box(previous, at)
            if limit is not None:
                box = (max(box[0], limit[0]), max(box[1], limit[1]),
                       min(box[2], limit[2]), min(box[3], limit[3]))
            if method == "intensity":
                current, where = step(volume[z], previous, at)
            else:
                session = BoxSession(volume[z], clip_box(box, volume.shape[1:3]),
                                     prior=previous, prior_offset=at)
                for point, sign in clicks.get(z, []):
                    session.add_click(point, positive=sign)
                current, where = session.mask, session.offset
            area, before = int(current.sum()), int(previous.sum())
            why = None
            if area == 0:
                why = "the object ended (nothing found)"
            elif area < min_fraction * before:
                why = f"the mask shrank below {min_fraction:.0%} of the previous slice's"
            elif area > max_growth * before and area - before > 50:
                why = (f"the mask grew {area / before:.1f} times from one slice to the next "
                       "(a leak into the surroundings?)")
            elif area > 2 * max_growth * start_area and area - start_area > 50:
                why = (f"the mask grew to {area / start_area:.1f} times the first slice's area "
                       "(a leak into the surroundings?)")
            elif not _overlap(previous, at, current, where):
                why = "the mask no longer overlaps the previous slice's"
            elif not start_border and _on_border(current, where, volume.shape[1:3]):
                why = "the mask ran into the image border, where the first slice's did not"
            # "not >": a NaN contrast ends the object too, and so does none at all (a
            # constant volume: a first slice that stands out by 0 lets anything through)
            elif not _contrast(volume[z], current, where) > max(min_contrast * reference, 0):
                why = "the object no longer stands out from its surroundings"
            if why is not None:
                report.ends[direction] = why
                break
            slices[z] = (current, where)
            previous, at = current, where
            z += direction
        report.stopped_at[direction] = z
    return (*_assemble(slices), report)


INTENSITY_REACH = 1  # pixels an outline may move per slice (method="intensity")
INTENSITY_SPREAD = 2.5  # standard deviations of the first slice's object values it accepts
INTENSITY_SMOOTH = 0.7  # Gaussian sigma (pixels) of the values compared: CT/MR noise
INTENSITY_RING = 4  # width (pixels) of the first slice's surroundings the object is told from
_BINS = 64


class _IntensityStep:
    """One slice of intensity propagation: the pixels within ``INTENSITY_REACH`` of the
    previous mask whose smoothed value is that of the first slice's object (its median,
    within ``INTENSITY_SPREAD`` of their standard deviation) and is more
    common in the object than in its surroundings on the first slice (a ring of
    ``INTENSITY_RING`` pixels: neighbouring organs of about the same value, fat, air),
    opened once, the parts touching the previous mask kept, holes filled. The surroundings
    test is what stops an organ from spreading into its neighbour where it ends. Chosen on
    the shared MR's organs and the CT's other organs (benchmarks/box_click.py)."""

    def __init__(self, image: np.ndarray, mask: np.ndarray, at: tuple[int, int]):
        placed, corner = _placed(mask, at, INTENSITY_RING + 3, image.shape[:2])
        region = self._smoothed(_grey(image, placed.shape, corner, np.float32))
        values = region[placed]
        self.centre = float(np.median(values))
        self.spread = INTENSITY_SPREAD * max(float(values.std()), 1e-6)
        ring = ndi.binary_dilation(placed, iterations=INTENSITY_RING) & ~placed
        self.edges = np.linspace(values.min() - 3 * self.spread,
                                 values.max() + 3 * self.spread, _BINS + 1)
        inside = np.histogram(values, self.edges)[0] + 0.5
        around = np.histogram(region[ring], self.edges)[0] + 0.5
        # shares of all object / all ring pixels: a ring mostly of fat leaves the
        # object's values to the object
        self.inside = ndi.gaussian_filter1d(inside / inside.sum(), 1.5)
        self.around = ndi.gaussian_filter1d(around / max(np.count_nonzero(ring), 1), 1.5)

    @staticmethod
    def _smoothed(region: np.ndarray) -> np.ndarray:
        return ndi.gaussian_filter(region, INTENSITY_SMOOTH)

    def __call__(self, image: np.ndarray, previous: np.ndarray, at: tuple[int, int]
                 ) -> tuple[np.ndarray, tuple[int, int]]:
        # one more pixel than the reach for the opening, three for the smoothing
        prior, (y0, x0) = _placed(previous, at, INTENSITY_REACH + 4, image.shape[:2])
        values = self._smoothed(_grey(image, prior.shape, (y0, x0), np.float32))
        grown = ndi.binary_dilation(prior, iterations=INTENSITY_REACH)
        bins = np.clip(np.searchsorted(self.edges, values) - 1, 0, _BINS - 1)
        alike = ((np.abs(values - self.centre) <= self.spread)
                 & (self.inside[bins] >= self.around[bins]))
        found = ndi.binary_opening(grown & alike)
        parts, _ = ndi.label(found)
        touching = np.unique(parts[found & prior])
        found = ndi.binary_fill_holes(np.isin(parts, touching[touching > 0]))
        if not found.any():
            return found[:0, :0], (y0, x0)
        ys, xs = ndi.find_objects(found.astype(np.uint8))[0]
        return found[ys, xs], (y0 + ys.start, x0 + xs.start)


def _placed(mask: np.ndarray, at: tuple[int, int], pad: int, shape: tuple[int, int]
            ) -> tuple[np.ndarray, tuple[int, int]]:
    """A mask crop placed at ``at`` inside its region grown by ``pad`` pixels (clipped to a
    ``shape`` slice): the region's mask and its corner."""
    y0, x0 = max(at[0] - pad, 0), max(at[1] - pad, 0)
    y1 = min(at[0] + mask.shape[0] + pad, shape[0])
    x1 = min(at[1] + mask.shape[1] + pad, shape[1])
    placed = np.zeros((y1 - y0, x1 - x0), bool)
    placed[at[0] - y0:at[0] - y0 + mask.shape[0], at[1] - x0:at[1] - x0 + mask.shape[1]] = mask
    return placed, (y0, x0)


def _grey(image: np.ndarray, shape: tuple[int, int], corner: tuple[int, int], dtype
          ) -> np.ndarray:
    """The ``shape`` region at ``corner`` of a slice as grey values (RGB as luminance)."""
    region = image[corner[0]:corner[0] + shape[0], corner[1]:corner[1] + shape[1]]
    return np.asarray(luminance(region) if region.ndim == 3 else region, dtype)


def _on_border(mask: np.ndarray, at: tuple[int, int], shape: tuple[int, int]) -> bool:
    """Whether a mask crop placed at ``at`` touches the edge of a ``shape`` slice."""
    ys, xs = np.nonzero(mask)
    if not ys.size:
        return False
    return bool(at[0] + ys.min() <= 0 or at[1] + xs.min() <= 0
                or at[0] + ys.max() >= shape[0] - 1 or at[1] + xs.max() >= shape[1] - 1)


def _contrast(image: np.ndarray, mask: np.ndarray, at: tuple[int, int]) -> float:
    """|mean inside - mean of a 3 px ring around| of a mask crop placed at ``at``."""
    if not mask.any():
        return 0.0
    pad = 3
    inside, corner = _placed(mask, at, pad, image.shape[:2])
    ring = ndi.binary_dilation(inside, iterations=pad) & ~inside
    region = _grey(image, inside.shape, corner, np.float64)
    if not ring.any():
        return float("inf")
    return abs(float(np.nanmean(region[inside])) - float(np.nanmean(region[ring])))


def _overlap(a: np.ndarray, a_at, b: np.ndarray, b_at) -> bool:
    y0, x0 = max(a_at[0], b_at[0]), max(a_at[1], b_at[1])
    y1 = min(a_at[0] + a.shape[0], b_at[0] + b.shape[0])
    x1 = min(a_at[1] + a.shape[1], b_at[1] + b.shape[1])
    if y1 <= y0 or x1 <= x0:
        return False
    return bool((a[y0 - a_at[0]:y1 - a_at[0], x0 - a_at[1]:x1 - a_at[1]]
                 & b[y0 - b_at[0]:y1 - b_at[0], x0 - b_at[1]:x1 - b_at[1]]).any())


def _assemble(slices: dict) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Per-slice (mask, offset) crops -> one (K, H, W) stack and its corner."""
    first, last = min(slices), max(slices)
    y0 = min(at[0] for _, at in slices.values())
    x0 = min(at[1] for _, at in slices.values())
    y1 = max(at[0] + m.shape[0] for m, at in slices.values())
    x1 = max(at[1] + m.shape[1] for m, at in slices.values())
    stack = np.zeros((last - first + 1, y1 - y0, x1 - x0), bool)
    for z, (m, at) in slices.items():
        stack[z - first, at[0] - y0:at[0] - y0 + m.shape[0], at[1] - x0:at[1] - x0 + m.shape[1]] = m
    return stack, (first, y0, x0)


def clip_box(box: Sequence[float], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Round a half-open ``(y0, x0, y1, x1)`` box to pixels and clip it to ``shape``;
    refuse anything else, and empty results."""
    values = np.asarray(box, float) if not isinstance(box, str) else np.array([])
    if values.shape != (4,) or not np.isfinite(values).all():
        raise ValueError(f"box must be four finite numbers (y0, x0, y1, x1), got {box!r}.")
    y0, x0, y1, x1 = (int(v) for v in np.rint(values))
    h, w = shape[:2]
    cy0, cx0, cy1, cx1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
    if cy1 <= cy0 or cx1 <= cx0:
        raise ValueError(f"box {(y0, x0, y1, x1)} is empty or outside the {h}x{w} image.")
    return cy0, cx0, cy1, cx1
