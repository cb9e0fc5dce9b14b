"""Writing results safely: every output file is written atomically (temp file + rename).

What "the output" is decides how it is written:
- a regular file, or a new one: a temp file beside it replaces it only when the writing is complete
  (an interrupted or failed run leaves the old file as it was, and no temp file behind);
- a symbolic link: the file it points to is replaced the same way, so the link stays a link;
- a device, a FIFO or a terminal (``/dev/null``, ``/dev/stdout``): written in place. Renaming a
  regular file over it would replace the device node itself.
An existing file keeps its permission bits; a new one gets those ``open()`` would give it (umask).
Problems with the output (a folder, a read-only place, a full disk) raise OutputError: one line.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, TextIO

from propscan.errors import OutputError

# errors of writing the data itself (not of anything else the caller does while a file is open)
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


def problem(e: OSError) -> str:
    """An OSError as a few words: 'No space left on device'."""
    return e.strerror or str(e)


def once_writable(e: OSError) -> str:
    """When a stopped job that hit ``e`` can go on: 'once there is room' for a full disk or quota."""
    return "once there is room" if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else "once it can write there"


def _kwargs(mode: str) -> dict:
    return {} if "b" in mode else {"encoding": "utf-8", "newline": ""}


@contextmanager
def _atomic(path: Path, mode: str) -> Iterator[IO]:
    path = Path(path)
    try:
        st = os.stat(path)  # follows links: what a write would reach
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(path, problem(e)) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(path, "is a folder; give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        with _in_place(path, mode) as fh:
            yield fh
        return
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise OutputError(path, _where(e, target)) from None
    try:
        # mkstemp makes 0600 files; give the result the mode a plain open() would (or the old file's)
        os.fchmod(fd, st.st_mode & 0o7777 if st is not None else 0o666 & ~_umask())
        with os.fdopen(fd, mode, **_kwargs(mode)) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
            raise OutputError(path, problem(e)) from None
        raise


@contextmanager
def _in_place(path: Path, mode: str) -> Iterator[IO]:
    try:
        fh = open(path, mode, **_kwargs(mode))
    except OSError as e:
        raise OutputError(path, problem(e)) from None
    try:
        with fh:
            yield fh
    except OSError as e:
        if e.errno in WRITE_ERRNOS:
            raise OutputError(path, problem(e)) from None
        raise


def _where(e: OSError, target: Path) -> str:
    """Why a file cannot be created at ``target``: the part of the path that is in the way."""
    if e.errno in (errno.ENOTDIR, errno.EEXIST) or isinstance(e, (NotADirectoryError, FileExistsError)):
        return "a part of the path is a file, not a folder"
    if isinstance(e, PermissionError):
        return f"cannot create a file in {target.parent} ({problem(e)})"
    return problem(e)


def atomic_write_text(path: Path, text: str) -> None:
    """Write text so readers see either the old file or the whole new one, never a torn write."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with _atomic(path, "wb") as fh:
        fh.write(data)


@contextmanager
def atomic_writer(path: Path | None) -> Iterator[TextIO]:
    """A text stream for incremental output: stdout when path is None, else a temp file that replaces
    ``path`` only when the block completes (an interrupted run leaves the old file untouched)."""
    if path is None:
        yield sys.stdout
        return
    with _atomic(path, "w") as fh:
        yield fh


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
