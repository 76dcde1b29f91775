"""What a training run reports after each epoch, and its messages for people."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrainingProgress", "blend_message", "setup_message"]


@dataclass(frozen=True)
class TrainingProgress:
    """One report of a training run (after each epoch, and at the start).

    Attributes
    ----------
    iteration : int
        Optimiser steps done.
    epoch, epochs : int
        Epochs done, and planned (the time limit may stop training earlier).
    fraction : float
        Share of the run done, in [0, 1] (by iterations or by the time limit).
    loss : float or None
        Mean training loss over the last epoch.
    validation_loss : float or None
        Loss on the validation patches (None without validation data).
    elapsed : float
        Seconds since training started.
    blend : float or None
        Fine-tuning only, in the last report (after the last epoch): the share of
        the fine-tuned weights in the returned model.
    blend_losses : dict or None
        With ``blend="auto"`` and validation data, in the last report: the
        validation loss of each share compared, ``{share: loss}``.
    device : str
        Where the network trains ("cpu", "cuda", "mps").
    mixed_precision : bool
        Whether the forward passes run in bfloat16.
    compiled : bool
        Whether steps run through ``torch.compile`` (in the first report: whether they
        will; False from the first report after a failed compile on).
    """

    iteration: int
    epoch: int
    epochs: int
    fraction: float
    loss: float | None
    validation_loss: float | None
    elapsed: float
    blend: float | None = None
    blend_losses: dict[float, float] | None = None
    device: str = "cpu"
    mixed_precision: bool = False
    compiled: bool = False


def setup_message(progress: TrainingProgress) -> str:
    """How a run trains, e.g. "cpu, bfloat16, compiled".

    Examples
    --------
    >>> setup_message(TrainingProgress(0, 0, 5, 0.0, None, None, 0.0, mixed_precision=True))
    'cpu, bfloat16'
    """
    return ", ".join([progress.device, "bfloat16" if progress.mixed_precision else "float32",
                      *(["compiled"] if progress.compiled else [])])


def blend_message(progress: TrainingProgress) -> str:
    """What a fine-tuning run's last report says about the share it kept, and why."""
    if progress.blend is None:
        return ""
    if progress.blend_losses is None:
        return f"Fine-tuned share {progress.blend:g}."
    losses = ", ".join(f"{b:g}: {loss:.3f}" for b, loss in progress.blend_losses.items())
    if progress.blend == 0:
        return (f"Fine-tuning did not lower the validation loss ({losses}): the start model "
                "is kept unchanged.")
    return f"Fine-tuned share {progress.blend:g}: the lowest validation loss ({losses})."
