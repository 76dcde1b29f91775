"""Lazy reading of OME-Zarr (NGFF 0.4 and 0.5) and plain zarr arrays, as dask arrays.

An OME-Zarr image is read with its ``multiscales`` metadata: every resolution level
as a dask array (full resolution first), the axes' names and types, and the scale and
translation of the first level (the dataset's transformations composed with the
multiscale's own). Its ``labels`` group's label images come as label layers. Nothing
is read from the arrays themselves until they are shown or computed.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from napari_medseg.io._common import ImageFile, ImageReadError, labels_by_name

__all__ = ["is_zarr_path", "ngff_metadata", "read_zarr"]


def is_zarr_path(path: str | Path) -> bool:
    """Whether ``path`` is a zarr folder: named ``*.zarr`` or holding zarr metadata."""
    path = Path(path)
    if path.name.lower().endswith(".zarr"):
        return True
    return path.is_dir() and any((path / m).is_file() for m in ("zarr.json", ".zgroup",
                                                                 ".zarray"))


def read_zarr(path: str | Path) -> list[ImageFile]:
    """Read an OME-Zarr image (with its label images) or a plain zarr array, lazily.

    Parameters
    ----------
    path : str or Path
        A zarr folder: an OME-Zarr image or label image, or a zarr array.

    Returns
    -------
    list of ImageFile
        The image first, then each label image of its ``labels`` group. ``data`` is
        a list of dask arrays (full resolution first) with ``multiscale`` set when the
        image has several levels, else one dask array. ``scale`` and ``translate``
        come from NGFF's coordinate transformations (1 and 0 for a plain array).

    Raises
    ------
    ImageReadError
        If ``path`` is no zarr folder, or an OME-Zarr whose metadata is missing or
        inconsistent (the message says what is wrong).

    Examples
    --------
    >>> import tempfile
    >>> import zarr
    >>> path = Path(tempfile.mkdtemp()) / "plain.zarr"
    >>> _ = zarr.create_array(str(path), shape=(64, 80), chunks=(32, 32), dtype="uint16")
    >>> [image] = read_zarr(path)
    >>> type(image.data).__name__, image.data.shape, image.axes
    ('Array', (64, 80), 'YX')
    """
    import zarr

    path = Path(path)
    if not path.is_dir():
        raise ImageReadError(path, "no such zarr folder")
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as err:  # zarr raises several types for folders that are not zarr
        raise ImageReadError(path, f"not a zarr array or group ({err})") from None
    if isinstance(node, zarr.Array):
        return [_plain(node, path)]
    attrs = ngff_metadata(node)
    if "multiscales" not in attrs:
        arrays = sorted(name for name, _ in node.arrays())
        raise ImageReadError(path, "a zarr group without OME-Zarr 'multiscales' metadata"
                             + (f"; open one of its arrays ({', '.join(arrays)}) instead"
                                if arrays else ""))
    kind = "labels" if "image-label" in attrs else "image"
    files = [_multiscale(node, attrs, path, kind, path.name.removesuffix(".zarr")
                         .removesuffix(".ome"))]
    if "labels" in node and kind == "image":
        labels = node["labels"]
        names = ngff_metadata(labels).get("labels", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ImageReadError(path, f"its labels group's 'labels' must be a list of names, "
                                       f"got {names!r}")
        for name in names:
            if name not in labels:
                raise ImageReadError(path, f"its labels group lists {name!r}, which is missing")
            label = labels[name]
            files.append(_multiscale(label, ngff_metadata(label), path / "labels" / name, "labels",
                                     name))
            _check_covers(files[0], files[-1], path / "labels" / name)
    return files


def _check_covers(image: ImageFile, labels: ImageFile, path: Path) -> None:
    """Refuse a label image that does not cover its image: another spatial shape, unless
    at another resolution over the same extent (shape x scale within 1%)."""
    def spatial(file: ImageFile) -> list[tuple[int, float]]:
        level = file.data[0] if file.multiscale else file.data
        return [(n, s) for n, s, a in zip(level.shape, file.scale, file.axes, strict=True)
                if a in "ZYX"]

    ours, theirs = spatial(labels), spatial(image)
    if len(ours) != len(theirs) or any(
            n != m and not math.isclose(n * s, m * t, rel_tol=0.01)
            for (n, s), (m, t) in zip(ours, theirs, strict=True)):
        raise ImageReadError(path, f"the label image's spatial shape {[n for n, _ in ours]} "
                                   f"does not cover its image's {[m for m, _ in theirs]}")


def ngff_metadata(group) -> dict:
    """NGFF metadata: under "ome" in 0.5 (zarr v3), at the top of the attributes in 0.4."""
    attrs = dict(group.attrs)
    ome = attrs.get("ome", attrs)
    return dict(ome) if isinstance(ome, dict) else {}  # not a mapping: no NGFF metadata


MAX_CHUNKS = 10_000_000  # beyond, dask's chunk tuples alone exhaust memory


def _checked(array, path: Path):
    """A zarr array as a lazy dask array, refusing what is no image: values that are not
    real numbers, no dimensions, a chunk grid too fine to index."""
    import dask.array as da

    if array.dtype.kind not in "biuf":
        raise ImageReadError(path, f"it holds {array.dtype} values, not real numbers")
    if array.ndim == 0:
        raise ImageReadError(path, "it holds a single value (a 0-d array), not an image")
    grid = math.prod(-(-n // max(c, 1)) for n, c in zip(array.shape, array.chunks,
                                                         strict=True))
    if grid > MAX_CHUNKS:
        raise ImageReadError(path, f"its chunks of {array.chunks} cut its shape {array.shape} "
                                   f"into {grid:,} chunks, more than {MAX_CHUNKS:,}: rechunk it")
    return da.from_zarr(array)


def _plain(array, path: Path) -> ImageFile:
    data = _checked(array, path)
    axes = "TZYX"[4 - data.ndim:] if data.ndim <= 4 else "Q" * (data.ndim - 4) + "TZYX"
    return ImageFile(data=data, kind="labels" if labels_by_name(data.dtype, path) else "image",
                     scale=(1.0,) * data.ndim, translate=(0.0,) * data.ndim, axes=axes,
                     name=path.name.removesuffix(".zarr"), units=("pixel",) * data.ndim,
                     metadata={"zarr": {"path": str(path)}})


def _multiscale(group, attrs: dict, path: Path, kind: str, name: str) -> ImageFile:

    try:
        multiscale = attrs["multiscales"][0]
        datasets = multiscale["datasets"]
        axes = [a if isinstance(a, dict) else {"name": a} for a in multiscale["axes"]]
    except (KeyError, IndexError, TypeError):
        raise ImageReadError(path, "its 'multiscales' metadata lacks 'datasets' or 'axes'") \
            from None
    if not isinstance(datasets, list) or not datasets:
        raise ImageReadError(path, "its 'multiscales' metadata lists no datasets")
    levels = []
    for dataset in datasets:
        key = dataset.get("path") if isinstance(dataset, dict) else None
        if not isinstance(key, str) or key not in group:
            raise ImageReadError(path, f"dataset {key!r} of its 'multiscales' is missing")
        levels.append(_checked(group[key], path / key))
    n = levels[0].ndim
    if any(any(a > b for a, b in zip(fine.shape, coarse.shape, strict=False))
           for coarse, fine in itertools.pairwise(levels)):
        raise ImageReadError(path, f"its levels {[lv.shape for lv in levels]} are not listed "
                                   "finest first")
    if len(axes) != n or any(level.ndim != n for level in levels):
        raise ImageReadError(path, f"{len(axes)} axes in its metadata for arrays of "
                             f"{[level.ndim for level in levels]} dimensions")
    scale, translate = _transforms(datasets[0], path, n)
    outer_scale, outer_translate = _transforms(multiscale, path, n)
    scale = [s * o for s, o in zip(scale, outer_scale, strict=True)]
    translate = [t * o + u for t, o, u in zip(translate, outer_scale, outer_translate,
                                             strict=True)]
    types = [a.get("type", "") for a in axes]
    channel = types.index("channel") if "channel" in types and kind == "image" else None
    letters = "".join(str(a.get("name", "?"))[:1].upper() for a in axes)
    return ImageFile(
        data=levels if len(levels) > 1 else levels[0],
        kind=kind,
        scale=tuple(float(v) for v in scale),
        translate=tuple(float(v) for v in translate),
        axes=letters,
        name=name,
        channel_axis=channel,
        units=tuple(str(a.get("unit", "pixel")) for a in axes),
        metadata={"ome-zarr": {"path": str(path), "version": attrs.get(
            "version", multiscale.get("version", ""))}},
        multiscale=len(levels) > 1,
    )


def _transforms(node: dict, path: Path, n: int) -> tuple[list[float], list[float]]:
    """Scale and translation of NGFF ``coordinateTransformations`` (identity if none)."""
    scale, translate = [1.0] * n, [0.0] * n
    transforms = node.get("coordinateTransformations", []) or []
    if not isinstance(transforms, list):
        raise ImageReadError(path, f"its 'coordinateTransformations' {transforms!r} is not a "
                                   "list")
    for transform in transforms:
        kind = transform.get("type") if isinstance(transform, dict) else None
        values = transform.get(kind) if kind in ("scale", "translation") else None
        if kind == "identity":
            continue
        if not isinstance(values, list) or len(values) != n:
            raise ImageReadError(path, f"a coordinate transformation {transform!r} that is "
                                 f"not a scale or translation of {n} values")
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError):
            raise ImageReadError(path, f"non-numeric {kind} {values!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise ImageReadError(path, f"{kind} {values} is not finite")
        if kind == "scale":
            if any(not v > 0 for v in values):
                raise ImageReadError(path, f"scale {values} is not positive")
            scale = [s * v for s, v in zip(scale, values, strict=True)]
            translate = [t * v for t, v in zip(translate, values, strict=True)]
        else:
            translate = [t + v for t, v in zip(translate, values, strict=True)]
    return scale, translate
