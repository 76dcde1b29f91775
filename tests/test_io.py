"""NIfTI and TIFF reading/writing, including files written by other software."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile

from napari_medseg import ct_volume, nuclei_3d, read_image, write_labels
from napari_medseg.io import ImageReadError, ImageWriteError, read_nifti, read_tiff

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"


def test_real_nifti_opens_in_display_orientation_and_round_trips(tmp_path):
    """anatomical.nii (LAS, written by SPM) shows as (z, y, x) and labels land on its voxels."""
    src = NIBABEL_DATA / "anatomical.nii"
    raw = np.asanyarray(nib.load(src).dataobj)  # (x, y, z) = (33, 41, 25), x towards L
    image = read_nifti(src)
    assert image.kind == "image"
    assert image.data.shape == (25, 41, 33)
    assert image.data.dtype.isnative
    assert image.scale == (2.0, 2.0, 2.0)
    # LAS -> LPS flips y only: display[z, y, x] == raw[x, ny-1-y, z].
    np.testing.assert_array_equal(image.data, raw[:, ::-1, :].transpose(2, 1, 0))

    labels = np.zeros(image.data.shape, np.uint16)
    labels[image.data > np.percentile(image.data, 90)] = 2
    labels[3, 4, 5] = 300  # a voxel we can trace
    out = write_labels(tmp_path / "seg.nii.gz", labels, metadata=image.metadata)
    saved = nib.load(out)
    np.testing.assert_allclose(saved.affine, nib.load(src).affine)
    assert saved.get_data_dtype().newbyteorder("=") == np.uint16  # source byte order kept
    stored = np.asanyarray(saved.dataobj)
    assert stored[5, 41 - 1 - 4, 3] == 300
    assert (stored == 2).sum() == (labels == 2).sum()

    again = read_image(out)[0]
    assert again.kind == "labels"
    np.testing.assert_array_equal(again.data, labels)


def test_4d_nifti_keeps_time_first():
    image = read_nifti(NIBABEL_DATA / "example4d.nii.gz")
    assert image.data.shape == (2, 24, 96, 128)
    assert image.axes == "TZYX"
    assert image.scale[0] == 1.0 and image.scale[1:] == pytest.approx((2.2, 2.0, 2.0), abs=1e-5)


def test_nifti2_is_read():
    image = read_nifti(NIBABEL_DATA / "example_nifti2.nii.gz")
    assert image.data.ndim >= 3


def test_ct_hounsfield_values_survive(tmp_path):
    hu, organs, spacing = ct_volume(shape=(12, 40, 40))
    affine = np.diag([-spacing[2], -spacing[1], spacing[0], 1.0])
    nib.save(nib.Nifti1Image(hu.transpose(2, 1, 0), affine), tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(organs.transpose(2, 1, 0), affine), tmp_path / "organs.nii.gz")
    image = read_nifti(tmp_path / "ct.nii.gz")
    assert image.kind == "image" and image.data.min() < -900
    np.testing.assert_array_equal(image.data, hu)
    assert image.scale == spacing
    seg = read_nifti(tmp_path / "organs.nii.gz")
    assert seg.kind == "labels"
    np.testing.assert_array_equal(seg.data, organs)


def test_labels_without_source_get_scale_affine(tmp_path):
    labels = np.zeros((4, 5, 6), np.int64)
    labels[1, 2, 3] = 7
    out = write_labels(tmp_path / "l.nii", labels, scale=(3.0, 0.5, 0.25), translate=(1, 2, 3))
    back = read_nifti(out)
    assert back.data.dtype == np.int64
    np.testing.assert_array_equal(back.data, labels)
    assert back.scale == (3.0, 0.5, 0.25)
    assert back.translate == pytest.approx((1, 2, 3))


def test_existing_file_is_never_overwritten_silently(tmp_path):
    target = tmp_path / "seg.nii.gz"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        write_labels(target, np.zeros((2, 2, 2), np.uint8))
    assert target.read_bytes() == b"precious"
    # A failing write (float labels) leaves the file untouched even with overwrite.
    with pytest.raises(ImageWriteError, match="integers"):
        write_labels(target, np.zeros((2, 2, 2), float), overwrite=True)
    assert target.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("notes.nii.gz", b"hello, not an image", "not a valid NIfTI"),
        ("notes.tif", b"hello, not an image", "not a readable TIFF"),
        ("missing.nii", None, "no such file"),
    ],
)
def test_bad_files_give_one_clear_message(tmp_path, name, content, problem):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=problem) as info:
        read_image(path)
    assert name in str(info.value)


def test_truncated_nifti(tmp_path):
    src = NIBABEL_DATA / "anatomical.nii"
    data = gzip.compress(src.read_bytes())
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.nii\.gz.*truncated or corrupt"):
        read_image(path)


def test_too_many_dimensions_are_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3, 2, 2), np.float32), np.eye(4)),
             tmp_path / "5d.nii")
    with pytest.raises(ImageReadError, match="5D"):
        read_image(tmp_path / "5d.nii")


def test_ome_tiff_scale_round_trip(tmp_path):
    image, labels, scale = nuclei_3d(shape=(8, 40, 40), n_nuclei=4)
    tifffile.imwrite(tmp_path / "img.ome.tif", image, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
                               "PhysicalSizeZ": 1000.0, "PhysicalSizeZUnit": "nm"})
    read = read_tiff(tmp_path / "img.ome.tif")
    assert read.kind == "image" and read.axes == "ZYX"
    assert read.scale == pytest.approx(scale)
    out = write_labels(tmp_path / "labels.ome.tif", labels.astype(np.int64), scale=read.scale)
    back = read_tiff(out)
    assert back.kind == "labels" and back.data.dtype == np.uint8
    np.testing.assert_array_equal(back.data, labels)
    assert back.scale == pytest.approx(scale)


def test_imagej_hyperstack_channels_and_spacing(tmp_path):
    stack = np.random.default_rng(0).integers(0, 4000, (5, 2, 16, 20), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "hyper.tif", stack, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"axes": "ZCYX", "spacing": 0.8, "unit": "um"})
    read = read_tiff(tmp_path / "hyper.tif")
    assert read.axes == "ZCYX" and read.channel_axis == 1 and read.kind == "image"
    assert read.scale == pytest.approx((0.8, 1.0, 0.25, 0.25))


def test_rgb_tiff(tmp_path):
    rgb = np.zeros((10, 12, 3), np.uint8)
    tifffile.imwrite(tmp_path / "he.tif", rgb, photometric="rgb")
    read = read_tiff(tmp_path / "he.tif")
    assert read.rgb and read.kind == "image" and read.scale == (1.0, 1.0)


def test_real_dsb_label_tiffs_open_as_labels(dsb_dir):
    for path in sorted(dsb_dir.glob("*_labels.tif"))[:5]:
        read = read_image(path)[0]
        assert read.kind == "labels"
        assert read.data.max() == len(np.unique(read.data)) - 1  # consecutive instance ids


def _nifti_with_header(tmp_path, name, change):
    """A small NIfTI file whose header ``change(header)`` edits in place."""
    import io as _io

    path = tmp_path / name
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), np.diag([2, 2, 2, 1.0])), path)
    raw = bytearray(path.read_bytes())
    header = nib.Nifti1Header.from_fileobj(_io.BytesIO(bytes(raw[:348])))
    change(header)
    raw[:348] = header.binaryblock
    path.write_bytes(bytes(raw))
    return path


def _sform(values):
    def change(header):
        for row in ("srow_x", "srow_y", "srow_z"):
            header[row][:] = values
        header["sform_code"], header["qform_code"] = 1, 0
    return change


def _qform_pixdim(header):
    header["pixdim"][1] = np.nan
    header["sform_code"], header["qform_code"] = 0, 1


@pytest.mark.parametrize(("change", "message"), [
    (lambda h: h["dim"].__setitem__(0, 0), "declares data of shape"),
    (_qform_pixdim, "orientation"),
    (_sform(np.nan), "orientation"),
    (_sform(0.0), "orientation"),
])
def test_broken_nifti_headers_are_refused_naming_the_file(tmp_path, change, message):
    path = _nifti_with_header(tmp_path, "broken.nii", change)
    with pytest.raises(ImageReadError, match=f"broken.nii.*{message}"):
        read_image(path)


@pytest.mark.parametrize("name", ["huge.nii", "huge.nii.gz"])
def test_a_tiny_nifti_declaring_gigabytes_is_refused_before_allocating(tmp_path, name):
    header = nib.Nifti1Header()
    header.set_data_shape((2048, 2048, 1024))
    header.set_data_dtype(np.int16)
    raw = header.binaryblock + b"\0" * 4 + b"\0" * 600
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    with pytest.raises(ImageReadError, match="8,589,934,592 bytes"):
        read_image(path)


@pytest.mark.parametrize(("bad", "field"), [
    (b'PhysicalSizeX="abcd"', "PhysicalSizeX"),
    (b'PhysicalSizeX="-0.5"', "PhysicalSizeX"),
    (b'PhysicalSizeX="NaN "', "PhysicalSizeX"),
    (b'PhysicalSizeX="1e-9"', "PhysicalSizeX"),
])
def test_invalid_ome_pixel_sizes_are_dropped_with_a_warning_and_the_rest_kept(
        tmp_path, bad, field):
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 8, 8), np.uint16), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.5,
                               "PhysicalSizeZ": 2.0})
    raw = path.read_bytes()
    good = b'PhysicalSizeX="0.25"'
    assert good in raw and len(bad) == len(good)
    path.write_bytes(raw.replace(good, bad))
    with pytest.warns(UserWarning, match=f"cells.ome.tif: {field}="):
        [image] = read_image(path)
    assert image.scale == (2.0, 0.5, 1.0)


def test_unknown_ome_units_are_not_taken_as_micrometres(tmp_path):
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), ome=True,
                     metadata={"axes": "YX", "PhysicalSizeX": 0.25, "PhysicalSizeXUnit": "ft",
                               "PhysicalSizeY": 0.25})
    with pytest.warns(UserWarning, match="PhysicalSizeXUnit='ft'"):
        [image] = read_image(path)
    assert image.scale == (0.25, 1.0)


def test_3d_labels_of_an_oblique_4d_series_keep_its_affine(tmp_path):
    angle = np.deg2rad(20)
    affine = np.eye(4)
    affine[:3, :3] = [[np.cos(angle) * 2, -np.sin(angle), 0], [np.sin(angle) * 2,
                                                               np.cos(angle), 0], [0, 0, 3]]
    affine[:3, 3] = [-40, 12, 7]
    series = np.random.default_rng(0).integers(0, 100, (10, 12, 6, 4)).astype(np.int16)
    nib.save(nib.Nifti1Image(series, affine), tmp_path / "bold.nii.gz")
    [image] = read_image(tmp_path / "bold.nii.gz")
    labels = np.zeros(image.data.shape[1:], np.uint8)
    labels[2, 3:5, 4:7] = 1
    out = write_labels(tmp_path / "seg.nii.gz", labels, metadata=image.metadata)
    saved = nib.load(out)
    np.testing.assert_allclose(saved.affine, affine)
    [again] = read_image(out)
    np.testing.assert_array_equal(again.data, labels)
    with pytest.raises(ImageWriteError, match="do not fit the source image's grid"):
        write_labels(tmp_path / "bad.nii.gz", labels[:, :-1], metadata=image.metadata)
    broken = {"nifti": {"affine": affine}}
    with pytest.raises(ImageWriteError, match="lacks"):
        write_labels(tmp_path / "bad.nii.gz", labels, metadata=broken)


def test_the_display_range_of_a_huge_lazy_image_reads_a_bounded_sample(tmp_path):
    """Issue 30.7: a 646-byte zarr.json declaring 50,000 x 50,000 uint16 killed napari by
    memory (its contrast read it all). Measured in a child process: peak memory stays far
    below the declared 5 GB, and only a few chunks are read."""
    import subprocess
    import sys

    import zarr

    zarr.create_array(str(tmp_path / "huge.zarr"), shape=(50_000, 50_000), dtype="uint16",
                      chunks=(1024, 1024), fill_value=0)
    # the peak of this process's own memory (VmHWM: getrusage's would count the pytest
    # process it was forked from)
    code = ("import re, sys, time\nfrom pathlib import Path\n"
            "from napari_medseg.display import auto_contrast\n"
            "from napari_medseg.io import read_image\n"
            "[image] = read_image(sys.argv[1]); t = time.perf_counter()\n"
            "limits = auto_contrast(image.data); t = time.perf_counter() - t\n"
            "status = Path('/proc/self/status').read_text()\n"
            "print(limits, round(t, 1),\n"
            "      int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "huge.zarr")],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    limits, seconds, peak_mib = out.rsplit(maxsplit=2)
    assert limits == "(0.0, 1.0)" and float(seconds) < 10 and int(peak_mib) < 1024


def test_a_lazy_display_range_reads_few_spread_chunks():
    import dask.array as da

    from napari_medseg.display import auto_contrast

    read = []

    def chunk(block, block_info=None):
        read.append(block_info[None]["chunk-location"])
        return block + np.uint16(block_info[None]["chunk-location"][0])

    image = da.zeros((40_000, 40_000), np.uint16, chunks=(1000, 1000)).map_blocks(
        chunk, dtype=np.uint16)
    lo, hi = auto_contrast(image)
    assert len(read) == 16 and lo < hi  # 32 MiB of 2 MB chunks
    assert {y for y, _ in read} > {0, 39}  # from the top to the bottom


def test_zarr_that_is_no_image_is_refused_naming_the_file_and_why(tmp_path):
    """Issue 30.8, 30.12, 30.14: complex or 0-d arrays, a chunk grid too fine to index
    (chunks of 1 on 10^10 pixels), levels listed coarse first, a labels list that is not a
    list of names."""
    import zarr
    from ome_zarr.writer import write_image

    from napari_medseg.io import read_zarr

    zarr.create_array(str(tmp_path / "c.zarr"), shape=(8, 8), dtype="complex64")
    zarr.create_array(str(tmp_path / "z.zarr"), shape=(), dtype="uint8")
    zarr.create_array(str(tmp_path / "fine.zarr"), shape=(100_000, 100_000), chunks=(1, 1),
                      dtype="uint8")
    for name, why in (("c.zarr", "complex64 values, not real numbers"),
                      ("z.zarr", "a single value"), ("fine.zarr", "rechunk it")):
        with pytest.raises(ImageReadError, match=why) as err:
            read_zarr(tmp_path / name)
        assert name in str(err.value)
    image = np.zeros((64, 64), np.uint16)
    root = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w")
    write_image(image, root, axes="yx", scale_factors=(2,))
    meta = dict(root.attrs)
    meta["ome"]["multiscales"][0]["datasets"].reverse()
    root.attrs.update(meta)
    with pytest.raises(ImageReadError, match="not listed finest first"):
        read_zarr(tmp_path / "img.ome.zarr")
    meta["ome"]["multiscales"][0]["datasets"].reverse()
    root.attrs.update(meta)
    labels = root.create_group("labels")
    for bad in ("nuclei", 5):
        labels.attrs.update({"ome": {"labels": bad}})
        with pytest.raises(ImageReadError, match="must be a list of names"):
            read_zarr(tmp_path / "img.ome.zarr")


@pytest.mark.parametrize("suffix", [".tif", ".nii.gz", ".png"])
def test_labels_with_negative_ids_are_refused_not_written_as_an_image(tmp_path, suffix):
    """Issue 30.14: TIFF labels with negative int32 ids reopened as an image."""
    labels = np.zeros((16, 16), np.int32)
    labels[2:6, 2:6], labels[8:12, 8:12] = 3, -2
    with pytest.raises(ImageWriteError, match="must not be negative, got -2"):
        write_labels(tmp_path / f"l{suffix}", labels)
    assert list(tmp_path.iterdir()) == []


def test_an_ome_zarr_label_image_of_another_shape_than_its_image_is_refused(tmp_path):
    """Issue 30.14 (labels at half the resolution over the same extent are fine)."""
    import zarr
    from ome_zarr.writer import write_image, write_labels

    from napari_medseg.io import read_zarr

    root = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w")
    write_image(np.zeros((64, 64), np.uint16), root, axes="yx")
    write_labels(np.zeros((32, 32), np.uint16), root, "half", axes="yx",
                 scale={"y": 2.0, "x": 2.0}, scale_factors=())
    assert [f.kind for f in read_zarr(tmp_path / "img.ome.zarr")] == ["image", "labels"]
    write_labels(np.zeros((48, 64), np.uint16), root, "cut", axes="yx", scale_factors=())
    with pytest.raises(ImageReadError, match=r"\[48, 64\] does not cover its image's \[64, 64\]"):
        read_zarr(tmp_path / "img.ome.zarr")


@pytest.mark.parametrize("mend", [
    lambda ms: ms[0].__setitem__("datasets", 5),
    lambda ms: ms[0]["datasets"][0].__setitem__("coordinateTransformations", 5),
    lambda ms: ms[0]["datasets"][0]["coordinateTransformations"][0].__setitem__("scale", 5),
    lambda ms: ms[0]["datasets"][0].__setitem__("path", 5),
], ids=["datasets 5", "transformations 5", "scale 5", "path 5"])
def test_malformed_ome_zarr_metadata_is_an_image_read_error_naming_the_file(tmp_path, mend):
    """Issue 30.13: these escaped as TypeError tracebacks."""
    import json

    import zarr
    from ome_zarr.writer import write_image

    from napari_medseg.io import read_zarr

    write_image(np.zeros((64, 64), np.uint16), zarr.open_group(str(tmp_path / "i.ome.zarr"),
                                                               mode="w"), axes="yx")
    meta = tmp_path / "i.ome.zarr" / "zarr.json"
    doc = json.loads(meta.read_text())
    mend(doc["attributes"]["ome"]["multiscales"])
    meta.write_text(json.dumps(doc))
    with pytest.raises(ImageReadError, match=r"i\.ome\.zarr"):
        read_zarr(tmp_path / "i.ome.zarr")
