"""Outputs of analyses: json, jsonl, semeval (FLC rows), csv, markdown, and the registry of every
output format (``WRITERS``, the terminal text and the HTML report included) that the command line
and the API both read: a new format is one function and one entry here."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Iterable

from propscan.document import Analysis
from propscan.outputs.report import render_html
from propscan.outputs.terminal import as_text
from propscan.ptc import Label, format_flc
from propscan.techniques import BY_ID


def to_json(analyses: list[Analysis]) -> str:
    """One Analysis -> its object; several -> a list of them."""
    if len(analyses) == 1:
        return analyses[0].to_json() + "\n"
    return json.dumps([a.to_dict() for a in analyses], ensure_ascii=False, indent=2) + "\n"


def to_jsonl(analyses: Iterable[Analysis]) -> str:
    return "".join(a.to_json(indent=None) + "\n" for a in analyses)


def to_semeval(analyses: Iterable[Analysis]) -> str:
    rows = (Label(a.document.id, s.start, s.end, s.technique) for a in analyses for s in a.spans)
    return "".join(format_flc(rows))


# A spreadsheet runs a cell that begins with one of these as a formula (OWASP "CSV injection"); such a
# text cell gets a leading apostrophe, which spreadsheets hide and other CSV readers keep visible.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: numbers pass, risky strings get a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(analyses: Iterable[Analysis], header: bool = True) -> str:
    # RFC 4180 line ends: with "\n" Python 3.11's writer would leave a field holding a bare "\r" unquoted
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    if header:
        w.writerow(["doc_id", "technique", "start", "end", "score", "text"])
    for a in analyses:
        for s in a.spans:
            w.writerow([csv_cell(a.document.id), s.technique, s.start, s.end, f"{s.score:.4f}", csv_cell(s.text_in(a.document))])
    return buf.getvalue()


_MD_NEWLINE = re.compile(r"\r\n|\r|\n")  # CommonMark line endings; any of them would end the table row


# Markdown syntax characters in document text: a backslash before each makes it literal (CommonMark
# lets any ASCII punctuation be escaped), so article text never becomes a link, an image, raw HTML,
# an entity, emphasis or a table cell break: ``[x](javascript:...)`` and ``![](http://...)`` stay text.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#!|&~])")


def _md_cell(text: str) -> str:
    """Document text as one line of literal Markdown that stays in its table cell."""
    return _MD_NEWLINE.sub(" ", _MD_SPECIAL.sub(r"\\\1", text))


def to_markdown(analyses: Iterable[Analysis]) -> str:
    out = []
    for a in analyses:
        title = a.document.metadata.get("title") or a.document.id
        out.append(f"## {_md_cell(str(title))}\n")
        out.append(
            f"Article score {a.score:.2f} (share of sentences with a detected technique); "
            f"{len(a.passages)} highlighted passages; model {a.model.name} {a.model.version}.\n"
        )
        if a.counts:
            out.append("| technique | spans |\n|---|---:|")
            out += [f"| {BY_ID[t].name} | {n} |" for t, n in a.counts.items()]
            out.append("")
        if a.spans:
            out.append("| start | end | technique | score | text |\n|---:|---:|---|---:|---|")
            out += [
                f"| {s.start} | {s.end} | {BY_ID[s.technique].name} | {s.score:.2f} | {_md_cell(s.text_in(a.document))} |"
                for s in a.spans
            ]
        out.append("")
    return "\n".join(out)


def _text(analyses: list[Analysis]) -> str:
    return "\n".join(as_text(a) for a in analyses)


def _html(analyses: list[Analysis]) -> str:
    return render_html(analyses)


@dataclass(frozen=True)
class Writer:
    """One output format: analyses to text, the media type the API serves it as, and whether it can be
    written document by document as a run goes (bounded memory on big corpora)."""

    write: Callable[[list[Analysis]], str]
    media_type: str
    streaming: bool = False


WRITERS: dict[str, Writer] = {
    "text": Writer(_text, "text/plain"),
    "json": Writer(to_json, "application/json"),
    "jsonl": Writer(to_jsonl, "application/x-ndjson", streaming=True),
    "semeval": Writer(to_semeval, "text/tab-separated-values", streaming=True),
    "csv": Writer(to_csv, "text/csv", streaming=True),
    "markdown": Writer(to_markdown, "text/markdown"),
    "html": Writer(_html, "text/html"),
}
FORMATS = tuple(WRITERS)
STREAMING = tuple(name for name, w in WRITERS.items() if w.streaming)
