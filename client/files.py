"""File helpers of the clients: atomic writes and listing a folder's images."""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .options import IMAGE_EXTS


@functools.cache
def _umask() -> int:
    """The process umask, read once (reading it means setting it: not from worker threads)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def new_file(folder: Path, name: str, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new, empty file in ``folder`` named ``.NAME.XXXXXXXX<suffix>``, made exclusively
    (``O_EXCL``: never an existing file, never through a symbolic link planted there), with
    the permissions of any new file (``0666`` less the umask, not ``mkstemp``'s ``0600``).

    Returns:
        ``(fd, path)``: an open descriptor for writing, and the file's path.
    """
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=suffix)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, Path(tmp)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either complete or absent.

    The bytes go to a new temporary file in the same folder (:func:`new_file`), which is
    then renamed over ``path`` (an atomic step on POSIX and Windows). An interrupted run
    leaves at most a hidden ``.*.tmp`` file, never a half-written ``path``. Nothing is
    written through a symbolic link: one at ``path`` is replaced, not followed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_file(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def list_images(folder: Path, exclude: Path | None = None) -> Iterator[Path]:
    """Image files under ``folder`` (recursively, sorted), by extension.

    Hidden files and folders (``.name``) are skipped, and so is everything under
    ``exclude`` (the output folder when it lies inside the input folder).
    """
    exclude = exclude.resolve() if exclude is not None else None
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if exclude is not None and path.resolve().is_relative_to(exclude):
            continue
        if path.is_file() and path.suffix.lower() in IMAGE_EXTS:
            yield path


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name the same file (also through links), when ``b`` exists."""
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.exists() and a.samefile(b))
    except OSError:
        return False
