"""Where and how networks run: device choice, native bfloat16, and cancellable work.

Long computations (inference over a stack, training) are generators that yield
progress and are run to their end by :func:`run_steps`; GUIs drive the same
generators in a worker thread and stop them with :class:`Cancelled`.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import torch

__all__ = ["Cancelled", "best_device", "bf16_native", "processor_name", "run_steps"]


class Cancelled(Exception):
    """Raised by a step generator (inference, training) once its ``cancelled()`` says so."""


def best_device() -> torch.device:
    """CUDA, then Apple's MPS, then the CPU: the first one available."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively, so mixed precision pays off."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # torch has no public probe of the CPU's bf16 instructions; without them bf16 is
        # emulated, so the gain measured here is not to be expected
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
    return False


def processor_name() -> str:
    """The CPU's model name, for reports that give timings (e.g. "Intel(R) Xeon(R) ...")."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def run_steps(steps: Generator, on_step: Callable[[Any], None] | None = None) -> Any:
    """Run a generator to its end, passing what it yields to ``on_step``; return its
    return value.

    Examples
    --------
    >>> def count(n):
    ...     for k in range(n):
    ...         yield k
    ...     return "done"
    >>> run_steps(count(3), print)
    0
    1
    2
    'done'
    """
    while True:
        try:
            step = next(steps)
        except StopIteration as stop:
            return stop.value
        if on_step is not None:
            on_step(step)
