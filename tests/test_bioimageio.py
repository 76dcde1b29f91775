"""bioimage.io model packages: TorchScript and MONAI state-dict weights, 0.4 and 0.5 files."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest
import torch
import yaml
from monai.networks.nets import UNet

from napari_medseg import load_model, nuclei_2d

UNET_KWARGS = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1,
               "channels": [8, 16], "strides": [2], "num_res_units": 1}


def _space(size):
    return [{"type": "batch"}, {"type": "channel", "channel_names": ["raw"]},
            {"type": "space", "id": "y", "size": size}, {"type": "space", "id": "x", "size": size}]


def _rdf_05(weights: dict, preprocessing=None, out_names=("background", "nucleus"),
            postprocessing=()):
    scale = {"id": "scale_range", "kwargs": {"axes": ["y", "x"], "min_percentile": 2.0,
                                             "max_percentile": 99.0}}
    output_axes = _space(64)
    output_axes[1] = {"type": "channel", "channel_names": list(out_names)}
    return {"format_version": "0.5.3", "type": "model", "name": "tiny",
            "inputs": [{"id": "raw", "axes": _space({"min": 32, "step": 16}),
                        "preprocessing": [scale] if preprocessing is None else preprocessing}],
            "outputs": [{"id": "prob", "axes": output_axes,
                         "postprocessing": [{"id": p} for p in postprocessing]}],
            "weights": weights}


def _package(path, rdf: dict, files: dict) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("rdf.yaml", yaml.safe_dump(rdf))
        for name, data in files.items():
            z.writestr(name, data)


def _torchscript_bytes(module: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buffer)
    return buffer.getvalue()


def _state_bytes(module: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getvalue()


def _normalised(image, lo=2.0, hi=99.0):
    a, b = np.percentile(image, (lo, hi))
    return ((image - a) / (b - a)).astype(np.float32)


def test_torchscript_package_0_5(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Softmax(1)).eval()
    path = tmp_path / "tiny.zip"
    _package(path, _rdf_05({"torchscript": {"source": "weights.pt"}}),
             {"weights.pt": _torchscript_bytes(net)})
    model = load_model(path, device="cpu")
    info = model.info
    assert (info.architecture, info.dims, info.in_channels) == ("torchscript", 2, 1)
    assert info.classes == ["background", "nucleus"] and info.activation == "none"
    assert info.percentiles == (2.0, 99.0) and info.tile_shape == (256, 256)
    image = nuclei_2d((64, 80), n_nuclei=5, seed=1)[0]
    with torch.no_grad():
        expected = net(torch.from_numpy(_normalised(image))[None, None])[0].numpy()
    np.testing.assert_allclose(model.predict(image), expected, atol=1e-5)
    assert np.array_equal(model.segment(image), expected.argmax(0))
    with pytest.raises(ValueError, match="cannot be saved"):
        model.save(tmp_path / "again.pt")


def test_zero_mean_unit_variance_preprocessing(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Softmax(1)).eval()
    zmuv = [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}]
    path = tmp_path / "zmuv.zip"
    _package(path, _rdf_05({"torchscript": {"source": "weights.pt"}}, preprocessing=zmuv),
             {"weights.pt": _torchscript_bytes(net)})
    model = load_model(path, device="cpu")
    assert model.info.normalization == "mean-std"
    image = nuclei_2d((64, 80), n_nuclei=5, seed=1)[0].astype(np.float64)
    x = (image - image.mean()) / image.std()
    with torch.no_grad():
        expected = net(torch.from_numpy(x.astype(np.float32))[None, None])[0].numpy()
    np.testing.assert_allclose(model.predict(image), expected, atol=1e-5)


def test_monai_state_dict_package_0_4(tmp_path):
    torch.manual_seed(0)
    net = UNet(**UNET_KWARGS).eval()
    rdf = {"format_version": "0.4.10", "type": "model", "name": "unet",
           "inputs": [{"name": "raw", "axes": "bcyx",
                       "shape": {"min": [1, 1, 32, 32], "step": [0, 0, 16, 16]},
                       "preprocessing": [{"name": "scale_range",
                                          "kwargs": {"mode": "per_sample", "axes": "xy",
                                                     "min_percentile": 2.0,
                                                     "max_percentile": 99.0}}]}],
           "outputs": [{"name": "mask", "axes": "bcyx",
                        "shape": {"reference_tensor": "raw", "scale": [1, 1, 1, 1],
                                  "offset": [0, 0, 0, 0]},
                        "postprocessing": [{"name": "sigmoid"}]}],
           "weights": {"pytorch_state_dict": {"source": "weights.pt",
                                              "architecture": "monai.networks.nets:UNet",
                                              "kwargs": UNET_KWARGS}}}
    path = tmp_path / "unet.zip"
    _package(path, rdf, {"weights.pt": _state_bytes(net)})
    model = load_model(path, device="cpu")
    assert model.info.architecture == "monai:UNet" and model.info.activation == "sigmoid"
    image = nuclei_2d((64, 64), n_nuclei=4, seed=2)[0]
    with torch.no_grad():
        expected = torch.sigmoid(net(torch.from_numpy(_normalised(image))[None, None]))[0]
    np.testing.assert_allclose(model.predict(image), expected.numpy(), atol=1e-5)
    assert model.segment(image).dtype == np.int32


@pytest.mark.parametrize(("change", "message"), [
    ({"weights": {"pytorch_state_dict": {"source": "weights.pt", "architecture": {
        "source": "net.py", "callable": "Net", "kwargs": {}}}}}, "defined by code"),
    ({"weights": {"onnx": {"source": "m.onnx"}}}, "neither TorchScript nor PyTorch"),
    ({"preprocessing": [{"id": "fixed_zero_mean_unit_variance",
                         "kwargs": {"mean": 1.0, "std": 2.0}}]}, "not supported"),
    ({"preprocessing": [{"id": "scale_range", "kwargs": {"mode": "per_dataset"}}]},
     "not supported"),
    ({"postprocessing": ["binarize"]}, "not supported"),
])
def test_unsupported_packages_are_refused_with_the_reason(tmp_path, change, message):
    rdf = _rdf_05(change.get("weights", {"torchscript": {"source": "weights.pt"}}),
                  preprocessing=change.get("preprocessing"),
                  postprocessing=change.get("postprocessing", ()))
    path = tmp_path / "bad.zip"
    _package(path, rdf, {"weights.pt": b"not read"})
    with pytest.raises(ValueError, match=message):
        load_model(path)


def test_input_axes_the_runner_cannot_feed_are_refused(tmp_path):
    rdf = _rdf_05({"torchscript": {"source": "weights.pt"}})
    rdf["inputs"][0]["axes"] = rdf["inputs"][0]["axes"][::-1]  # x y c b
    path = tmp_path / "axes.zip"
    _package(path, rdf, {})
    with pytest.raises(ValueError, match="axes 'xycb' are not supported"):
        load_model(path)


def test_weights_are_checked_against_their_sha256(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Softmax(1)).eval()
    data = _torchscript_bytes(net)
    entry = {"source": "weights.pt", "sha256": hashlib.sha256(data).hexdigest()}
    good, bad, missing = tmp_path / "good.zip", tmp_path / "bad.zip", tmp_path / "missing.zip"
    _package(good, _rdf_05({"torchscript": entry}), {"weights.pt": data})
    flipped = data[:99] + bytes([data[99] ^ 1]) + data[100:]  # one bit changed
    _package(bad, _rdf_05({"torchscript": entry}), {"weights.pt": flipped})
    _package(missing, _rdf_05({"torchscript": entry}), {})
    assert load_model(good, device="cpu").info.classes == ["background", "nucleus"]
    with pytest.raises(ValueError, match=r"'weights\.pt' is corrupted"):
        load_model(bad)
    with pytest.raises(ValueError, match=r"'weights\.pt' is missing"):
        load_model(missing)


class _Payload:
    """Pickles to a call of ``print``: code that must never run on loading."""

    def __reduce__(self):
        return (print, ("this ran",))


def _pickled_code() -> bytes:
    buffer = io.BytesIO()
    torch.save({"weight": _Payload()}, buffer)
    return buffer.getvalue()


def _state_entry(kwargs=UNET_KWARGS):
    return {"pytorch_state_dict": {"source": "weights.pt", "architecture": {
        "import_from": "monai.networks.nets", "callable": "UNet", "kwargs": kwargs}}}


def test_pickled_code_in_state_dict_weights_is_refused_in_our_words(tmp_path, capsys):
    path = tmp_path / "payload.zip"
    _package(path, _rdf_05(_state_entry()), {"weights.pt": _pickled_code()})
    with pytest.raises(ValueError, match="not a plain weights file") as err:
        load_model(path)
    assert "weights_only" not in str(err.value)
    assert "this ran" not in capsys.readouterr().out


def test_a_description_asking_for_a_huge_network_is_refused_before_building_it(tmp_path):
    torch.manual_seed(0)
    small = _state_bytes(UNet(**UNET_KWARGS))
    huge = {**UNET_KWARGS, "channels": [4096, 8192], "strides": [2]}
    path = tmp_path / "huge.zip"
    _package(path, _rdf_05(_state_entry(huge)), {"weights.pt": small})
    with pytest.raises(ValueError, match=r"describes a network of .* weights but holds"):
        load_model(path)


def test_a_large_entry_with_a_wrong_sha256_is_hashed_as_it_streams(tmp_path):
    import tracemalloc

    path = tmp_path / "big.zip"
    rdf = _rdf_05({"torchscript": {"source": "weights.pt", "sha256": "0" * 64}})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("rdf.yaml", yaml.safe_dump(rdf))
        with z.open("weights.pt", "w") as f:
            for _ in range(200):
                f.write(bytes(1 << 20))  # 200 MiB of zeros, about 200 KiB compressed
    tracemalloc.start()
    with pytest.raises(ValueError, match="is corrupted"):
        load_model(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20


@pytest.mark.parametrize(("description", "message"), [
    (b"inputs: [unclosed", "not valid YAML"),
    (b"type: model\ninputs: x\noutputs: y\n", "malformed"),
])
def test_malformed_descriptions_are_refused_naming_the_package(tmp_path, description,
                                                               message):
    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("rdf.yaml", description)
    with pytest.raises(ValueError, match=f"'odd.zip'.*{message}"):
        load_model(path)
