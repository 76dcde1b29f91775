"""What the crash journal costs a commit (napari_medseg.plugin.recovery_watch).

    xvfb-run -a python benchmarks/recovery.py

A 64x1024x1024 uint16 Labels layer (the size the other GUI figures use) takes commits of
real-sized 3D objects (a 12 x 40 x 40 ellipsoid, as a 3D box + click or a propagation
writes): the commit's time without and with the journal's event handler, and the time the
journal then takes to write the tiles (a second after the edits pause, not on the commit's
path). Names the CPU.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np


def main() -> None:
    os.environ["MEDSEG_RECOVERY"] = tempfile.mkdtemp(prefix="medseg-bench-")
    import napari

    from napari_medseg.plugin import recovery_watch
    from napari_medseg.plugin.layer_edit import commit_mask_to_layer
    from napari_medseg.runtime import processor_name

    z, y, x = np.ogrid[-6:6, -20:20, -20:20]
    blob = (z / 6) ** 2 + (y / 20) ** 2 + (x / 20) ** 2 <= 1
    viewer = napari.Viewer(show=False)
    times = {}
    for journaled in (False, True):
        layer = viewer.add_labels(np.zeros((64, 1024, 1024), np.uint16))
        if journaled:
            recovery_watch.journal_layer(layer)
        rng = np.random.default_rng(0)
        spent = []
        for _ in range(30):
            at = (int(rng.integers(0, 52)), int(rng.integers(0, 984)), int(rng.integers(0, 984)))
            t0 = time.perf_counter()
            commit_mask_to_layer(layer, blob, offset=at)
            spent.append(time.perf_counter() - t0)
        times[journaled] = np.median(spent)
        if journaled:
            t0 = time.perf_counter()
            recovery_watch._flush()
            flush = (time.perf_counter() - t0) / 30
    print(f"{processor_name()}: commit of a 12x40x40 object into 64x1024x1024 uint16, median "
          f"of 30: {times[False] * 1e3:.1f} ms plain, {times[True] * 1e3:.1f} ms journaled "
          f"({times[True] / times[False] - 1:+.0%}); the tiles written later: "
          f"{flush * 1e3:.1f} ms per commit")
    viewer.close()


if __name__ == "__main__":
    main()
