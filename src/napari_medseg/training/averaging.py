"""Weight averaging over a run (Polyak) and blending with the start model (WiSE-FT)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

__all__ = ["BLEND", "BLEND_CHOICES", "FALLBACK_BLEND", "WeightAverage", "apply_blend",
           "blend_weights"]

BLEND = "auto"  # fine-tuning: the share of fine-tuned weights is chosen on validation data
BLEND_CHOICES = (0.0, 0.25, 0.5, 0.75, 1.0)  # the shares "auto" compares
# "auto" without validation data: the start model. Nothing says the fine-tuning helped, and
# 2 stage-1 test images fine-tuned for 5 minutes and kept at 0.75 scored F1 0.001 on 6 more
# of their kind (0.884 before): a user keeps fine-tuned weights by asking (blend=1)
FALLBACK_BLEND = 0.0
# about the last 1 / (1 - decay) = 500 steps
AVERAGE_DECAY = 0.998


class WeightAverage:
    """Exponential moving average of a network's floating-point weights and buffers.

    The average of the last few hundred steps' weights generalises better than the last
    step's (figures in docs/training.md).
    """

    def __init__(self, network: torch.nn.Module, decay: float = AVERAGE_DECAY):
        # state_dict tensors share storage with the network's: updated in place by each step
        self._live = [v for v in network.state_dict().values() if v.is_floating_point()]
        self._average = [v.detach().clone() for v in self._live]
        self._decay = decay
        self._steps = 0

    def update(self) -> None:
        """Fold in the network's current weights (after an optimiser step)."""
        self._steps += 1
        # a short memory at first, so that the random initial weights are soon forgotten
        decay = min(self._decay, self._steps / (self._steps + 9))
        with torch.no_grad():
            for average, live in zip(self._average, self._live, strict=True):
                average.lerp_(live, 1 - decay)

    def copy_to_network(self) -> None:
        with torch.no_grad():
            for live, average in zip(self._live, self._average, strict=True):
                live.copy_(average)


def blend_weights(network: torch.nn.Module, start: torch.nn.Module, blend: float) -> None:
    """network <- blend * network + (1 - blend) * start, in place (float tensors only)."""
    if blend == 1:
        return
    reference = start.state_dict()
    with torch.no_grad():
        for key, value in network.state_dict().items():
            if value.is_floating_point():
                value.lerp_(reference[key].to(value), 1 - blend)


def apply_blend(network: torch.nn.Module, start: torch.nn.Module, blend: float | str,
                score: Callable[[torch.nn.Module], float] | None, margin: float = 0.0
                ) -> tuple[float, dict[float, float] | None]:
    """Blend ``network`` with ``start`` in place: by ``blend``, or for "auto" by the share
    of :data:`BLEND_CHOICES` with the lowest ``score`` (a validation loss) among those that
    beat the start model's (share 0) by more than ``margin``: a gain smaller than the
    measure's own resolution (one held-out object) is no evidence, and the start is kept.

    Returns
    -------
    share : float
    losses : dict or None
        For "auto" with a ``score``: each share's score.
    """
    if blend == "auto" and score is None:
        blend = FALLBACK_BLEND
    if blend != "auto":
        blend_weights(network, start, float(blend))
        return float(blend), None
    tuned = copy.deepcopy(network.state_dict())
    losses = {}
    for share in BLEND_CHOICES:
        network.load_state_dict(tuned)
        blend_weights(network, start, share)
        losses[share] = score(network)
    better = {k: v for k, v in losses.items() if k == 0 or v < losses[0] - margin}
    best = min(better, key=better.get)  # ties go to the smaller share: closer to the start
    network.load_state_dict(tuned)
    blend_weights(network, start, best)
    return best, losses
