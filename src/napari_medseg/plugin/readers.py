"""npe2 reader: NIfTI, TIFF, PNG / JPEG / BMP files and OME-Zarr / zarr folders as napari
layers (grey stored as RGB read as grey, label maps as Labels)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from napari.types import LayerDataTuple

from napari_medseg.display import auto_contrast
from napari_medseg.io import ImageFile, is_image_path, read_image
from napari_medseg.plugin.view_planes import axis_names

__all__ = ["NIFTI_PATTERNS", "get_reader", "image_file_to_layer_data", "prefer_this_reader"]

PathLike = str | Path


def get_reader(path: PathLike | list[PathLike]) -> Callable[..., list[LayerDataTuple]] | None:
    """Return a reader if every path is a NIfTI, TIFF, PNG, JPEG or BMP file or a zarr
    folder, else None."""
    paths = [path] if isinstance(path, str | Path) else list(path)
    if paths and all(is_image_path(p) for p in paths):
        return read_layers
    return None


# napari's own reader cannot read these at all: MedSeg is their reader without asking
NIFTI_PATTERNS = ("*.nii", "*.nii.gz")


def prefer_this_reader(replace: bool = False, patterns: Sequence[str] | None = None
                       ) -> list[str]:
    """Make MedSeg napari's remembered reader for the files it reads; return the patterns set.

    napari asks which plugin should open a file that several can read (its own reader
    claims NIfTI, TIFF and zarr too, without voxel sizes or labels) and can remember the
    answer per extension; this remembers MedSeg for every pattern of our manifest at
    once (or ``patterns`` of it). A choice the user made for a pattern is kept unless
    ``replace``.
    ``viewer.open(path)`` without ``plugin=`` does not consult it: napari's default
    there is its own reader (pass ``plugin=None`` or ``"napari-medseg"``).
    """
    from napari.settings import get_settings
    from npe2 import PluginManager

    manifest = PluginManager.instance().get_manifest("napari-medseg")
    ours = [p for reader in manifest.contributions.readers for p in reader.filename_patterns]
    patterns = [p for p in ours if patterns is None or p in patterns]
    plugins = get_settings().plugins
    chosen = dict(plugins.extension2reader)
    changed = [p for p in patterns if replace or p not in chosen]
    plugins.extension2reader = {**chosen, **dict.fromkeys(changed, manifest.name)}
    return changed


def read_layers(path: PathLike | list[PathLike]) -> list[LayerDataTuple]:
    """Read one or several files into napari layer data tuples."""
    paths = [path] if isinstance(path, str | Path) else list(path)
    return [image_file_to_layer_data(f) for p in paths for f in read_image(p)]


def image_file_to_layer_data(image: ImageFile) -> LayerDataTuple:
    """Turn an :class:`~napari_medseg.io.ImageFile` into a ``(data, kwargs, type)`` tuple."""
    kwargs: dict = {
        "name": image.name,
        "scale": image.scale,
        "translate": image.translate,
        "metadata": {**image.metadata, "axes": image.axes, "units": image.units},
    }
    if image.multiscale:
        kwargs["multiscale"] = True
    full = image.data[0] if image.multiscale else image.data
    if image.channel_axis is None:  # the viewer's axes say what they are, "z (µm)"
        kwargs["axis_labels"] = axis_names(full.ndim - image.rgb, kwargs["metadata"])
    if image.kind == "labels":
        return image.data, kwargs, "labels"
    if image.rgb:
        kwargs["rgb"] = True
    elif image.channel_axis is not None:
        # Scale/translate are per layer after napari splits the channels.
        axis = image.channel_axis
        kwargs["channel_axis"] = axis
        kwargs["scale"] = tuple(s for i, s in enumerate(image.scale) if i != axis)
        kwargs["translate"] = tuple(t for i, t in enumerate(image.translate) if i != axis)
        kwargs["name"] = [f"{image.name} [c{c}]" for c in range(full.shape[axis])]
        kwargs["blending"] = "additive"
    else:
        kwargs["contrast_limits"] = auto_contrast(image.data)
    return image.data, kwargs, "image"
