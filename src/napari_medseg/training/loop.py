"""The one optimisation loop every network here is trained by.

It takes a network, a source of batches and a loss, and gives what every run
shares: AdamW with a warm-up and cosine decay over the run (by steps or by a time
limit), bfloat16 forward passes where the processor computes them natively,
``torch.compile`` for long runs, a moving average of the weights, a validation
loss per epoch, progress reports and Cancel.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass

import torch

from napari_medseg.runtime import Cancelled, best_device, bf16_native
from napari_medseg.training.averaging import WeightAverage
from napari_medseg.training.progress import TrainingProgress

__all__ = ["Optimisation", "optimise", "training_device"]

# automatic torch.compile: only for runs long enough to repay its ~30 s of compiling
COMPILE_FROM_SECONDS = 300
COMPILE_FROM_STEPS = 3000

Batch = tuple[torch.Tensor, torch.Tensor]


def training_device(device: str | None, dims: int, mixed_precision: bool | None,
                    compile_network: bool | None) -> tuple[torch.device, bool]:
    """The device and whether to use bfloat16, with the checks of both (before any data
    is prepared)."""
    dev = torch.device(device) if device is not None else best_device()
    if mixed_precision is None:
        # 2D only: measured there; in 3D, oneDNN's bfloat16 Conv3d once turned finite inputs
        # into non-finite outputs (VNet, 32^3 patches)
        mixed_precision = dims == 2 and bf16_native(dev)
    if mixed_precision and dev.type not in ("cpu", "cuda"):
        raise ValueError(f"mixed precision trains on 'cpu' or 'cuda', not {dev.type!r}.")
    if compile_network and dev.type not in ("cpu", "cuda"):
        raise ValueError(f"compiled training runs on 'cpu' or 'cuda', not {dev.type!r}.")
    return dev, bool(mixed_precision)


@dataclass
class Optimisation:
    """How one run optimises.

    Attributes
    ----------
    steps_per_epoch, epochs : int
        An epoch is one report (and one validation loss); the run stops after all
        epochs or at ``time_limit``.
    learning_rate : float
        Peak learning rate.
    device : torch.device
    mixed_precision : bool
    compile_network : bool or None
        None: compile for runs of :data:`COMPILE_FROM_SECONDS` or
        :data:`COMPILE_FROM_STEPS` and more, on CPU and CUDA.
    time_limit : float, optional
        Seconds; the learning-rate schedule follows it.
    keep_norm : bool
        Fine-tuning: batch norm keeps the statistics it learnt on the original data
        instead of drifting to the few new images.
    weight_decay : float
    """

    steps_per_epoch: int
    epochs: int
    learning_rate: float
    device: torch.device
    mixed_precision: bool = False
    compile_network: bool | None = None
    time_limit: float | None = None
    keep_norm: bool = False
    weight_decay: float = 1e-4

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def compiles(self) -> bool:
        if self.compile_network is not None:
            return self.compile_network
        return self.device.type in ("cpu", "cuda") and (
            self.total_steps >= COMPILE_FROM_STEPS if self.time_limit is None
            else self.time_limit >= COMPILE_FROM_SECONDS)


def optimise(network: torch.nn.Module, batches: Callable[[], Batch],
             loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], plan: Optimisation,
             validation: Batch | None = None, cancelled: Callable[[], bool] | None = None,
             ) -> Generator[TrainingProgress, None, TrainingProgress]:
    """Train ``network`` in place; a generator of progress reports.

    Parameters
    ----------
    network : torch.nn.Module
        On ``plan.device``. Left in evaluation mode, holding the moving average of
        its weights over about the last 500 steps.
    batches : callable
        Returns the next ``(inputs, targets)``, on the device.
    loss : callable
        ``loss(logits, targets)`` (float32 logits).
    plan : Optimisation
    validation : (inputs, targets), optional
        Scored with ``loss`` after every epoch, in evaluation mode.
    cancelled : callable, optional
        Polled every step; once it returns True, :class:`~napari_medseg.runtime.Cancelled`
        is raised.

    Yields
    ------
    TrainingProgress
        At the start and after every epoch but the last.

    Returns
    -------
    TrainingProgress
        The last report (the caller may add to it before yielding it).

    Raises
    ------
    FloatingPointError
        When the loss stops being finite.
    """
    dev, lr = plan.device, plan.learning_rate
    train_mode(network, plan.keep_norm)
    optimiser = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=plan.weight_decay)
    # the compiled module shares the parameters; validation and the returned model use
    # `network` itself (switching the compiled one to eval mode would compile again)
    runner = torch.compile(network) if plan.compiles() else network
    average = WeightAverage(network)
    started = time.perf_counter()
    iteration = 0

    def step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        with torch.autocast(dev.type, torch.bfloat16, enabled=plan.mixed_precision):
            logits = model(x)
        value_tensor = loss(logits.float(), y)
        value = value_tensor.item()
        if not math.isfinite(value):  # stop before the step spreads it to every weight
            raise FloatingPointError(
                f"training diverged at step {iteration + 1} (the loss is not finite)"
                + ("; try again without mixed precision" if plan.mixed_precision else
                   "; try a lower learning rate"))
        optimiser.zero_grad()
        value_tensor.backward()
        optimiser.step()
        return value

    def fraction(done_steps: int) -> float:
        done = done_steps / plan.total_steps
        if plan.time_limit is not None:
            done = max(done, (time.perf_counter() - started) / plan.time_limit)
        return min(done, 1.0)

    setup = {"device": dev.type, "mixed_precision": plan.mixed_precision}
    yield TrainingProgress(0, 0, plan.epochs, 0.0, None, None, 0.0, **setup,
                           compiled=runner is not network)
    for epoch in range(1, plan.epochs + 1):
        losses = []
        for _ in range(plan.steps_per_epoch):
            if cancelled is not None and cancelled():
                raise Cancelled
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(lr, fraction(iteration))
            x, y = batches()
            if runner is not network and iteration == 0:
                try:  # compiling happens here, in the first step
                    value = step(runner, x, y)
                except FloatingPointError:
                    raise
                except Exception as err:  # no C++ compiler, or a backend bug
                    first_line = (str(err).strip().splitlines() or [""])[0][:200]
                    warnings.warn(f"torch.compile failed ({type(err).__name__}: "
                                  f"{first_line}); training without it.", RuntimeWarning,
                                  stacklevel=3)
                    runner = network
                    value = step(runner, x, y)
            else:
                value = step(runner, x, y)
            average.update()
            losses.append(value)
            iteration += 1
            if fraction(iteration) >= 1.0:
                break
        validation_loss = None
        if validation is not None:
            validation_loss = validation_score(network, validation, loss)
            train_mode(network, plan.keep_norm)
        done = fraction(iteration)
        report = TrainingProgress(iteration, epoch, plan.epochs, done,
                                  sum(losses) / len(losses), validation_loss,
                                  time.perf_counter() - started, **setup,
                                  compiled=runner is not network)
        if done >= 1.0:
            break
        yield report
    average.copy_to_network()
    network.eval()
    return report


def validation_score(network: torch.nn.Module, validation: Batch,
                     loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """``loss`` on the validation batch, in evaluation mode (left in it)."""
    network.eval()
    with torch.inference_mode():
        return float(loss(network(validation[0]), validation[1]))


def learning_rate(peak: float, done: float) -> float:
    """Linear warm-up over the first 5% of the run, then cosine decay to zero."""
    if done < 0.05:
        return peak * (0.1 + 0.9 * done / 0.05)
    return peak * 0.5 * (1 + math.cos(math.pi * (done - 0.05) / 0.95))


def train_mode(network: torch.nn.Module, keep_norm: bool) -> None:
    """Training mode; with ``keep_norm`` batch norm stays in evaluation mode."""
    network.train()
    if keep_norm:
        for module in network.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
