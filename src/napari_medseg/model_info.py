"""What a segmentation model is and how to feed it: :class:`ModelInfo`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from napari_medseg.object_size import as_diameter
from napari_medseg.validation import holds_colour, is_colour

__all__ = ["ACTIVATIONS", "NORMALIZATIONS", "OUTPUTS", "VOLUMES", "ModelInfo"]

OUTPUTS = ("semantic", "instance-boundary")
ACTIVATIONS = ("auto", "sigmoid", "softmax", "none")
NORMALIZATIONS = ("percentiles", "mean-std")
VOLUMES = ("slices", "planes")


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
    volume : {"slices", "planes"}
        How a 2D model runs on a stack: "slices", slice by slice with instances
        linked across slices; "planes", on the YX, ZX and ZY planes of the stack
        resampled to isotropic voxels, averaged, then one 3D watershed
        (:mod:`napari_medseg.planes`).
    colour : bool or None
        Whether the training images were colour (RGB, or colour used as grey);
        None when not recorded (models from elsewhere).
    bright_objects : bool or None
        Whether the objects were brighter than their background in the training
        images (fluorescence) or darker (brightfield, H&E); None when not recorded.
    diameter : float or None
        The training images' typical object diameter in pixels (the median of each
        image's median, :func:`~napari_medseg.object_size.median_diameter`): images whose
        objects are far from it are zoomed to it before the network. None when not
        recorded (models from elsewhere, semantic models): images run as they are.
    interior_threshold, foreground_threshold : float
        Instance models: the post-processing thresholds segmenting uses unless given
        (:func:`~napari_medseg.instances.instances_from_boundary`), chosen with the model
        on validation data (0.5 unless recorded).
    replay : str or None
        The built-in model whose rehearsal set (crops of its training images,
        :func:`~napari_medseg.model_files.read_replay_set`) fine-tuning this model mixes
        in by default; models fine-tuned from it keep it. None: no rehearsal.

    Examples
    --------
    >>> info = ModelInfo("unet", dims=2, in_channels=1, classes=["background", "nucleus"])
    >>> info.tile_shape
    (256, 256)
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
    volume: str = "slices"
    colour: bool | None = None
    bright_objects: bool | None = None
    diameter: float | None = None
    interior_threshold: float = 0.5
    foreground_threshold: float = 0.5
    replay: str | None = None

    @property
    def trained_on(self) -> str:
        """The training images in words, e.g. "grey images with bright objects"."""
        if self.colour is None and self.bright_objects is None:
            return ""
        kind = {None: "", True: "colour ", False: "grey "}[self.colour]
        objects = {None: "", True: " with bright objects", False: " with dark objects"}
        return f"{kind}images{objects[self.bright_objects]}"

    def mismatch(self, image: np.ndarray) -> str:
        """Why ``image`` does not look like this model's training images ("" if it does)."""
        image = np.asarray(image)
        colour, name = holds_colour(image), self.name or "the model"
        if self.colour is False and colour:
            return f"a colour image, but {name} was trained on grey images"
        if colour:
            return ""
        grey = image[..., 0] if is_colour(image) else image
        if self.bright_objects is True and _bright_background(grey):
            return (f"an image with a bright background, but {name} was trained on bright "
                    "objects on a dark background")
        if self.colour is True and self.bright_objects is False and not _bright_background(grey):
            return (f"a grey image with a dark background, but {name} was trained on colour "
                    "images of dark objects on a bright background")
        return ""

    @classmethod
    def from_mapping(cls, values: dict, source: str) -> ModelInfo:
        """The description stored in a model file ``source``, refusing unknown or wrong
        fields with a message naming the file."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{source!r}: unknown model fields {unknown}.")
        try:
            return cls(**values)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source!r}: its model description is invalid ({err}).") from None

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
        for name in ("colour", "bright_objects"):
            if getattr(self, name) not in (None, True, False):
                raise ValueError(f"{name} must be true, false or unset, got "
                                 f"{getattr(self, name)!r}.")
        if self.volume not in VOLUMES:
            raise ValueError(f"volume must be one of {VOLUMES}, got {self.volume!r}.")
        if self.output == "instance-boundary" and len(self.classes) != 3:
            raise ValueError("an instance-boundary model has 3 outputs: background, interior, "
                             "boundary.")
        self.percentiles = tuple(float(p) for p in self.percentiles)
        self.tile_shape = tuple(int(t) for t in self.tile_shape)
        if self.spacing is not None:
            self.spacing = tuple(float(s) for s in self.spacing)
        if self.diameter is not None:
            self.diameter = as_diameter(self.diameter)
        for name in ("interior_threshold", "foreground_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}.")
            setattr(self, name, float(value))


def _bright_background(image: np.ndarray) -> bool:
    """Whether most of a grey image is bright (as brightfield is), from a subsample: its
    median lies in the upper half of its 1-99.8 percentile range."""
    values = np.asarray(image, np.float64).ravel()[:: max(1, image.size // 200_000)]
    values = values[np.isfinite(values)]
    if values.size < 16:
        return False
    lo, median, hi = np.percentile(values, (1, 50, 99.8))
    return bool(hi > lo and (median - lo) > 0.5 * (hi - lo))
