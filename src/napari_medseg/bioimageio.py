"""Reading bioimage.io model packages (``.zip`` with an ``rdf.yaml``/``bioimageio.yaml``).

Supported: format versions 0.4 and 0.5; one input with axes ``b c (z) y x``;
``scale_range`` (percentile) or per-sample ``zero_mean_unit_variance``
preprocessing, per channel; TorchScript weights, or PyTorch state-dict weights
of a network from MONAI (``monai.networks.nets``), which is built from the
description's keyword arguments. Weights whose ``sha256`` does not match the
description are refused as corrupted; weights whose architecture is code shipped
inside the package are refused: loading runs no code from the file except
TorchScript, whose code is the model.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import torch
import yaml

from napari_medseg.model_info import ModelInfo
from napari_medseg.weights import build_within, load_weights

__all__ = ["is_bioimageio_package", "read_bioimageio"]

_DESCRIPTIONS = ("rdf.yaml", "bioimageio.yaml")
_LIBRARY = "monai.networks.nets"  # the only library whose networks state dicts may name
_IGNORED_STEPS = {"ensure_dtype"}  # steps that change nothing we need to reproduce
_MAX_DEFLATE_RATIO = 1032  # deflate cannot compress by more than about this


def is_bioimageio_package(path: str | Path) -> bool:
    """Whether ``path`` is a zip holding a bioimage.io model description."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return _description_name(z) is not None


def read_bioimageio(path: str | Path) -> tuple[torch.nn.Module, ModelInfo]:
    """The network (on the CPU) and its description (semantic outputs) from a
    bioimage.io model package; :func:`napari_medseg.load_model` makes a model of them.

    Raises
    ------
    ValueError
        For a package that is not a model, or one using what is not supported
        (see the module docstring), with the reason.
    """
    path = Path(path)
    with zipfile.ZipFile(path) as z:
        name = _description_name(z)
        if name is None:
            raise ValueError(f"{path.name!r} holds no rdf.yaml / bioimageio.yaml.")
        try:
            rdf = yaml.safe_load(z.read(name))
        except yaml.YAMLError as err:
            raise ValueError(f"{path.name!r}: its {name} is not valid YAML "
                             f"({str(err).splitlines()[0]}).") from None
        try:
            return _read(z, rdf, path)
        except (AttributeError, KeyError, TypeError, IndexError) as err:
            # a description of the wrong shape (a string where a list belongs...)
            raise ValueError(f"{path.name!r}: its {name} is malformed "
                             f"({type(err).__name__}: {err}).") from None


def _read(z: zipfile.ZipFile, rdf, path: Path) -> tuple[torch.nn.Module, ModelInfo]:
    """The network and description of a parsed description ``rdf``."""
    if not isinstance(rdf, dict) or rdf.get("type", "model") != "model":
        raise ValueError(f"{path.name!r} does not describe a model.")
    v04 = str(rdf.get("format_version", "0.4")).startswith("0.4")
    inputs, outputs = rdf.get("inputs") or [], rdf.get("outputs") or []
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"{path.name!r}: only models with one input and one output are "
                         f"supported ({len(inputs)} inputs, {len(outputs)} outputs).")
    axes_in = _axes(inputs[0], v04)
    in_channels = _channels(inputs[0], axes_in, v04)
    out_channels, names = _output_channels(outputs[0], in_channels, v04)
    info = ModelInfo(
        architecture="torchscript", dims=len(axes_in) - 2, in_channels=in_channels,
        classes=names or [f"channel {k}" for k in range(out_channels)],
        **_normalization(inputs[0], in_channels, path.name),
        activation=_activation(outputs[0], out_channels, path.name),
        tile_shape=_tile(inputs[0], axes_in, v04),
        name=str(rdf.get("name") or path.stem),
        description=str(rdf.get("description", "")) + " (bioimage.io package)")
    network, info.architecture = _network(z, rdf.get("weights") or {}, path.name)
    return network, info


def _description_name(z: zipfile.ZipFile) -> str | None:
    names = set(z.namelist())
    return next((n for n in _DESCRIPTIONS if n in names), None)


def _axes(tensor: dict, v04: bool) -> str:
    """Axis letters, e.g. "bcyx"; refuses layouts the runner cannot feed."""
    axes = tensor.get("axes")
    if v04:
        letters = str(axes)
    else:
        letters = "".join({"batch": "b", "channel": "c"}.get(a.get("type"), str(a.get("id", "")))
                          for a in axes or [])
    if letters not in ("bcyx", "bczyx"):
        raise ValueError(f"input axes {letters!r} are not supported (need 'bcyx' or 'bczyx').")
    return letters


def _channels(tensor: dict, axes: str, v04: bool) -> int:
    if v04:
        shape = tensor.get("shape")
        first = shape if isinstance(shape, list) else (shape or {}).get("min", [])
        return int(first[axes.index("c")]) if first else 1
    axis = tensor["axes"][axes.index("c")]
    return len(axis["channel_names"]) if "channel_names" in axis else int(axis.get("size", 1))


def _output_channels(tensor: dict, in_channels: int, v04: bool) -> tuple[int, list[str]]:
    if v04:
        shape = tensor.get("shape")
        if isinstance(shape, list):
            return int(shape[1]), []
        scale, offset = shape["scale"][1], shape.get("offset", [0, 0])[1]
        return int(round(in_channels * scale + 2 * offset)), []
    axis = next((a for a in tensor.get("axes") or [] if a.get("type") == "channel"), None)
    if axis is None:
        return 1, []
    names = [str(n) for n in axis.get("channel_names", [])]
    return (len(names) or int(axis.get("size", 1))), names


def _steps(tensor: dict, key: str) -> list[tuple[str, dict]]:
    steps = [(str(s.get("id") or s.get("name")), s.get("kwargs") or {})
             for s in tensor.get(key) or []]
    return [(n, k) for n, k in steps if n not in _IGNORED_STEPS]


def _normalization(tensor: dict, channels: int, file: str) -> dict[str, Any]:
    """ModelInfo's normalisation fields for the input's preprocessing: ``scale_range``
    (percentiles) or per-image ``zero_mean_unit_variance``, per channel."""
    steps = _steps(tensor, "preprocessing")
    name, kwargs = steps[0] if len(steps) == 1 else ("", {})
    axes = kwargs.get("axes") or ()
    joint = channels > 1 and ("c" in axes or "channel" in axes)  # one range for all channels
    # 0.4 may ask for dataset statistics or fixed values (mode per_dataset / fixed): refused
    per_sample = kwargs.get("mode", "per_sample") == "per_sample" and not joint
    if name == "scale_range" and per_sample:
        return {"percentiles": (float(kwargs.get("min_percentile", 0.0)),
                                float(kwargs.get("max_percentile", 100.0)))}
    if name == "zero_mean_unit_variance" and per_sample:
        return {"normalization": "mean-std"}
    found = ", ".join(f"{n} {k}" if k else n for n, k in steps) or "none"
    raise ValueError(f"{file!r}: input preprocessing {found!r} is not supported; napari-medseg "
                     "normalises each channel of each image by percentiles ('scale_range') or "
                     "mean and standard deviation ('zero_mean_unit_variance', per sample).")


def _activation(tensor: dict, channels: int, file: str) -> str:
    steps = [n for n, _ in _steps(tensor, "postprocessing")]
    if not steps:
        return "none"  # the network's output is already what the package means
    if steps in (["sigmoid"], ["softmax"]):
        return steps[0]
    raise ValueError(f"{file!r}: output postprocessing {steps} is not supported.")


def _tile(tensor: dict, axes: str, v04: bool) -> tuple[int, ...]:
    """A tile near 256 (2D) / 96 (3D) pixels that the input's shape rule allows."""
    target = 256 if len(axes) == 4 else 96
    spatial = range(2, len(axes))
    if v04:
        shape = tensor.get("shape")
        if isinstance(shape, list):
            return tuple(int(shape[k]) for k in spatial)
        mins = [int(shape["min"][k]) for k in spatial]
        steps = [int(shape["step"][k]) for k in spatial]
    else:
        sizes = [tensor["axes"][k].get("size") for k in spatial]
        if all(isinstance(s, int) for s in sizes):
            return tuple(sizes)
        mins = [s["min"] if isinstance(s, dict) else int(s) for s in sizes]
        steps = [s.get("step", 0) if isinstance(s, dict) else 0 for s in sizes]
    return tuple(m + (max(0, -(-(target - m) // s)) * s if s else 0)
                 for m, s in zip(mins, steps, strict=True))


def _network(z: zipfile.ZipFile, weights: dict, file: str) -> tuple[torch.nn.Module, str]:
    if "torchscript" in weights:
        data = io.BytesIO(_read_weights(z, weights["torchscript"], file))
        try:
            return torch.jit.load(data, map_location="cpu"), "torchscript"
        except RuntimeError as err:
            raise ValueError(f"{file!r}: broken TorchScript weights: {err}") from None
    entry = weights.get("pytorch_state_dict")
    if entry is None:
        raise ValueError(f"{file!r} has neither TorchScript nor PyTorch weights "
                         f"(found: {', '.join(weights) or 'none'}).")
    module, callable_name, kwargs = _architecture(entry, file)
    if module != _LIBRARY:
        raise ValueError(f"{file!r}: the network is defined by code in {module!r}; only "
                         f"{_LIBRARY} networks (and TorchScript) load without running it.")
    import monai.networks.nets as nets

    builder = getattr(nets, callable_name, None)
    if builder is None:
        raise ValueError(f"{file!r}: {_LIBRARY} has no network {callable_name!r}.")
    state = load_weights(io.BytesIO(_read_weights(z, entry, file)), file,
                         "a package with PyTorch state-dict weights")
    if not isinstance(state, dict):
        raise ValueError(f"{file!r}: its weights file holds no state dict.")
    network = build_within(lambda: builder(**kwargs), state, file)
    try:
        network.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{file!r}: weights do not fit {callable_name}({kwargs}): "
                         f"{str(err).splitlines()[0]}") from None
    return network.eval(), f"monai:{callable_name}"


def _read_weights(z: zipfile.ZipFile, entry: dict, file: str) -> bytes:
    """The bytes of a weights entry's file, checked against its sha256 when it gives one
    (hashed as it streams, so a bad entry is refused before it is held in memory)."""
    source = str(entry.get("source", ""))
    try:
        member = z.getinfo(source)
    except KeyError:
        raise ValueError(f"{file!r}: the weights file {source!r} is missing from the "
                         "package.") from None
    if member.file_size > _MAX_DEFLATE_RATIO * max(member.compress_size, 1):
        raise ValueError(f"{file!r}: the weights file {source!r} claims {member.file_size:,} "
                         f"bytes from {member.compress_size:,} compressed ones, more than "
                         "compression can give (a zip bomb?).")
    expected = entry.get("sha256")
    if expected:
        digest = hashlib.sha256()
        with z.open(member) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != str(expected).lower():
            raise ValueError(f"{file!r}: the weights file {source!r} is corrupted (its sha256 "
                             "differs from the one in the description).")
    return z.read(member)


def _architecture(entry: dict, file: str) -> tuple[str, str, dict[str, Any]]:
    """(module, callable, kwargs) of a state-dict weights entry, 0.4 or 0.5 style."""
    arch = entry.get("architecture")
    if isinstance(arch, str):  # 0.4: "module.path:Callable" or "file.py:Callable"
        module, _, name = arch.rpartition(":")
        kwargs = entry.get("kwargs") or {}
    elif isinstance(arch, dict):  # 0.5: {callable, import_from | source, kwargs}
        module = arch.get("import_from") or str(arch.get("source", "a file in the package"))
        name, kwargs = str(arch.get("callable", "")), arch.get("kwargs") or {}
    else:
        raise ValueError(f"{file!r}: PyTorch weights without an architecture.")
    return module, name, dict(kwargs)
