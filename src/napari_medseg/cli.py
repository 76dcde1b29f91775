"""Command line: ``napari-medseg demo`` and (in later releases) batch subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

SAMPLES = ("nuclei-2d", "nuclei-3d", "ct")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-medseg`` console script."""
    parser = argparse.ArgumentParser(prog="napari-medseg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="open napari with sample data and every widget docked")
    demo.add_argument("--sample", choices=SAMPLES, default="nuclei-2d",
                      help="sample data to open (default: %(default)s)")
    demo.add_argument("--screenshot", metavar="PNG",
                      help="save a screenshot of the window to PNG and exit instead of running")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo(args.sample, args.screenshot)
    return 2  # pragma: no cover - argparse rejects unknown commands


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
