"""Reading network weights from files without trusting them.

Weights are loaded with ``torch.load(weights_only=True)`` (no code runs), and a network
is built only after checking, on PyTorch's meta device, that it holds no more weights
than the file does: a small file must not make us allocate gigabytes.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

import torch

__all__ = ["build_within", "load_weights"]


def load_weights(source, name: str, expected: str):
    """``torch.load(source, weights_only=True)`` with our messages: a file holding Python
    objects (pickled code) is refused as such, anything else unreadable as not
    ``expected``."""
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "unsupported global" in str(err).lower():  # a class or function to call
            raise ValueError(f"{name!r} is not a plain weights file: it holds Python objects "
                             "that would run code when loaded, and napari-medseg does not "
                             "run code from model files.") from None
        raise ValueError(f"{name!r} is not {expected} (unreadable pickle data).") from None
    except Exception as err:  # zip and torch errors mean "not our file"
        raise ValueError(f"{name!r} is not {expected} ({type(err).__name__}).") from None


def build_within(build: Callable[[], torch.nn.Module], state: dict, name: str
                 ) -> torch.nn.Module:
    """``build()``, after checking on the meta device (no memory) that the network it
    makes holds no more weights than ``state`` has: a small file must not make us
    allocate gigabytes for a network it claims."""
    try:
        with torch.device("meta"):
            probe = build()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name!r}: its network cannot be built ({err}).") from None
    wanted = sum(p.numel() for p in probe.parameters())
    present = sum(v.numel() for v in state.values() if isinstance(v, torch.Tensor))
    if wanted > present:
        raise ValueError(f"{name!r} describes a network of {wanted:,} weights but holds "
                         f"{present:,}; it was refused before building it.")
    return build()
