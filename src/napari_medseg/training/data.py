"""Training data: checked image/label pairs, the validation split, and patch sampling."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from napari_medseg._image import luminance, resized
from napari_medseg.networks import ceil16
from napari_medseg.normalization import normalize
from napari_medseg.planes import plane_slices
from napari_medseg.training.augment import Augmentation
from napari_medseg.training.targets import IGNORE, target
from napari_medseg.validation import MIN_EXTENT

__all__ = ["PatchSampler", "check_pairs", "default_batch", "default_patch_shape",
           "split_validation"]



def check_pairs(images, labels, dims: int, norm: tuple, rgb: bool = False,
                volume: str = "slices", spacing=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Checked ``(image, labels)`` pairs, images normalised, channel first ``(C, *spatial)``.

    Parameters
    ----------
    images, labels
        As for :func:`~napari_medseg.training.segmentation.train_model`.
    dims : {2, 3}
    norm : (percentiles, normalization)
        The model's input normalisation, applied to each image as given (a stack as a
        whole), as inference does.
    rgb : bool
        Colour images ``(Y, X, 3|4)`` give their RGB channels; else grey (luminance).
    volume : {"slices", "planes"}
        How a 2D model takes stacks: their annotated slices, or the annotated slices of
        all three planes of the stack resampled to isotropic voxels.
    spacing : sequence of float, or one per image, optional
        Voxel size of the stacks, for "planes".

    Raises
    ------
    ValueError
        Naming the pair and what is wrong with it.
    """
    images = [images] if isinstance(images, np.ndarray) else list(images)
    labels = [labels] if isinstance(labels, np.ndarray) else list(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} label maps.")
    if not images:
        raise ValueError("no training images given.")
    pairs = []
    for k, (image, lab) in enumerate(zip(images, labels, strict=True)):
        image, lab = np.asarray(image), np.asarray(lab)
        if image.dtype.kind not in "biuf":
            raise ValueError(f"image {k} must be real-valued, got dtype {image.dtype}.")
        if lab.dtype.kind not in "biu":
            raise ValueError(f"label map {k} must hold integers, got dtype {lab.dtype}.")
        colour = image.ndim == lab.ndim + 1 and image.shape[-1] in (3, 4)
        if rgb and not colour:
            raise ValueError(f"image {k} has shape {image.shape}; an RGB model trains on "
                             "colour images (Y, X, 3|4) with labels (Y, X).")
        if colour:
            image = (np.moveaxis(image[..., :3], -1, 0) if rgb else luminance(image)[None])
        else:
            image = image[None]
        if image.shape[1:] != lab.shape:
            raise ValueError(f"image {k} has shape {image.shape[1:]} but its labels "
                             f"{lab.shape}; they must match.")
        spatial = lab.ndim
        if spatial not in (2, 3) or spatial < dims:
            raise ValueError(f"image {k} has {spatial} dimensions; a {dims}D model "
                             f"trains on {'2D images or 3D stacks' if dims == 2 else 'stacks'}.")
        if min(lab.shape[-dims:]) < MIN_EXTENT:
            raise ValueError(f"image {k} ({lab.shape}) is too small: training needs at "
                             f"least {MIN_EXTENT} pixels along each axis.")
        if lab.min() < 0:
            raise ValueError(f"label map {k} has negative values.")
        if lab.dtype == np.uint64 and lab.max() > np.iinfo(np.int64).max:
            raise ValueError(f"label map {k} holds ids above 2**63 - 1.")
        lab = lab.astype(np.int64, copy=False)
        image = normalize(image, *norm)
        if dims == 2 and spatial == 3:  # the annotated slices of a stack
            pairs += _slices(image, lab, volume, _spacing_of(spacing, k, len(images)))
        else:
            pairs.append((image, lab))
    return pairs


def _spacing_of(spacing, k: int, count: int):
    if spacing is None or np.ndim(spacing) == 1:
        return spacing
    if len(spacing) != count:
        raise ValueError(f"{len(spacing)} spacings for {count} images.")
    return spacing[k]


def _slices(image: np.ndarray, labels: np.ndarray, volume: str, spacing) -> list:
    """The annotated 2D slices of a stack: along z, or along each axis of the stack
    resampled to isotropic voxels (``volume="planes"``)."""
    if volume == "slices":
        return [(image[:, z], labels[z]) for z in range(labels.shape[0]) if labels[z].any()]
    return plane_slices(image, labels, spacing, MIN_EXTENT)


def split_validation(pairs: list, validation, seed: int, check) -> tuple[list, list]:
    """(validation pairs, training pairs): explicit ``(images, labels[, spacing])``,
    checked by ``check(images, labels[, spacing])``; or a fraction of the pairs (at least
    4 given), else of each pair (:func:`hold_out_strips`)."""
    if isinstance(validation, tuple):
        return check(*validation), pairs
    if not 0 <= float(validation) < 1:
        raise ValueError(f"validation must be a fraction in [0, 1) or (images, labels), got "
                         f"{validation!r}.")
    if float(validation) == 0:
        return [], pairs
    if len(pairs) < 4:
        return hold_out_strips(pairs, float(validation))
    count = max(1, round(len(pairs) * float(validation)))
    order = np.random.default_rng(seed).permutation(len(pairs))
    held = set(order[:count].tolist())
    return ([p for k, p in enumerate(pairs) if k in held],
            [p for k, p in enumerate(pairs) if k not in held])


def hold_out_strips(pairs: list, fraction: float) -> tuple[list, list]:
    """With few images, hold out a strip at one end of each (at least 16 pixels, leaving at
    least 128) for validation, and train on the rest: the far end of its longest axis, else
    the near end, else the ends of its other axes, the first whose two parts both hold
    annotations (objects are rarely spread to every edge); an image with none is all
    trained on."""
    held, kept = [], []
    for image, lab in pairs:
        for axis, far_end in _strip_choices(lab.shape):
            n = lab.shape[axis]
            width = max(16, round(fraction * n))
            if n - width < 128:
                continue
            strip, rest = [slice(None)] * lab.ndim, [slice(None)] * lab.ndim
            strip[axis] = slice(n - width, None) if far_end else slice(None, width)
            rest[axis] = slice(None, n - width) if far_end else slice(width, None)
            strip, rest = tuple(strip), tuple(rest)
            if lab[strip].any() and lab[rest].any():  # both parts must hold annotations
                held.append((image[(slice(None), *strip)], lab[strip]))
                kept.append((image[(slice(None), *rest)], lab[rest]))
                break
        else:
            kept.append((image, lab))
    return held, kept


def _strip_choices(shape: tuple[int, ...]) -> list[tuple[int, bool]]:
    """(axis, far end?) in the order :func:`hold_out_strips` tries them."""
    axes = sorted(range(len(shape)), key=lambda a: -shape[a])
    return [(axis, far) for axis in axes for far in (True, False)]


class PatchSampler:
    """Training patches from one image: normalised pixels, targets, and where to draw.

    Parameters
    ----------
    image : ndarray of float32, shape (C, *spatial)
        Normalised (:func:`check_pairs`).
    labels : ndarray of int64, shape (*spatial)
    task, sparse, background_label
        As for :func:`~napari_medseg.training.targets.target`.
    """

    def __init__(self, image, labels, task, sparse, background_label):
        self.image = image
        self.labels = labels
        self._rules = (task, sparse, background_label)
        self.target = target(labels, *self._rules)
        known = self.target != IGNORE
        self.known = int(np.count_nonzero(known))
        # at most 100k candidate centres per kind: bounded memory on big volumes
        self._known_at = _subsample(np.flatnonzero(known))
        self._object_at = _subsample(np.flatnonzero(self.target > 0))
        if task == "instances":
            # every object equally likely, whatever its size: F1 counts objects, and
            # drawing object pixels would spend most patches on a few big ones
            _, owner, area = np.unique(labels.ravel()[self._object_at], return_inverse=True,
                                       return_counts=True)
            self.objects = int(area.size)
            chance = np.cumsum(1.0 / area[owner])
        else:
            self.objects = int(self._object_at.size)
            chance = np.arange(1.0, self._object_at.size + 1)
        self._object_cdf = chance / chance[-1] if chance.size else chance

    def patch(self, shape, rng: np.random.Generator, on_object: bool, zoom: float = 1.0
              ) -> tuple[np.ndarray, np.ndarray]:
        """A random patch ``(C, *shape)`` and its target ``shape``, around a random object
        (``on_object``; instances equally likely) or annotated pixel. Outside the image,
        edge pixels are replicated and the target is ``IGNORE``. ``zoom`` != 1 cuts a
        window of ``shape / zoom`` and resamples it to ``shape`` (objects ``zoom`` times
        their size), the targets made from the resampled labels."""
        final = tuple(shape)
        shape = tuple(max(1, round(s / zoom)) for s in final)
        if on_object:
            pick = np.searchsorted(self._object_cdf, rng.random(), side="right")
            at = self._object_at[min(int(pick), self._object_at.size - 1)]
        else:
            at = self._known_at[rng.integers(self._known_at.size)]
        spatial = self.labels.shape
        centre = np.unravel_index(at, spatial)
        corner = [int(c) - int(rng.integers(s)) for c, s in zip(centre, shape, strict=True)]
        source = [np.arange(c, c + s) for c, s in zip(corner, shape, strict=True)]
        inside = np.ones(shape, bool)
        for axis, (index, n) in enumerate(zip(source, spatial, strict=True)):
            valid = (index >= 0) & (index < n)
            inside &= valid.reshape([-1 if a == axis else 1 for a in range(len(shape))])
        grid = np.ix_(*(np.clip(index, 0, n - 1) for index, n in zip(source, spatial,
                                                                       strict=True)))
        image, labels = self.image[(slice(None), *grid)], self.labels[grid]
        if shape != final:
            image, labels, inside = _resampled(image, labels, inside, final)
        out = target(labels, *self._rules)
        out[~inside] = IGNORE
        return image, out


def _resampled(image: np.ndarray, labels: np.ndarray, inside: np.ndarray,
               shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A patch resampled to ``shape``: the image as inference zooms images (area down,
    linear up; 2D), the labels and the inside mask nearest."""
    if len(shape) == 2:
        import cv2

        image = np.stack([resized(c, shape) for c in image])
        size = (shape[1], shape[0])
        labels = cv2.resize(labels.astype(np.int32), size, interpolation=cv2.INTER_NEAREST)
        inside = cv2.resize(inside.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        return image, labels.astype(np.int64), inside.astype(bool)
    from skimage.transform import resize

    image = np.stack([resize(c, shape, order=1, anti_aliasing=True) for c in image])
    labels = resize(labels, shape, order=0, preserve_range=True, anti_aliasing=False)
    inside = resize(inside, shape, order=0, anti_aliasing=False)
    return image.astype(np.float32), labels.astype(np.int64), inside.astype(bool)


class PatchDraws:
    """Augmented patches from many images: half of them around an object (class balance),
    drawn so that every object of every image is equally likely; the others anywhere
    annotated. With ``zoom_range``, half of the patches are zoomed by a factor drawn
    log-uniformly in it (scale augmentation), the others at the images' own size."""

    def __init__(self, samplers: Sequence[PatchSampler], shape: tuple[int, ...],
                 rng: np.random.Generator, augment: Augmentation | None,
                 zoom_range: tuple[float, float] | None = None):
        self.samplers, self.shape, self.rng, self.augment = samplers, shape, rng, augment
        self._log_zooms = None if zoom_range is None else np.log(zoom_range)
        self._by_pixels = _shares([s.known for s in samplers])
        self._by_objects = _shares([s.objects for s in samplers])

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        on_object = self._by_objects is not None and self.rng.random() < 0.5
        k = self.rng.choice(len(self.samplers),
                            p=self._by_objects if on_object else self._by_pixels)
        zoom = 1.0
        if self._log_zooms is not None and self.rng.random() < 0.5:
            zoom = float(np.exp(self.rng.uniform(*self._log_zooms)))
        image, out = self.samplers[k].patch(self.shape, self.rng, on_object, zoom)
        return self.augment(image, out) if self.augment is not None else (image, out)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``size`` patches: images ``(N, C, *shape)`` float32, targets ``(N, *shape)``."""
        draws = [self.draw() for _ in range(size)]
        return (np.stack([d[0] for d in draws]).astype(np.float32, copy=False),
                np.stack([d[1] for d in draws]))


def _shares(counts: Sequence[int]) -> np.ndarray | None:
    total = sum(counts)
    return np.asarray(counts, float) / total if total else None


def _subsample(positions: np.ndarray, limit: int = 100_000) -> np.ndarray:
    if positions.size <= limit:
        return positions
    return positions[:: positions.size // limit]


def default_patch_shape(labels: Sequence[np.ndarray], dims: int, sparse: bool = False,
                        background_label: int | None = None) -> tuple[int, ...]:
    """A training patch about eight objects across (2D; four in 3D), multiples of 16.

    Parameters
    ----------
    labels : sequence of ndarray of int
        Label maps of ``dims`` dimensions.
    dims : {2, 3}

    Returns
    -------
    tuple of int
        64-256 pixels per axis in 2D, 32-96 in 3D, no larger than the largest
        label map (rounded up to 16).

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, labels = nuclei_2d()
    >>> default_patch_shape([labels], dims=2)
    (160, 160)
    """
    sizes = []
    for lab in labels:
        counts = np.bincount(lab.ravel().astype(np.int64))
        counts[0] = 0
        if background_label is not None and background_label < counts.size:
            counts[background_label] = 0
        sizes.append(counts[counts > 0])
    sizes = np.concatenate(sizes) if sizes else np.zeros(0)
    if sizes.size == 0:
        diameter = 16.0
    elif dims == 2:
        diameter = 2 * math.sqrt(float(np.median(sizes)) / math.pi)
    else:
        diameter = (6 * float(np.median(sizes)) / math.pi) ** (1 / 3)
    low, high, across = (64, 256, 8) if dims == 2 else (32, 96, 4)
    side = int(np.clip(16 * round(across * diameter / 16), low, high))
    largest = np.max([lab.shape for lab in labels], axis=0)
    return tuple(min(side, ceil16(int(n))) for n in largest)


def check_patch(patch_shape: Sequence[int], dims: int, shapes: Sequence[tuple[int, ...]]
                ) -> tuple[int, ...]:
    """``patch_shape`` as a tuple, checked against the training images' ``shapes``."""
    patch = tuple(int(p) for p in patch_shape)
    if len(patch) != dims or min(patch) < 16 or any(p % 16 for p in patch):
        raise ValueError(f"patch_shape must be {dims} multiples of 16, got {patch_shape}.")
    largest = np.max(shapes, axis=0)
    if any(p > ceil16(int(n)) for p, n in zip(patch, largest, strict=True)):
        raise ValueError(f"patch {patch} is larger than every training image (largest "
                         f"{tuple(int(n) for n in largest)}); choose at most "
                         f"{tuple(ceil16(int(n)) for n in largest)}.")
    return patch


def default_batch(patch: tuple[int, ...]) -> int:
    """Patches per step: about 130k pixels in 2D, 2 patches in 3D."""
    if len(patch) == 3:
        return 2
    return int(np.clip(round(8 * 128 * 128 / math.prod(patch)), 2, 32))
