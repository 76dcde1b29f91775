"""Model runner: architectures, model files, tiled inference, instance post-processing."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import tifffile
import torch
from skimage.segmentation import find_boundaries

from napari_medseg import nuclei_2d, nuclei_3d
from napari_medseg.evaluation import match_instances
from napari_medseg.instances import instances_from_boundary, link_slices
from napari_medseg.model_files import save_model
from napari_medseg.model_info import ModelInfo
from napari_medseg.model_runner import SegmentationModel, load_model
from napari_medseg.networks import build_network, ceil16


@pytest.mark.parametrize("architecture", ["unet", "vnet", "transunet"])
@pytest.mark.parametrize("dims", [2, 3])
def test_architectures_keep_the_spatial_shape(architecture, dims):
    kwargs = {"channels": (8, 16, 32), "strides": (2, 2)} if architecture == "unet" else {}
    if architecture == "transunet":
        kwargs = {"base": 8, "layers": 1, "heads": 2}
    net = build_network(architecture, dims, 1, 3, **kwargs)
    shape = (1, 1, *([32] * dims))
    with torch.no_grad():
        assert net(torch.zeros(shape)).shape == (1, 3, *([32] * dims))


def _tiny(dims=2, output="semantic", classes=("background", "object")):
    # Batch norm: in eval mode it is local, so tiled and whole-image inference can agree.
    info = ModelInfo(architecture="unet", dims=dims, in_channels=1, classes=list(classes),
                     output=output, kwargs={"channels": (4, 8), "strides": (2,),
                                            "num_res_units": 0, "norm": "batch"},
                     tile_shape=(32,) * dims)
    torch.manual_seed(0)
    return build_network("unet", dims, 1, len(classes), **info.kwargs), info


def test_checkpoint_round_trip(tmp_path):
    net, info = _tiny()
    path = save_model(tmp_path / "m.pt", net, info, half=False)
    model = load_model(path, device="cpu")
    model.fast = False  # float32 both sides: the file must give back the same network
    image = np.random.default_rng(0).normal(size=(40, 50)).astype(np.float32)
    direct = SegmentationModel(net, info, "cpu", fast=False).predict(image)
    np.testing.assert_allclose(model.predict(image), direct, atol=1e-5)
    assert model.info.classes == ["background", "object"] and model.info.dims == 2
    assert model.predict(image).shape == (2, 40, 50)
    # a model fine-tuned from nuclei-2d keeps naming its rehearsal set
    again = load_model(save_model(tmp_path / "r.pt", net, replace(info, replay="nuclei-2d")),
                       device="cpu")
    assert again.info.replay == "nuclei-2d" and model.info.replay is None


def test_half_checkpoints_keep_batch_norm_statistics_beyond_float16(tmp_path):
    """A running variance above float16's 65,504 must not come back infinite."""
    net, info = _tiny()
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_var.fill_(1e6)
    bn.running_mean.fill_(300.0)
    path = save_model(tmp_path / "m.pt", net, info, half=True)
    stored = torch.load(path, weights_only=True)["state_dict"]
    assert any(v.dtype == torch.float16 for v in stored.values())  # weights are halved
    model = load_model(path, device="cpu")
    loaded = next(m for m in model.network.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.equal(loaded.running_var, bn.running_var)
    image = np.random.default_rng(0).normal(size=(32, 32)).astype(np.float32)
    assert np.isfinite(model.predict(image)).all()


def test_mean_std_normalisation_is_saved_only_when_not_the_default(tmp_path):
    net, info = _tiny()
    default = torch.load(save_model(tmp_path / "a.pt", net, info), weights_only=True)
    assert "normalization" not in default["info"]  # files stay readable by older versions
    model = load_model(save_model(tmp_path / "b.pt", net,
                                  replace(info, normalization="mean-std"), half=False),
                       device="cpu")
    assert model.info.normalization == "mean-std"
    model.fast = False  # compared with a float32 forward pass below
    image = np.random.default_rng(1).normal(5.0, 3.0, (32, 32))
    standard = ((image - image.mean()) / image.std()).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(net.eval()(torch.from_numpy(standard)[None, None]), 1)[0]
    np.testing.assert_allclose(model.predict(image), expected.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="normalization must be one of"):
        replace(info, normalization="z-score")


def test_torchscript_with_metadata(tmp_path):
    net, info = _tiny()
    scripted = torch.jit.trace(net.eval(), torch.zeros(1, 1, 32, 32))
    meta = {k: v for k, v in info.__dict__.items() if k != "architecture"}
    path = tmp_path / "m.torchscript.pt"
    torch.jit.save(scripted, str(path), _extra_files={"medseg.json": json.dumps(meta)})
    model = load_model(path, device="cpu")
    assert model.info.architecture == "torchscript"
    image = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    direct = SegmentationModel(net, info, "cpu", fast=False).predict(image)
    np.testing.assert_allclose(model.predict(image), direct, atol=1e-4)
    broken = tmp_path / "broken.torchscript.pt"
    torch.jit.save(scripted, str(broken), _extra_files={"medseg.json": "{"})
    with pytest.raises(ValueError, match=r"'medseg\.json' metadata is not valid JSON"):
        load_model(broken)


def test_a_checkpoint_holding_pickled_code_is_refused_as_such(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("this ran",))

    path = tmp_path / "payload.pt"
    torch.save({"format": "napari-medseg/model", "info": Payload()}, path)
    with pytest.raises(ValueError, match="not a plain weights file"):
        load_model(path)
    assert "this ran" not in capsys.readouterr().out


def test_bad_model_files_give_clear_errors(tmp_path):
    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    with pytest.raises(ValueError, match="not a napari-medseg checkpoint"):
        load_model(png)
    truncated = tmp_path / "cut.pt"
    net, info = _tiny()
    save_model(truncated, net, info)
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(ValueError, match="not a napari-medseg"):
        load_model(truncated)
    wrong = tmp_path / "wrong.pt"
    save_model(wrong, net, info)
    checkpoint = torch.load(wrong, weights_only=True)
    checkpoint["info"]["kwargs"]["channels"] = (2, 4)
    torch.save(checkpoint, wrong)
    with pytest.raises(ValueError, match="do not fit"):
        load_model(wrong)
    with pytest.raises(ValueError, match="unknown model"):
        load_model("no-such-model")
    for change, message in ((lambda c: c.update(version="2"), "version '2' is not a number"),
                            (lambda c: c.pop("info"), "'info' must be a mapping"),
                            (lambda c: c.update(state_dict=[1, 2]), "'state_dict' must be a"),
                            (lambda c: c["info"].update(flavour="red"), "unknown model fields"),
                            (lambda c: c["info"].update(colour="red"), "colour must be"),
                            (lambda c: c["info"]["kwargs"].update(channels=(4096, 8192)),
                             "describes a network of")):
        save_model(wrong, net, info, overwrite=True)
        checkpoint = torch.load(wrong, weights_only=True)
        change(checkpoint)
        torch.save(checkpoint, wrong)
        with pytest.raises(ValueError, match=message):
            load_model(wrong)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")


def test_wrong_dimensionality_and_tiles():
    net, info = _tiny(dims=3)
    model = SegmentationModel(net, info, "cpu")
    with pytest.raises(ValueError, match="3D model"):
        model.predict(np.zeros((32, 32)))
    with pytest.raises(ValueError, match="multiples of 16"):
        model.predict(np.zeros((20, 32, 32)), tile_shape=(20, 32, 32))
    # Tiles larger than the image are fine: one padded tile.
    assert model.predict(np.zeros((10, 20, 24)), tile_shape=(64, 64, 64)).shape == (2, 10, 20, 24)


def test_any_real_dtype_is_accepted():
    net, info = _tiny()
    model = SegmentationModel(net, info, "cpu")
    mask = np.eye(32, dtype=bool)
    np.testing.assert_allclose(model.predict(mask), model.predict(mask.astype(np.float32)),
                               atol=1e-6)
    assert model.predict(np.full((32, 32), np.nan)).shape == (2, 32, 32)


def test_tiling_equals_untiled_inference_in_the_interior():
    net, info = _tiny()
    model = SegmentationModel(net, info, "cpu")
    image = np.random.default_rng(2).normal(size=(96, 96)).astype(np.float32)
    whole = model.predict(image, tile_shape=(96, 96))
    tiled = model.predict(image, tile_shape=(48, 48), overlap=0.5)
    interior = (slice(None), slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(tiled[interior], whole[interior], atol=0.02)


def test_stack_segmentation_slice_by_slice_equals_the_probability_route():
    net, info = _tiny(output="instance-boundary", classes=("bg", "interior", "boundary"))
    model = SegmentationModel(net, info, "cpu")
    image, _, _ = nuclei_3d(shape=(12, 64, 64), n_nuclei=5, seed=0)
    direct = model.segment(image)
    via_prob = model.labels_from_probabilities(model.predict(image))
    assert direct.shape == image.shape
    np.testing.assert_array_equal(direct, via_prob)
    steps = list(model.segment_steps(image))
    assert steps[-1] == (12, 12)


def test_planes_batched_through_the_network_give_each_planes_own_probabilities():
    """The planes path sends the planes of a stack through the network many at a time,
    planes that fit a tile without MONAI's window bookkeeping (100^3 in a quarter of the
    time); each plane's probabilities are MONAI's sliding-window ones for it alone, also
    for planes larger than a tile."""
    from monai.inferers import sliding_window_inference

    model = load_model("nuclei-3d")
    model._bfloat16 = lambda: False  # compare float32 with float32
    network = model._inference_network()
    image, _, _ = nuclei_3d(shape=(12, 61, 75), n_nuclei=5, seed=0)
    planes = (image[:, None] / image.max()).astype(np.float32)  # its 12 planes, channel first
    for tile in ((256, 256), (32, 48)):
        batched = model._windows(planes, tile, 0.25, None)
        roi = tuple(min(t, ceil16(s)) for t, s in zip(tile, planes.shape[2:], strict=True))
        with torch.inference_mode():
            alone = np.stack([torch.softmax(sliding_window_inference(
                torch.from_numpy(p[None]), roi, 4,
                lambda t: network(t.contiguous(memory_format=torch.channels_last)).float(),
                overlap=0.25, mode="gaussian"), 1)[0].numpy() for p in planes])
        np.testing.assert_allclose(batched, alone, atol=1e-5)


def test_planes_skipped_between_computed_ones_are_interpolated_linearly():
    """The planes path computes every other side plane and the stack's own slices: what
    lies between is the linear interpolation of its neighbours, exact for linear maps and
    placed as to_isotropic places a stack's slices."""
    from napari_medseg.model_runner import _add_between
    from napari_medseg.planes import to_isotropic

    z, y, _ = np.meshgrid(np.arange(9.0), np.arange(11.0), np.arange(6.0), indexing="ij")
    ramp = (2 * y + 1).astype(np.float32)[None]
    out = np.zeros_like(ramp)
    at = np.arange(0, 11, 2)
    _add_between(out, ramp[:, :, at], 2, at)
    np.testing.assert_allclose(out, ramp / 3, rtol=1e-6)
    # the YX planes of the slices, put on the isotropic grid as the image is
    slices = (z[::3] * 5).astype(np.float32)[None]
    out = np.zeros((1, 9, 11, 6), np.float32)
    _add_between(out, slices, 1)
    np.testing.assert_allclose(out, to_isotropic(slices, (3.0, 1.0, 1.0)) / 3, rtol=1e-6)


def test_2d_model_on_a_stack_links_instances_across_slices():
    a = np.zeros((3, 20, 20), np.int32)
    a[0, 2:8, 2:8], a[1, 3:9, 3:9], a[2, 12:18, 12:18] = 4, 7, 7  # id 7 twice, different objects
    linked = link_slices(list(a))
    assert linked[0, 5, 5] == linked[1, 5, 5] != 0
    assert linked[2, 15, 15] not in (0, linked[0, 5, 5])


def test_instances_from_boundary_maps_on_real_nuclei(dsb_dir):
    """Perfect interior/boundary maps of real touching nuclei give back the instances."""
    labels = tifffile.imread(sorted(dsb_dir.glob("*_labels.tif"))[0])
    boundary = find_boundaries(labels, mode="inner") & (labels > 0)
    interior = (labels > 0) & ~boundary
    result = instances_from_boundary(interior.astype(np.float32), boundary.astype(np.float32))
    tp, fp, fn = match_instances(result, labels)
    assert tp / (tp + 0.5 * (fp + fn)) > 0.95


def test_seeds_region_by_region_are_those_of_the_whole_stack():
    """The h-maxima of a packed stack's smoothed distance map, taken one region above the
    tails' floor at a time (the fast way), are the whole map's."""
    from scipy import ndimage as ndi
    from skimage.morphology import h_maxima

    from napari_medseg._image import distance_to_edge
    from napari_medseg.instances import _h_maxima_by_region

    _, labels, _ = nuclei_3d()
    core = (labels > 0) & ~find_boundaries(labels, mode="inner")
    distance = ndi.gaussian_filter(distance_to_edge(core), 1.0)
    for h in (0.5, 1.0, 2.0):
        np.testing.assert_array_equal(_h_maxima_by_region(distance, h),
                                      h_maxima(distance, h).astype(bool))


def test_the_fast_inference_path_gives_the_plain_paths_labels_on_a_real_image(dsb_dir):
    from conftest import dsb_fluorescence

    [(image, _)] = dsb_fluorescence(dsb_dir, 1, role="test")
    fast = load_model("nuclei-2d", device="cpu")
    plain = load_model("nuclei-2d", device="cpu")
    plain.fast = False
    # folded batch norm and channels-last alone: the same numbers within rounding
    fast_f32 = load_model("nuclei-2d", device="cpu")
    fast_f32._bfloat16 = lambda: False
    np.testing.assert_allclose(fast_f32.predict(image), plain.predict(image), atol=1e-4)
    np.testing.assert_array_equal(fast_f32.segment(image), plain.segment(image))
    # with bfloat16 where the CPU has it: the same objects, a few boundary pixels aside
    labels, reference = fast.segment(image), plain.segment(image)
    tp, fp, fn = match_instances(labels, reference, threshold=0.8)
    assert 2 * tp / (2 * tp + fp + fn) > 0.98
    assert ((labels > 0) == (reference > 0)).mean() > 0.995
    assert fast._inference_network() is not fast.network  # a separate, folded copy
    assert not any(isinstance(m, torch.nn.BatchNorm2d) and m.training
                   for m in fast.network.modules())


def test_a_models_own_thresholds_are_the_default_and_survive_saving(tmp_path):
    net, info = _tiny(output="instance-boundary", classes=("bg", "interior", "boundary"))
    info = replace(info, interior_threshold=0.7, foreground_threshold=0.6)
    model = load_model(save_model(tmp_path / "m.pt", net, info, half=False), device="cpu")
    assert (model.info.interior_threshold, model.info.foreground_threshold) == (0.7, 0.6)
    image, _ = nuclei_2d((96, 96), n_nuclei=6)
    np.testing.assert_array_equal(
        model.segment(image, diameter=None),
        model.segment(image, interior_threshold=0.7, foreground_threshold=0.6))
    for bad in (0, 1, 1.5, True, "0.5"):
        with pytest.raises(ValueError, match="interior_threshold must be a number"):
            replace(info, interior_threshold=bad)


def test_nuclei_3d_on_the_real_validation_crop_beats_otsu_and_watershed(gonuclear_dir):
    """GoNuclear crop 1136 (validation; densely packed plant nuclei, z spacing 2.2x xy):
    nuclei-3d with its own thresholds finds most of them (3D F1@0.5 0.58 when chosen, Otsu +
    3D watershed 0.02)."""
    from napari_medseg.datasets import read_gonuclear

    torch.set_num_threads(2)
    image, truth, spacing = read_gonuclear(gonuclear_dir, "1136")
    model = load_model("nuclei-3d", device="cpu")
    assert (model.info.interior_threshold, model.info.foreground_threshold) == (0.8, 0.8)
    tp, fp, fn = match_instances(model.segment(image, spacing=spacing, progress=False), truth)
    assert 2 * tp / (2 * tp + fp + fn) > 0.5
