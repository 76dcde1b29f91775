"""Fine-tuning on a user's corrections: train from the checked objects of a proofread
layer, starting from the model that made it, and segment again, keeping what was checked.

The loop a lab's own images need: *Segment*, correct (:mod:`napari_medseg.proofreading`),
accept what is right, fine-tune, segment again. Only what the user checked is trained on
(sparse: the rest is left out of the loss). Every 4th checked object is held out, not
trained on (its pixels stay in the training image, unannotated), and the share of the
fine-tuning kept is the one that finds the held-out objects best, so the model returned never
does worse on them than the start model.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import relabel_sequential

from napari_medseg.model_runner import SegmentationModel
from napari_medseg.proofreading import CHECKED_BACKGROUND, checked_annotations
from napari_medseg.runtime import run_steps
from napari_medseg.training.progress import TrainingProgress
from napari_medseg.training.segmentation import train_steps

__all__ = ["HELD_OUT_EVERY", "MIN_CHECKED", "fine_tune_on_corrections",
           "fine_tune_on_corrections_steps"]

HELD_OUT_EVERY = 4  # every 4th checked object is held out to choose what to keep
MIN_CHECKED = 20  # so that at least 5 are held out: fewer cannot tell whether it helps


def fine_tune_on_corrections(image: np.ndarray, labels: np.ndarray, checked: np.ndarray,
                             init: str | Path | SegmentationModel, *, minutes: float = 5.0,
                             spacing: Sequence[float] | None = None, seed: int = 0,
                             callback: Callable[[object], None] | None = None,
                             progress: bool = True
                             ) -> tuple[SegmentationModel, np.ndarray, TrainingProgress]:
    """Fine-tune ``init`` on the checked objects of ``labels`` and segment ``image`` again.

    Parameters
    ----------
    image : ndarray
        The image ``labels`` segments (2D, colour or a stack), as the model takes it.
    labels : ndarray of int
        The corrected labels.
    checked : ndarray of int, ``labels``' shape
        :data:`~napari_medseg.proofreading.CHECKED_OBJECT` on accepted objects,
        :data:`~napari_medseg.proofreading.CHECKED_BACKGROUND` on checked background
        (:func:`~napari_medseg.proofreading.accept_object`).
    init : str, Path or SegmentationModel
        The model that made the labels (a built-in name, a file or a loaded model).
    minutes : float
        Training time (the learning-rate schedule fits into it).
    spacing : sequence of float, optional
        Voxel size of a stack.
    seed : int
    callback : callable, optional
        Gets each :class:`~napari_medseg.training.TrainingProgress` and segmentation step.
    progress : bool
        Show a progress bar in a terminal or notebook.

    Returns
    -------
    model : SegmentationModel
        The fine-tuned model (the start model unchanged if fine-tuning did not help).
    labels : ndarray of int32, ``labels``' shape
        ``image`` segmented by it, every checked object as the user left it (with its id)
        and nothing on checked background.
    report : TrainingProgress
        The last training report: the share kept, and F1 on the held-out checked objects
        of each share (:func:`~napari_medseg.training.blend_message`).

    Raises
    ------
    ValueError
        With fewer than :data:`MIN_CHECKED` checked objects, saying how many are needed;
        on images or labels the model cannot take (:func:`~napari_medseg.train_model`).
    """
    steps = fine_tune_on_corrections_steps(image, labels, checked, init, minutes=minutes,
                                           spacing=spacing, seed=seed)
    return run_steps(steps, callback, "Fine-tuning" if progress else None)


def fine_tune_on_corrections_steps(image, labels, checked, init, *, minutes: float = 5.0,
                                   spacing: Sequence[float] | None = None, seed: int = 0,
                                   cancelled: Callable[[], bool] | None = None
                                   ) -> Generator[object, None, tuple]:
    """:func:`fine_tune_on_corrections` as a generator for GUIs: yields the training
    reports, then ``(done, total)`` segmentation steps; raises
    :class:`~napari_medseg.runtime.Cancelled` once ``cancelled()``."""
    annotations, background, objects = checked_annotations(labels, checked)
    if objects < MIN_CHECKED:
        raise ValueError(f"{objects} checked object(s): fine-tuning needs at least "
                         f"{MIN_CHECKED}, of which every {HELD_OUT_EVERY}th is held out to tell "
                         "whether it helps. Accept (A) more of the objects you have "
                         "corrected, or that are right.")
    if not minutes > 0:
        raise ValueError(f"minutes must be > 0, got {minutes}.")
    train, held = _held_out(annotations, background)
    steps = train_steps(image, train, init=init, sparse=True, background_label=background,
                        validation=([image], [held]) if spacing is None
                        else ([image], [held], spacing),
                        time_limit=60 * minutes, spacing=spacing, seed=seed,
                        cancelled=cancelled, name=f"{_name_of(init)}-corrected")
    while True:  # the reports pass through; the last one says what was kept
        try:
            report = next(steps)
        except StopIteration as stop:
            model = stop.value
            break
        yield report
    new = yield from model.segment_steps(image, cancelled=cancelled, spacing=spacing)
    return model, _keep_checked(new, annotations, background, checked), report


def _held_out(annotations: np.ndarray, background: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) annotations: every :data:`HELD_OUT_EVERY`-th checked object and
    the background within 2 px of it held out, the rest trained on."""
    ids = np.unique(annotations[(annotations > 0) & (annotations != background)])
    objects = np.isin(annotations, ids[HELD_OUT_EVERY - 1::HELD_OUT_EVERY])
    ring = ndi.binary_dilation(objects, iterations=2) & (annotations == background)
    held = np.where(objects | ring, annotations, 0)
    train = np.where(objects | ring, 0, annotations)
    return train, held


def _name_of(init) -> str:
    if isinstance(init, SegmentationModel):
        return init.info.name or "model"
    return Path(str(init)).stem if str(init).endswith((".pt", ".pth")) else str(init)


def _keep_checked(new: np.ndarray, annotations: np.ndarray, background: int,
                  checked: np.ndarray) -> np.ndarray:
    """``new`` labels with the checked objects (of ``annotations``) put back as they were, new
    objects clipped off them and off checked background, new ids above the checked ones."""
    kept = (annotations > 0) & (annotations != background)
    out = np.where(new > 0, new.astype(np.int64) + background, 0)
    out[kept | (checked == CHECKED_BACKGROUND)] = 0
    out[kept] = annotations[kept]
    fresh = out > background
    top = int(annotations[kept].max(initial=0))
    out[fresh] = relabel_sequential(out[fresh] - background)[0] + top
    return out.astype(np.int32)
