"""Writing files without surprises: never half a file, never a silent replacement.

Every writer here (labels, model files) goes through :func:`check_writable` and
:func:`write_atomically`: the data is written to a temporary file beside the target
and moved into place, so a failed write leaves the old file as it was; the new file
gets the permissions a plain ``open()`` would give it (or the replaced file's);
write-protected files are refused; a symbolic link is written through to its target.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["FileWriteError", "check_apart", "check_writable", "move_folder_into_place",
           "write_atomically"]


class FileWriteError(ValueError):
    """A file could not be written; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"Cannot write {str(self.path)!r}: {problem}.")


def check_writable(path: str | Path, overwrite: bool,
                   error: type[FileWriteError] = FileWriteError) -> Path:
    """The file to write for ``path`` (a symbolic link's target), after the checks.

    Raises
    ------
    FileExistsError
        When the file exists and ``overwrite`` is False.
    FileWriteError (or ``error``)
        For a folder, a missing or read-only folder, or a write-protected file.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    if path.is_dir():
        raise error(path, "it is a folder")
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it.")
        # the mode bit too: root may write anything, but a protected file says "keep me"
        if not os.access(path, os.W_OK) or not path.stat().st_mode & stat.S_IWUSR:
            raise error(path, "the file is write-protected; it was left as it is")
    folder = path.parent
    if not folder.is_dir():
        raise error(path, f"folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise error(path, f"folder {folder} is not writable")
    return path


def check_apart(output: str | Path, inputs: Iterable[str | Path],
                error: type[FileWriteError] = FileWriteError) -> None:
    """Refuse an ``output`` that is, holds or lies inside one of ``inputs`` (files or
    folders a run reads), whatever overwriting allows: writing it would replace what
    is being read. Symbolic links and relative paths are resolved first.

    Raises
    ------
    FileWriteError (or ``error``)
        Naming the input.

    Examples
    --------
    >>> check_apart("labels.zarr", ["img.zarr"])  # apart: nothing to say
    >>> check_apart("img.zarr", ["img.zarr"])
    Traceback (most recent call last):
    ...
    napari_medseg.safe_write.FileWriteError: Cannot write 'img.zarr': it is the input img.zarr; ...
    """
    out = Path(output).resolve()
    for source in inputs:
        read = Path(source).resolve()
        where = ("is" if out == read else "holds" if read.is_relative_to(out)
                 else "lies inside" if out.is_relative_to(read) else None)
        if where is not None:
            raise error(output, f"it {where} the input {source}; choose another output")


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then move it into place.

    A failing write leaves any existing file at ``path`` untouched. The new file has
    the replaced file's permissions, or those a plain ``open()`` gives (0666 less the
    umask).

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "note.txt"
    >>> write_atomically(target, lambda tmp: tmp.write_text("hello")).read_text()
    'hello'
    """
    path = Path(path)
    # the temporary name keeps the suffixes: writers pick the format from them
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{''.join(path.suffixes)}")
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    try:
        # created as open() would create it (0666 & ~umask); write() reopens it
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def move_folder_into_place(partial: Path, target: Path) -> None:
    """Rename a finished folder (a zarr store written beside ``target``) to ``target``; an
    old ``target`` is set aside first and removed only once the new one is in place."""
    old = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
    if target.exists():
        os.replace(target, old)
    try:
        os.replace(partial, target)
    except BaseException:
        if old.exists():
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
