"""Reading documents: plain text, HTML pages, JSONL and CSV corpora, folders and stdin.

``iter_documents(paths, ...)`` yields one :class:`Document` per article, or an :class:`InputError` for an
input that cannot be read, and goes on with the next input. It never raises for a bad file, so a multi-file
run can finish and summarise. ``read_document(path, ...)`` reads one file and raises the InputError instead.

Formats (``input_format``): ``auto`` picks by extension (.txt .text .md -> text, .html .htm -> html,
.jsonl .ndjson -> jsonl, .csv -> csv; any other extension: HTML if it looks like HTML, else text).

- text: the bytes are decoded as UTF-8 (a UTF-8 BOM is dropped; UTF-16/32 with a BOM are read too) or, if
  they are not UTF-8, in the encoding charset-normalizer detects. ``Document.text`` is the decoded text
  exactly as stored: CRLF line ends are kept as two characters, nothing is normalised, so every offset
  points into the text as decoded. Only the BOM is not part of the text.
- html: main text and metadata (title, author, date, site, url) extracted with trafilatura, without
  navigation, comments and other page furniture. ``Document.text`` is ``title + "\\n\\n" + main text`` (the
  PTC article layout the model was trained on); offsets point into that text. The raw HTML file may be up to
  ``HTML_SIZE_FACTOR`` times ``max_bytes`` (markup, scripts); the extracted text must fit ``max_bytes``.
- jsonl / csv: one document per record, streamed line by line (memory stays bounded whatever the file size).
  ``text_field`` holds the text, ``id_field`` the id (default id: ``<file stem>:<line number>``), every other
  field is kept in ``Document.metadata``. A bad record gives an InputError naming its line; the next record
  is read. CSV: comma-separated (``;``, tab and ``|`` are recognised when the header only splits on them).
- folders: searched recursively, hidden files and folders skipped, files taken by extension (all the
  extensions above with ``auto``; only the chosen format's extensions otherwise), in sorted path order.
- ``-``: standard input (``auto`` sniffs HTML vs text; ``jsonl`` and ``csv`` stream).

Document ids: the file stem (``article<ID>.txt`` -> ``<ID>``, as in PTC), ``stdin`` for standard input.
In a folder where two files would get the same id (``a/article1.txt`` and ``b/article1.txt``), each of
those files' ids is prefixed with its folder path relative to the one given (``a/1``, ``b/1``); two such
files in one folder are told apart by their relative paths (``a/article1.txt``, ``a/1.txt``).
Metadata always has ``path`` and ``format``; records add ``line``; text adds ``encoding``; HTML adds what
trafilatura found of ``title``, ``author``, ``date``, ``site``, ``url``. A record field whose name clashes
with one of those source keys is kept as ``field:<name>``.

Limits: a document over ``max_bytes`` bytes of text is an InputError ("is 5.2 MB; the limit is 1.0 MB
(--max-bytes)"); file sizes are checked before reading and reads are bounded. NUL bytes or mostly control
characters -> "binary file, not text"; nothing but whitespace -> "empty". A PDF, Word, OpenDocument or
RTF file (told by its first bytes, before any size check) is named, with what to do instead.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import stat
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from propscan import atomic
from propscan.document import Document
from propscan.errors import InputError
from propscan.pipeline import fetch
from propscan.ptc import article_id_for

FORMATS = ("auto", "text", "html", "jsonl", "csv")
EXTENSIONS = {
    ".txt": "text",
    ".text": "text",
    ".md": "text",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
}
HTML_SIZE_FACTOR = 10  # a raw HTML page may be this many times max_bytes; its extracted text must fit max_bytes
STDIN = "-"
STDIN_NAME = "<stdin>"

_MIN_HTML_WORDS = 5  # less extracted text than this is a menu or a stub, not an article
_SNIFF_BYTES = 4096
_HEAD_BYTES = 65536  # what CSV encoding detection looks at
_BOMS = (  # longest first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Documents people hold instead of text, by their first bytes: named with what to do, where "binary file"
# (or "is 5.2 MB", or an RTF file's control words analysed as prose) would leave the reader guessing
_PDF = "a PDF document, not text: convert it first (for example pdftotext FILE FILE.txt) and analyse the text"
_ZIPPED = "a ZIP archive (a .docx, .odt or .epub document is one), not text: save it as plain text or HTML first"
_DOC = "an old Microsoft Office document (.doc), not text: save it as plain text or HTML first"
_RTF = "an RTF document, not text: save it as plain text or HTML first"
_DOCUMENTS = ((b"%PDF-", _PDF), (b"PK\x03\x04", _ZIPPED), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", _DOC), (b"{\\rtf", _RTF))
# such documents in a folder are reported as skipped, not passed over like its images and style sheets
DOCUMENT_EXTENSIONS = {".pdf": _PDF, ".docx": _ZIPPED, ".odt": _ZIPPED, ".epub": _ZIPPED, ".doc": _DOC, ".rtf": _RTF}
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_BINARY_CONTROL_SHARE = 0.02
_HTML_START = re.compile(rb"^(?:\s|<!--.*?-->)*<(?:!doctype\s+html|html|head|body)[\s>]", re.IGNORECASE | re.DOTALL)
_HTML_ANYWHERE = re.compile(rb"<(?:html|head|body)[\s>]|</(?:p|div|html|body)>", re.IGNORECASE)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class _Options:
    input_format: str
    text_field: str
    id_field: str
    max_bytes: int

    @property
    def line_limit(self) -> int:
        # a JSONL/CSV line holds the text (<= max_bytes as UTF-8) plus escapes and other fields
        return 6 * self.max_bytes + 65536


# ----------------------------------------------------------------------------------------------------------
# public API


def iter_documents(
    paths: Iterable[str | os.PathLike[str]],
    input_format: str = "auto",
    text_field: str = "text",
    id_field: str = "id",
    max_bytes: int = 1_000_000,
    *,
    stdin: BinaryIO | None = None,
) -> Iterator[Document | InputError]:
    """Yield a Document for every article in ``paths`` (files, folders, ``-``), an InputError for every bad input.

    ``stdin`` replaces ``sys.stdin.buffer`` for ``-`` (tests, embedding).
    """
    if input_format not in FORMATS:
        yield InputError("--input-format", f"unknown format {input_format!r}; choose one of {', '.join(FORMATS)}")
        return
    if not isinstance(max_bytes, int) or max_bytes <= 0:
        yield InputError("--max-bytes", f"must be a positive number of bytes, not {max_bytes!r}")
        return
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]  # one path, not an iterable of characters
    opts = _Options(input_format, text_field, id_field, max_bytes)
    earlier: dict[str, str] = {}  # id -> path, for the files that earlier path arguments read
    for p in paths:
        this: dict[str, str] = {}
        for item in _iter_path(str(p), opts, stdin):
            if isinstance(item, Document) and item.metadata.get("format") in ("text", "html"):
                item.id = _distinct_id(item.id, item.metadata["path"], earlier)
                this[item.id] = item.metadata["path"]
            yield item
        earlier.update(this)


def read_document(
    path: str | os.PathLike[str],
    input_format: str = "auto",
    text_field: str = "text",
    id_field: str = "id",
    max_bytes: int = 1_000_000,
    *,
    stdin: BinaryIO | None = None,
) -> Document:
    """Read the one document in ``path`` (a file or ``-``); raise InputError if it is bad or holds several."""
    path = str(path)
    if path != STDIN and os.path.isdir(path):
        raise InputError(path, "is a folder; read_document reads one file (iter_documents reads folders)")
    it = iter_documents([path], input_format, text_field, id_field, max_bytes, stdin=stdin)
    first = next(it, None)
    if first is None:
        raise InputError(_name(path), "holds no documents")
    if isinstance(first, InputError):
        raise first
    if next(it, None) is not None:
        raise InputError(_name(path), "holds more than one document; read a corpus with iter_documents")
    return first


# ----------------------------------------------------------------------------------------------------------
# paths, folders, guards


def _name(path: str) -> str:
    return STDIN_NAME if path == STDIN else path


def _guard(items: Iterator[Document | InputError], source: str) -> Iterator[Document | InputError]:
    """Turn any failure while reading one input into an InputError for it, so the run goes on."""
    try:
        yield from items
    except InputError as e:
        yield e
    except OSError as e:
        yield InputError(source, f"could not be read ({_one_line(atomic.problem(e))})")
    except Exception as e:  # a parser crashing on a hostile file must not stop a multi-file run
        yield InputError(source, f"could not be read ({type(e).__name__}: {_one_line(str(e))})")


def _one_line(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _iter_path(path: str, opts: _Options, stdin: BinaryIO | None) -> Iterator[Document | InputError]:
    if fetch.is_url(path):
        yield from _guard(_read_url(path, opts), path)
        return
    if path == STDIN:
        stream = stdin if stdin is not None else sys.stdin.buffer
        yield from _guard(_read_stream(stream, STDIN_NAME, "stdin", opts), STDIN_NAME)
        return
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        yield InputError(path, _missing(path))
        return
    except OSError as e:
        yield InputError(path, atomic.problem(e))
        return
    except ValueError as e:  # e.g. an embedded NUL in the path
        yield InputError(repr(path), f"not a usable path ({e})")
        return
    if stat.S_ISDIR(st.st_mode):
        yield from _iter_folder(Path(path), opts)
    else:
        yield from _guard(_read_file(Path(path), st, _format_for(Path(path), opts), opts), path)


def _missing(path: str | Path) -> str:
    """Why a path has nothing to read: a link names where it points ("No such file or directory" did not)."""
    try:
        return f"a broken link (to {os.readlink(path)})"
    except (OSError, ValueError):
        return "no such file or folder"


def _read_url(url: str, opts: _Options) -> Iterator[Document | InputError]:
    """A web page, fetched and read like an .html file (or a .txt one, for text/plain); offsets point into
    the extracted text. The URL, where it ended after redirects and when it was fetched go into metadata."""
    try:
        page = fetch.fetch(url, max_bytes=min(fetch.MAX_BYTES, _html_limit(opts)))
        doc = _document_from_bytes(page.data, page.format, url, url, opts)
    except InputError as e:
        yield e
        return
    doc.metadata.update(page.metadata)
    yield doc


def folder_files(folder: Path, input_format: str = "auto", onerror=None, documents: list[Path] | None = None) -> list[Path]:
    """The files a folder is read as (recursively; hidden entries skipped; by extension, for the format);
    its PDF, Word, OpenDocument and RTF files go into ``documents`` when given and propscan picks the formats
    (a chosen format reads what it names)."""
    wanted = {ext for ext, f in EXTENSIONS.items() if input_format in ("auto", f)}
    files: list[Path] = []
    for root, dirs, names in os.walk(folder, onerror=onerror):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        names = [n for n in names if not n.startswith(".")]
        files.extend(Path(root, n) for n in names if Path(n).suffix.lower() in wanted)
        if documents is not None and input_format == "auto":
            documents.extend(Path(root, n) for n in names if Path(n).suffix.lower() in DOCUMENT_EXTENSIONS)
    return files


def _iter_folder(folder: Path, opts: _Options) -> Iterator[Document | InputError]:
    wanted = {ext for ext, f in EXTENSIONS.items() if opts.input_format in ("auto", f)}
    errors: list[OSError] = []
    documents: list[Path] = []
    files = folder_files(folder, opts.input_format, errors.append, documents)
    for e in errors:
        yield InputError(e.filename or folder, f"could not be read ({atomic.problem(e)})")
    for d in sorted(documents):
        yield InputError(d, DOCUMENT_EXTENSIONS[d.suffix.lower()])
    if not files:
        if not errors and not documents:
            exts = ", ".join(sorted(wanted))
            yield InputError(folder, f"no files with a readable extension ({exts}) in this folder")
        return
    ids = _folder_ids(folder, files)
    for f in sorted(files, key=lambda p: p.relative_to(folder).parts):
        try:
            st = f.stat()
        except FileNotFoundError:  # a broken link, or a file removed since the folder was listed
            yield InputError(f, _missing(f))
            continue
        except OSError as e:
            yield InputError(f, atomic.problem(e))
            continue
        if stat.S_ISREG(st.st_mode):
            yield from _guard(_read_file(f, st, _format_for(f, opts), opts, ids[f]), str(f))


def _folder_ids(folder: Path, files: list[Path]) -> dict[Path, str]:
    """Ids from file names; where names collide, the relative folder keeps the documents apart."""
    ids = {f: article_id_for(f) for f in files}
    for widen in (
        lambda f: "/".join([*f.parent.relative_to(folder).parts, ids[f]]),  # a/article1.txt -> a/1
        lambda f: f.relative_to(folder).as_posix(),  # article1.txt and 1.txt side by side
    ):
        seen = Counter(ids.values())
        ids = {f: i if seen[i] == 1 else widen(f) for f, i in ids.items()}
    return ids


def _distinct_id(doc_id: str, path: str, earlier: dict[str, str]) -> str:
    """A file whose id an earlier path argument's file (another file) already has is known by its path,
    so ``analyze dirA dirB`` keeps ``dirA/article1.txt`` as ``1`` and makes the other ``dirB/article1.txt``.
    Records (JSONL/CSV) keep the ids their id field gives."""
    if earlier.get(doc_id, path) == path:
        return doc_id
    candidate, n = Path(path).as_posix(), 1
    while earlier.get(candidate, path) != path:
        n += 1
        candidate = f"{Path(path).as_posix()}#{n}"
    return candidate


def _format_for(path: Path, opts: _Options) -> str:
    if opts.input_format != "auto":
        return opts.input_format
    return EXTENSIONS.get(path.suffix.lower(), "sniff")


# ----------------------------------------------------------------------------------------------------------
# whole-file formats (text, html)


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def _size_problem(size: int, limit: int, what: str = "", note: str = "(--max-bytes)", more: bool = False) -> str:
    a, b = _mb(size), _mb(limit)
    if a == b or limit < 100_000:
        a, b = f"{size:,} bytes", f"{limit:,} bytes"
    return f"{what}is {'more than ' if more else ''}{a}; the limit is {b} {note}"


def _html_limit(opts: _Options) -> int:
    return opts.max_bytes * HTML_SIZE_FACTOR


def _limit_for(fmt: str, opts: _Options) -> tuple[int, str]:
    if fmt == "text":
        return opts.max_bytes, "(--max-bytes)"
    return _html_limit(opts), f"for an HTML page ({HTML_SIZE_FACTOR} × --max-bytes)"


def _read_bounded(fh: BinaryIO, limit: int, source: str, note: str, known_size: int | None = None) -> bytes:
    if known_size is not None and known_size > limit:
        raise InputError(source, _size_problem(known_size, limit, note=note))
    data = _read_upto(fh, limit + 1)
    if len(data) > limit:
        raise InputError(source, _size_problem(limit, limit, note=note, more=True))
    return data


def _read_upto(fh: BinaryIO, n: int, chunk: int = 1 << 16) -> bytes:
    """Read at most ``n`` bytes in chunks (``fh.read(n)`` would set aside ``n`` bytes up front)."""
    parts, got = [], 0
    while got < n:
        part = fh.read(min(chunk, n - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _read_file(
    path: Path, st: os.stat_result, fmt: str, opts: _Options, stem: str | None = None
) -> Iterator[Document | InputError]:
    source = str(path)
    stem = stem or article_id_for(path)
    if fmt in ("jsonl", "csv"):
        with open(path, "rb") as fh:
            yield from _iter_records(fh, fmt, source, stem, opts)
        return
    size = st.st_size if stat.S_ISREG(st.st_mode) else None
    with open(path, "rb") as fh:
        _check_not_a_document(fh.peek(16), source)  # before the size check: a 5 MB PDF is a PDF first
        if fmt == "sniff":
            head = fh.read(_SNIFF_BYTES)
            fmt = "html" if _looks_like_html(head) else "text"
            limit, note = _limit_for(fmt, opts)
            if size is not None and size > limit:
                raise InputError(source, _size_problem(size, limit, note=note))
            data = head + _read_upto(fh, max(limit - len(head), 0) + 1)
            if len(data) > limit:
                raise InputError(source, _size_problem(limit, limit, note=note, more=True))
        else:
            limit, note = _limit_for(fmt, opts)
            data = _read_bounded(fh, limit, source, note, size)
    yield _document_from_bytes(data, fmt, source, stem, opts)


def _read_stream(fh: BinaryIO, source: str, stem: str, opts: _Options) -> Iterator[Document | InputError]:
    fmt = opts.input_format
    if fmt in ("jsonl", "csv"):
        yield from _iter_records(fh, fmt, source, stem, opts)
        return
    if fmt == "auto":
        data = _read_bounded(fh, _html_limit(opts), source, _limit_for("html", opts)[1])
        fmt = "html" if _looks_like_html(data[:_SNIFF_BYTES]) else "text"
        if fmt == "text" and len(data) > opts.max_bytes:
            raise InputError(source, _size_problem(len(data), opts.max_bytes))
    else:
        limit, note = _limit_for(fmt, opts)
        data = _read_bounded(fh, limit, source, note)
    yield _document_from_bytes(data, fmt, source, stem, opts)


def _looks_like_html(head: bytes) -> bool:
    for bom, _ in _BOMS:
        if head.startswith(bom):
            head = head[len(bom) :]
            break
    return bool(_HTML_START.match(head) or _HTML_ANYWHERE.search(head))


def _decode(data: bytes, source: str) -> tuple[str, str]:
    """Bytes -> (text, encoding name). Raises InputError for binary or undecodable input."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as e:
                raise InputError(source, f"starts with a {codec.upper()} byte-order mark but is not valid {codec.upper()} (byte {e.start})") from None
            if codec == "utf-8-sig" and "\x00" in text:
                raise InputError(source, "binary file, not text")
            return _check_text(text, source), codec
    if b"\x00" in data:
        raise InputError(source, "binary file, not text")
    try:
        return _check_text(data.decode("utf-8"), source), "utf-8"
    except UnicodeDecodeError as e:
        bad = e.start
        if e.end == len(data) and e.reason == "unexpected end of data" and (not data[:bad].isascii() or len(data) - bad > 1):
            # UTF-8 cut inside its last character (a truncated download, head -c): the broken tail becomes U+FFFD
            return _check_text(data[:bad].decode("utf-8") + "\ufffd", source), "utf-8"
    encoding, text = _not_utf8(data)
    if text is not None:
        return _check_text(text, source), "utf-8"
    if encoding is None:
        raise InputError(source, f"not valid UTF-8 (byte {bad}) and no other text encoding fits; binary file, not text?")
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise InputError(source, f"not valid UTF-8 (byte {bad}) and not valid {encoding} either") from None
    return _check_text(text, source), encoding


# A UTF-8 text with a few sequences that are not UTF-8 (files cut and joined, a fragment pasted from a page in
# another encoding) is read as UTF-8 with U+FFFD in their place; the analysis then warns (analyze.py).
# Skipped whole before, or read whole as a legacy encoding, which turned every "’" into "â€™" and moved every
# offset after it. UTF-8 is what it is when its valid multi-byte characters at least match the invalid
# sequences in number, or (with no legacy encoding that reads it) when these are at most 1 in 100 bytes
# (_mostly_utf8, the one rule every reader asks).
_STRAY_SHARE = 0.01


def _replaced_utf8(data: bytes) -> tuple[str, int, int]:
    """``data`` as UTF-8 with U+FFFD for each invalid sequence, the number of these, and of its valid
    multi-byte characters."""
    text = data.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd") - data.count("\ufffd".encode())
    return text, invalid, len(text) - len(text.encode("ascii", "ignore")) - invalid


def _mostly_utf8(invalid: int, multibyte: int, size: int, no_other: bool) -> bool:
    """Whether bytes with these counts (_replaced_utf8) are UTF-8 but for a few stray bytes: the valid
    multi-byte characters at least match the invalid sequences, or (``no_other``: no other encoding reads
    them) these are at most _STRAY_SHARE of the ``size`` bytes."""
    return invalid <= multibyte or (no_other and invalid <= _STRAY_SHARE * size)


def _stray_utf8(data: bytes, no_other: bool = False) -> str | None:
    """``data`` as UTF-8 with U+FFFD for each invalid sequence, when it is UTF-8 but for a few stray bytes
    (_mostly_utf8; ``no_other``: no other encoding reads it). None when it reads as something else."""
    text, invalid, multibyte = _replaced_utf8(data)
    return text if _mostly_utf8(invalid, multibyte, len(data), no_other) else None


def _not_utf8(data: bytes) -> tuple[str | None, str | None]:
    """The encoding of ``data``, which is not valid UTF-8: ("utf-8", its text with U+FFFD) when UTF-8 but
    for a few stray bytes (_mostly_utf8, asked before and, with no_other, after the legacy guess; one
    decode serves both), (the legacy encoding charset-normalizer finds, None), or (None, None) when
    nothing reads it."""
    text, invalid, multibyte = _replaced_utf8(data)
    if _mostly_utf8(invalid, multibyte, len(data), no_other=False):
        return "utf-8", text
    encoding = _detect_encoding(data)
    if encoding is None and _mostly_utf8(invalid, multibyte, len(data), no_other=True):
        return "utf-8", text
    return encoding, None


def _utf8_page(data: bytes) -> bytes | str:
    """A page that is UTF-8 but for a few stray bytes, as text with U+FFFD in their place (trafilatura
    guessed such a page whole as Mac Roman: "don‚Äôt"); any other page as bytes, for trafilatura to
    decode by its declared or detected charset."""
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError:
        text = _stray_utf8(data)
        return data if text is None else text


def _detect_encoding(data: bytes) -> str | None:
    """The legacy encoding charset-normalizer finds for ``data``; on a tie, the common Western cp1252."""
    import charset_normalizer

    results = charset_normalizer.from_bytes(data)
    best = results.best()
    if best is None:
        return None
    if "cp1252" in (best.could_be_from_charset or []):
        return "cp1252"  # decodes to the very same text
    # 8-bit encodings are ambiguous on short texts: when cp1252 reads as cleanly as the best guess and its
    # language coherence is about as good, take the common Western encoding (French "à" is not cp1250 "ŕ")
    for r in results:
        if r.encoding == "cp1252" and r.chaos <= best.chaos + 1e-9 and r.coherence >= best.coherence - 0.03:
            return "cp1252"
    return best.encoding


def _check_text(text: str, source: str) -> str:
    controls = len(_CONTROL.findall(text))
    if controls and controls > _BINARY_CONTROL_SHARE * len(text):
        raise InputError(source, "binary file, not text")
    if not text.strip():
        raise InputError(source, "empty" if not text else "empty (whitespace only)")
    return text


def _check_not_a_document(head: bytes, source: str) -> None:
    """An InputError naming a PDF, Word, OpenDocument or RTF file given as text or HTML."""
    for magic, problem in _DOCUMENTS:
        if head.startswith(magic):
            raise InputError(source, problem)


def _document_from_bytes(data: bytes, fmt: str, source: str, stem: str, opts: _Options) -> Document:
    _check_not_a_document(data, source)
    if not data.strip():
        raise InputError(source, "empty" if not data else "empty (whitespace only)")
    if fmt == "html":
        return _html_document(data, source, stem, opts)
    text, encoding = _decode(data, source)
    return Document(stem, text, {"path": source, "format": "text", "encoding": encoding})


def _html_document(data: bytes, source: str, stem: str, opts: _Options) -> Document:
    if b"\x00" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(source, "binary file, not text")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        html: bytes | str = _decode(data, source)[0]
    else:
        html = _utf8_page(data)
    import trafilatura

    result = trafilatura.bare_extraction(html, include_comments=False, with_metadata=True)
    if result is not None and not isinstance(result, dict):
        result = result.as_dict()
    body = ((result or {}).get("text") or "").strip()
    if len(body.split()) < _MIN_HTML_WORDS:
        raise InputError(source, "no article text found in the HTML")
    title = " ".join(((result or {}).get("title") or "").split())
    if title:
        first, _, rest = body.partition("\n")
        if " ".join(first.split()) == title:
            body = rest.lstrip("\n")
        text = f"{title}\n\n{body}" if body else title
    else:
        text = body
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > opts.max_bytes:
        raise InputError(source, _size_problem(size, opts.max_bytes, what="the extracted text "))
    meta: dict[str, Any] = {"path": source, "format": "html"}
    for key, field in (("title", "title"), ("author", "author"), ("date", "date"), ("site", "sitename"), ("url", "url")):
        value = result.get(field)
        if value:
            meta[key] = value
    if title:
        meta["title"] = title
    return Document(stem, text, meta)


# ----------------------------------------------------------------------------------------------------------
# record formats (jsonl, csv): streamed


_MAX_LEADING_BAD = 20  # this many bad records before the first good one: not a corpus of this format


def _iter_records(fh: BinaryIO, fmt: str, source: str, stem: str, opts: _Options) -> Iterator[Document | InputError]:
    head = fh.read(_SNIFF_BYTES)
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        yield InputError(source, "binary file, not text")
        return
    stream = io.BufferedReader(_Prefixed(head, fh))
    items = _iter_jsonl(stream, source, stem, opts) if fmt == "jsonl" else _iter_csv(stream, source, stem, opts)
    good = bad = 0
    for item in items:
        if isinstance(item, Document):
            good += 1
        else:
            bad += 1
            if not good and bad > _MAX_LEADING_BAD:
                yield InputError(source, f"the first {_MAX_LEADING_BAD} records are all bad; not a {fmt.upper()} file? The rest is skipped")
                return
        yield item


def _skip_rest_of_line(fh: BinaryIO, seen: int) -> int:
    while True:
        chunk = fh.readline(1 << 20)
        seen += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return seen


def _iter_jsonl(fh: BinaryIO, source: str, stem: str, opts: _Options) -> Iterator[Document | InputError]:
    limit = opts.line_limit
    lineno = 0
    any_line = False
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            break
        lineno += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            size = _skip_rest_of_line(fh, len(raw))
            yield InputError(source, f"line {lineno}: " + _size_problem(size, limit, what="the line ", note="(6 × --max-bytes + 64 kB)"))
            continue
        if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip():
            continue
        any_line = True
        not_utf8 = None  # a line with a few stray bytes is read with U+FFFD in their place (as a text file is)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            not_utf8 = f"not valid UTF-8 (byte {e.start})"
            replaced = None if b"\x00" in raw else _stray_utf8(raw, no_other=True)  # JSON Lines are UTF-8
            if replaced is None:
                problem = "binary data, not text" if b"\x00" in raw else not_utf8
                yield InputError(source, f"line {lineno}: {problem}")
                continue
            line = replaced
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:  # a record cut off mid-character is named by its first fault
            yield InputError(source, f"line {lineno}: {not_utf8 or f'not valid JSON ({e.msg} at column {e.colno})'}")
            continue
        except RecursionError:
            yield InputError(source, f"line {lineno}: not valid JSON (nested too deeply)")
            continue
        if _SURROGATE_ESCAPE.search(line):
            try:
                json.dumps(obj, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                yield InputError(source, f"line {lineno}: has an unpaired surrogate escape (\\ud800-\\udfff), not valid Unicode")
                continue
        yield _record(obj, source, stem, lineno, "jsonl", opts)
    if not any_line:
        yield InputError(source, "empty")


class _Prefixed(io.RawIOBase):
    """A raw stream that returns ``head`` and then the rest of ``fh`` (lets us sniff a non-seekable stream)."""

    def __init__(self, head: bytes, fh: BinaryIO):
        self._head = memoryview(head)
        self._fh = fh

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._fh.read(len(b))
        b[: len(data)] = data
        return len(data)


def _csv_encoding(head: bytes, source: str) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        raise InputError(source, "binary file, not text")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError as e:
        bad = e.start
    encoding, _ = _not_utf8(head)
    if encoding is None:
        raise InputError(source, f"not valid UTF-8 (byte {bad}) and no other text encoding fits; binary file, not text?")
    return encoding


def _csv_delimiter(first_line: str, text_field: str) -> str:
    for d in (",", ";", "\t", "|"):
        if text_field in next(csv.reader([first_line], delimiter=d), []):
            return d
    return ","


def _iter_csv(fh: BinaryIO, source: str, stem: str, opts: _Options) -> Iterator[Document | InputError]:
    head = fh.read(_HEAD_BYTES)
    if not head.strip():
        yield InputError(source, "empty")
        return
    encoding = _csv_encoding(head, source)
    # UTF-8 replaces a stray byte as a text file does (the record then warns); a legacy encoding is strict
    errors = "replace" if encoding == "utf-8" else "strict"
    text = io.TextIOWrapper(io.BufferedReader(_Prefixed(head, fh)), encoding=encoding, errors=errors, newline="")
    limit = opts.line_limit
    # the csv module's per-field limit is process-wide; raise it (never lower it) so a text of max_bytes fits
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)

    lines_read = 0

    def lines() -> Iterator[str]:
        nonlocal lines_read
        while True:
            line = text.readline(limit)
            if not line:
                return
            lines_read += 1
            yield line

    line_iter = lines()
    try:
        first = next(line_iter, "")
    except UnicodeDecodeError as e:
        yield InputError(source, f"line 1: not valid {encoding} (byte {e.start})")
        return
    first = first.lstrip("\ufeff")
    delimiter = _csv_delimiter(first, opts.text_field)
    try:
        header = next(csv.reader([first], delimiter=delimiter))
    except (csv.Error, StopIteration) as e:
        yield InputError(source, f"line 1: not a CSV header ({e})")
        return
    header = [h.strip() for h in header]
    if opts.text_field not in header:
        cols = ", ".join(repr(h) for h in header[:12]) + (", …" if len(header) > 12 else "")
        yield InputError(source, f"no {opts.text_field!r} column (columns: {cols}); choose one with --text-field")
        return
    # strict: a quote left open is an error, never a record that silently swallows the rows after it
    reader = csv.reader(line_iter, delimiter=delimiter, strict=True)
    prev = lines_read
    records = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except UnicodeDecodeError as e:
            yield InputError(source, f"line {lines_read + 1}: not valid {encoding} (byte {e.start}); the rest of the file is skipped")
            return
        except csv.Error as e:
            problem = str(e)
            if problem.startswith("unexpected end of data"):  # a quote opened and never closed
                yield InputError(source, f"line {prev + 1}: a quoted field opened in this record is never closed; "
                                 f"lines {prev + 1}-{lines_read} were not read as records")
                return
            if problem.startswith("field larger than field limit"):  # csv.field_size_limit() >= limit
                problem = _size_problem(limit, limit, what="a field ", note="(6 × --max-bytes + 64 kB)", more=True)
                yield InputError(source, f"line {prev + 1}: {problem}; the rest of the file is skipped")
                return
            # a malformed record (say text after a closing quote): reported, and reading goes on after it
            yield InputError(source, f"line {prev + 1}: malformed CSV record ({problem})")
            prev = lines_read
            continue
        lineno, prev = prev + 1, lines_read
        if not row or not any(c.strip() for c in row):
            continue
        records += 1
        if len(row) != len(header):
            yield InputError(source, f"line {lineno}: {len(row)} fields, but the header has {len(header)}")
            continue
        obj: dict[str, Any] = {}
        for k, v in zip(header, row):
            obj.setdefault(k, v)
        yield _record(obj, source, stem, lineno, "csv", opts)
    if not records:
        yield InputError(source, "no records, only a header")


def _record(obj: Any, source: str, stem: str, lineno: int, fmt: str, opts: _Options) -> Document | InputError:
    where = f"line {lineno}: "
    if not isinstance(obj, dict):
        return InputError(source, where + f"a JSON {type(obj).__name__}, not an object")
    if opts.text_field not in obj:
        return InputError(source, where + f"no {opts.text_field!r} field; choose one with --text-field")
    text = obj[opts.text_field]
    if not isinstance(text, str):
        return InputError(source, where + f"the {opts.text_field!r} field is not a string")
    if not text.strip():
        return InputError(source, where + "empty")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return InputError(source, where + "the text is not valid Unicode (unpaired surrogate)")
    if size > opts.max_bytes:
        return InputError(source, where + _size_problem(size, opts.max_bytes, what="the text "))
    controls = len(_CONTROL.findall(text))
    if controls and controls > _BINARY_CONTROL_SHARE * len(text):
        return InputError(source, where + "binary data, not text")
    raw_id = obj.get(opts.id_field)
    if raw_id is None or isinstance(raw_id, (dict, list)) or not str(raw_id).strip():
        doc_id = f"{stem}:{lineno}"
    else:
        doc_id = str(raw_id).strip()
    meta: dict[str, Any] = {"path": source, "format": fmt, "line": lineno}
    for k, v in obj.items():
        if k in (opts.text_field, opts.id_field):
            continue
        meta[f"field:{k}" if k in ("path", "format", "line") else k] = v
    return Document(doc_id, text, meta)
