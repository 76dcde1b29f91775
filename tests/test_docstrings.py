"""The Examples sections of the core's public docstrings run as printed."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import torch

import napari_medseg

CORE = sorted(name for _, name, _ in pkgutil.walk_packages(napari_medseg.__path__,
                                                          "napari_medseg.")
              if not name.startswith(("napari_medseg.plugin", "napari_medseg.cli")))


@pytest.mark.parametrize("name", CORE)
def test_examples_run(name):
    torch.set_num_threads(2)
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs=dict(vars(module))):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed"
