"""What a hostile or unlucky input does to the command line: device and symlink outputs, unwritable
places, a full disk, SIGTERM mid-run, a CSV quote left open, Markdown links, very long texts."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import require_train_extra, run_cli
from propscan.outputs import formats
from propscan.pipeline.analyze import analyze, blocks
from propscan.document import Analysis, Document, ModelInfo, Span

ARTICLE = "These traitors and vile criminals are destroying our great nation! The so-called experts are lying to you."


@pytest.fixture
def article(tmp_path) -> Path:
    p = tmp_path / "a.txt"
    p.write_text(ARTICLE, encoding="utf-8")
    return p


# ------------------------------------------------------------------------------------------------ -o


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_output_to_a_device_writes_through_it(tmp_path, article):
    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    res = run_cli("analyze", article, "-f", "json", "-o", node)
    assert res.rc == 0, res.stderr
    assert stat.S_ISCHR(node.stat().st_mode)  # still the device, not a regular file put in its place
    assert not list(tmp_path.glob(".null.*"))


def test_output_to_a_fifo_is_written_in_place(tmp_path, article):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    res = run_cli("analyze", article, "-f", "json", "-o", fifo)
    out, _ = reader.communicate(timeout=60)
    assert res.rc == 0, res.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode) and b'"schema_version"' in out


def test_output_through_a_symlink_keeps_the_link_and_the_mode(tmp_path, article):
    real = tmp_path / "real.json"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    res = run_cli("analyze", article, "-f", "json", "-o", link)
    assert res.rc == 0, res.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert '"schema_version"' in real.read_text() and stat.S_IMODE(real.stat().st_mode) == 0o640


def test_a_new_output_gets_the_umask_mode(tmp_path, article):
    res = run_cli("analyze", article, "-f", "json", "-o", tmp_path / "new.json")
    assert res.rc == 0, res.stderr
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("where, words", [
    (lambda t: t, "a folder; --format json writes one file"),
    (lambda t: t / "a.txt" / "x.json", "Not a directory"),
    (lambda t: Path("/proc/propscan-test.json"), "cannot write /proc/propscan-test.json"),
])
def test_unwritable_outputs_are_one_line_errors(tmp_path, article, where, words):
    res = run_cli("analyze", article, "-f", "json", "-o", where(tmp_path))
    assert res.rc == 2 and words in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_one_line_error(tmp_path, article):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    res = run_cli("analyze", article, "-f", "json", "-o", ro / "x.json")
    assert res.rc == 2 and "cannot create a file in" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("fmt", ["json", "semeval", "text"])
def test_stdout_on_a_full_disk(article, fmt):
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "propscan", "analyze", str(article), "-f", fmt],
                             stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert res.returncode == 1 and "cannot write standard output: No space left on device" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_trailing_slash_means_a_folder(tmp_path, article):
    res = run_cli("analyze", article, "-f", "html", "-o", f"{tmp_path / 'site'}/")
    assert res.rc == 0, res.stderr
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "a.html").is_file()
    res = run_cli("analyze", article, "-f", "json", "-o", f"{tmp_path / 'out'}/")
    assert res.rc == 2 and "only html writes a folder" in res.stderr and not (tmp_path / "out").exists()


def test_sigterm_leaves_no_temp_file(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(300):
        (folder / f"a{i}.txt").write_text(ARTICLE + f" Number {i}.", encoding="utf-8")
    (tmp_path / "x.jsonl").write_text("old\n")
    proc = subprocess.Popen([sys.executable, "-m", "propscan", "analyze", str(folder), "-f", "jsonl", "-o",
                             str(tmp_path / "x.jsonl")], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".x.jsonl.*.tmp")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".x.jsonl.*.tmp")), "the run never started writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert not list(tmp_path.glob(".x.jsonl.*")) and (tmp_path / "x.jsonl").read_text() == "old\n"


# -------------------------------------------------------------------------------------------- inputs


def test_an_unterminated_csv_quote_is_reported_not_merged(tmp_path):
    rows = ["id,text"] + [f"{i},Row {i} calls them shameful traitors." for i in range(1, 5)]
    rows += ['5,"This quote never closes'] + [f"{i},Row {i} after it." for i in range(6, 56)]
    (tmp_path / "bad.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = run_cli("analyze", tmp_path / "bad.csv", "-f", "jsonl", "-o", tmp_path / "out.jsonl")
    assert res.rc == 1
    assert "bad.csv: line 6: a quoted field opened in this record is never closed; lines 6-56 were not read" in res.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 4  # the rows before it, each alone


def test_a_malformed_csv_record_is_reported_and_reading_goes_on(tmp_path):
    (tmp_path / "b.csv").write_text('id,text\n1,They lie.\n2,"bad" tail\n3,Traitors all.\n', encoding="utf-8")
    res = run_cli("analyze", tmp_path / "b.csv", "-f", "jsonl", "-o", tmp_path / "out.jsonl")
    assert res.rc == 1 and "line 3: malformed CSV record" in res.stderr
    ids = [line.split('"id": "')[1].split('"')[0] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert ids == ["1", "3"]


# ------------------------------------------------------------------------------------------- outputs


def test_markdown_keeps_links_and_images_as_text():
    from markdown_it import MarkdownIt

    text = "See [click](javascript:alert(1)) and ![x](http://evil.example/p.png) <b>bold</b> &amp; *em*"
    a = Analysis(Document("d", text), [Span(0, len(text), "Loaded_Language", 0.5)], [], 1.0, ModelInfo("m", "1"))
    html = MarkdownIt("commonmark").enable("table").render(formats.to_markdown([a]))
    assert "<a " not in html and "<img" not in html and "<b>" not in html and "<em>" not in html
    assert "javascript:alert(1)" in html and "&amp;amp;" in html  # shown as the text it was


# ------------------------------------------------------------------------------------------ long texts


def test_blocks_cover_the_text_at_breaks():
    text = ("A sentence of words here. " * 40 + "\n") * 300
    got = blocks(text, 5000)
    assert got[0][0] == 0 and got[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(got, got[1:])) and all(0 < e - s <= 5000 for s, e in got)
    assert all(text[e - 1] == "\n" for _, e in got[:-1])  # cut at paragraph breaks where there are some
    assert blocks("", 10) == [(0, 0)] and blocks("x" * 25, 10) == [(0, 10), (10, 20), (20, 25)]


def test_a_long_text_is_analysed_block_by_block(model, monkeypatch):
    import propscan.pipeline.analyze as pipeline

    text = "\n".join(f"Paragraph {i}: these vile traitors are destroying our great nation again." for i in range(60))
    whole = analyze(Document("d", text), model=model)
    monkeypatch.setattr(pipeline, "BLOCK_CHARS", 1000)
    parts = analyze(Document("d", text), model=model)
    assert len(pipeline.blocks(text, 1000)) > 3
    assert [(s.start, s.end) for s in parts.sentences] == [(s.start, s.end) for s in whole.sentences]
    for s in parts.spans:
        assert 0 <= s.start < s.end <= len(text) and text[s.start:s.end].strip() == text[s.start:s.end]
    # every paragraph is loaded in both; spans may differ where a run crossed a block's edge
    assert parts.score == whole.score == 1.0
    assert {s.technique for s in parts.spans} >= {"Loaded_Language", "Name_Calling,Labeling"}


def test_serve_with_a_missing_model_is_one_line():
    res = run_cli("serve", "--model", "/nonexistent-propscan-model", timeout=60)
    assert res.rc == 2 and res.stderr.strip() == "error: --model /nonexistent-propscan-model: no such model; give fast, accurate or a model folder"


def test_train_on_a_full_disk_is_one_line_and_goes_on_once_there_is_room(tmp_path, ptc_sample):
    """The first checkpoint (88 MB) on a 20 MB disk, then the export on a 100 MB one: one line each, no
    temp or half-written file left; with room, the same command goes on from the saved checkpoint."""
    require_train_extra()
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    out = small / "m"
    args = ("train", "--articles", ptc_sample.articles, "--labels", ptc_sample.gold, "--out", out, "--epochs", "1")
    try:
        res = run_cli(*args, timeout=600)
        assert res.rc == 1 and "Traceback" not in res.stderr, res.stderr
        assert [line for line in res.stderr.splitlines() if line.startswith("error:")] == [
            f"error: cannot write {out / 'checkpoint' / 'weights.pt'}: No space left on device; the last saved state "
            "is kept, and the same command goes on from it once there is room"]
        assert not [p for p in small.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
        subprocess.run(["mount", "-o", "remount,size=100m", str(small)], check=True)  # the checkpoint fits, the export not
        res = run_cli(*args, timeout=600)
        assert res.rc == 1 and "Traceback" not in res.stderr, res.stderr
        assert [line for line in res.stderr.splitlines() if line.startswith("error:")] == [
            f"error: cannot write the model into {out}: No space left on device; what was trained is kept in "
            f"{out / 'checkpoint'}, and the same command goes on once there is room"]
        assert (out / "checkpoint" / "weights.pt").is_file() and not (out / "model.fp32.onnx").exists()
        subprocess.run(["mount", "-o", "remount,size=400m", str(small)], check=True)
        res = run_cli(*args, timeout=600)
        assert res.rc == 0, res.stderr
        assert f"resuming {out / 'checkpoint'} after epoch 1 of 1" in res.stderr
        assert (out / "model.onnx").is_file() and (out / "model.json").is_file()
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


def test_train_into_a_read_only_folder_is_refused_before_any_work(tmp_path, ptc_sample):
    require_train_extra()
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(ro)], capture_output=True).returncode:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    try:
        res = run_cli("train", "--articles", ptc_sample.articles, "--labels", ptc_sample.gold, "--out", ro / "m", timeout=300)
        assert res.rc == 2 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.strip() == f"error: cannot write into {ro / 'm'}: Read-only file system"
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)


def test_corpus_run_on_a_full_disk_is_one_line_and_keeps_the_database(tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        folder = tmp_path / "in"
        folder.mkdir()
        for i in range(60):
            (folder / f"a{i}.txt").write_text((ARTICLE + f" Number {i}. ") * 20, encoding="utf-8")
        res = run_cli("corpus", "run", folder, "--db", small / "c.sqlite", timeout=300)
        assert res.rc == 1 and "database or disk is full" in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert len([line for line in res.stderr.splitlines() if line.startswith("error:")]) == 1
        import sqlite3

        conn = sqlite3.connect(small / "c.sqlite")
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


def test_out_of_file_descriptors_is_logged_once(caplog):
    import asyncio
    import errno
    import logging

    from propscan.serve.limits import log_resource_errors_once

    loop = asyncio.new_event_loop()
    try:
        log_resource_errors_once(loop)
        with caplog.at_level(logging.ERROR, logger="uvicorn.error.propscan"):
            for _ in range(50):
                loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                             "exception": OSError(errno.EMFILE, "Too many open files")})
        assert sum("out of resources" in r.getMessage() for r in caplog.records) == 1
    finally:
        loop.close()
