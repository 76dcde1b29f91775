"""The segmentation loss: weighted cross-entropy plus soft Dice (MONAI) over annotated pixels."""

from __future__ import annotations

import numpy as np
import torch
from monai.losses import MaskedDiceLoss

from napari_medseg.training.targets import CONTACT, IGNORE

__all__ = ["class_weights", "segmentation_loss"]

# soft Dice of the non-background classes over the whole batch; the mask leaves out
# pixels that are not annotated (sparse labels, patch pixels outside the image)
_DICE = MaskedDiceLoss(include_background=False, to_onehot_y=True, batch=True, smooth_nr=1.0,
                       smooth_dr=1.0)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor,
                      weights: torch.Tensor) -> torch.Tensor:
    """Weighted cross-entropy + soft Dice of the non-background classes.

    Parameters
    ----------
    logits : Tensor, shape (N, K, *spatial)
    target : Tensor of int64, shape (N, *spatial)
        Classes 0..K-1, :data:`~napari_medseg.training.targets.CONTACT` (class 2,
        weighted by its own weight), or ``IGNORE`` (left out).
    weights : Tensor, shape (K + 1,)
        One cross-entropy weight per target value, CONTACT included.
    """
    known = target != IGNORE
    classes = torch.where(target == CONTACT, 2, target).clamp(min=0)
    pixel_weight = weights[target.clamp(min=0)] * known
    ce = torch.nn.functional.cross_entropy(logits, classes, reduction="none")
    ce = (ce * pixel_weight).sum() / pixel_weight.sum().clamp(min=1e-6)
    # MaskedDiceLoss masks its input before any activation: give it probabilities
    dice = _DICE(torch.softmax(logits, 1), classes.unsqueeze(1), mask=known.unsqueeze(1))
    return ce + dice


def class_weights(counts: np.ndarray, task: str) -> torch.Tensor:
    """Cross-entropy weight per target value.

    Instances: boundaries decide the splits, and where objects touch most of all (the
    weight map of Ronneberger et al., 2015, in its simplest form). Semantic classes:
    inverse square root of their pixel ``counts``, mean 1.
    """
    if task == "instances":
        return torch.tensor([1.0, 1.0, 3.0, 10.0])
    counts = np.asarray(counts, float) + 1
    weights = (counts / counts.sum()) ** -0.5
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)
