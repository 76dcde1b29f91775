"""Training and fine-tuning segmentation models from label images (no Qt, no napari).

:func:`train_model` turns images and their label maps into a
:class:`~napari_medseg.model_runner.SegmentationModel` that the runner, the
widgets and ``napari-medseg predict`` use like a shipped model, and that
:meth:`~napari_medseg.model_runner.SegmentationModel.save` writes as our checkpoint.
The shipped models are made by the same function (``scripts/train_*.py``).

Two tasks:

- ``"instances"`` (default): label maps of objects (one id per nucleus or cell).
  The network learns background / interior / boundary maps, from which the
  runner splits touching objects (``output="instance-boundary"``).
- ``"semantic"``: label maps of classes (0 = background, 1..K = classes).

Sparse annotation: with ``sparse=True``, label 0 means *not annotated* and is
left out of the loss; pixels painted with ``background_label`` are background the
user has checked. Annotate a few objects completely, paint background around
them, and train. Everything else has automatic defaults: the patch size follows
the objects' size, half of the patches are drawn around objects, each object
equally likely (class balance), with flips, right-angle rotations and contrast, gamma and
noise augmentation (:mod:`~napari_medseg.training.augment`); the loss is cross-entropy
(boundary or rare classes weighted up) plus soft Dice (:mod:`~napari_medseg.training.loss`),
with a warm-up and a cosine learning-rate decay over the run
(:mod:`~napari_medseg.training.loop`). The weights returned are the moving average of the
weights over the last few hundred steps (:mod:`~napari_medseg.training.averaging`).

Modules: ``segmentation`` (:func:`train_model`), ``loop`` (the one optimisation loop),
``data`` (pairs, validation split, patches), ``targets``, ``augment``, ``loss``,
``averaging`` (weight averaging, fine-tuning blend), ``progress`` (reports and their
messages), ``files`` (folders of pairs).
"""

from napari_medseg.training.averaging import BLEND, BLEND_CHOICES, FALLBACK_BLEND
from napari_medseg.training.data import default_patch_shape
from napari_medseg.training.files import read_training_pairs
from napari_medseg.training.progress import TrainingProgress, blend_message, setup_message
from napari_medseg.training.segmentation import TASKS, train_model, train_steps

__all__ = ["BLEND", "BLEND_CHOICES", "FALLBACK_BLEND", "TASKS", "TrainingProgress",
           "blend_message", "default_patch_shape", "read_training_pairs", "setup_message",
           "train_model", "train_steps"]
