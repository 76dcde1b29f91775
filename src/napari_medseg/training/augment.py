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
from scipy import ndimage as ndi

__all__ = ["Augmentation", "RandAnisotropy", "RandGamma"]


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


class RandAnisotropy(RandomizableTransform):
    """A 2D patch as the side (ZX or ZY) plane of a stack of ``spacing`` times coarser
    slices, resampled to square pixels, shows it: blurred along one axis (the microscope's
    axial blur, a Gaussian of 0.5-2.5 px), sampled every ``spacing`` pixels along it and
    interpolated back linearly (as :func:`~napari_medseg.planes.to_isotropic` resamples).
    ``spacing`` is drawn uniformly in ``spacing_range``; the axis at random; applied to a
    share ``prob`` of the patches. The target is left as it is: the objects' true shapes.
    """

    def __init__(self, spacing_range: tuple[float, float], prob: float = 0.5):
        super().__init__(prob=prob)
        self._range = spacing_range
        self._draw = (1.0, 1.0, 0)

    def randomize(self, data=None) -> None:
        super().randomize(None)
        self._draw = (self.R.uniform(*self._range), self.R.uniform(0.5, 2.5),
                      int(self.R.randint(2)))

    def __call__(self, image) -> np.ndarray:
        import cv2

        self.randomize()
        image = np.asarray(image, np.float32)
        if not self._do_transform:
            return image
        spacing, blur, axis = self._draw
        out = ndi.gaussian_filter1d(image, blur, axis=axis + 1, mode="nearest")
        n = image.shape[axis + 1]
        coarse = max(2, round(n / spacing))
        channels = []
        for c in out:
            size = (c.shape[1], coarse) if axis == 0 else (coarse, c.shape[0])
            sampled = cv2.resize(c, size, interpolation=cv2.INTER_LINEAR)
            channels.append(cv2.resize(sampled, (c.shape[1], c.shape[0]),
                                       interpolation=cv2.INTER_LINEAR))
        return np.stack(channels)


class Augmentation:
    """Random flips along every axis and rotations by 0-3 right angles in the (y, x)
    plane of image and target alike; then, on the image only, gamma 0.7-1.4, a
    contrast factor 0.7-1.3 (each colour channel its own, for stain variation),
    a shift of -0.1-0.1 and Gaussian noise of standard deviation 0-0.05
    (images normalised to about [0, 1]). With ``anisotropy`` (2D), half of the
    patches first look like a stack's side plane (:class:`RandAnisotropy`).

    Parameters
    ----------
    dims : {2, 3}
    channels : int
        Image channels (1 grey, 3 RGB).
    seed : int
        Seeds every transform: the same seed gives the same patches.
    anisotropy : (float, float), optional
        Range of slice spacings (relative to the pixel size) simulated.

    Examples
    --------
    >>> augment = Augmentation(dims=2, channels=1, seed=0)
    >>> image, target = augment(np.zeros((1, 32, 32), np.float32), np.zeros((32, 32), int))
    >>> image.shape, target.shape
    ((1, 32, 32), (32, 32))
    """

    def __init__(self, dims: int, channels: int, seed: int,
                 anisotropy: tuple[float, float] | None = None):
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
        self._side = None
        if anisotropy is not None:
            self._side = RandAnisotropy(anisotropy)
            self._side.set_random_state(seed + 2)

    def __call__(self, image: np.ndarray, target: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """An augmented copy of ``image`` (C, *spatial) float32 and ``target`` (*spatial)
        int64."""
        both = np.concatenate([image, target[None].astype(np.float32)])
        both = np.asarray(self._spatial(both))
        image = both[:-1] if self._side is None else self._side(both[:-1])
        image = np.asarray(self._intensity(image), np.float32)
        return np.ascontiguousarray(image), np.rint(both[-1]).astype(np.int64)
