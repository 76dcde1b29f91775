"""What a training run reports after each epoch, and its messages for people."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KEPT_START_ADVICE", "TrainingProgress", "blend_message", "setup_message"]

KEPT_START_ADVICE = ("to adapt the model, annotate more images (or more of the objects it "
                     "gets wrong), train longer, or pass blend=1 to keep the fine-tuned "
                     "weights whatever the validation data say)")


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
    blend_scores : dict or None
        With ``blend="auto"`` and validation data, in the last report: the score of
        each share compared, ``{share: score}``.
    blend_measure : str or None
        What ``blend_scores`` are: "F1@0.5 on N held-out objects" (higher is better) or
        "validation loss" (lower is better).
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
    blend_scores: dict[float, float] | None = None
    blend_measure: str | None = None
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
    """What a fine-tuning run's last report says about the share it kept, and why.

    Examples
    --------
    >>> last = TrainingProgress(500, 5, 5, 1.0, 0.4, 0.4, 60.0, blend=0.5,
    ...                         blend_scores={0.0: 0.80, 0.5: 0.86, 1.0: 0.84},
    ...                         blend_measure="F1@0.5 on 41 held-out objects")
    >>> print(blend_message(last))  # doctest: +NORMALIZE_WHITESPACE
    Kept half of the fine-tuning: the mix of the start and fine-tuned weights that did
    best on the validation data (F1@0.5 on 41 held-out objects: start model 0.800, half
    0.860, fine-tuned 0.840).
    """
    if progress.blend is None:
        return ""
    share = _share_words(progress.blend)
    if progress.blend_scores is None and progress.blend == 0:
        return ("No held-out annotations to check the fine-tuning on: the model returned is "
                f"the start model, unchanged; {KEPT_START_ADVICE}.")
    if progress.blend_scores is None:
        return f"Kept {share} of the fine-tuning (the fixed mix; no validation data to choose by)."
    scores = ", ".join(f"{_mix_words(b)} {value:.3f}" for b, value in
                       progress.blend_scores.items())
    if progress.blend == 0:
        rule = ("; a gain counts when it is worth more than one held-out object"
                if "held-out objects" in str(progress.blend_measure) else "")
        return (f"Fine-tuning did not help on the validation data ({progress.blend_measure}: "
                f"{scores}{rule}): the model returned is the start model, unchanged; "
                f"{KEPT_START_ADVICE}.")
    return (f"Kept {share} of the fine-tuning: the mix of the start and fine-tuned weights that "
            f"did best on the validation data ({progress.blend_measure}: {scores}).")


def _share_words(share: float) -> str:
    return {1.0: "all", 0.75: "three quarters", 0.5: "half", 0.25: "a quarter",
            0.0: "none"}.get(
        share, f"a share of {share:g}")


def _mix_words(share: float) -> str:
    return {0.0: "start model", 1.0: "fine-tuned", 0.5: "half",
            0.25: "a quarter", 0.75: "three quarters"}.get(share, f"{share:g}")
