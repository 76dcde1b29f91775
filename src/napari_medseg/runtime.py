"""Where and how networks run: device choice, native bfloat16, and cancellable work.

Long computations (inference over a stack, training) are generators that yield
progress and are run to their end by :func:`run_steps`; GUIs drive the same
generators in a worker thread and stop them with :class:`Cancelled`.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: it takes seconds, and
    import torch  # run_steps serves torch-free code (interpolation) too

__all__ = ["Cancelled", "best_device", "bf16_native", "processor_name", "run_steps"]


class Cancelled(Exception):
    """Raised by a step generator (inference, training) once its ``cancelled()`` says so."""


def best_device() -> torch.device:
    """CUDA, then Apple's MPS, then the CPU: the first one available."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively, so mixed precision pays off."""
    import torch

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


def run_steps(steps: Generator, on_step: Callable[[Any], None] | None = None,
              progress: str | None = None) -> Any:
    """Run a generator to its end, passing what it yields to ``on_step``; return its
    return value.

    Parameters
    ----------
    steps : generator
        Yields ``(done, total)`` pairs, or reports with a ``fraction`` (0-1) of the work
        done (training), or anything else.
    on_step : callable, optional
        Called with each yielded value.
    progress : str, optional
        Show a progress bar with this description (tqdm: a text bar in a terminal, a
        widget in Jupyter; none when the output is not a terminal or notebook).

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
    bar = _bar(progress)
    try:
        while True:
            try:
                step = next(steps)
            except StopIteration as stop:
                return stop.value
            if on_step is not None:
                on_step(step)
            if bar is not None:
                _advance(bar, step)
    finally:
        if bar is not None:
            bar.close()


def _bar(description: str | None):
    if description is None:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=None, desc=description, disable=None, leave=False)


def _advance(bar, step) -> None:
    if isinstance(step, tuple) and len(step) == 2:
        done, total = step
    elif hasattr(step, "fraction"):  # a training report: percent done, loss beside
        done, total = round(100 * step.fraction), 100
        if getattr(step, "loss", None) is not None:
            bar.set_postfix(loss=f"{step.loss:.3f}", refresh=False)
    else:
        return
    bar.total = total
    bar.n = done
    bar.refresh()
