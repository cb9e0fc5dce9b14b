"""Golden-file tests for propscan.outputs.formats (csv, semeval, markdown, jsonl) and checks of terminal.py.

The analyses are built by hand (no model): non-ASCII text (accents, curly quotes, CJK, an emoji
outside the BMP, so code-point offsets differ from UTF-16 ones) and a span whose text holds a comma,
a double quote, a pipe and a newline. To regenerate the golden files after an intended change:

    PROPSCAN_UPDATE_GOLDEN=1 python -m pytest tests/outputs/test_formats.py

then read the diff of tests/golden/ before keeping it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest
from rich.console import Console

from propscan.outputs import formats, terminal
from propscan.document import Analysis, Document, ModelInfo, SentenceScore, Span

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

TEXT = (
    "Zürich’s mayor called the plan “a disgrace, a \"betrayal\" | nothing more\nthan theft”.\n"
    "Naïve critics? 这是宣传 😡 Clean streets, safe streets!"
)
TRICKY = 'a disgrace, a "betrayal" | nothing more\nthan theft'


def _at(phrase: str) -> tuple[int, int]:
    start = TEXT.index(phrase)
    return start, start + len(phrase)


def fixed_analyses() -> list[Analysis]:
    first_sentence_end = TEXT.index("”.") + 2
    one = Analysis(
        Document("article111", TEXT, {"title": 'Mayor | "quotes" <b>bold</b>', "source": "hand-built"}),
        [
            Span(*_at(TRICKY), "Loaded_Language", 0.87654, {"Exaggeration,Minimisation": 0.1}),
            Span(*_at('"betrayal"'), "Name_Calling,Labeling", 0.3),  # nested in the first
            Span(*_at("Naïve critics"), "Name_Calling,Labeling", 0.5),
            Span(*_at("Clean streets, safe streets!"), "Slogans", 0.99999),
        ],
        [
            SentenceScore(0, first_sentence_end, 0.91),
            SentenceScore(first_sentence_end + 1, TEXT.index("?") + 1, 0.52),
            SentenceScore(TEXT.index("?") + 2, len(TEXT), 0.97),
        ],
        1.0,
        ModelInfo("propscan-minilm", "0.1.0"),
    )
    two = Analysis(
        Document("doc 2", "Nothing to see here.", {}),
        [],
        [SentenceScore(0, 20, 0.02)],
        0.0,
        ModelInfo("propscan-minilm", "0.1.0"),
        threshold=0.4,
    )
    return [one, two]


def test_fixture_offsets_are_code_points():
    a = fixed_analyses()[0]
    assert a.spans[0].text_in(a.document) == TRICKY
    assert a.spans[3].start == len(TEXT) - len("Clean streets, safe streets!")
    # the emoji is one code point (two UTF-16 units): offsets after it are Python string indices
    assert TEXT.index("Clean") - TEXT.index("😡") == 2


CASES = {
    "csv": ("formats.csv", formats.to_csv),
    "semeval": ("formats.semeval.txt", formats.to_semeval),
    "markdown": ("formats.md", formats.to_markdown),
    "jsonl": ("formats.jsonl", formats.to_jsonl),
}


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_golden(fmt):
    name, write = CASES[fmt]
    got = write(fixed_analyses())
    path = GOLDEN / name
    if os.environ.get("PROPSCAN_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(got.encode("utf-8"))
    expected = path.read_bytes().decode("utf-8")  # bytes: no newline translation
    assert got == expected, f"{fmt} output differs from {path} (see the module docstring to regenerate)"


def test_csv_round_trips_the_tricky_text():
    rows = list(csv.DictReader(io.StringIO(formats.to_csv(fixed_analyses()))))
    assert [r["text"] for r in rows][0] == TRICKY
    assert rows[3]["score"] == "1.0000"
    assert {r["doc_id"] for r in rows} == {"article111"}  # the second document has no spans


def test_semeval_rows_are_tab_separated_flc():
    lines = formats.to_semeval(fixed_analyses()).splitlines()
    assert len(lines) == 4
    for line, span in zip(lines, fixed_analyses()[0].spans):
        assert line.split("\t") == ["article111", span.technique, str(span.start), str(span.end)]


def test_jsonl_round_trips():
    lines = formats.to_jsonl(fixed_analyses()).splitlines()
    assert len(lines) == 2
    back = [Analysis.from_dict(json.loads(line)) for line in lines]
    assert back[0].document.text == TEXT
    assert [s.text_in(back[0].document) for s in back[0].spans][0] == TRICKY
    assert back[1].threshold == 0.4


def test_markdown_table_rows_stay_single_line_and_literal():
    md = formats.to_markdown(fixed_analyses())
    span_rows = [line for line in md.splitlines() if line.startswith("| ") and line.split(" | ")[0][2:].isdigit()]
    assert len(span_rows) == 4
    for row in span_rows:
        # every row has exactly 5 cells once escaped pipes are ignored
        assert row.replace("\\|", "").count("|") == 6
    assert "\\<b\\>bold\\</b\\>" in md
    assert not re.search(r"(?<!\\)<", md)  # every < is escaped: no raw HTML reaches a Markdown renderer


def test_markdown_escapes_carriage_returns_and_html():
    a = fixed_analyses()[0]
    a.document = Document("cr", "x\r\ny\rz <script>alert(1)</script>")
    a.spans = [Span(0, len(a.document.text), "Loaded_Language", 0.5)]
    md = formats.to_markdown([a])
    row = [line for line in md.split("\n") if line.startswith("| 0 |")][0]
    assert "\r" not in md
    assert row.endswith("| x y z \\<script\\>alert\\(1\\)\\</script\\> |")


def test_terminal_plain_marks_spans_and_lists_overlaps():
    out = terminal.plain(fixed_analyses()[0])
    assert f"[[{TRICKY}]]{{Loaded language}}" in out
    assert "[[Naïve critics]]{Name calling / labelling}" in out
    assert "Overlapping passages:" in out and "'\"betrayal\"'" in out


def test_terminal_render_treats_document_ids_as_text():
    """A document id with rich markup syntax is printed literally (it used to raise MarkupError)."""
    a = fixed_analyses()[0]
    a.document = Document("notes[/]x[bold]y", a.document.text)
    buf = io.StringIO()
    terminal.render(a, Console(file=buf, width=100, force_terminal=False))
    assert "notes[/]x[bold]y: article score 1.00, 4 passages highlighted" in buf.getvalue()
    buf = io.StringIO()
    terminal.render(a, Console(file=buf, width=100, force_terminal=True))
    assert "notes[/]x[bold]y" in buf.getvalue()


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_keeps_a_spreadsheet_from_running_a_cell(start):
    text = f"{start}HYPERLINK(\"http://x\") is what the mayor called it."
    span_text = text[: text.index(" is")]
    a = Analysis(
        Document(f"{start}cmd", text, {}),
        [Span(0, len(span_text), "Loaded_Language", 0.5)],
        [SentenceScore(0, len(text), 0.5)],
        1.0,
        ModelInfo("propscan-minilm", "0.1.0"),
    )
    row = next(csv.DictReader(io.StringIO(formats.to_csv([a]))))
    assert row["text"] == "'" + span_text and row["doc_id"] == f"'{start}cmd"
    assert row["start"] == "0" and row["score"] == "0.5000"  # numbers untouched


def test_csv_leaves_ordinary_cells_alone():
    rows = list(csv.DictReader(io.StringIO(formats.to_csv(fixed_analyses()))))
    assert not any(v.startswith("'") for r in rows for v in r.values())


def test_one_passage_per_text_range_with_all_its_techniques():
    """Two techniques on the same words are one highlighted passage (counted once), not two."""
    a = fixed_analyses()[0]
    start, end = _at("Naïve critics")
    a.spans.append(Span(start, end, "Doubt", 0.2))
    assert len(a.spans) == 5 and len(a.passages) == 4
    assert a.to_dict()["passages"] == 4 and a.to_dict()["counts"]["Doubt"] == 1
    out = terminal.plain(a)
    assert "[[Naïve critics]]{Name calling / labelling + Doubt}" in out  # most confident first
    buf = io.StringIO()
    terminal.render(a, Console(file=buf, width=120, force_terminal=False))
    assert "4 passages highlighted" in buf.getvalue()


def test_text_output_to_a_file_keeps_the_summary_table(tmp_path):
    from conftest import run_cli

    (tmp_path / "a.txt").write_text("These traitors and vile criminals are destroying our great nation!", encoding="utf-8")
    res = run_cli("analyze", tmp_path / "a.txt", "-f", "text", "-o", tmp_path / "out.txt")
    assert res.rc == 0, res.stderr
    out = (tmp_path / "out.txt").read_text(encoding="utf-8")
    assert "[[" in out and "passage" in out and "mean confidence" in out  # the marked text and the table
