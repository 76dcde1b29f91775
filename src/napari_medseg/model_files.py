"""Model files: our checkpoints, TorchScript files and bioimage.io packages; built-in models.

A model file is one of:

- our checkpoint (``.pt``, written by :func:`save_model`): a dict holding the
  weights, the architecture name and keyword arguments, the normalisation, what
  the outputs mean, the training pixel spacing and a format version. It is read
  with ``torch.load(weights_only=True)``, so loading runs no code from the file;
- a TorchScript file (``torch.jit.save``), which carries its own code; its
  metadata comes from an embedded ``medseg.json`` extra file when present;
- a bioimage.io model package (:mod:`napari_medseg.bioimageio`).

:func:`read_model_file` turns any of them into a network and its
:class:`~napari_medseg.model_info.ModelInfo`;
:func:`napari_medseg.model_runner.load_model` makes a runnable model of them.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from napari_medseg.bioimageio import is_bioimageio_package, read_bioimageio
from napari_medseg.model_info import ModelInfo
from napari_medseg.networks import ARCHITECTURES, build_network
from napari_medseg.safe_write import check_writable, write_atomically
from napari_medseg.weights import build_within, load_weights

__all__ = ["available_models", "builtin_model", "half_state", "read_model_file",
           "read_replay_set", "replay_path", "save_model", "suggested_model",
           "write_replay_set"]

FORMAT = "napari-medseg/model"
VERSION = 1
# The shipped files' training object size (object_size.typical_diameter of the training
# split's labels their recipe in scripts/train_nuclei.py reads), for files made before
# train_model recorded it.
_TRAINED_DIAMETER = {"nuclei_2d.pt": 16.56, "nuclei_he_2d.pt": 20.14}
BUILTIN = {  # name -> (file in napari_medseg/models, ModelInfo fields set on loading)
    "nuclei-2d": ("nuclei_2d.pt", {"diameter": _TRAINED_DIAMETER["nuclei_2d.pt"],
                                   "replay": "nuclei-2d"}),
    "nuclei-he-2d": ("nuclei_he_2d.pt", {"diameter": _TRAINED_DIAMETER["nuclei_he_2d.pt"]}),
    # a 2D network trained with side-plane augmentation, run on a stack's three isotropic
    # planes, one 3D watershed (docs/models.md: it beats slice-by-slice linking on real 3D
    # nuclei); its file records its name, volume, description and training size
    "nuclei-3d": ("nuclei_3d.pt", {}),
}
# the built-in model for each kind of image: (colour, spatial dimensions) -> name
_SUGGESTED = {(False, 2): "nuclei-2d", (True, 2): "nuclei-he-2d", (False, 3): "nuclei-3d"}
# ModelInfo fields newer than format version 1: left out of files where they are the default
_LATER_FIELDS = ("activation", "normalization", "volume", "colour", "bright_objects",
                 "diameter", "replay")
_DEFAULTS = {f.name: f.default for f in fields(ModelInfo)}


def available_models() -> list[str]:
    """Names of the models shipped in the package.

    Examples
    --------
    >>> "nuclei-2d" in available_models()
    True
    """
    return sorted(BUILTIN)


def suggested_model(rgb: bool, spatial_dims: int) -> str:
    """The built-in model made for images of this kind: grey or colour (RGB), 2D or 3D.

    Examples
    --------
    >>> suggested_model(rgb=False, spatial_dims=2)
    'nuclei-2d'
    """
    name = _SUGGESTED.get((bool(rgb), int(spatial_dims)))
    if name in BUILTIN:
        return name
    return "nuclei-2d"  # runs on every kind (colour as grey, stacks slice by slice)


def replay_path(name: str) -> Path:
    """Where the rehearsal set of built-in model ``name`` lives (``nuclei_2d_replay.npz``
    in napari_medseg/models), whether it exists or not."""
    folder = resources.files("napari_medseg.models")
    return Path(str(folder.joinpath(f"{name.replace('-', '_')}_replay.npz")))


def write_replay_set(path: str | Path, images: Sequence[np.ndarray],
                     labels: Sequence[np.ndarray], source: str) -> Path:
    """Write a rehearsal set: 2D images and their label maps, each of one shape (a stack
    of crops), with where they come from."""
    path = Path(path)
    with open(path, "wb") as file:
        np.savez_compressed(file, images=np.stack(images), labels=np.stack(labels),
                            source=np.array(source))
    return path


def read_replay_set(name: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The images and label maps of built-in model ``name``'s rehearsal set (what
    fine-tuning mixes in with ``train_model(replay="auto")``).

    Examples
    --------
    >>> images, labels = read_replay_set("nuclei-2d")
    >>> len(images) == len(labels), images[0].shape
    (True, (128, 128))
    """
    with np.load(replay_path(name)) as data:
        return list(data["images"]), list(data["labels"])


@contextmanager
def builtin_model(name: str):
    """The path of the file of the shipped model ``name`` (a key of :data:`BUILTIN`), as a
    context manager."""
    ref = resources.files("napari_medseg.models").joinpath(BUILTIN[name][0])
    with resources.as_file(ref) as path:
        yield Path(path)


def save_model(path: str | Path, network: torch.nn.Module, info: ModelInfo,
               half: bool = True, overwrite: bool = False) -> Path:
    """Write ``network`` and ``info`` as a napari-medseg checkpoint, atomically.

    Parameters
    ----------
    path : str or Path
        The ``.pt`` file to write.
    network : torch.nn.Module
        A network that :func:`~napari_medseg.networks.build_network` builds from
        ``info`` (its architecture and keyword arguments).
    info : ModelInfo
    half : bool
        Store the weights as float16.
    overwrite : bool
        Replace an existing file.

    With ``half``, the weights are stored as float16 (half the file); buffers such as
    batch-norm statistics stay float32, as their range can exceed float16's (a running
    variance above 65,504 would become infinite).

    Returns
    -------
    Path
        The file written (a symbolic link's target).

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is False.
    FileWriteError
        For a missing or read-only folder, or a write-protected file.
    """
    state = half_state(network) if half else network.state_dict()
    meta = asdict(info)
    for key in _LATER_FIELDS:
        if meta[key] == _DEFAULTS[key]:
            del meta[key]  # the default; keeps the file readable by older versions
    return save_checkpoint(path, {"format": FORMAT, "version": VERSION, "info": meta,
                                  "state_dict": state}, overwrite)


def save_checkpoint(path: str | Path, checkpoint: dict, overwrite: bool = False) -> Path:
    """``torch.save`` of ``checkpoint`` through :mod:`napari_medseg.safe_write`."""
    path = check_writable(path, overwrite)
    return write_atomically(path, lambda tmp: torch.save(checkpoint, tmp))


def half_state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The network's state dict with its floating-point weights as float16 (half the
    file); buffers such as batch-norm statistics stay as they are, as their range can
    exceed float16's."""
    buffers = {name for name, _ in network.named_buffers()}
    return {k: (v.half() if v.is_floating_point() and k not in buffers else v)
            for k, v in network.state_dict().items()}


def read_model_file(path: str | Path, name: str | None = None
                    ) -> tuple[torch.nn.Module, ModelInfo]:
    """The network (on the CPU, float32) and its description from a model file.

    Parameters
    ----------
    path : str or Path
        A checkpoint, TorchScript file or bioimage.io package.
    name : str, optional
        The model's name where the file gives none (default: the file name).

    Raises
    ------
    ValueError
        For files that are not a model, or weights that do not fit the
        architecture they claim.
    """
    path = Path(path)
    name = name or path.name
    if is_bioimageio_package(path):
        network, info = read_bioimageio(path)
    elif _is_torchscript(path):
        network, info = _read_torchscript(path)
    else:
        network, info = _read_checkpoint(path)
    if not info.name:
        info.name = name
    return network, info


def _read_torchscript(path: Path) -> tuple[torch.nn.Module, ModelInfo]:
    extra = {"medseg.json": ""}
    try:
        network = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except RuntimeError as err:
        raise ValueError(f"{path.name!r} is a broken TorchScript file: {err}") from None
    if not extra["medseg.json"]:
        raise ValueError(f"TorchScript file {path.name!r} has no 'medseg.json' metadata "
                         "(save it with _extra_files={'medseg.json': json.dumps(info)}).")
    try:
        meta = json.loads(extra["medseg.json"])
    except json.JSONDecodeError as err:
        raise ValueError(f"{path.name!r}: its 'medseg.json' metadata is not valid JSON "
                         f"({err}).") from None
    return network, ModelInfo.from_mapping({**_mapping(meta, path, "'medseg.json'"),
                                           "architecture": "torchscript"}, path.name)


def _read_checkpoint(path: Path) -> tuple[torch.nn.Module, ModelInfo]:
    checkpoint = load_weights(path, path.name, "a napari-medseg checkpoint or TorchScript "
                                                "model")
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path.name!r} is not a napari-medseg model checkpoint.")
    version = checkpoint.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path.name!r}: its checkpoint version {version!r} is not a number.")
    if version > VERSION:
        raise ValueError(f"{path.name!r} needs a newer napari-medseg (checkpoint version "
                         f"{version}, this one reads up to {VERSION}).")
    info = ModelInfo.from_mapping(_mapping(checkpoint.get("info"), path, "its 'info'"),
                                  path.name)
    if info.architecture not in ARCHITECTURES:
        raise ValueError(f"{path.name!r}: unknown architecture {info.architecture!r}.")
    state = _mapping(checkpoint.get("state_dict"), path, "its 'state_dict'")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{path.name!r}: its 'state_dict' must map names to tensors.")

    def build():
        return build_network(info.architecture, info.dims, info.in_channels,
                             len(info.classes), **info.kwargs)

    network = build_within(build, state, path.name)
    try:
        network.load_state_dict({k: v.float() if v.is_floating_point() else v
                                 for k, v in state.items()})
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise ValueError(f"weights in {path.name!r} do not fit a {info.dims}D "
                         f"{info.architecture} with {info.kwargs}: {first}") from None
    return network, info


def _mapping(value, path: Path, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{path.name!r}: {what} must be a mapping, got "
                         f"{type(value).__name__}.")
    return value


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())
