"""The public annotated data sets the shipped models are trained and measured on.

Readers for the layouts of the project's shared data folder (``$MEDSEG_DATA``,
by default ``../shared/data`` beside the repository), with the fixed splits every
script, benchmark and test uses:

- DSB2018 (``dsb2018-stage1-train``, ``dsb2018-stage1-test``): ``<id>_image.png``
  and ``<id>_labels.tif`` per image, ``index.csv`` with each image's kind
  ("fluorescence" or "brightfield"). In the training set every 10th image by
  sorted id is test-only (:attr:`DSBSplit.test`), and every 20th from the 6th a
  fixed validation split; the stage-1 test set is test-only, but for the first 5
  fluorescence ids, the fixed fine-tuning images.
- GoNuclear (``gonuclear-3d``): 3D crops ``<crop>_image.tif`` (ImageJ TIFF with its
  voxel size) and ``<crop>_labels.tif``; crop 1135 is test-only, 1136 the one to train and
  validate on.

Nothing here is shipped data: the readers find the files or say where they looked.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "GONUCLEAR_TEST",
    "GONUCLEAR_TRAIN",
    "DSBSplit",
    "data_folder",
    "dsb_split",
    "finetune_ids",
    "magnified",
    "mosaic",
    "read_dsb",
    "read_gonuclear",
]

DSB_TRAIN = "dsb2018-stage1-train"
DSB_TEST = "dsb2018-stage1-test"
GONUCLEAR = "gonuclear-3d"
GONUCLEAR_TEST = ("1135",)
GONUCLEAR_TRAIN = ("1136",)
KINDS = ("fluorescence", "brightfield")


def data_root() -> Path:
    """``$MEDSEG_DATA``, or ``shared/data`` beside the repository this package runs from."""
    if "MEDSEG_DATA" in os.environ:
        return Path(os.environ["MEDSEG_DATA"])
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def data_folder(name: str) -> Path:
    """The folder of data set ``name`` (e.g. "dsb2018-stage1-train").

    Raises
    ------
    FileNotFoundError
        Naming where it looked, when the folder is absent.
    """
    folder = data_root() / name
    if not folder.is_dir():
        raise FileNotFoundError(f"data set {name!r} not found at {folder} (set MEDSEG_DATA to "
                                "the folder that holds it).")
    return folder


@dataclass(frozen=True)
class DSBSplit:
    """Sorted image ids of a DSB2018 folder by role, and each image's kind.

    Attributes
    ----------
    train, validation, test : list of str
    kinds : dict
        ``{id: "fluorescence" | "brightfield"}``.
    """

    train: list[str]
    validation: list[str]
    test: list[str]
    kinds: dict[str, str]

    def of_kind(self, ids: list[str], kind: str) -> list[str]:
        """The ids among ``ids`` of images of ``kind``."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
        return [i for i in ids if self.kinds[i] == kind]


def dsb_split(folder: str | Path) -> DSBSplit:
    """The fixed split of a DSB2018 folder.

    The stage-1 training set: test ``ids[::10]``, validation ``ids[5::20]``, training the
    rest. The stage-1 test set (other annotators): every image is a test image.
    """
    folder = Path(folder)
    with open(folder / "index.csv", newline="") as f:
        kinds = {row["id"]: row["kind"] for row in csv.DictReader(f)}
    ids = sorted(kinds)
    if folder.name == DSB_TEST:
        return DSBSplit([], [], ids, kinds)
    test, validation = set(ids[::10]), set(ids[5::20])
    return DSBSplit([i for i in ids if i not in test and i not in validation],
                    sorted(validation), sorted(test), kinds)


def finetune_ids(folder: str | Path) -> list[str]:
    """The 5 fixed fine-tuning images of the stage-1 test set: its first 5 fluorescence ids
    by sorted order (the others stay test images)."""
    split = dsb_split(folder)
    return split.of_kind(split.test, "fluorescence")[:5]


def read_dsb(folder: str | Path, ids: list[str], rgb: bool | None = None
             ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(image, labels)`` of each id.

    Parameters
    ----------
    folder : str or Path
    ids : list of str
    rgb : bool, optional
        Colour images as ``(Y, X, 3)`` uint8 (True) or their luminance (False);
        default: RGB for brightfield images, the grey channel ``(Y, X)`` for
        fluorescence (which is stored as grey RGB).

    Returns
    -------
    list of (ndarray, ndarray of uint16)
    """
    import tifffile
    from skimage.io import imread

    from napari_medseg._image import luminance

    folder = Path(folder)
    kinds = dsb_split(folder).kinds
    out = []
    for image_id in ids:
        image = imread(folder / f"{image_id}_image.png")[..., :3]
        colour = kinds[image_id] != "fluorescence" if rgb is None else rgb
        if not colour:
            image = image[..., 0] if kinds[image_id] == "fluorescence" else luminance(image)
        out.append((image, tifffile.imread(folder / f"{image_id}_labels.tif")))
    return out


def read_gonuclear(folder: str | Path, crop: str
                   ) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """``(image, labels, spacing)`` of a GoNuclear crop: uint8 and uint16 ``(Z, Y, X)``,
    voxel size in micrometres."""
    import tifffile

    from napari_medseg.io import read_image

    folder = Path(folder)
    [image] = read_image(folder / f"{crop}_image.tif")
    labels = tifffile.imread(folder / f"{crop}_labels.tif")
    return np.asarray(image.data), labels, tuple(float(s) for s in image.scale)


def magnified(image: np.ndarray, labels: np.ndarray, factor: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """A 2D image and its labels as another magnification would show them: resampled by
    ``factor`` (area interpolation down, linear up; labels by nearest neighbour).

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, labels = magnified(*nuclei_2d(), 0.5)
    >>> image.shape, labels.shape
    ((192, 192), (192, 192))
    """
    from napari_medseg._image import resized
    from napari_medseg.planes import from_isotropic

    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor}.")
    shape = tuple(max(1, round(n * factor)) for n in labels.shape)
    return resized(image, shape), from_isotropic(labels, shape)


def mosaic(pairs: list[tuple[np.ndarray, np.ndarray]], shape: tuple[int, int]
           ) -> tuple[np.ndarray, np.ndarray]:
    """Tile 2D ``(image, labels)`` pairs row by row into one large image whose objects are
    known: large test images made of real ones.

    Pairs are placed left to right in rows as tall as their tallest image, cycling
    through ``pairs`` until the mosaic is full; images that would cross its right or
    bottom edge are left out, so every object is whole. Label ids are made unique.

    Parameters
    ----------
    pairs : list of (ndarray, ndarray)
        Grey images ``(Y, X)`` of one dtype and their labels.
    shape : (int, int)

    Returns
    -------
    image : ndarray, shape ``shape``, the images' dtype (0 between images)
    labels : ndarray of uint32, shape ``shape``

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, labels = mosaic([nuclei_2d()], (1000, 800))
    >>> image.shape, int(labels.max()) == 4 * int(nuclei_2d()[1].max())  # 2 x 2 copies
    ((1000, 800), True)
    """
    if not pairs:
        raise ValueError("mosaic needs at least one (image, labels) pair.")
    image = np.zeros(shape, pairs[0][0].dtype)
    labels = np.zeros(shape, np.uint32)
    lowest = min(p.shape[0] for p, _ in pairs)
    y = x = row = count = k = misses = 0
    while y + lowest <= shape[0]:
        picture, objects = pairs[k % len(pairs)]
        k += 1
        h, w = picture.shape[:2]
        if x + w > shape[1] or y + h > shape[0]:
            misses += 1
            if misses == len(pairs):  # nothing fits in this row any more
                if row == 0:
                    break
                y, x, row, misses = y + row, 0, 0, 0
            continue
        image[y:y + h, x:x + w] = picture
        ids = objects.astype(np.uint32)
        labels[y:y + h, x:x + w] = np.where(ids > 0, ids + count, 0)
        count += int(ids.max(initial=0))
        x, row, misses = x + w, max(row, h), 0
    return image, labels
