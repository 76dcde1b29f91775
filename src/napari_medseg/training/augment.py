"""Training-patch augmentation from MONAI's transforms: flips, right-angle rotations,
contrast, gamma and noise."""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms import (
    Compose,
    RandFlip,
    RandGaussianNoise,
    RandomizableTransform,
    RandRotate90,
    RandScaleIntensity,
    RandShiftIntensity,
)

__all__ = ["Augmentation", "RandGamma"]


class RandGamma(RandomizableTransform):
    """``clip(x, 0) ** gamma``, gamma drawn from ``gamma_range``: the black level (0
    after normalisation) stays where it is. MONAI's ``RandAdjustContrast`` stretches
    between the patch's minimum and maximum instead, which one bright outlier moves."""

    def __init__(self, gamma_range: tuple[float, float]):
        super().__init__(prob=1.0)
        self._range = gamma_range
        self._gamma = 1.0

    def randomize(self, data=None) -> None:
        self._gamma = self.R.uniform(*self._range)

    def __call__(self, image) -> torch.Tensor:
        self.randomize()
        return torch.as_tensor(image).clamp(min=0) ** self._gamma


class Augmentation:
    """Random flips along every axis and rotations by 0-3 right angles in the (y, x)
    plane of image and target alike; then, on the image only, gamma 0.7-1.4, a
    contrast factor 0.7-1.3 (each colour channel its own, for stain variation),
    a shift of -0.1-0.1 and Gaussian noise of standard deviation 0-0.05
    (images normalised to about [0, 1]).

    Parameters
    ----------
    dims : {2, 3}
    channels : int
        Image channels (1 grey, 3 RGB).
    seed : int
        Seeds every transform: the same seed gives the same patches.

    Examples
    --------
    >>> augment = Augmentation(dims=2, channels=1, seed=0)
    >>> image, target = augment(np.zeros((1, 32, 32), np.float32), np.zeros((32, 32), int))
    >>> image.shape, target.shape
    ((1, 32, 32), (32, 32))
    """

    def __init__(self, dims: int, channels: int, seed: int):
        self._spatial = Compose([*(RandFlip(prob=0.5, spatial_axis=a) for a in range(dims)),
                                 RandRotate90(prob=0.75, max_k=3,
                                              spatial_axes=(dims - 2, dims - 1))])
        self._intensity = Compose([
            RandGamma((0.7, 1.4)),
            RandScaleIntensity(factors=0.3, prob=1.0, channel_wise=channels > 1),
            RandShiftIntensity(offsets=0.1, prob=1.0),
            RandGaussianNoise(prob=1.0, std=0.05, sample_std=True)])
        self._spatial.set_random_state(seed)
        self._intensity.set_random_state(seed + 1)

    def __call__(self, image: np.ndarray, target: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """An augmented copy of ``image`` (C, *spatial) float32 and ``target`` (*spatial)
        int64."""
        both = np.concatenate([image, target[None].astype(np.float32)])
        both = np.asarray(self._spatial(both))
        image = np.asarray(self._intensity(both[:-1]), np.float32)
        return np.ascontiguousarray(image), np.rint(both[-1]).astype(np.int64)
