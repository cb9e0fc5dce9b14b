"""Robustness of the readers: truncated UTF-8, deeply nested HTML, 50 MB files, random bytes in every format,
files that vanish or turn unreadable mid-run. Nothing may raise, hang past the size limit or blow up memory,
and every problem is a one-line InputError naming its input. (Complements the fuzz test in test_ingest.py.)
"""

from __future__ import annotations

import builtins
import io
import itertools
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propscan.pipeline import ingest
from propscan.document import Document
from propscan.errors import InputError
from propscan.pipeline.ingest import FORMATS, iter_documents

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# accents, CJK, emoji (4 bytes) and a 3-byte dash, so every UTF-8 sequence length is cut somewhere
SAMPLE = "Le maire a été «irresponsable» à la réunion. 日本語のテキストです。 Emoji 😡🎉 done. Ça suffit — très grave.\n"
SAMPLE_BYTES = SAMPLE.encode("utf-8")
# byte positions strictly inside a multi-byte sequence
MID_SEQUENCE = [
    i for i in range(1, len(SAMPLE_BYTES)) if 0x80 <= SAMPLE_BYTES[i] <= 0xBF  # a continuation byte: cutting here splits a character
]


def items_of(paths, **kw) -> list[Document | InputError]:
    items = list(iter_documents([str(p) for p in paths], **kw))
    assert all(isinstance(i, (Document, InputError)) for i in items), items
    return items


def assert_clear(err: InputError, source) -> None:
    """A one-line message that names the input it is about."""
    assert isinstance(err, InputError)
    assert err.source == str(source)
    assert err.problem and err.problem.strip() == err.problem
    assert "\n" not in err.problem and "\r" not in err.problem
    assert "\n" not in str(err) and str(err).startswith(str(source))
    assert "Traceback" not in err.problem


def valid_prefix(cut: int) -> str:
    return SAMPLE_BYTES[:cut].decode("utf-8", "ignore")  # the whole characters before the cut


# ---------------------------------------------------------------------------------------------------------
# truncated UTF-8


def test_mid_sequence_positions_cover_every_sequence_length():
    lengths = {len(c.encode("utf-8")) for c in SAMPLE}
    assert lengths == {1, 2, 3, 4}
    assert len(MID_SEQUENCE) > 30


@FUZZ
@given(cut=st.sampled_from(MID_SEQUENCE))
def test_truncated_utf8_text_file(cut):
    data = SAMPLE_BYTES[:cut]
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    prefix = valid_prefix(cut)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "cut.txt"
        p.write_bytes(data)
        (item,) = items_of([p])
    if isinstance(item, InputError):
        assert_clear(item, p)
        return
    # decoded sensibly: the whole characters before the cut come back as they were, not as mojibake
    assert item.text.startswith(prefix), (cut, item.metadata, item.text)
    assert len(item.text) - len(prefix) <= 3  # at most the broken bytes, each as one character
    if not prefix.isascii():  # clearly UTF-8 up to the cut: read as UTF-8
        assert item.metadata["encoding"] == "utf-8"
        assert item.text == prefix + "\ufffd"


@pytest.mark.parametrize("what", ["emoji", "日", "é", "—"])
def test_truncated_utf8_text_file_examples(tmp_path, what):
    target = "😡" if what == "emoji" else what
    start = SAMPLE_BYTES.index(target.encode("utf-8"))
    for cut in range(start + 1, start + len(target.encode("utf-8"))):
        p = tmp_path / f"cut{cut}.txt"
        p.write_bytes(SAMPLE_BYTES[:cut])
        (item,) = items_of([p])
        prefix = valid_prefix(cut)
        if isinstance(item, InputError):
            assert_clear(item, p)
            assert prefix.isascii(), f"UTF-8 text cut at byte {cut} was refused: {item}"
        else:
            assert item.text.startswith(prefix), (cut, item.metadata, item.text)


@FUZZ
@given(cut=st.sampled_from(MID_SEQUENCE), closed=st.booleans())
def test_truncated_utf8_jsonl_line(cut, closed):
    good = json.dumps({"id": "ok", "text": SAMPLE}, ensure_ascii=False).encode("utf-8")
    # the cut text inside a record (closed) or the record itself cut off mid-character (not closed)
    broken = b'{"id": "cut", "text": "' + SAMPLE_BYTES[:cut] + (b'"}' if closed else b"")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "cut.jsonl"
        p.write_bytes(good + b"\n" + broken + b"\n" + good.replace(b'"ok"', b'"ok2"') + b"\n")
        items = items_of([p])
    assert len(items) == 3
    assert isinstance(items[0], Document) and items[0].id == "ok" and items[0].text == SAMPLE
    assert isinstance(items[2], Document) and items[2].id == "ok2"  # the next record is still read
    prefix = valid_prefix(cut)
    if closed and not prefix.isascii():  # a whole record, clearly UTF-8: the broken character becomes U+FFFD
        assert isinstance(items[1], Document) and items[1].text == prefix + "\ufffd"
        return
    err = items[1]
    assert_clear(err, p)
    assert err.problem.startswith("line 2: not valid UTF-8 (byte ")


def test_truncated_utf8_as_last_jsonl_line_without_newline(tmp_path):
    p = tmp_path / "tail.jsonl"
    good = json.dumps({"text": SAMPLE}, ensure_ascii=False).encode("utf-8")
    cut = SAMPLE_BYTES.index("😡".encode("utf-8")) + 2
    p.write_bytes(good + b"\n" + b'{"text": "' + SAMPLE_BYTES[:cut])  # a download cut off mid-emoji
    first, err = items_of([p])
    assert isinstance(first, Document)
    assert_clear(err, p)
    assert err.problem.startswith("line 2: not valid UTF-8")


# ---------------------------------------------------------------------------------------------------------
# deeply nested HTML

ARTICLE = "<p>The council voted on Tuesday to close the harbour ferry after fifty years of service, angering islanders.</p>"


@pytest.mark.parametrize("depth", [100, 10_000, 200_000])
@pytest.mark.parametrize("shape", ["closed", "unclosed", "text-at-every-level"])
def test_deeply_nested_html(tmp_path, depth, shape):
    if shape == "closed":
        body = "<div>" * depth + ARTICLE * 3 + "</div>" * depth
    elif shape == "unclosed":
        body = "<div>" * depth + ARTICLE * 3
    else:
        body = "<div>level " * depth + ARTICLE + "</div>" * depth
    p = tmp_path / "deep.html"
    p.write_text(f"<html><head><title>Deep page</title></head><body>{body}</body></html>", encoding="utf-8")
    assert p.stat().st_size < ingest.HTML_SIZE_FACTOR * 1_000_000  # within the raw HTML limit: really parsed
    t0 = time.monotonic()
    items = items_of([p])
    elapsed = time.monotonic() - t0
    assert elapsed < 20, f"{depth} nested <div>s took {elapsed:.1f} s"
    (item,) = items
    if isinstance(item, InputError):
        assert_clear(item, p)
        assert "RecursionError" not in item.problem  # a parse limit, not a crash turned into a message
        assert "no article text" in item.problem or "could not be read" in item.problem
    else:
        assert item.metadata["format"] == "html"
        assert "harbour ferry" in item.text or "level" in item.text
    if depth == 100:  # shallow enough for any parser: the article is found
        assert isinstance(item, Document) and "harbour ferry" in item.text


def test_deeply_nested_html_on_stdin():
    html = ("<html><body>" + "<div>" * 50_000 + ARTICLE * 3 + "</div>" * 50_000 + "</body></html>").encode()
    t0 = time.monotonic()
    (item,) = list(iter_documents(["-"], stdin=io.BytesIO(html)))
    assert time.monotonic() - t0 < 20
    assert isinstance(item, (Document, InputError))
    if isinstance(item, InputError):
        assert_clear(item, "<stdin>")


# ---------------------------------------------------------------------------------------------------------
# 50 MB files

BIG = 50_000_000
CHUNK = b"word " * 13_107  # 65,535 bytes


def write_big(path: Path, head: bytes, chunk: bytes, tail: bytes = b"") -> Path:
    with open(path, "wb") as fh:
        fh.write(head)
        n = len(head)
        while n < BIG:
            fh.write(chunk)
            n += len(chunk)
        fh.write(tail)
    assert path.stat().st_size >= BIG
    return path


@pytest.fixture
def big_dir(tmp_path):
    d = tmp_path / "big"
    d.mkdir()
    yield d
    for f in d.iterdir():  # 50 MB each: do not leave them for the end of the session
        f.unlink()


def measure(paths, limit: int | None = None, **kw):
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        items = list(itertools.islice(iter_documents([str(p) for p in paths], **kw), limit))
        elapsed = time.monotonic() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(isinstance(i, (Document, InputError)) for i in items)
    return items, elapsed, peak


@pytest.mark.parametrize(
    "ext, head, tail, problem",
    [
        (".txt", b"", b"", "is 50.0 MB; the limit is 1.0 MB (--max-bytes)"),
        (".html", b"<html><body><p>", b"</p></body></html>", "is 50.0 MB; the limit is 10.0 MB for an HTML page (10 × --max-bytes)"),
        (".log", b"", b"", "is 50.0 MB; the limit is"),  # unknown extension: sniffed, still checked before reading
    ],
)
def test_50mb_whole_file_refused_before_reading(big_dir, ext, head, tail, problem):
    p = write_big(big_dir / f"huge{ext}", head, CHUNK, tail)
    small = big_dir / "small.txt"
    small.write_text("A small article after the huge one.\n", encoding="utf-8")
    items, elapsed, peak = measure([p, small])
    err, doc = items
    assert_clear(err, p)
    assert err.problem.startswith(problem), err.problem
    assert elapsed < 5, f"{elapsed:.1f} s: the size must be checked before reading"
    assert peak < 2_000_000, peak  # never read into memory
    assert isinstance(doc, Document) and doc.id == "small"  # the run goes on


def test_50mb_whole_file_forced_format(big_dir):
    p = write_big(big_dir / "huge.dat", b"", CHUNK)
    for fmt in ("text", "html", "auto"):
        items, elapsed, peak = measure([p], input_format=fmt)
        (err,) = items
        assert_clear(err, p)
        assert err.problem.startswith("is 50.0 MB; the limit is ") and "--max-bytes" in err.problem
        assert elapsed < 5 and peak < 2_000_000, (fmt, elapsed, peak)


def test_50mb_on_stdin_is_bounded():
    class Endless(io.RawIOBase):  # a pipe that never ends: reading must stop at the limit
        def readable(self):
            return True

        def readinto(self, b):
            b[:] = b"w" * len(b)
            return len(b)

    for fmt, limit in (("text", 1_000_000), ("auto", 10_000_000)):
        t0 = time.monotonic()
        (err,) = list(iter_documents(["-"], input_format=fmt, stdin=io.BufferedReader(Endless())))
        assert time.monotonic() - t0 < 10
        assert_clear(err, "<stdin>")
        assert err.problem.startswith("is more than ") and "the limit is" in err.problem


def test_50mb_jsonl_one_huge_line(big_dir):
    p = write_big(big_dir / "line.jsonl", b'{"id": "huge", "text": "', CHUNK, b'"}\n{"id": "after", "text": "A small record."}\n')
    items, elapsed, peak = measure([p])
    err, doc = items
    assert_clear(err, p)
    assert err.problem.startswith("line 1: the line is 50.0 MB; the limit is 6.1 MB"), err.problem
    assert isinstance(doc, Document) and doc.id == "after" and doc.metadata["line"] == 2
    assert elapsed < 10, elapsed
    assert peak < 20_000_000, peak  # at most about one line limit held, not the 50 MB line


def test_50mb_jsonl_many_lines_streams(big_dir):
    records = b"".join(b'{"id": "d%d", "text": "Article %d says the council is to blame for it all."}\n' % (i, i) for i in range(1000))
    p = write_big(big_dir / "many.jsonl", b"", records)
    items, elapsed, peak = measure([p], limit=3000)  # only the first records: streaming means they come at once
    assert len(items) == 3000 and all(isinstance(i, Document) for i in items)
    assert items[0].id == "d0" and items[-1].metadata["line"] == 3000
    assert elapsed < 10, elapsed
    assert peak < 5_000_000, peak


def test_50mb_csv_one_huge_field(big_dir):
    p = write_big(big_dir / "field.csv", b'id,text\nhuge,"', CHUNK, b'"\nafter,A small record.\n')
    items, elapsed, peak = measure([p])
    (err,) = items  # a CSV cannot resynchronise after a runaway quoted field: the rest is skipped
    assert_clear(err, p)
    assert err.problem.startswith("line 2: ") and "limit" in err.problem and "--max-bytes" in err.problem, err.problem
    assert elapsed < 10, elapsed
    assert peak < 80_000_000, peak  # bounded by the field limit, not by the file


def test_50mb_csv_many_rows_streams(big_dir):
    rows = b"".join(b'd%d,"Article %d says, once more, the council is to blame."\n' % (i, i) for i in range(1000))
    p = write_big(big_dir / "rows.csv", b"id,text\n", rows)
    items, elapsed, peak = measure([p], limit=3000)
    assert len(items) == 3000 and all(isinstance(i, Document) for i in items)
    assert items[0].id == "d0" and items[0].text == "Article 0 says, once more, the council is to blame."
    assert elapsed < 10, elapsed
    assert peak < 5_000_000, peak


# ---------------------------------------------------------------------------------------------------------
# random bytes through every format

RANDOM_BYTES = st.one_of(
    st.binary(max_size=4000),
    st.text(max_size=1500).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.lists(
        st.sampled_from(
            [b"<html>", b"<body>", b"<div>", b"</div>", b"<p>", b"</p>", b"<!--", b"-->", b"{", b"}", b'"text"', b'"id"',
             b":", b",", b";", b'"', b"\\", b"\\u", b"d800", b"\n", b"\r\n", b"\r", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf",
             b"\xe6\x97", b"\xf0\x9f\x98", b"\xc3", b"text,id", b"caf\xc3\xa9 ", b"Some words of an article. ", b"[", b"]"]
        ),
        max_size=80,
    ).map(b"".join),
)


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=RANDOM_BYTES, ext=st.sampled_from([".txt", ".html", ".jsonl", ".csv", ".dat"]))
def test_random_bytes_every_format(fmt, data, ext):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"fuzz{ext}"
        p.write_bytes(data)
        items = items_of([p], input_format=fmt)
        piped = list(iter_documents(["-"], input_format=fmt, stdin=io.BytesIO(data)))
    assert items and piped
    for item, source in [(i, p) for i in items] + [(i, "<stdin>") for i in piped]:
        assert isinstance(item, (Document, InputError))
        if isinstance(item, InputError):
            assert_clear(item, source)
        else:
            assert isinstance(item.text, str) and item.text.strip()
            item.text.encode("utf-8")  # valid Unicode
            assert item.metadata["path"] == str(source)


@pytest.mark.parametrize("fmt", FORMATS)
def test_random_bytes_every_format_fixed_seed(tmp_path, fmt):
    """The same check without hypothesis: a few fixed blobs per format, so a failure is easy to replay."""
    import random

    rng = random.Random(20240611)
    for i in range(5):
        p = tmp_path / f"blob{i}.dat"
        p.write_bytes(rng.randbytes(rng.randrange(1, 20_000)))
        for item in items_of([p], input_format=fmt):
            if isinstance(item, InputError):
                assert_clear(item, p)


# ---------------------------------------------------------------------------------------------------------
# files that vanish or turn unreadable during a folder run


def make_folder(tmp_path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for name in ("a", "b", "c"):
        (root / f"{name}.txt").write_text(f"Article {name} is here.\n", encoding="utf-8")
    return root


def test_file_vanishes_between_listing_and_reading(tmp_path):
    root = make_folder(tmp_path)
    it = iter_documents([str(root)])
    first = next(it)  # the folder has been listed and a.txt read
    assert isinstance(first, Document) and first.id == "a"
    (root / "b.txt").unlink()
    rest = list(it)
    assert [type(i) for i in rest] == [InputError, Document]
    assert_clear(rest[0], root / "b.txt")
    assert "no such file" in rest[0].problem.lower()
    assert rest[1].id == "c"


def test_dangling_symlink_in_folder(tmp_path):
    root = make_folder(tmp_path)
    (root / "b2.txt").symlink_to(root / "gone.txt")
    items = items_of([root])
    assert [getattr(i, "id", None) for i in items] == ["a", "b", None, "c"]
    assert_clear(items[2], root / "b2.txt")


@pytest.mark.parametrize("exc", [FileNotFoundError(2, "No such file or directory"), PermissionError(13, "Permission denied")])
def test_open_fails_after_stat(tmp_path, monkeypatch, exc):
    """The race after the stat: the file goes away or loses its permissions just before it is opened."""
    root = make_folder(tmp_path)
    victim = str(root / "b.txt")
    real_open = builtins.open

    def flaky_open(file, *a, **kw):
        if str(file) == victim:
            raise exc
        return real_open(file, *a, **kw)

    monkeypatch.setattr(ingest, "open", flaky_open, raising=False)  # module global shadows the builtin
    items = items_of([root])
    assert [getattr(i, "id", None) for i in items] == ["a", None, "c"]
    assert_clear(items[1], victim)
    assert exc.strerror in items[1].problem


def test_chmod_000_between_listing_and_reading(tmp_path):
    root = make_folder(tmp_path)
    victim = root / "b.txt"
    it = iter_documents([str(root)])
    assert next(it).id == "a"
    victim.chmod(0)
    try:
        try:
            with open(victim, "rb"):
                readable = True
        except PermissionError:
            readable = False
        if readable:
            victim.chmod(0o644)
            pytest.skip("running as root (or with CAP_DAC_OVERRIDE): chmod 000 does not make a file unreadable")
        rest = list(it)
    finally:
        victim.chmod(0o644)
    assert [type(i) for i in rest] == [InputError, Document]
    assert_clear(rest[0], victim)
    assert "permission denied" in rest[0].problem.lower()
    assert rest[1].id == "c"


def test_unreadable_subfolder(tmp_path):
    root = make_folder(tmp_path)
    sub = root / "sub"
    sub.mkdir()
    (sub / "d.txt").write_text("Article d.\n", encoding="utf-8")
    sub.chmod(0)
    try:
        if os.access(sub, os.R_OK):
            pytest.skip("running as root: chmod 000 does not make a folder unreadable")
        items = items_of([root])
    finally:
        sub.chmod(0o755)
    assert [i.id for i in items if isinstance(i, Document)] == ["a", "b", "c"]
    (err,) = [i for i in items if isinstance(i, InputError)]
    assert str(sub) in str(err) and "\n" not in str(err)
