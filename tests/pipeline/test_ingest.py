"""Tests for propscan.pipeline.ingest: text, HTML, JSONL, CSV, folders and stdin, with errors yielded per input."""

from __future__ import annotations

import codecs
import io
import json
import re
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propscan.document import Document
from propscan.errors import InputError
from propscan.pipeline.ingest import DOCUMENT_EXTENSIONS, EXTENSIONS, HTML_SIZE_FACTOR, iter_documents, read_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "html"
SEED = Path(__file__).resolve().parents[3] / "shared" / "examples" / "seed-opinion-article.txt"


def docs_and_errors(items) -> tuple[list[Document], list[InputError]]:
    items = list(items)
    assert all(isinstance(i, (Document, InputError)) for i in items)
    return [i for i in items if isinstance(i, Document)], [i for i in items if isinstance(i, InputError)]


def one(path, **kw) -> Document | InputError:
    (item,) = list(iter_documents([str(path)], **kw))
    return item


# ---------------------------------------------------------------------------------------------------------
# plain text


def test_text_utf8_crlf_kept_exactly(tmp_path):
    raw = "Title\r\n\r\nLe maire a été «irresponsable» 😡.\r\nSecond line.\r\n"
    p = tmp_path / "story.txt"
    p.write_bytes(raw.encode("utf-8"))
    doc = read_document(p)
    assert doc.id == "story"
    assert doc.text == raw  # CRLF kept: offsets point into the text as decoded
    assert doc.text[doc.text.index("Second") :].startswith("Second line.\r\n")
    assert doc.metadata == {"path": str(p), "format": "text", "encoding": "utf-8"}


def test_ptc_style_name_gives_article_id(tmp_path):
    p = tmp_path / "article730081389.txt"
    p.write_text("Title\n\nBody.\n", encoding="utf-8")
    assert read_document(p).id == "730081389"


def test_same_name_in_two_subfolders_gets_two_ids(tmp_path):
    for sub, body in (("a", "First text."), ("b/c", "Second text."), ("", "Third text.")):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
        (tmp_path / sub / "article42.txt").write_text(body, encoding="utf-8")
    (tmp_path / "a" / "42.txt").write_text("Fourth text.", encoding="utf-8")  # PTC naming: also id 42
    (tmp_path / "article7.txt").write_text("Unique name.", encoding="utf-8")
    docs, errors = docs_and_errors(iter_documents([tmp_path]))
    assert not errors
    by_id = {d.id: d.text for d in docs}
    assert len(by_id) == len(docs) == 5
    assert by_id["7"] == "Unique name."  # a name seen once keeps the PTC id
    assert by_id["42"] == "Third text."
    assert by_id["b/c/42"] == "Second text."
    assert by_id["a/article42.txt"] == "First text."
    assert by_id["a/42.txt"] == "Fourth text."


def test_same_id_from_two_path_arguments_gets_two_ids(tmp_path):
    for sub, body in (("x", "First text."), ("y", "Second text.")):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "article42.txt").write_text(body, encoding="utf-8")
    x, y = tmp_path / "x", tmp_path / "y"
    docs, errors = docs_and_errors(iter_documents([x, y, y / "article42.txt", x / "article42.txt"]))
    assert not errors
    assert [(d.id, d.text) for d in docs] == [
        ("42", "First text."),  # the first keeps its id
        ((y / "article42.txt").as_posix(), "Second text."),  # the other file is known by its path
        ((y / "article42.txt").as_posix(), "Second text."),  # the same file again: the same id
        ("42", "First text."),
    ]


def test_utf8_bom_dropped(tmp_path):
    p = tmp_path / "bom.txt"
    p.write_bytes(codecs.BOM_UTF8 + "Hello “world”.\nLine two.\n".encode("utf-8"))
    doc = read_document(p)
    assert doc.text == "Hello “world”.\nLine two.\n"
    assert doc.metadata["encoding"] == "utf-8-sig"


def test_utf16_with_bom(tmp_path):
    p = tmp_path / "wide.txt"
    p.write_bytes("Président «Macron» a dit non.\r\n".encode("utf-16"))  # BOM + UTF-16-LE: has NUL bytes
    assert read_document(p).text == "Président «Macron» a dit non.\r\n"


def test_legacy_cp1252_decoded(tmp_path):
    text = "He said \u201cno\u201d and it\u2019s over \u2014 the caf\u00e9 owners were not amused at all.\n"
    p = tmp_path / "legacy.txt"
    p.write_bytes(text.encode("cp1252"))
    with pytest.raises(UnicodeDecodeError):
        p.read_bytes().decode("utf-8")
    doc = read_document(p)
    assert doc.text == text
    assert doc.metadata["encoding"] != "utf-8"

    french = "Le maire a été «irresponsable» à la réunion, dit-il. “C’est grave” — très grave.\n"
    p2 = tmp_path / "fr.txt"
    p2.write_bytes(french.encode("cp1252"))
    assert read_document(p2).text == french


# our own writing: UTF-8 with curly quotes, and a byte that is not UTF-8 in the middle (files cut and joined)
CURLY = "They don\u2019t care, and they\u2019re proud of it: \u201cthe people\u201d mean nothing to them. "
STRAY = CURLY.encode("utf-8") * 3 + b"The caf\xe9 crooks \x9d lied again.\n"
STRAY_TEXT = CURLY * 3 + "The caf\ufffd crooks \ufffd lied again.\n"


def test_utf8_with_stray_bytes_read_as_utf8(tmp_path):
    """A UTF-8 text with two stray bytes was skipped ("no other text encoding fits") or read whole as a legacy
    encoding ("donâ€™t", every offset after it moved); now UTF-8 with U+FFFD in their place."""
    p = tmp_path / "joined.txt"
    p.write_bytes(STRAY)
    doc = read_document(p)
    assert doc.text == STRAY_TEXT and doc.metadata["encoding"] == "utf-8"
    # one stray byte that a legacy encoding could read too: the curly quotes say UTF-8
    p.write_bytes(CURLY.encode("utf-8") * 3 + b"caf\xe9 owners.\n")
    assert read_document(p).text == CURLY * 3 + "caf\ufffd owners.\n"
    # a legacy file is still read as one (no valid multi-byte character in it)
    p.write_bytes(("The caf\u00e9 owners were na\u00efve. " * 3).encode("cp1252"))
    assert read_document(p).text == "The caf\u00e9 owners were na\u00efve. " * 3


def test_jsonl_and_csv_records_with_stray_bytes(tmp_path):
    """A JSONL record with a stray byte was skipped, and a CSV file lost every record after one (past its
    first 64 kB, "the rest of the file is skipped") or was read whole as mojibake; now U+FFFD in its place."""
    text_bytes = STRAY.rstrip(b"\n")
    p = tmp_path / "c.jsonl"
    p.write_bytes(b'{"id": "a", "text": "' + text_bytes + b'"}\n{"id": "b", "text": "Fine."}\n')
    docs, errs = docs_and_errors(iter_documents([str(p)]))
    assert not errs and [(d.id, d.text) for d in docs] == [("a", STRAY_TEXT.rstrip("\n")), ("b", "Fine.")]
    filler = "".join(f"f{i},Filler text number {i} about the council.\n" for i in range(3000)).encode()
    assert len(filler) > 70_000  # the stray byte lies past the 64 kB the encoding is told by
    c = tmp_path / "c.csv"
    c.write_bytes(b"id,text\n" + filler + b'late,"' + text_bytes + b'"\nlast,The end.\n')
    docs, errs = docs_and_errors(iter_documents([str(c)]))
    assert not errs and len(docs) == 3002
    assert docs[-2].text == STRAY_TEXT.rstrip("\n") and docs[-1].text == "The end."
    c.write_bytes(b'id,text\nhead,"' + text_bytes + b'"\n')  # in the first 64 kB: UTF-8, not mojibake
    (doc,) = iter_documents([str(c)])
    assert doc.text == STRAY_TEXT.rstrip("\n")


def test_html_page_with_stray_bytes_read_as_utf8(tmp_path):
    p = tmp_path / "page.html"
    p.write_bytes(b'<html><head><meta charset="utf-8"><title>Crooks</title></head><body><article><p>'
                  + STRAY + b"</p></article></body></html>")
    doc = read_document(p)
    assert "They don\u2019t care" in doc.text and "caf\ufffd crooks \ufffd lied" in doc.text  # not "don‚Äôt"


def test_a_broken_link_is_named_as_one(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "story.txt").write_text("The council lied again.", encoding="utf-8")
    (folder / "gone.txt").symlink_to(tmp_path / "moved-away.txt")
    docs, errs = docs_and_errors(iter_documents([str(folder)]))
    assert [d.id for d in docs] == ["story"]
    assert [(e.source, e.problem) for e in errs] == [(str(folder / "gone.txt"), f"a broken link (to {tmp_path / 'moved-away.txt'})")]
    (err,) = iter_documents([str(folder / "gone.txt")])
    assert err.problem == f"a broken link (to {tmp_path / 'moved-away.txt'})"


def test_binary_file(tmp_path):
    p = tmp_path / "image.txt"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    err = one(p)
    assert isinstance(err, InputError) and err.problem == "binary file, not text"
    with pytest.raises(InputError, match="binary file, not text"):
        read_document(p)
    # no NUL bytes, but mostly control characters
    p2 = tmp_path / "controls.txt"
    p2.write_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16]) * 50)
    assert one(p2).problem == "binary file, not text"


def _zip_document() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:document>The traitors lied.</w:document>")
    return buf.getvalue()


@pytest.mark.parametrize("name, data, words", [
    # a PDF's header and first object are plain ASCII: read as text, it was "analysed" as prose
    ("report.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "a PDF document, not text: convert it first"),
    ("letter.docx", _zip_document(), "a ZIP archive (a .docx, .odt or .epub document is one), not text"),
    ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "an old Microsoft Office document (.doc), not text"),
    ("memo.rtf", b"{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Times;}} The traitors lied.}", "an RTF document, not text"),
])
def test_a_document_format_is_named_with_what_to_do(tmp_path, name, data, words):
    p = tmp_path / name
    p.write_bytes(data + b"x" * 2_000_000)  # over --max-bytes too: the format is what the reader needs to hear
    err = one(p)
    assert isinstance(err, InputError) and err.problem.startswith(words)
    assert "save it as plain text or HTML first" in err.problem or "pdftotext" in err.problem
    docs, errors = docs_and_errors(iter_documents([p], input_format="text"))
    assert not docs and errors[0].problem == err.problem
    with pytest.raises(InputError, match=re.escape(words)):
        read_document("-", stdin=io.BytesIO(data))  # standard input and the web app's uploads


def test_empty_and_whitespace_only(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(b" \n\t\r\n  ")
    errs = list(iter_documents([str(tmp_path / "empty.txt"), str(tmp_path / "blank.txt")]))
    assert [type(e) for e in errs] == [InputError, InputError]
    assert errs[0].problem == "empty" and errs[1].problem.startswith("empty")


def test_undecodable_bytes(tmp_path):
    p = tmp_path / "noise.txt"
    p.write_bytes(bytes(range(0x80, 0x100)) * 20)  # no NULs, not UTF-8, no sensible encoding
    err = one(p)
    assert isinstance(err, InputError)
    assert "UTF-8" in err.problem or "binary" in err.problem


def test_size_limit_checked_before_reading(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"word " * 1_040_000)  # 5.2 MB
    small = tmp_path / "small.txt"
    small.write_text("A small article.\n", encoding="utf-8")
    tracemalloc.start()
    try:
        docs, errs = docs_and_errors(iter_documents([str(big), str(small)]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [d.id for d in docs] == ["small"]  # the others continue
    (err,) = errs
    assert err.source == str(big)
    assert err.problem == "is 5.2 MB; the limit is 1.0 MB (--max-bytes)"
    assert peak < 1_000_000  # the 5.2 MB file was never read into memory
    # a smaller limit applies too
    assert "the limit is 10 bytes" in one(small, max_bytes=10).problem


def test_missing_path():
    err = one("/nonexistent/folder/story.txt")
    assert isinstance(err, InputError)
    assert err.source == "/nonexistent/folder/story.txt" and err.problem == "no such file or folder"
    assert str(err) == "/nonexistent/folder/story.txt: no such file or folder"
    with pytest.raises(InputError, match="no such file or folder"):
        read_document("/nonexistent/story.txt")


def test_single_path_string_is_one_path(tmp_path):
    p = tmp_path / "one.txt"
    p.write_text("Only one.\n", encoding="utf-8")
    assert [d.id for d in iter_documents(str(p))] == ["one"]


def test_bad_options_are_yielded_not_raised(tmp_path):
    (err,) = list(iter_documents(["x.txt"], input_format="pdf"))
    assert isinstance(err, InputError) and "unknown format 'pdf'" in err.problem
    (err,) = list(iter_documents(["x.txt"], max_bytes=0))
    assert isinstance(err, InputError) and err.source == "--max-bytes"


def test_unknown_extension_is_sniffed(tmp_path):
    page = tmp_path / "page.php"
    page.write_bytes((FIXTURES / "harbour-council.html").read_bytes())
    note = tmp_path / "note.log"
    note.write_text("Plain words about <b>bold</b> claims, not a web page.\n", encoding="utf-8")
    d1, d2 = iter_documents([str(page), str(note)])
    assert d1.metadata["format"] == "html" and d1.text.startswith("Council votes")
    assert d2.metadata["format"] == "text" and "<b>bold</b>" in d2.text


def test_forced_format(tmp_path):
    p = tmp_path / "page.txt"
    p.write_bytes((FIXTURES / "harbour-council.html").read_bytes())
    assert read_document(p).text.startswith("<!DOCTYPE html>")  # .txt is text
    assert read_document(p, input_format="html").text.startswith("Council votes")


def test_seed_example_reads_unchanged():
    if not SEED.exists():
        pytest.skip(f"{SEED} not available")
    doc = read_document(SEED)
    assert doc.id == "seed-opinion-article"
    with open(SEED, encoding="utf-8", newline="") as fh:
        assert doc.text == fh.read()


# ---------------------------------------------------------------------------------------------------------
# HTML


def test_html_news_page():
    doc = read_document(FIXTURES / "harbour-council.html")
    assert doc.id == "harbour-council"
    title = "Council votes to close harbour ferry after fifty years"
    assert doc.text.startswith(title + "\n\nThe district council voted")
    assert doc.text.count(title) == 1
    assert "Islanders packed the public gallery" in doc.text
    assert "A petition calling for the decision to be reviewed" in doc.text
    m = doc.metadata
    assert m["format"] == "html" and m["title"] == title
    assert m["author"] == "Miriam Okafor" and m["site"] == "The Coastal Ledger" and m["date"] == "2023-03-14"
    for debris in (
        "We use cookies",  # cookie banner
        "Accept all cookies",
        "Weather forecast for the whole peninsula",  # navigation
        "Jobs and classifieds",
        "Share on Facebook",  # share buttons
        "Subscribe to our newsletter",  # newsletter box
        "morning briefing",
        "Related posts",  # related links
        "Lifeboat station launches winter appeal",
        "Absolute disgrace",  # comments
        "Leave a Reply",
        "Your email address will not be published",
        "All rights reserved",  # footer
    ):
        assert debris not in doc.text, debris


def test_html_legacy_charset_opinion_page():
    raw = (FIXTURES / "school-curriculum-opinion.html").read_bytes()
    assert b"\x93consultation\x94" in raw  # windows-1252 curly quotes
    doc = read_document(FIXTURES / "school-curriculum-opinion.html")
    assert doc.text.startswith("OPINION: The so-called experts have failed us again\n\nOnce again")
    assert "The minister promised “consultation” and delivered a decree." in doc.text
    assert doc.metadata["author"] == "Jack Thornton" and doc.metadata["site"] == "Daily Patriot Voice"
    for debris in (
        "This website uses cookies",
        "Donate to keep us independent",
        "Share this",
        "WhatsApp",
        "Post navigation",
        "Farmers block motorway",
        "You may also like",
        "Ten things the mainstream media",
        "Leave a Reply",
        "Subscribe now and save",
        "Proudly powered by WordPress",
    ):
        assert debris not in doc.text, debris


def test_html_without_article_text(tmp_path):
    p = tmp_path / "blank.html"
    p.write_text("<html><head><title>x</title></head><body><nav><a href='/'>Home</a></nav></body></html>", encoding="utf-8")
    err = one(p)
    assert isinstance(err, InputError) and "no article text" in err.problem


def test_html_size_limits(tmp_path):
    p = tmp_path / "page.html"
    p.write_bytes((FIXTURES / "harbour-council.html").read_bytes())
    size = p.stat().st_size
    # the raw page may be HTML_SIZE_FACTOR times max_bytes; the extracted text must fit max_bytes
    assert isinstance(one(p, max_bytes=size // HTML_SIZE_FACTOR + 1), InputError)
    err = one(p, max_bytes=size // HTML_SIZE_FACTOR - 1)
    assert isinstance(err, InputError) and err.problem.startswith("is ") and "HTML" in err.problem
    assert isinstance(one(p, max_bytes=size), Document)


# ---------------------------------------------------------------------------------------------------------
# JSONL and CSV


def test_jsonl_with_malformed_line(tmp_path):
    p = tmp_path / "corpus.jsonl"
    lines = [
        json.dumps({"id": "a1", "text": "First article.", "site": "example.org", "tags": ["x"]}),
        '{"id": "a2", "text": "broken',
        "",
        json.dumps({"text": "Third article without id."}),
        json.dumps([1, 2]),
        json.dumps({"id": 7, "text": "Numeric id.", "path": "collides"}),
        json.dumps({"id": "e", "text": "   "}),
        json.dumps({"id": "n", "body": "no text field"}),
    ]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = list(iter_documents([str(p)]))
    docs, errs = docs_and_errors(items)
    assert [d.id for d in docs] == ["a1", "corpus:4", "7"]
    assert docs[0].text == "First article."
    assert docs[0].metadata == {"path": str(p), "format": "jsonl", "line": 1, "site": "example.org", "tags": ["x"]}
    assert docs[2].metadata["field:path"] == "collides" and docs[2].metadata["path"] == str(p)
    assert [e.problem.split(":")[0] for e in errs] == ["line 2", "line 5", "line 7", "line 8"]
    assert "not valid JSON" in errs[0].problem
    assert all(e.source == str(p) for e in errs)
    # order is kept: the error comes between the documents around it
    assert isinstance(items[1], InputError)


def test_jsonl_custom_fields_bom_and_bad_utf8(tmp_path):
    p = tmp_path / "c.ndjson"
    p.write_bytes(
        codecs.BOM_UTF8
        + json.dumps({"uid": "u1", "body": "Body one.", "text": "meta"}).encode()
        + b"\n"
        + b'{"uid": "u2", "body": "caf\xe9"}\n'
        + json.dumps({"uid": "u3", "body": "Body three."}).encode()
        + b"\n"
    )
    docs, errs = docs_and_errors(iter_documents([str(p)], text_field="body", id_field="uid"))
    assert [(d.id, d.text) for d in docs] == [("u1", "Body one."), ("u3", "Body three.")]
    assert docs[0].metadata["text"] == "meta"
    (err,) = errs
    assert err.problem.startswith("line 2: not valid UTF-8")


def test_jsonl_record_over_limit_and_overlong_line(tmp_path):
    p = tmp_path / "c.jsonl"
    rows = [{"id": "big", "text": "x" * 500}, {"id": "ok", "text": "fine"}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    docs, errs = docs_and_errors(iter_documents([str(p)], max_bytes=100))
    assert [d.id for d in docs] == ["ok"]
    assert errs[0].problem == "line 1: the text is 500 bytes; the limit is 100 bytes (--max-bytes)"
    # a line far longer than any record could be is skipped without being held in memory
    p2 = tmp_path / "long.jsonl"
    p2.write_bytes(b'{"text": "' + b"y" * 200_000 + b'"}\n' + json.dumps({"text": "after"}).encode() + b"\n")
    docs, errs = docs_and_errors(iter_documents([str(p2)], max_bytes=100))
    assert [d.text for d in docs] == ["after"]
    assert errs[0].problem.startswith("line 1: the line is ")


def test_jsonl_that_is_not_jsonl_stops_early(tmp_path):
    p = tmp_path / "prose.jsonl"
    p.write_text("Just a sentence.\n" * 1000, encoding="utf-8")
    items = list(iter_documents([str(p)]))
    assert all(isinstance(i, InputError) for i in items)
    assert len(items) < 30 and "not a JSONL file" in items[-1].problem


def test_jsonl_100k_lines_streams_in_bounded_memory(tmp_path):
    p = tmp_path / "big.jsonl"
    n = 100_000
    with open(p, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(f'{{"id": "d{i}", "text": "Article number {i} says the council is to blame for it all.", "n": {i}}}\n')
    size = p.stat().st_size
    assert size > 8_000_000
    count, last = 0, None
    tracemalloc.start()
    try:
        for item in iter_documents([str(p)]):
            assert isinstance(item, Document)
            count += 1
            last = item
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert last.id == f"d{n - 1}" and last.metadata["line"] == n and last.metadata["n"] == n - 1
    assert peak < size / 20, (peak, size)


def test_csv_text_id_and_metadata(tmp_path):
    p = tmp_path / "news.csv"
    p.write_text(
        'id,title,text,site\n'
        'n1,First,"He said, ""this is a disgrace""\nand left.",example.org\n'
        "n2,Second,Plain text.,other.org\n"
        ",Third,No id here.,x.org\n"
        "\n"
        "n4,Broken row\n"
        "n5,Fifth,   ,y.org\n"
        "n6,Sixth,Last one.,z.org\n",
        encoding="utf-8",
        newline="",
    )
    docs, errs = docs_and_errors(iter_documents([str(p)]))
    assert [d.id for d in docs] == ["n1", "n2", "news:5", "n6"]
    assert docs[0].text == 'He said, "this is a disgrace"\nand left.'
    assert docs[0].metadata == {"path": str(p), "format": "csv", "line": 2, "title": "First", "site": "example.org"}
    assert docs[3].metadata["line"] == 9
    assert [e.problem for e in errs] == ["line 7: 2 fields, but the header has 4", "line 8: empty"]


def test_csv_other_fields_delimiter_and_encoding(tmp_path):
    p = tmp_path / "semi.csv"
    p.write_bytes("ref;body\nr1;Le maire a été «irresponsable» à la réunion, dit-il.\n".encode("cp1252"))
    (doc,) = iter_documents([str(p)], text_field="body", id_field="ref")
    assert doc.id == "r1" and doc.text == "Le maire a été «irresponsable» à la réunion, dit-il."
    p2 = tmp_path / "nocol.csv"
    p2.write_text("a,b\n1,2\n", encoding="utf-8")
    (err,) = iter_documents([str(p2)])
    assert isinstance(err, InputError) and "no 'text' column" in err.problem and "'a', 'b'" in err.problem
    p4 = tmp_path / "header-only.csv"
    p4.write_text("id,text\n\n", encoding="utf-8")
    (err,) = iter_documents([str(p4)])
    assert isinstance(err, InputError) and err.problem == "no records, only a header"
    p3 = tmp_path / "bom.csv"
    p3.write_bytes(codecs.BOM_UTF8 + b"text,id\r\nWindows line ends.,w1\r\n")
    (doc,) = iter_documents([str(p3)])
    assert doc.id == "w1" and doc.text == "Windows line ends."


def test_read_document_refuses_corpora_and_folders(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"text": "one"}\n{"text": "two"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="more than one document"):
        read_document(p)
    p.write_text('{"id": "solo", "text": "one"}\n', encoding="utf-8")
    assert read_document(p).id == "solo"
    with pytest.raises(InputError, match="is a folder"):
        read_document(tmp_path)


# ---------------------------------------------------------------------------------------------------------
# folders and stdin


def test_folder_recursion_with_mixed_files(tmp_path):
    root = tmp_path / "corpus"
    (root / "b" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.txt").write_text("Alpha text.\n", encoding="utf-8")
    (root / "b" / "notes.md").write_text("Beta notes.\n", encoding="utf-8")
    (root / "b" / "deeper" / "page.HTML").write_bytes((FIXTURES / "harbour-council.html").read_bytes())
    (root / "b" / "records.jsonl").write_text('{"id": "r1", "text": "One."}\n{"id": "r2", "text": "Two."}\n', encoding="utf-8")
    (root / "c.csv").write_text("id,text\nc1,See.\n", encoding="utf-8")
    (root / "empty.txt").write_bytes(b"")
    (root / ".hidden.txt").write_text("Hidden.\n", encoding="utf-8")
    (root / ".git" / "HEAD.txt").write_text("ref\n", encoding="utf-8")
    (root / "picture.png").write_bytes(b"\x89PNG\x00\x00")
    (root / "readme").write_text("No extension.\n", encoding="utf-8")
    docs, errs = docs_and_errors(iter_documents([str(root)]))
    assert [d.id for d in docs] == ["a", "page", "notes", "r1", "r2", "c1"]
    assert [e.source for e in errs] == [str(root / "empty.txt")]
    assert docs[1].metadata["format"] == "html"
    # an explicit format takes only that format's files
    docs, _ = docs_and_errors(iter_documents([str(root)], input_format="text"))
    assert [d.id for d in docs] == ["a", "notes"]
    # a folder with nothing readable
    (tmp_path / "void").mkdir()
    (err,) = iter_documents([str(tmp_path / "void")])
    assert isinstance(err, InputError) and "no files" in err.problem


def test_stdin_text_html_and_jsonl():
    doc = read_document("-", stdin=io.BytesIO("Piped “text”.\r\n".encode("utf-8")))
    assert doc.id == "stdin" and doc.text == "Piped “text”.\r\n" and doc.metadata["path"] == "<stdin>"
    html = (FIXTURES / "harbour-council.html").read_bytes()
    doc = read_document("-", stdin=io.BytesIO(html))
    assert doc.metadata["format"] == "html" and doc.text.startswith("Council votes")
    items = list(iter_documents(["-"], input_format="jsonl", stdin=io.BytesIO(b'{"text": "a"}\nnope\n{"text": "b"}\n')))
    assert [getattr(i, "id", None) for i in items] == ["stdin:1", None, "stdin:3"]
    assert items[1].source == "<stdin>" and items[1].problem.startswith("line 2:")
    (err,) = iter_documents(["-"], stdin=io.BytesIO(b""))
    assert isinstance(err, InputError) and err.problem == "empty"
    (err,) = iter_documents(["-"], max_bytes=10, stdin=io.BytesIO(b"x" * 50))
    assert isinstance(err, InputError) and "the limit is 10 bytes" in err.problem


# ---------------------------------------------------------------------------------------------------------
# fuzz: random bytes never raise


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=3000),
        st.text(max_size=1000).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.lists(st.sampled_from([b"{", b"}", b'"text"', b":", b",", b"\n", b"<html>", b"<p>", b"\xff", b"a b", b"\x00", b'"', b"\r\n"]), max_size=60).map(b"".join),
    ),
    ext=st.sampled_from([".txt", ".html", ".jsonl", ".csv", ".bin", ""]),
)
def test_fuzz_random_bytes_never_raise(data, ext):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"fuzz{ext}"
        p.write_bytes(data)
        targets = [str(p), d] if ext in EXTENSIONS else [str(p)]
        items = list(iter_documents(targets, max_bytes=2000))
    assert items
    for item in items:
        assert isinstance(item, (Document, InputError))
        if isinstance(item, Document):
            assert isinstance(item.text, str) and item.text.strip()
            item.text.encode("utf-8")  # valid Unicode, writable as UTF-8
        else:
            assert item.problem and "\n" not in item.problem


def test_a_folders_documents_are_reported_skipped_and_its_other_files_passed_over(tmp_path):
    """A PDF in a folder of articles is an article the user meant to have read: it is reported; the
    folder's images and style sheets are not."""
    (tmp_path / "a.txt").write_text("The council lied to every family in town again.", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "report.PDF").write_bytes(b"%PDF-1.7\n" + bytes(100))
    (tmp_path / "letter.docx").write_bytes(_zip_document())
    (tmp_path / "style.css").write_text("p {}", encoding="utf-8")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    docs, errors = docs_and_errors(iter_documents([tmp_path]))
    assert [d.id for d in docs] == ["a"]
    assert [(Path(e.source).relative_to(tmp_path).as_posix(), e.problem.split(",")[0]) for e in errors] == [
        ("letter.docx", "a ZIP archive (a .docx"), ("sub/report.PDF", "a PDF document")]
    docs, errors = docs_and_errors(iter_documents([tmp_path], input_format="text"))  # a chosen format reads what it names
    assert [d.id for d in docs] == ["a"] and errors == []
    only = tmp_path / "only"
    only.mkdir()
    (only / "r.pdf").write_bytes(b"%PDF-1.7\n")
    _, errors = docs_and_errors(iter_documents([only]))
    assert [e.problem for e in errors] == [DOCUMENT_EXTENSIONS[".pdf"]]  # not "no files with a readable extension" too
