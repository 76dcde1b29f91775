"""The README's Python snippets run as printed, and its links work off the repository."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_snippets_run_as_printed(tmp_path, monkeypatch):
    torch.set_num_threads(2)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)  # the snippets write files
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "nuclei_seg.nii.gz").is_file() and (tmp_path / "my-nuclei.pt").is_file()


def test_links_are_absolute_for_the_package_index_page():
    text = README.read_text()
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links and all(link.startswith("https://") for link in links)
