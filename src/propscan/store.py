"""Writing results safely: every output file is written atomically (temp file + rename)."""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, TextIO


@contextmanager
def _atomic(path: Path, mode: str) -> Iterator[IO]:
    """A temp file beside ``path`` that replaces it only when the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; give the result the mode a plain open() would (or the old file's)
        os.fchmod(fd, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
