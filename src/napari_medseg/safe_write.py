"""Writing files without surprises: never half a file, never a silent replacement.

Every writer here (labels, model files) goes through :func:`check_writable` and
:func:`write_atomically`: the data is written to a temporary file beside the target
and moved into place, so a failed write leaves the old file as it was; the new file
gets the permissions a plain ``open()`` would give it (or the replaced file's);
write-protected files are refused; a symbolic link is written through to its target.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["FileWriteError", "check_apart", "check_writable", "move_folder_into_place",
           "write_atomically", "written_beside"]


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


_HOST = socket.gethostname()


@contextmanager
def written_beside(target: str | Path, replace: bool = False) -> Iterator[Path]:
    """A hidden folder beside ``target`` to write a new ``target`` into: moved into place
    (:func:`move_folder_into_place`) when the block ends, removed if it raises, so a
    failed, cancelled or killed run never leaves half an output where ``target`` is.

    The folder's name carries this host and process. Left-overs of runs on this host
    that died (killed: nothing removed them) are removed first, and an old ``target``
    such a run had set aside without putting the new one in place is put back; a run
    still writing ``target`` makes this one refuse, so two runs never race for it.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "result.zarr"
    >>> with written_beside(target) as folder:
    ...     folder.mkdir()
    ...     _ = (folder / "zarr.json").write_text("{}")
    >>> sorted(p.name for p in target.parent.iterdir())
    ['result.zarr']
    """
    target = Path(target)
    _clear_left_overs(target)
    partial = target.with_name(f".{target.name}.partial-{_HOST}-{os.getpid()}-"
                               f"{secrets.token_hex(4)}")
    try:
        yield partial
        move_folder_into_place(partial, target, replace)
    finally:
        _remove(partial)


def move_folder_into_place(partial: Path, target: Path, replace: bool = True) -> None:
    """Rename a finished folder (a zarr store written beside ``target``) to ``target``; an
    old ``target`` (a folder or a file) is set aside first and removed only once the new
    one is in place. Without ``replace``, a ``target`` that appeared meanwhile (another
    run's) is refused and kept."""
    if target.exists() or target.is_symlink():
        if not replace:
            raise FileExistsError(f"{target} was created while this run wrote it (another "
                                  "run?); it is left as it is.")
        old = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
        os.replace(target, old)
    else:
        old = None
    try:
        os.rename(partial, target)  # an existing non-empty folder makes it fail: no race
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        _remove(old)


def _remove(path: Path) -> None:
    """Remove a folder with its files, or a file (a link as a link)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _clear_left_overs(target: Path) -> None:
    """Remove the partial folders of dead runs on this host beside ``target``, put back an
    old ``target`` a dead run set aside, and refuse while a live run writes ``target``."""
    prefix = f".{target.name}."
    for other in sorted(target.parent.glob(f"{glob.escape(prefix)}*")):
        kind, _, stamp = other.name[len(prefix):].partition("-")
        if kind == "old":
            if target.exists() or target.is_symlink():
                _remove(other)  # the new one is in place: the old one is done with
            else:  # killed between the two renames: the old one is the only copy
                os.replace(other, target)
            continue
        host, _, pid = stamp.rpartition("-")[0].rpartition("-")
        if kind != "partial" or host != _HOST or not pid.isdigit():
            continue  # another machine's run, or not ours: left alone
        if _alive(int(pid)):
            raise FileExistsError(f"another run (process {pid}) is writing {target} now; "
                                  "wait for it, or write elsewhere.")
        _remove(other)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
