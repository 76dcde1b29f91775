"""Training and fine-tuning: short real runs, sparse labels, data folders, bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tifffile
import torch
from scipy import ndimage as ndi
from skimage.io import imsave

from conftest import dsb_fluorescence
from napari_medseg import nuclei_2d, nuclei_3d, train_model
from napari_medseg.evaluation import match_instances
from napari_medseg.model_runner import load_model
from napari_medseg.runtime import Cancelled, run_steps
from napari_medseg.training import (
    BLEND_CHOICES,
    FALLBACK_BLEND,
    default_patch_shape,
    read_training_pairs,
    setup_message,
    train_steps,
)
from napari_medseg.training.averaging import WeightAverage, blend_weights
from napari_medseg.training.data import PatchDraws, PatchSampler
from napari_medseg.training.targets import IGNORE, target

SMALL = {"channels": (8, 16, 32), "strides": (2, 2), "num_res_units": 1, "norm": "batch"}


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)


def _f1(model, pairs):
    tp, fp, fn = sum(np.array(match_instances(model.segment(image), truth))
                     for image, truth in pairs)
    return 2 * tp / max(2 * tp + fp + fn, 1)


def test_short_training_on_real_nuclei_lowers_the_loss_and_beats_an_untrained_model(
        dsb_train_dir):
    train = dsb_fluorescence(dsb_train_dir, 3)
    test = dsb_fluorescence(dsb_train_dir, 3, role="validation")
    history = []
    untrained = train_model([p[0] for p in train], [p[1] for p in train], epochs=1,
                            batch_size=1, network_kwargs=SMALL, learning_rate=1e-9,
                            patch_shape=(64, 64))
    model = train_model([p[0] for p in train], [p[1] for p in train], epochs=20,
                        patch_shape=(96, 96), batch_size=8, network_kwargs=SMALL,
                        device="cpu", callback=history.append)
    losses = [p.loss for p in history if p.loss is not None]
    assert len(losses) == 20 and history[-1].fraction == 1.0
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])
    assert model.info.output == "instance-boundary" and model.info.dims == 2
    assert _f1(model, test) > max(_f1(untrained, test) + 0.3, 0.5)


def test_a_single_image_is_validated_on_a_held_out_strip():
    image, labels = nuclei_2d((256, 200), n_nuclei=30, seed=6)[:2]
    history = []
    train_model(image, labels, epochs=2, patch_shape=(64, 64), batch_size=2,
                network_kwargs=SMALL, device="cpu", callback=history.append)
    assert all(p.validation_loss is not None for p in history[1:])
    history = []
    train_model(image, labels, epochs=1, patch_shape=(64, 64), batch_size=2, validation=0,
                network_kwargs=SMALL, device="cpu", callback=history.append)
    assert history[-1].validation_loss is None


def _train_synthetic(epochs: int, **kwargs):
    """A SMALL network trained on one synthetic image: the model and its per-epoch losses."""
    image, labels = nuclei_2d((192, 192), n_nuclei=20, seed=2)[:2]
    history = []
    model = train_model(image, labels, epochs=epochs, patch_shape=(64, 64), batch_size=4,
                        validation=0, network_kwargs=SMALL, device="cpu",
                        callback=history.append, **kwargs)
    return model, [p.loss for p in history if p.loss is not None]


def test_bfloat16_training_learns_as_float32_does():
    final = {}
    for mixed_precision in (True, False):
        model, losses = _train_synthetic(12, mixed_precision=mixed_precision)
        assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
        final[mixed_precision] = np.mean(losses[-3:])
        # the weights stay float32 whichever precision the forward pass used
        assert all(p.dtype == torch.float32 for p in model.network.parameters())
    assert final[True] == pytest.approx(final[False], rel=0.05)


def test_compiled_training_learns_as_eager_training_does(tmp_path):
    final = {}
    for compiled in (True, False):
        model, final[compiled] = _train_synthetic(6, mixed_precision=False,
                                                  compile_network=compiled)
    # the same steps on the same patches: the fused kernels change only rounding
    np.testing.assert_allclose(final[True], final[False], rtol=0.02)
    model.save(tmp_path / "m.pt")  # the plain module's weights, no compiler prefixes
    assert load_model(tmp_path / "m.pt").info.kwargs == model.info.kwargs


@pytest.mark.parametrize(("message", "shown"), [
    ("no C++ compiler found\nmore detail", "(RuntimeError: no C++ compiler found)"),
    ("", "(RuntimeError: )"),
])
def test_a_failing_compiler_means_training_without_it(monkeypatch, message, shown):
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError(message)

    monkeypatch.setattr(torch, "compile", lambda network: Broken())
    image, labels = nuclei_2d((128, 128), n_nuclei=10, seed=1)[:2]
    history = []
    with pytest.warns(RuntimeWarning, match=re.escape(f"torch.compile failed {shown}")):
        model = train_model(image, labels, epochs=2, patch_shape=(64, 64), batch_size=2,
                            validation=0, network_kwargs=SMALL, device="cpu",
                            mixed_precision=False, compile_network=True,
                            callback=history.append)
    assert all(torch.isfinite(p).all() for p in model.network.parameters())
    # the reports say what was planned, then what happened
    assert setup_message(history[0]) == "cpu, float32, compiled"
    assert [setup_message(p) for p in history[1:]] == ["cpu, float32"] * 2


def test_short_runs_are_not_compiled(monkeypatch):
    def refuse(network):
        raise AssertionError("a short run was compiled")

    monkeypatch.setattr(torch, "compile", refuse)
    image, labels = nuclei_2d((128, 128), n_nuclei=10, seed=1)[:2]
    train_model(image, labels, epochs=2, patch_shape=(64, 64), batch_size=2, validation=0,
                network_kwargs=SMALL, device="cpu")
    train_model(image, labels, time_limit=2, patch_shape=(64, 64), batch_size=2,
                validation=0, network_kwargs=SMALL, device="cpu")


def test_a_diverging_run_stops_with_the_reason():
    image, labels = nuclei_2d((128, 128), n_nuclei=10, seed=1)[:2]
    with pytest.raises(FloatingPointError, match="lower learning rate"):
        train_model(image, labels, epochs=3, patch_shape=(64, 64), batch_size=2,
                    learning_rate=1e30, validation=0, network_kwargs=SMALL, device="cpu",
                    mixed_precision=False)


def test_sparse_target_ignores_unannotated_pixels():
    labels = np.zeros((20, 20), np.int32)
    labels[2:8, 2:8] = 5  # an annotated object
    labels[12:18, :] = 9  # checked background
    sparse = target(labels, "instances", sparse=True, background_label=9)
    assert (sparse[labels == 0] == IGNORE).all()
    assert (sparse[labels == 9] == 0).all()
    assert set(np.unique(sparse[labels == 5])) == {1, 2}
    full = target(labels, "instances", sparse=False, background_label=9)
    assert (full[labels == 0] == 0).all()


def test_object_patches_show_every_object_equally_often():
    """Half of the patches centre on an object; one large nucleus must not take them from
    twenty small ones, in its own image or another."""
    big = np.zeros((128, 128), np.int32)
    big[20:100, 20:100] = 1
    small = np.zeros((128, 128), np.int32)
    for k in range(20):
        y, x = divmod(k, 5)
        small[10 + 28 * y: 14 + 28 * y, 10 + 24 * x: 14 + 24 * x] = k + 1
    samples = [PatchSampler(lab[None].astype(np.float32), lab.astype(np.int64), "instances",
                            False, None) for lab in (big, small)]
    assert [s.objects for s in samples] == [1, 20]
    draws = PatchDraws(samples, (16, 16), np.random.default_rng(0), augment=None)
    # a 16 x 16 patch mostly of object pixels lies in the large nucleus
    mostly_object = np.mean([(draws.draw()[1] > 0).mean() > 0.5 for _ in range(2000)])
    # expected: 1/2 x 1/21 of the object draws, plus the draws anywhere that fall into it
    # (1/2 x 1/2 x 6,400 / 16,384), less those near its edge; by object pixels it would be
    # 1/2 x 6,400 / 6,720 of the object draws alone
    assert 0.08 < mostly_object < 0.14


@pytest.mark.parametrize("zoom", [0.5, 2.0])
def test_zoomed_patches_show_objects_zoomed_with_their_targets(zoom):
    """Scale augmentation: a patch at zoom 2 shows the sample's nuclei twice as wide (area
    four times), its targets made from the resampled labels; the image and targets agree
    (target foreground where the zoomed nuclei are bright)."""
    image, labels = nuclei_2d()
    sampler = PatchSampler((image[None] / 255).astype(np.float32), labels.astype(np.int64),
                           "instances", False, None)
    rng = np.random.default_rng(1)
    areas = {}
    for z in (1.0, zoom):
        patches = [sampler.patch((128, 128), rng, True, z) for _ in range(40)]
        assert all(p.shape == (1, 128, 128) and t.shape == (128, 128) for p, t in patches)
        objects = [ndi.label(t > 0)[0] for _, t in patches]
        areas[z] = np.median(np.concatenate([np.bincount(o.ravel())[1:] for o in objects]))
        foreground = np.concatenate([p[0][t > 0] for p, t in patches])
        background = np.concatenate([p[0][t == 0] for p, t in patches])
        assert foreground.mean() > background.mean() + 0.2
    assert 0.6 * zoom ** 2 < areas[zoom] / areas[1.0] < 1.5 * zoom ** 2


def test_zoom_range_zooms_half_of_the_patches_log_uniformly_in_3d_too():
    labels = np.zeros((32, 48, 48), np.int64)
    labels[14:18, 20:28, 20:28] = 1
    sampler = PatchSampler(labels[None].astype(np.float32), labels, "instances", False, None)
    rng = np.random.default_rng(0)
    volume = {z: np.median([np.count_nonzero(sampler.patch((32, 64, 64), rng, True, z)[1] > 0)
                            for _ in range(20)]) for z in (1.0, 2.0)}
    assert 0.6 * 8 < volume[2.0] / volume[1.0] < 1.5 * 8
    zooms = []
    patch = sampler.patch
    sampler.patch = lambda *args: zooms.append(args[-1]) or patch(*args)
    draws = PatchDraws([sampler], (16, 32, 32), rng, augment=None, zoom_range=(0.5, 2.0))
    draws.batch(400)
    zoomed = np.log2([z for z in zooms if z != 1.0])
    assert 150 < zoomed.size < 250 and zoomed.min() >= -1 and zoomed.max() <= 1
    assert abs(np.median(zoomed)) < 0.2  # log-uniform: as often enlarged as shrunk


def test_anisotropy_makes_a_patch_look_like_a_stacks_side_plane():
    """A real nuclei patch made to look like the ZX plane of a stack with 3x coarser
    slices: blurred along one axis (its edges far weaker than the other axis'), the mean
    kept; half of the patches, the axis either way."""
    from napari_medseg.training.augment import RandAnisotropy

    image, _ = nuclei_2d()
    x = (image[None, :160, :160] / 255).astype(np.float32)
    side = RandAnisotropy((3.0, 3.0))
    side.set_random_state(0)
    sharpness = []
    for _ in range(40):
        y = side(x)
        assert y.shape == x.shape and y.dtype == np.float32
        sharpness.append([np.abs(np.diff(y[0], axis=a)).mean()
                          / np.abs(np.diff(x[0], axis=a)).mean() for a in (0, 1)])
        assert abs(y.mean() - x.mean()) < 0.01
    sharpness = np.array(sharpness)
    changed = sharpness.min(axis=1) < 0.9
    assert 10 < changed.sum() < 30
    # along one axis far more than along the other (which loses only pixel noise)
    low, high = sharpness[changed].min(axis=1), sharpness[changed].max(axis=1)
    assert (low < 0.7 * high).all()
    assert len(set(sharpness[changed].argmin(axis=1).tolist())) == 2  # either axis


def test_sparse_training_learns_from_a_fifth_of_the_objects():
    image, truth = nuclei_2d((256, 256), n_nuclei=40, seed=3)[:2]
    rng = np.random.default_rng(0)
    kept = rng.choice(np.unique(truth)[1:], 8, replace=False)
    sparse = np.where(np.isin(truth, kept), truth, 0)
    background = ndi.distance_transform_edt(truth == 0) > 3  # painted clear of all nuclei
    sparse[background] = 1000
    model = train_model(image, sparse, epochs=30, patch_shape=(64, 64), batch_size=8,
                        network_kwargs=SMALL, sparse=True, background_label=1000, device="cpu")
    test_image, test_truth = nuclei_2d((256, 256), n_nuclei=40, seed=4)[:2]
    assert _f1(model, [(test_image, test_truth)]) > 0.6


def test_semantic_3d_training_and_round_trip(tmp_path):
    image, labels, _ = nuclei_3d(shape=(24, 64, 64), n_nuclei=6, seed=1)
    classes = (labels > 0).astype(np.uint8)
    model = train_model(image, classes, dims=3, task="semantic", epochs=3,
                        patch_shape=(16, 32, 32), network_kwargs={"channels": (4, 8),
                                                                  "strides": (2,)},
                        device="cpu")
    assert model.info.classes == ["background", "class 1"] and model.info.dims == 3
    out = model.segment(image)
    assert out.shape == image.shape and set(np.unique(out)) <= {0, 1}
    path = model.save(tmp_path / "semantic.pt", half=False)
    again = load_model(path, device="cpu")
    assert np.array_equal(again.segment(image), out)


def test_fine_tuning_keeps_the_model_and_a_stack_trains_on_its_annotated_slices():
    image, labels = nuclei_2d((128, 128), n_nuclei=12, seed=5)[:2]
    stack = np.stack([image, image[::-1], image])
    annotated = np.stack([labels, np.zeros_like(labels), labels[:, ::-1]])
    model = train_model(stack, annotated, init="nuclei-2d", epochs=1, batch_size=2,
                        patch_shape=(64, 64), device="cpu")
    base = load_model("nuclei-2d", device="cpu")
    assert model.info.kwargs == base.info.kwargs and model.info.name == "custom"
    assert model.info.replay == base.info.replay == "nuclei-2d"  # rehearsed, and kept
    assert model.network is not base.network
    # one short epoch at the fine-tuning rate keeps what the model knew
    assert _f1(model, [(image, labels)]) > _f1(base, [(image, labels)]) - 0.1


def test_replay_mixes_the_rehearsed_images_into_every_fine_tuning_batch(monkeypatch,
                                                                        dsb_train_dir):
    """Half of each batch comes from the replay images, normalised as the start model
    normalises; the user's images fill the rest."""
    from napari_medseg.training import segmentation

    [(old, old_labels)] = dsb_fluorescence(dsb_train_dir, 1)
    image, labels = nuclei_2d((96, 96), n_nuclei=8, seed=2)[:2]
    drawn = []
    real_batch = PatchDraws.batch

    def batch(self, size):
        drawn.append((self.samplers[0].image.shape, size))
        return real_batch(self, size)

    monkeypatch.setattr(PatchDraws, "batch", batch)
    model = train_model(image, labels, init="nuclei-2d", epochs=1, batch_size=4,
                        patch_shape=(64, 64), device="cpu", validation=0, blend=1.0,
                        replay=([old], [old_labels]))
    assert segmentation.REPLAY_SHARE == 0.5
    assert {(shape[1:], size) for shape, size in drawn} == {((96, 96), 2), (old.shape, 2)}
    assert _f1(model, [(old, old_labels)]) > _f1(load_model("nuclei-2d", device="cpu"),
                                                 [(old, old_labels)]) - 0.1


def test_blend_mixes_fine_tuned_and_start_weights():
    image, labels = nuclei_2d((96, 96), n_nuclei=8, seed=2)[:2]
    base = load_model("nuclei-2d", device="cpu")
    kwargs = {"init": base, "epochs": 1, "batch_size": 2, "patch_shape": (64, 64),
              "device": "cpu", "validation": 0}
    tuned = train_model(image, labels, blend=1.0, **kwargs).network.state_dict()
    half = train_model(image, labels, blend=0.5, **kwargs).network.state_dict()
    start = train_model(image, labels, blend=0.0, **kwargs).network.state_dict()
    reference = base.network.state_dict()
    key = next(k for k, v in reference.items() if v.ndim == 4)  # a convolution kernel
    assert torch.equal(start[key], reference[key])
    assert not torch.equal(tuned[key], reference[key])  # training moved it
    torch.testing.assert_close(half[key], (tuned[key] + reference[key]) / 2)


def test_returned_weights_average_the_steps_weights():
    """The model trained is the exponential moving average of its weights after each step,
    batch-norm statistics included; the step counter (an integer buffer) is left alone."""
    network = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    weight, norm = network[0].weight, network[1]
    average = WeightAverage(network, decay=0.9)
    expected = {"weight": weight.item(), "mean": norm.running_mean.item()}
    for step in range(1, 51):
        with torch.no_grad():  # what an optimiser step and a forward pass would do
            weight.fill_(float(step))
            norm.running_mean.fill_(-float(step))
            norm.num_batches_tracked.fill_(step)
        average.update()
        decay = min(0.9, step / (step + 9))
        expected = {"weight": decay * expected["weight"] + (1 - decay) * step,
                    "mean": decay * expected["mean"] - (1 - decay) * step}
    average.copy_to_network()
    assert weight.item() == pytest.approx(expected["weight"], rel=1e-5)
    assert norm.running_mean.item() == pytest.approx(expected["mean"], rel=1e-5)
    assert 40 < weight.item() < 50  # lags the last step's 50 by about 1 / (1 - decay) steps
    assert norm.num_batches_tracked.item() == 50


def test_auto_blend_takes_the_share_that_segments_the_held_out_objects_best():
    image, labels = nuclei_2d((96, 96), n_nuclei=8, seed=2)[:2]
    held = nuclei_2d((96, 96), n_nuclei=8, seed=3)[:2]
    base = load_model("nuclei-2d", device="cpu")
    kwargs = {"init": base, "epochs": 1, "batch_size": 2, "patch_shape": (64, 64),
              "device": "cpu", "validation": held}
    reports = []
    auto = train_model(image, labels, callback=reports.append, **kwargs)
    tuned = train_model(image, labels, blend=1.0, **kwargs)
    last = reports[-1]
    objects = len(np.unique(held[1])) - 1
    assert last.blend_measure == f"F1@0.5 on {objects} held-out objects"
    assert set(last.blend_scores) == set(BLEND_CHOICES)
    best = max(last.blend_scores.values())
    assert last.blend == min(b for b, f1 in last.blend_scores.items() if f1 == best)
    assert last.blend_scores[last.blend] >= last.blend_scores[0.0]  # never below the start
    blend_weights(tuned.network, base.network, last.blend)
    for key, value in auto.network.state_dict().items():
        torch.testing.assert_close(value, tuned.network.state_dict()[key])
    if last.blend:
        assert (f"fine-tuned share {last.blend:g} (best {last.blend_measure})"
                in auto.info.description)
    # without validation data: the fallback share
    reports.clear()
    train_model(image, labels, callback=reports.append, **{**kwargs, "validation": 0})
    assert reports[-1].blend == FALLBACK_BLEND and reports[-1].blend_scores is None


def test_default_patch_follows_object_size(dsb_train_dir):
    labels = [p[1] for p in dsb_fluorescence(dsb_train_dir, 5)]
    patch = default_patch_shape(labels, 2)
    assert all(64 <= p <= 256 and p % 16 == 0 for p in patch)
    small = np.zeros((512, 512), np.int32)
    small[10:14, 10:14] = 1
    assert default_patch_shape([small], 2) == (64, 64)
    assert default_patch_shape([np.zeros((40, 300), np.int32)], 2)[0] == 48


def test_read_training_pairs_in_both_layouts(tmp_path):
    image, labels = nuclei_2d((64, 64), n_nuclei=3, seed=0)[:2]
    tifffile.imwrite(tmp_path / "a_image.tif", image)
    tifffile.imwrite(tmp_path / "a_labels.tif", labels.astype(np.uint16))
    imsave(tmp_path / "b_image.png", (image / image.max() * 255).astype(np.uint8))
    tifffile.imwrite(tmp_path / "b_labels.tif", labels.astype(np.uint16))
    images, found = read_training_pairs(tmp_path)
    assert len(images) == 2 and np.array_equal(found[0], labels)
    nested = tmp_path / "nested"
    (nested / "images").mkdir(parents=True)
    (nested / "labels").mkdir()
    tifffile.imwrite(nested / "images" / "x.tif", image)
    tifffile.imwrite(nested / "labels" / "x.tif", labels.astype(np.uint16))
    assert len(read_training_pairs(nested)[0]) == 1
    with pytest.raises(ValueError, match="no image/label pairs"):
        read_training_pairs(tmp_path / "nested" / "images")


def test_cancel_stops_training():
    image, labels = nuclei_2d((64, 64), n_nuclei=3, seed=0)[:2]
    steps = train_steps(image, labels, epochs=50, network_kwargs=SMALL, patch_shape=(64, 64),
                        cancelled=lambda: True)
    next(steps)  # the start report
    with pytest.raises(Cancelled):
        next(steps)


@pytest.mark.parametrize(("images", "labels", "kwargs", "message"), [
    (np.zeros((64, 64)), np.zeros((64, 32), np.int32), {}, "must match"),
    (np.zeros((64, 64)), np.zeros((64, 64), np.int32), {}, "no objects"),
    (np.zeros((64, 64)), np.ones((64, 64), np.int32), {}, "no background"),
    (np.zeros((64, 64)), np.ones((64, 64), np.int32), {"task": "semantic"}, "no background"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"patch_shape": (128, 128)},
     "larger than every"),
    (np.zeros((8, 64)), np.eye(8, 64, dtype=np.int32), {}, "too small"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"sparse": True}, "background_label"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"sparse": True, "background_label": 7},
     "no background"),
    (np.zeros((64, 64)), np.eye(64).astype(np.float32), {}, "integers"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"dims": 3}, "stacks"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"init": "nuclei-2d", "task": "semantic"},
     "cannot be fine-tuned"),
    ([np.zeros((64, 64))], [], {}, "1 images but 0"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"init": "nuclei-2d", "blend": 1.5},
     "blend must be between 0 and 1, or 'auto'"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"device": "mps", "mixed_precision": True},
     "mixed precision trains on"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"device": "mps", "compile_network": True},
     "compiled training runs on"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"zoom_range": 2.0}, "two zoom factors"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"zoom_range": (2.0, 0.5)},
     "low <= high"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"zoom_range": (0, 2)}, "0.125 <="),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"anisotropy": (0.5, 2)}, "1 <= low"),
    (np.zeros((16, 64, 64)), np.eye(64, dtype=np.int32)[None].repeat(16, 0),
     {"anisotropy": (1, 4), "dims": 3}, "anisotropy is for 2D"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32),
     {"replay": (np.zeros((64, 64)), np.eye(64, dtype=np.int32))}, "replay is for fine-tuning"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32), {"init": "nuclei-2d", "replay": 5},
     r"replay must be \(images, labels\)"),
    (np.zeros((64, 64)), np.eye(64, dtype=np.int32),
     {"init": "nuclei-2d", "replay": ([np.zeros((64, 64))], [np.zeros((64, 64), np.int32)])},
     "replay labels hold no objects"),
])
def test_bad_input_is_refused_clearly(images, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_model(images, labels, epochs=1, **kwargs)


def test_rgb_training_makes_a_colour_model_that_refuses_grey_images():
    """H&E-like colour: purple nuclei on pink, which luminance alone tells apart poorly."""
    _, labels = nuclei_2d((160, 160), n_nuclei=15, seed=3)[:2]
    rng = np.random.default_rng(0)
    rgb = np.where(labels[..., None] > 0, [120, 60, 160], [230, 150, 190]).astype(np.float32)
    rgb = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
    history = []
    model = train_model(rgb, labels, rgb=True, epochs=10, patch_shape=(64, 64), batch_size=4,
                        validation=0, network_kwargs=SMALL, device="cpu",
                        callback=history.append)
    assert model.info.in_channels == 3
    losses = [p.loss for p in history if p.loss is not None]
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    assert model.segment(rgb).shape == labels.shape
    with pytest.raises(ValueError, match="takes 3 channels"):
        model.segment(labels.astype(np.float32))
    with pytest.raises(ValueError, match="an RGB model trains on colour images"):
        train_model(labels.astype(np.float32), labels, rgb=True, epochs=1)


def test_a_planes_model_trains_and_runs_on_the_three_planes_of_a_stack():
    image, labels, spacing = nuclei_3d((16, 64, 64), n_nuclei=6, seed=1)
    model = train_model(image, labels, volume="planes", spacing=spacing, epochs=2,
                        patch_shape=(32, 32), batch_size=4, validation=0,
                        network_kwargs=SMALL, device="cpu")
    assert model.info.volume == "planes" and model.info.dims == 2
    steps = list(model.segment_steps(image, spacing=spacing))
    # the stack's own 16 YX slices, and every other of the 64 ZX and 64 ZY planes (z
    # resampled to isotropic voxels, x2)
    assert steps[-1] == (80, 80)
    labels_3d, prob = run_steps(model.segment_steps(image, spacing=spacing,
                                                    probabilities=True))
    assert labels_3d.shape == image.shape and prob.shape == (3, *image.shape)
    np.testing.assert_allclose(prob.sum(0), 1.0, atol=1e-4)


def test_models_record_their_images_and_warn_about_images_unlike_them():
    model, _ = _train_synthetic(1)
    assert (model.info.colour, model.info.bright_objects) == (False, True)
    assert model.info.trained_on == "grey images with bright objects"
    image, _ = nuclei_2d((128, 128), n_nuclei=8, seed=1)
    rgb = np.stack([image, image // 2, image // 3], -1)  # a colour image
    with pytest.warns(UserWarning, match="a colour image, but .* grey images"):
        model.segment(rgb)
    brightfield = image.max() - image  # dark nuclei on a bright background
    with pytest.warns(UserWarning, match="bright background"):
        model.segment(brightfield)


def test_fine_tuning_on_large_nuclei_trains_them_at_the_start_models_size(dsb_train_dir):
    """Real nuclei magnified 3x (as a 40x objective shows them): fine-tuning zooms them to
    the start model's training size, as its inference will, and keeps that size; trained at
    their own size and recording it, two such images once scored F1 0.001 on six more."""
    from napari_medseg.datasets import magnified
    from napari_medseg.training.segmentation import _fine_tuning_zoom

    start = load_model("nuclei-2d", device="cpu")
    pairs = [magnified(image, labels, 3.0) for image, labels in dsb_fluorescence(dsb_train_dir, 3)]
    zoom = _fine_tuning_zoom([(None, lab) for _, lab in pairs[:2]], "instances", 2, None, start)
    assert 0.3 < zoom < 0.8
    model = train_model([p[0] for p in pairs[:2]], [p[1] for p in pairs[:2]], init=start,
                        epochs=2, patch_shape=(128, 128), blend=1, device="cpu",
                        validation=0, seed=0)
    assert model.info.diameter == start.info.diameter
    image, truth = pairs[2]
    tp, fp, fn = match_instances(model.segment(image, progress=False), truth)
    tp0, fp0, fn0 = match_instances(start.segment(image, progress=False), truth)
    assert 2 * tp / (2 * tp + fp + fn) > 2 * tp0 / (2 * tp0 + fp0 + fn0) - 0.1
