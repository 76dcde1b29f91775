"""Command line: ``napari-medseg demo`` and batch subcommands (``interpolate``, ``predict``,
``train``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["main"]

# the shipped real samples (napari_medseg.samples), then the synthetic ones
SAMPLES = ("dsb2018-nuclei", "gonuclear-3d", "totalseg-ct", "nuclei-2d", "nuclei-3d", "ct")
_PRECISIONS = {"auto": None, "bf16": True, "fp32": False}  # -> train_model's mixed_precision
_COMPILE = {"auto": None, "on": True, "off": False}  # -> train_model's compile_network


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-medseg`` console script."""
    parser = argparse.ArgumentParser(prog="napari-medseg", description=__doc__)
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (default: one line)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, example: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, epilog=f"example:\n  napari-medseg {name} {example}",
                              formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    demo = add("demo", "--sample nuclei-3d",
               help="open napari with sample data and every widget docked")
    demo.add_argument("--sample", choices=SAMPLES, default="dsb2018-nuclei",
                      help="sample data to open (default: %(default)s)")
    demo.add_argument("--screenshot", metavar="PNG",
                      help="save a screenshot of the window to PNG and exit instead of running")
    interp = add(
        "interpolate", "labels.nii.gz filled.nii.gz --labels 1,2",
        help="fill the slices between annotated slices of a label file",
        description="Shape-based interpolation of a NIfTI, TIFF or zarr label file "
                    "(see napari_medseg.interpolate_labels).")
    interp.add_argument("input", help="label file (.nii, .nii.gz, .tif, .ome.tif, .png) or "
                                      "zarr folder (edited chunk by chunk)")
    interp.add_argument("output", help="file to write (NIfTI keeps the input's affine); for "
                                       "a zarr input a .zarr folder, INPUT itself to edit it "
                                       "in place (with --force)")
    interp.add_argument("--axis", type=int, default=0,
                        help="axis to interpolate along, in napari's (..., z, y, x) order "
                             "(default: 0, z for 3D files)")
    interp.add_argument("--labels", type=_id_list, metavar="ID,ID",
                        help="only these label ids (default: all)")
    interp.add_argument("--overwrite-labels", action="store_true",
                        help="let filled voxels replace other label ids (default: background only)")
    interp.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    predict = add(
        "predict", "nuclei.tif nuclei_labels.tif --model nuclei-2d",
        help="segment an image file with a model",
        description="Run a built-in model (see napari_medseg.available_models) or a model file "
                    "on a NIfTI, TIFF, PNG or JPEG image and write the labels.")
    predict.add_argument("input", help="image file (.nii, .nii.gz, .tif, .ome.tif, .png, .jpg) "
                                       "or, with --blockwise, an OME-Zarr / zarr folder")
    predict.add_argument("output", help="label file to write: .nii.gz (keeps the input's "
                                        "affine), .tif or .png (2D, 16-bit); with --blockwise "
                                        "a .zarr or .ome.zarr folder")
    predict.add_argument("--model", required=True, help="built-in model name or model file")
    predict.add_argument("--tile", type=_id_list, metavar="N,N",
                         help="sliding-window tile (default: the model's)")
    predict.add_argument("--overlap", type=float, default=0.25, help="tile overlap (0-1)")
    predict.add_argument("--diameter", type=float, metavar="PX",
                         help="the objects' median diameter in pixels (a stack's yx planes); "
                              "default: estimated, and the image zoomed to the model's "
                              "training size where it differs much")
    predict.add_argument("--device", help="cpu, cuda or mps (default: the best available)")
    predict.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    predict.add_argument("--blockwise", action="store_true",
                         help="segment block by block into zarr, reading the image lazily "
                              "(images larger than memory)")
    predict.add_argument("--block", type=_id_list, metavar="N,N",
                         help="with --blockwise: block shape (default 1024 per axis)")
    predict.add_argument("--halo", type=_id_list, metavar="N,N",
                         help="with --blockwise: margin around each block (default 64)")
    predict.add_argument("--scheduler", metavar="ADDR",
                         help="with --blockwise: a dask.distributed scheduler to run on")
    predict.add_argument("--workers", type=int, metavar="N",
                         help="with --blockwise: start a local cluster of N single-threaded "
                              "worker processes (default: dask's threads)")
    train = add(
        "train", "my_pairs/ my_model.pt --init nuclei-2d --minutes 10",
        help="train or fine-tune a model on a folder of image/label pairs",
        description="Train a model (see napari_medseg.train_model) on NAME_image.* + "
                    "NAME_labels.* files, or images/ and labels/ folders, and save it.")
    train.add_argument("data", help="folder of image/label pairs")
    train.add_argument("output", help="checkpoint to write (.pt)")
    train.add_argument("--architecture", choices=("unet", "vnet", "transunet"), default="unet")
    train.add_argument("--dims", type=int, choices=(2, 3), default=2)
    train.add_argument("--task", choices=("instances", "semantic"), default="instances")
    train.add_argument("--rgb", action="store_true",
                       help="train on the colour channels (H&E, brightfield); default: grey")
    train.add_argument("--init", help="built-in model name or checkpoint to fine-tune")
    train.add_argument("--blend", type=_blend,
                       help="with --init: share of the fine-tuned weights in the result (0-1), "
                            "or 'auto' (default): the share that segments the validation data best")
    train.add_argument("--minutes", type=float, help="training time limit")
    train.add_argument("--epochs", type=int, help="epochs (default: automatic)")
    train.add_argument("--patch", type=_id_list, metavar="N,N",
                       help="training patch (default: from the objects' size)")
    train.add_argument("--sparse", action="store_true",
                       help="label 0 means not annotated (needs --background-label)")
    train.add_argument("--background-label", type=int,
                       help="label value marking checked background")
    train.add_argument("--device", help="cpu, cuda or mps (default: the best available)")
    train.add_argument("--precision", choices=tuple(_PRECISIONS), default="auto",
                       help="forward pass in bfloat16 or float32 (auto: bfloat16 for 2D where the "
                            "processor computes it natively)")
    train.add_argument("--compile", choices=tuple(_COMPILE), default="auto",
                       help="train through torch.compile, needs a C++ compiler (auto: for runs "
                            "of 5 minutes or 3,000 steps and more)")
    train.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    args = parser.parse_args(argv)
    try:
        _check_paths(args)  # before the slow imports (torch: tens of seconds)
        if args.command == "demo":
            return run_demo(args.sample, args.screenshot)
        if args.command == "predict":
            return run_predict(args)
        if args.command == "train":
            return run_train(args)
        return run_interpolate(args)
    except FileExistsError as err:
        parser.exit(1, f"napari-medseg {args.command}: error: {err.filename or err} already "
                       "exists; pass --force to replace it\n")
    except KeyboardInterrupt:
        parser.exit(130, f"napari-medseg {args.command}: interrupted\n")
    except Exception as err:
        if args.debug:
            raise
        known = isinstance(err, ValueError | OSError)
        parser.exit(1, f"napari-medseg {args.command}: error: "
                       f"{err if known else f'{type(err).__name__}: {err}'}"
                       f"{'' if known else ' (run with --debug for the traceback)'}\n")


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse a missing or unreadable input and an output that would be replaced
    without --force, naming the flag."""

    from napari_medseg.io import is_image_path, is_zarr_path
    from napari_medseg.safe_write import check_apart

    if args.command in ("predict", "interpolate"):
        source = Path(args.input)
        if is_zarr_path(source) and source.is_dir():
            if args.command == "interpolate":
                if not is_zarr_path(args.output):
                    raise ValueError(f"{source.name} is a zarr folder: interpolate it into a "
                                     ".zarr folder (or into itself, with --force)")
            elif not args.blockwise:
                raise ValueError(f"{source.name} is a zarr folder: segment it with predict "
                                 "--blockwise")
        elif args.command == "predict" and source.is_dir() and not args.blockwise:
            _folder_outputs(source, Path(args.output), args.force)  # checks them all now
            return
        elif not source.is_file():
            raise ValueError(f"{source} does not exist or is not a file")
        if not is_image_path(source):
            raise ValueError(f"{source.name} is not a NIfTI, TIFF, PNG, JPEG or BMP file")
        if args.command == "predict" and not args.blockwise:  # blockwise: its arrays checked
            check_apart(args.output, [source])
    if args.command == "predict" and args.blockwise != is_zarr_path(args.output):
        raise ValueError("--blockwise writes a .zarr or .ome.zarr folder, and a .zarr output "
                         "needs --blockwise")
    if args.command == "predict" and not args.blockwise and (
            args.scheduler or args.workers or args.block or args.halo):
        raise ValueError("--block, --halo, --scheduler and --workers need --blockwise")
    elif args.command == "train" and not Path(args.data).is_dir():
        raise ValueError(f"{args.data} is not a folder")
    if args.command in ("predict", "interpolate", "train"):
        output = Path(args.output)
        if output.exists() and not args.force:
            raise FileExistsError(17, "exists", str(output))
        if not output.parent.is_dir():
            raise ValueError(f"folder {output.parent} does not exist")


def run_interpolate(args: argparse.Namespace) -> int:
    """Interpolate a label file and write the result."""
    from napari_medseg.io import is_zarr_path, read_image, write_labels
    from napari_medseg.slice_interpolation import interpolate_labels_with_report

    if is_zarr_path(args.input):
        report = _interpolate_zarr(args)
    else:
        [source] = read_image(args.input)
        if source.data.dtype.kind not in "iu":
            raise ValueError(f"{args.input} holds {source.data.dtype} values, not integer "
                             "labels")
        out, report = interpolate_labels_with_report(
            source.data, axis=args.axis, label_ids=args.labels, overwrite=args.overwrite_labels)
        write_labels(args.output, out, scale=source.scale, translate=source.translate,
                     metadata=source.metadata, overwrite=args.force)
    for label, slices in sorted(report.filled.items()):
        print(f"label {label}: filled {len(slices)} slice(s)")
    for label, why in sorted(report.skipped.items()):
        print(f"label {label}: skipped ({why})")
    print(f"wrote {args.output}")
    return 0


def _interpolate_zarr(args: argparse.Namespace):
    """A zarr label folder (a plain array, or a one-level OME-Zarr label image) interpolated
    chunk by chunk into a copy of its folder (chunk files copied as they are, never
    decoded) that replaces OUTPUT only when complete, OUTPUT being INPUT too: a run killed
    while writing leaves the old labels, never half-interpolated ones."""
    import shutil

    from napari_medseg.safe_write import written_beside

    with written_beside(Path(args.output), replace=True) as folder:  # --force checked already
        shutil.copytree(Path(args.input), folder)
        return _interpolate_zarr_folder(folder, args)


def _interpolate_zarr_folder(folder: Path, args: argparse.Namespace):
    """Interpolate the zarr label folder ``folder`` in place; returns the report."""
    import zarr

    from napari_medseg.io.omezarr import ngff_metadata
    from napari_medseg.slice_interpolation import interpolate_labels_with_report

    node = zarr.open(str(folder), mode="r+")
    if isinstance(node, zarr.Group):
        scales = ngff_metadata(node).get("multiscales") or [{}]
        levels = scales[0].get("datasets", [])
        if len(levels) != 1:
            raise ValueError(f"{Path(args.input).name} is a zarr group with {len(levels)} "
                             "resolution levels; interpolate a plain zarr array or a "
                             "one-level OME-Zarr label image (levels are not rebuilt)")
        node = node[levels[0]["path"]]
    if node.dtype.kind not in "iu":
        raise ValueError(f"{args.input} holds {node.dtype} values, not integer labels")
    _, report = interpolate_labels_with_report(
        node, axis=args.axis, label_ids=args.labels, overwrite=args.overwrite_labels)
    return report


def run_predict(args: argparse.Namespace) -> int:
    """Segment an image file with a model and write the labels."""
    from napari_medseg.io import read_image, write_labels
    from napari_medseg.model_runner import load_model

    model = load_model(args.model, device=args.device)
    if args.blockwise:
        return _predict_blockwise(args, model)
    if Path(args.input).is_dir():
        return _predict_folder(args, model)
    [source] = read_image(args.input)
    labels, size = _segment(model, source, args, progress=True)
    write_labels(args.output, labels, scale=source.scale, translate=source.translate,
                 metadata=source.metadata, overwrite=args.force)
    kind = "objects" if model.info.output == "instance-boundary" else "classes"
    size = f" ({size})" if size is not None else ""
    print(f"{model.info.name}: {len(np.unique(labels)) - 1} {kind}{size}; wrote {args.output}")
    return 0


def _segment(model, source, args: argparse.Namespace, progress: bool):
    """Labels of an image read by read_image, and the object size they were made at (None
    for models without a training size)."""
    from napari_medseg.runtime import run_steps

    spatial = [s for k, s in enumerate(source.scale) if k != source.channel_axis]
    spacing = spatial[-3:] if len(spatial) >= 3 else None
    steps = model.segment_steps(source.data, tile_shape=args.tile, overlap=args.overlap,
                                spacing=spacing, diameter=args.diameter, size=True)
    return run_steps(steps, progress="Segmenting" if progress and spacing else None)


def _folder_outputs(folder: Path, out: Path, force: bool) -> dict[Path, Path]:
    """The image files of ``folder`` and the label file each is written to in ``out``
    (``NAME_labels`` in the image's format, PNG for JPEG and BMP). Files named like
    label maps are not inputs (a folder of images often holds their annotations); two
    inputs with one output, an output that replaces a file of ``folder`` (annotations
    beside their images) and, without --force, an existing output are refused before
    any work."""
    from napari_medseg.io import is_image_path, is_zarr_path
    from napari_medseg.io._common import named_like_labels, stem

    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; predict on a folder writes into a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p)
                   and not is_zarr_path(p))
    images = [p for p in files if not named_like_labels(p)]
    if not images:
        raise ValueError(f"{folder} holds no NIfTI, TIFF, PNG, JPEG or BMP images"
                         + (" (only files named as label maps)" if files else ""))
    suffixes = {".nii": ".nii.gz", ".gz": ".nii.gz", ".tif": ".tif", ".tiff": ".tif"}
    outputs = {p: out / f"{stem(p)}_labels{suffixes.get(p.suffix.lower(), '.png')}"
               for p in images}
    first: dict[Path, Path] = {}
    for image, target in outputs.items():
        if target in first:
            raise ValueError(f"{first[target].name} and {image.name} would both be written "
                             f"to {target.name}: rename one of them")
        first[target] = image
    beside = {f.resolve() for f in files}
    kept = [o for o in outputs.values() if o.resolve() in beside]
    if kept:
        raise ValueError(f"{kept[0]} is a file of the input folder (annotations?) and is "
                         "left as it is: write the labels into another folder")
    taken = [str(o) for o in outputs.values() if o.exists()]
    if taken and not force:
        raise FileExistsError(17, "exists", f"{taken[0]} (and {len(taken) - 1} more)"
                              if len(taken) > 1 else taken[0])
    return outputs


def _predict_folder(args: argparse.Namespace, model) -> int:
    """predict on a folder: every image segmented with the model loaded once; images per
    second printed."""
    from napari_medseg.io import read_image, write_labels

    outputs = _folder_outputs(Path(args.input), Path(args.output), args.force)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    started, done, failed = time.perf_counter(), 0, []
    for path, target in outputs.items():
        try:  # one bad file is reported, and the rest still segmented
            [source] = read_image(path)
            if source.kind == "labels":
                print(f"{path.name}: a label map, skipped")
                continue
            labels, size = _segment(model, source, args, progress=False)
            write_labels(target, labels, scale=source.scale, translate=source.translate,
                         metadata=source.metadata, overwrite=args.force)
        except (ValueError, OSError) as err:
            failed.append(path.name)
            print(f"{path.name}: error: {err}", file=sys.stderr)
            continue
        done += 1
        size = f" ({size})" if size is not None else ""
        print(f"{path.name}: {len(np.unique(labels)) - 1} objects{size} -> {target.name}")
    seconds = time.perf_counter() - started
    print(f"{model.info.name}: {done} images in {seconds:.1f} s "
          f"({done / max(seconds, 1e-9):.2f} images/s); wrote {args.output}")
    if failed:
        raise ValueError(f"{len(failed)} of {len(outputs)} files failed: {', '.join(failed)}")
    return 0


def _predict_blockwise(args: argparse.Namespace, model) -> int:
    """predict --blockwise: lazily read, segment block by block into zarr."""
    from napari_medseg.blockwise import segment_blockwise
    from napari_medseg.io import read_image

    source = read_image(args.input)[0]
    image = source.data[0] if source.multiscale else source.data
    client = args.scheduler
    if args.workers:
        if client:
            raise ValueError("pass --scheduler or --workers, not both")
        from distributed import Client, LocalCluster

        client = Client(LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                     processes=True, dashboard_address=None))
    spatial = [s for k, s in enumerate(source.scale) if k != source.channel_axis]
    dims = image.ndim - (source.channel_axis is not None or source.rgb)
    try:
        labels = segment_blockwise(model, image, args.output, block_shape=args.block,
                                   halo=args.halo, client=client, overwrite=args.force,
                                   scale=spatial[-dims:], tile_shape=args.tile,
                                   overlap=args.overlap, diameter=args.diameter)
    finally:
        if args.workers:
            client.close()
            client.cluster.close()
    found = labels.attrs["napari-medseg"]
    kind = f"{found['objects']} objects" if "objects" in found else "classes"
    print(f"{model.info.name}: {kind} in {found['blocks']} blocks ({found['skipped']} skipped "
          f"as empty); wrote {args.output}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Train a model on a folder of pairs and save it, printing the loss per epoch."""
    from napari_medseg.training import (
        BLEND,
        blend_message,
        read_training_pairs,
        setup_message,
        train_model,
    )

    output = Path(args.output)
    images, labels = read_training_pairs(args.data)

    def report(progress) -> None:
        if progress.iteration == 0:
            print(f"training on {len(images)} image(s): {setup_message(progress)}"
                  + (" (the first step compiles, about 30 s on a CPU)" if progress.compiled
                     else ""), flush=True)
        if progress.loss is not None:
            val = "" if progress.validation_loss is None else \
                f" validation {progress.validation_loss:.4f}"
            print(f"epoch {progress.epoch} loss {progress.loss:.4f}{val} "
                  f"({progress.elapsed:.0f} s)", flush=True)
        if progress.blend is not None:
            print(blend_message(progress))

    model = train_model(
        images, labels, args.architecture, args.dims, task=args.task, rgb=args.rgb,
        init=args.init,
        blend=BLEND if args.blend is None else args.blend,
        time_limit=args.minutes * 60 if args.minutes else None,
        epochs=args.epochs, patch_shape=args.patch, sparse=args.sparse,
        background_label=args.background_label, name=output.stem, device=args.device,
        mixed_precision=_PRECISIONS[args.precision], compile_network=_COMPILE[args.compile],
        callback=report, progress=False)  # the epochs are printed instead
    model.save(output, overwrite=args.force)
    print(f"wrote {output}")
    return 0


def _blend(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number from 0 to 1, got {text!r}")
    return value


def _id_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ids, got {text!r}") from None


def run_demo(sample: str, screenshot: str | None = None) -> int:
    """Open the demo viewer; with ``screenshot``, save the window to it and return."""
    import napari

    from napari_medseg.plugin.demo import open_demo

    viewer = open_demo(sample)
    if screenshot:
        from qtpy.QtWidgets import QApplication

        viewer.window._qt_window.resize(1400, 860)
        QApplication.processEvents()
        viewer.screenshot(screenshot, canvas_only=False, flash=False)
        viewer.close()
        print(f"saved {screenshot}")
        return 0
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
