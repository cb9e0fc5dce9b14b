"""Tests for propscan.atomic: atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from propscan import atomic
from propscan.atomic import atomic_write_bytes, atomic_write_text


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_writes_new_file(tmp_path):
    p = tmp_path / "out.json"
    atomic_write_text(p, '{"a": 1}\n')
    assert p.read_text(encoding="utf-8") == '{"a": 1}\n'
    assert _leftovers(tmp_path, {"out.json"}) == []


def test_writes_utf8_and_keeps_newlines(tmp_path):
    p = tmp_path / "out.txt"
    text = "été 😡 这是\r\nline two\n"
    atomic_write_text(p, text)
    assert p.read_bytes() == text.encode("utf-8")  # no newline translation, no BOM


def test_replaces_existing_file(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old contents that are longer than the new ones", encoding="utf-8")
    atomic_write_text(p, "new")
    assert p.read_text(encoding="utf-8") == "new"
    atomic_write_text(p, "")
    assert p.read_bytes() == b""
    assert _leftovers(tmp_path, {"out.txt"}) == []


def test_creates_parent_folders(tmp_path):
    p = tmp_path / "a" / "b" / "c.txt"
    atomic_write_text(p, "x")
    assert p.read_text(encoding="utf-8") == "x"
    assert _leftovers(p.parent, {"c.txt"}) == []


def test_accepts_str_path(tmp_path):
    p = tmp_path / "s.bin"
    atomic_write_bytes(str(p), b"\x00\xff")  # type: ignore[arg-type]
    assert p.read_bytes() == b"\x00\xff"


def test_many_writes_leave_no_temp_files(tmp_path):
    p = tmp_path / "out.txt"
    for i in range(20):
        atomic_write_text(p, f"version {i}")
    assert p.read_text(encoding="utf-8") == "version 19"
    assert _leftovers(tmp_path, {"out.txt"}) == []


def test_failed_replace_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "out.txt"
    p.write_text("old", encoding="utf-8")

    def boom(src, dst):
        assert Path(src).exists()  # the temp file was fully written before the rename
        assert Path(src).read_bytes() == b"new contents"
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_text(p, "new contents")
    monkeypatch.undo()
    assert p.read_text(encoding="utf-8") == "old"
    assert _leftovers(tmp_path, {"out.txt"}) == []


def test_failed_replace_on_new_file_leaves_nothing(tmp_path, monkeypatch):
    p = tmp_path / "new.txt"
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(PermissionError("denied")))
    with pytest.raises(PermissionError):
        atomic_write_text(p, "data")
    monkeypatch.undo()
    assert not p.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "out.txt"
    p.write_text("old", encoding="utf-8")

    def bad_fsync(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", bad_fsync)
    with pytest.raises(OSError, match="fsync failed"):
        atomic_write_text(p, "new")
    monkeypatch.undo()
    assert p.read_text(encoding="utf-8") == "old"
    assert _leftovers(tmp_path, {"out.txt"}) == []


def test_keyboard_interrupt_cleans_up(tmp_path, monkeypatch):
    p = tmp_path / "out.txt"
    p.write_text("old", encoding="utf-8")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(p, "new")
    monkeypatch.undo()
    assert p.read_text(encoding="utf-8") == "old"
    assert _leftovers(tmp_path, {"out.txt"}) == []


def test_bad_text_raises_before_touching_file(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(p, "lone surrogate \ud800")
    assert p.read_text(encoding="utf-8") == "old"
    assert _leftovers(tmp_path, {"out.txt"}) == []


def test_module_uses_os_replace():
    # the monkeypatching above only proves something if store renames through os.replace
    assert atomic.os is os


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_MODE_BUG = (
    "atomic.atomic_write_bytes creates the temp file with tempfile.mkstemp (mode 0600) and renames it "
    "into place without chmod, so every output file is 0600 instead of 0666 & ~umask, and an existing "
    "file's permissions are replaced by 0600"
)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")

def test_new_file_gets_default_permissions(tmp_path):
    p = tmp_path / "report.html"
    atomic_write_text(p, "<html></html>")
    assert p.stat().st_mode & 0o777 == 0o666 & ~_umask()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")

def test_replace_keeps_existing_permissions(tmp_path):
    p = tmp_path / "out.json"
    p.write_text("{}", encoding="utf-8")
    p.chmod(0o644)
    atomic_write_text(p, '{"a": 1}')
    assert p.stat().st_mode & 0o777 == 0o644
