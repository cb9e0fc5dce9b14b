"""HTML reports: one self-contained file per analysis (or several analyses on one page), and a small
static site (``index.html`` + one page per document) for many documents.

The page has no external requests (no CDN, fonts or images; a Content-Security-Policy with
``default-src 'none'`` enforces it) and works offline from ``file://``. Everything taken from the
document (text, id, metadata) is HTML-escaped by Jinja's autoescape or ``markupsafe.escape``; the span
data the script needs travels in a ``<script type="application/json">`` block with ``<``, ``>`` and ``&``
written as ``\\u003c`` etc., so no ``</script>`` can end it early.

Overlapping spans: the text is split into segments at every span boundary; each segment is wrapped in
one ``<mark class="sp">`` per span covering it, nested in a fixed order. Each span gets a *lane* (an
interval-colouring slot), and lane k draws its underline k steps further below the text, so nested and
crossing spans stay readable. The first fragment of each span (``data-h``) is its keyboard stop.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import itertools
import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

from jinja2 import Environment, PackageLoader
from markupsafe import Markup, escape

from propscan.atomic import atomic_write_text
from propscan.document import Analysis, Span, headline, sentence_hits
from propscan.errors import InputError
from propscan.outputs.chart import technique_bar_chart
from propscan.pipeline.model import reliability
from propscan.techniques import BY_ID, TECHNIQUE_IDS, TECHNIQUES

# Underline style per technique (cycled over the inventory order), so colour is never the only cue.
UNDERLINE_STYLES = ("solid", "dashed", "dotted", "double")
MAX_LANE = 5  # lanes deeper than this share the last offset (never seen in practice)
# At most this many marks wrap one piece of text; further enclosing passages are not drawn there.
# Without a bound, n nested spans made a page of size n^2 (/v1/report: 0.68 MB in, 825 MB out).
MAX_NESTED = 8
STRIP_CELLS = 120  # longer documents bin consecutive sentences into this many cells
TOP_TECHNIQUES = 3
MAX_ALTERNATIVES = 3
# a tooltip shows at most this many of a span's words with their weights (long spans are sentences)
MAX_EVIDENCE_WORDS = 40
# Paul Tol's sequential YlOrBr scheme (colour-blind safe, prints in greyscale as a lightness ramp).
HEAT = ("#FFFFE5", "#FFF7BC", "#FEE391", "#FEC44F", "#FB9A29", "#EC7014", "#CC4C02", "#993404", "#662506")
TIP_ID = "ps-tip"
_T_INDEX = {t: i for i, t in enumerate(TECHNIQUE_IDS)}


def make_env(**filters: Callable[[Any], str]) -> Environment:
    """A Jinja environment over the package's templates, with ``f2`` and the given filters."""
    env = Environment(
        loader=PackageLoader("propscan", "templates"),
        autoescape=True,  # every {{ }} is HTML-escaped unless it is Markup we built ourselves
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["f2"] = lambda x: f"{x:.2f}"
    env.filters.update(filters)
    return env


@lru_cache(maxsize=1)
def template_env() -> Environment:
    """The environment of reports and the web page."""
    return make_env(pct=lambda x: f"{100 * x:.0f}%")


def _inline_asset(name: str, **ctx: Any) -> str:
    text = template_env().get_template(name).render(**ctx)
    closing = "</script" if name.endswith(".js") else "</style"
    assert closing not in text.lower(), f"{name} must not contain {closing}"
    return text


@lru_cache(maxsize=1)
def page_assets() -> dict[str, Any]:
    techniques = [
        {"i": i, "id": t.id, "name": t.name, "colour": t.colour, "style": UNDERLINE_STYLES[i % len(UNDERLINE_STYLES)]}
        for i, t in enumerate(TECHNIQUES)
    ]
    css = _inline_asset("report.css", techniques=techniques, max_lane=MAX_LANE)
    report_js = _inline_asset("report.js")
    index_js = _inline_asset("index.js")
    tech_json = script_json(
        [[t.name, t.definition, t.example, t.colour, UNDERLINE_STYLES[i % len(UNDERLINE_STYLES)]] for i, t in enumerate(TECHNIQUES)]
    )
    return {
        "techniques": techniques,
        "css": Markup(css),
        "report_js": Markup(report_js),
        "report_js_hash": csp_hash(report_js),
        "index_js": Markup(index_js),
        "index_js_hash": csp_hash(index_js),
        "tech_json": tech_json,
    }


def csp_hash(script: str) -> Markup:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return Markup(f"'sha256-{digest}'")  # base64 only: safe in an attribute


def script_json(value: Any) -> Markup:
    """JSON safe to place inside ``<script type="application/json">``: no ``</``, ``<!--`` or ``]]>``."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # < > & only occur inside JSON strings, where \\u escapes are valid; U+2028/9 for old JS parsers
    text = (
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )
    return Markup(text)


# ---------------------------------------------------------------------------------------------------
# one report


@dataclass
class _Bin:
    k: int
    first: int  # sentence numbers (0-based, in text order)
    last: int
    start: int  # offsets
    end: int
    score: float  # highest sentence score in the bin
    hit: bool  # a detected span overlaps one of its sentences


def validate_analysis(a: Analysis) -> None:
    n = len(a.document.text)
    for i, s in enumerate(a.spans):
        if s.technique not in BY_ID:
            raise InputError(a.document.id, f"span {i} has an unknown technique {s.technique!r}")
        if not (0 <= s.start < s.end <= n):
            raise InputError(a.document.id, f"span {i} ({s.start}-{s.end}) is outside the text ({n} characters)")


def assign_lanes(spans: list[tuple[int, int]]) -> list[int]:
    """Greedy interval colouring: each span gets the lowest lane free at its start. O(n log n)."""
    lanes = [0] * len(spans)
    busy: list[tuple[int, int]] = []  # (end, lane) of spans still open
    free: list[int] = []
    next_lane = 0
    for i in sorted(range(len(spans)), key=lambda i: (spans[i][0], -spans[i][1])):
        start, end = spans[i]
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, next_lane = next_lane, next_lane + 1
        lanes[i] = lane
        heapq.heappush(busy, (end, lane))
    return lanes


def _bins(a: Analysis, n_cells: int = STRIP_CELLS) -> list[_Bin]:
    n = len(a.document.text)
    sents = sorted(
        ((max(0, min(s.start, n)), max(0, min(s.end, n)), s.score) for s in a.sentences), key=lambda x: (x[0], x[1])
    )
    sents = [s for s in sents if s[1] > s[0]]
    if not sents:
        return []
    hits = sentence_hits([(s, e) for s, e, _ in sents], [(s.start, s.end) for s in a.spans])
    size = -(-len(sents) // n_cells)  # ceil
    bins = []
    for k, first in enumerate(range(0, len(sents), size)):
        last = min(first + size, len(sents)) - 1
        chunk = sents[first : last + 1]
        bins.append(
            _Bin(k, first, last, chunk[0][0], max(e for _, e, _ in chunk), max(sc for _, _, sc in chunk), any(hits[first : last + 1]))
        )
    return bins


def _heat(score: float) -> str:
    return HEAT[max(0, min(len(HEAT) - 1, round(score * (len(HEAT) - 1))))]


def _bin_label(b: _Bin) -> str:
    which = f"Sentence {b.first + 1}" if b.first == b.last else f"Sentences {b.first + 1}\u2013{b.last + 1}"
    found = "contains a detected technique" if b.hit else "no detected technique"
    return f"{which}: highest token confidence {b.score:.2f}; {found}"


def article_html(a: Analysis, rid: str, bins: list[_Bin] = (), passages: list[list[Span]] | None = None) -> Markup:
    """The document text as HTML: spans as nested ``<mark>`` fragments, sentence-bin anchors.

    Built with one list and one join (linear in the text plus the number of segments). ``passages``:
    ``a.passages``, when the caller has them already.
    """
    text = a.document.text
    spans = a.spans
    # one highlight per passage (Analysis.passages): a range flagged with several techniques is one
    # <mark> whose data-i lists every span on it (the most confident first, whose technique styles it)
    index = {id(s): i for i, s in enumerate(spans)}
    marks = [[index[id(s)] for s in p] for p in (a.passages if passages is None else passages)]
    lanes = assign_lanes([(spans[ids[0]].start, spans[ids[0]].end) for ids in marks])
    starts: dict[int, list[int]] = defaultdict(list)
    ends: dict[int, list[int]] = defaultdict(list)
    for m, ids in enumerate(marks):
        starts[spans[ids[0]].start].append(m)
        ends[spans[ids[0]].end].append(m)
    markers: dict[int, list[str]] = defaultdict(list)
    for b in bins:  # end anchors first, so at a shared offset bin k-1 closes before bin k opens
        markers[b.end].append(f'<span class="se" id="{rid}-e{b.k}"></span>')
    for b in bins:
        markers[b.start].append(f'<span class="sa" id="{rid}-s{b.k}" tabindex="-1"></span>')
    # text that cleaning removed before the model read it: shown struck through and grey (toggleable)
    removed = sorted((int(r["start"]), int(r["end"]), str(r.get("reason") or r.get("kind") or ""))
                     for r in a.removed if 0 <= int(r["start"]) < int(r["end"]) <= len(text))
    cut_at = {x for r in removed for x in r[:2]}
    bounds = sorted({0, len(text), *starts, *ends, *markers, *cut_at})
    rm_i = 0
    opening = [
        f'<mark class="sp t{_T_INDEX[spans[ids[0]].technique]} l{min(lanes[m], MAX_LANE)}" data-i="{" ".join(map(str, ids))}"'
        for m, ids in enumerate(marks)
    ]
    head_attrs = f' data-h="" tabindex="0" aria-describedby="{TIP_ID}">'
    active: dict[int, int] = {}  # span index -> lane
    out: list[str] = []
    for k, b in enumerate(bounds):
        for i in ends.get(b, ()):
            del active[i]
        if b in markers:
            out.append("".join(markers[b]))
        for i in starts.get(b, ()):
            active[i] = lanes[i]
        if k + 1 == len(bounds):
            break
        seg = escape(text[b : bounds[k + 1]])
        while rm_i < len(removed) and removed[rm_i][1] <= b:
            rm_i += 1
        if rm_i < len(removed) and removed[rm_i][0] <= b:
            seg = Markup('<span class="rm" title="removed before analysis: {}">{}</span>').format(removed[rm_i][2], seg)
        if not active:
            out.append(seg)
            continue
        if len(active) > MAX_NESTED:
            # deep nesting: only the innermost marks (the latest opened: active keeps opening order), so
            # the page and the work stay linear in the text plus the spans
            order = sorted(itertools.islice(reversed(active), MAX_NESTED), key=active.__getitem__)
        else:
            order = sorted(active, key=active.__getitem__) if len(active) > 1 else list(active)
        for i in order:
            out.append(opening[i])
            out.append(head_attrs if spans[marks[i][0]].start == b else ">")
        out.append(seg)
        out.append("</mark>" * len(order))
    return Markup("".join(out))


def _span_data(a: Analysis) -> Markup:
    rows = []
    for s in a.spans:
        alts = sorted(
            ((_T_INDEX[t], round(p, 2)) for t, p in s.alternatives.items() if t in _T_INDEX and t != s.technique),
            key=lambda x: -x[1],
        )[:MAX_ALTERNATIVES]
        words = [[a.document.text[ws:we], round(float(w), 2)] for ws, we, w in s.evidence[:MAX_EVIDENCE_WORDS]
                 if s.start <= ws < we <= s.end]
        rows.append([_T_INDEX[s.technique], round(s.score, 4), [list(x) for x in alts], words])
    return script_json({"spans": rows})


def _metadata_items(meta: dict[str, Any]) -> list[tuple[str, str]]:
    items = []
    for k, v in meta.items():
        if k == "title" or isinstance(v, (dict, list)) or v is None:
            continue
        v = str(v)
        items.append((str(k)[:40], v if len(v) <= 200 else v[:199] + "\u2026"))
    return items[:8]


def _context(a: Analysis, rid: str, heading: int) -> dict[str, Any]:
    validate_analysis(a)
    doc = a.document
    title = doc.metadata.get("title") or headline(doc.text) or doc.id
    bins = _bins(a)
    counts = a.counts
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    n_sent = sum(b.last - b.first + 1 for b in bins)
    hit_sent = sum(sentence_hits([(s.start, s.end) for s in a.sentences], [(s.start, s.end) for s in a.spans]))
    passages = a.passages
    lanes_needed = 0
    if passages:
        lanes_needed = min(MAX_LANE, max(assign_lanes([(p[0].start, p[0].end) for p in passages])))
    rel = reliability(a.model.name, a.model.version)
    return {
        "rid": rid,
        "h": heading,
        "title": str(title),
        "doc_id": doc.id,
        "show_id": str(title) != doc.id,
        "metadata": _metadata_items(doc.metadata),
        "model": a.model,
        "threshold": a.threshold,
        "score": a.score,
        "n_sentences": len(a.sentences),
        "n_sentences_hit": hit_sent,
        "threshold_for": {BY_ID[t].name: v for t, v in a.threshold_for.items()},
        "warnings": list(a.warnings),
        "n_removed": len(a.removed),
        "n_spans": len(a.spans),
        "n_passages": len(passages),
        "n_chars": len(doc.text),
        "legend": [
            {"i": _T_INDEX[t], "name": BY_ID[t].name, "count": n, "id": t, "reliability": rel.get(t, {}).get("words")}
            for t, n in counts.items()
        ],
        "top": [{"i": _T_INDEX[t], "name": BY_ID[t].name, "count": n} for t, n in ranked[:TOP_TECHNIQUES]],
        "chart": technique_bar_chart(counts, chart_id=f"{rid}-chart"),
        "cells": [
            {"k": b.k, "colour": _heat(b.score), "hit": b.hit, "label": _bin_label(b)} for b in bins
        ],
        "binned": bool(bins) and n_sent > len(bins),
        "lanes": lanes_needed,
        "body": article_html(a, rid, bins, passages),
        "data": _span_data(a),
    }


def _page(analyses: list[Analysis], back_href: str | None = None) -> str:
    assets = page_assets()
    multi = len(analyses) > 1
    reports = [_context(a, f"r{k}", 2 if multi else 1) for k, a in enumerate(analyses)]
    if len(analyses) == 1:
        page_title = f"propscan report: {reports[0]['title']}"
    else:
        page_title = f"propscan report: {len(analyses)} documents"
    return template_env().get_template("report.html").render(
        page_title=page_title,
        multi=multi,
        reports=reports,
        back_href=back_href,
        heat=HEAT,
        tip_id=TIP_ID,
        **assets,
    )


def render_html(analyses: list[Analysis]) -> str:
    """One self-contained HTML page: one analysis -> its report; several -> all reports one after another."""
    return _page(list(analyses))


# ---------------------------------------------------------------------------------------------------
# many documents: index.html + one page each

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10)), "index"}


def safe_file_name(doc_id: str, taken: set[str]) -> str:
    """A portable file stem for a document id (ASCII letters, digits, ``._-``), unique in ``taken``.

    Uniqueness is case-insensitive (macOS/Windows file systems); ``taken`` is updated.
    """
    ascii_id = unicodedata.normalize("NFKD", doc_id).encode("ascii", "ignore").decode("ascii")
    base = _UNSAFE.sub("-", ascii_id).strip(".-_")[:80].rstrip(".-_") or "document"
    if base.split(".")[0].lower() in _RESERVED:
        base = f"doc-{base}"
    name, n = base, 2
    while name.lower() in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name.lower())
    return name


def write_site(analyses: Iterable[Analysis], out_dir: Path) -> Path:
    """Write ``index.html`` (a sortable table of the documents) and one report page per document.

    Every file is written atomically. Returns the path of ``index.html``.
    """
    out_dir = Path(out_dir)
    analyses = list(analyses)
    taken: set[str] = set()
    rows = []
    for a in analyses:
        validate_analysis(a)
        name = safe_file_name(a.document.id, taken) + ".html"
        atomic_write_text(out_dir / name, _page([a], back_href="index.html"))
        counts = a.counts
        top = max(counts.items(), key=lambda kv: kv[1]) if counts else None  # first of the ties
        rows.append(
            {
                "href": name,
                "title": str(a.document.metadata.get("title") or headline(a.document.text) or a.document.id),
                "doc_id": a.document.id,
                "score": a.score,
                "n_spans": len(a.spans),
                "top": BY_ID[top[0]].name if top else "",
                "top_i": _T_INDEX[top[0]] if top else None,
                "top_n": top[1] if top else 0,
            }
        )
    assets = page_assets()
    index = template_env().get_template("index.html").render(rows=rows, **assets)
    path = out_dir / "index.html"
    atomic_write_text(path, index)
    return path
