"""Corpus charts and the static corpus site (``propscan corpus stats --plot`` and ``propscan corpus report``).

Charts: PNG/SVG through matplotlib (optional extra ``propscan[corpus]``, imported only when asked for),
or a self-contained HTML page whose charts are inline SVG drawn here (no plotting library, no external
requests).

Site: ``index.html`` (totals, techniques, outlets, trend), ``outlets/<outlet>.html``,
``techniques/<technique>.html`` (the most confident example spans with their context) and the per-article
reports, written with :func:`propscan.outputs.report.write_site` into ``articles/<outlet>/`` (one folder per
outlet, at most ``ARTICLE_CHUNK`` articles each, so memory stays bounded). Every page is
self-contained: no scripts, no external requests (a Content-Security-Policy of ``default-src 'none'``
enforces it); everything taken from the corpus is HTML-escaped by Jinja's autoescape.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

from propscan.atomic import atomic_write_text, problem
from propscan.corpus.database import CorpusError, missing_extra
from propscan.corpus.rows import (
    KEY_WHERE,
    NO_DATE,
    UNKNOWN_OUTLET,
    SetKey,
    key_params,
    load_analysis,
)
from propscan.corpus.stats import Group, Stats, base_groups, grouped, period, total
from propscan.errors import OutputError
from propscan.outputs.chart import technique_bar_chart
from propscan.outputs.report import make_env, safe_file_name, write_site
from propscan.pipeline.model import reliability
from propscan.techniques import BY_ID, TECHNIQUE_IDS, TECHNIQUES

# Okabe-Ito: colour-blind safe series colours (the overall line is drawn black and thicker)
SERIES = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#999933", "#882255")
MAX_SERIES = len(SERIES)  # outlets drawn as their own trend line; the rest only count in "all"
MAX_BARS = 30  # outlets in an outlet-comparison chart
ARTICLE_CHUNK = 1000  # articles per write_site call (per articles/<outlet>[-k]/ folder)
MAX_LISTED = 2000  # articles listed on an outlet page
CONTEXT = 120  # characters of context on each side of an example span
MAX_SPAN_SHOWN = 400
_T_INDEX = {t: i for i, t in enumerate(TECHNIQUE_IDS)}


@lru_cache(maxsize=1)
def _env() -> Environment:
    return make_env(pct=lambda x: f"{100 * x:.1f}%", num=lambda x: f"{x:,}")


def _render(name: str, **ctx: Any) -> str:
    return _env().get_template(name).render(
        techniques=[{"i": i, "id": t.id, "name": t.name, "colour": t.colour} for i, t in enumerate(TECHNIQUES)],
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        **ctx,
    )


def tech_name(t: str) -> str:
    return BY_ID[t].name if t in BY_ID else t


# ----------------------------------------------------------------------------------------------------------
# inline SVG charts


def _fmt(v: float) -> str:
    return f"{v:.1f}" if abs(v) < 100 else f"{v:,.0f}"


def svg_bars(items: list[tuple[str, float]], title: str, unit: str = "", chart_id: str = "bars", colour: str = "#0072B2") -> Markup:
    """Horizontal bars with their labels and values as text (colour is never the only cue)."""
    cid = escape(chart_id)
    if not items:
        return Markup('<p class="empty">Nothing to chart.</p>')
    row, label_w, bar_w, value_w = 22, 230, 320, 70
    width = label_w + bar_w + value_w
    height = row * len(items) + 6
    top = max(v for _, v in items) or 1.0
    desc = "; ".join(f"{k}: {_fmt(v)}{unit}" for k, v in items)
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="{cid}-t {cid}-d" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" style="max-width:{width}px">',
        f'<title id="{cid}-t">{escape(title)}</title><desc id="{cid}-d">{escape(desc)}</desc>',
    ]
    for k, (label, v) in enumerate(items):
        y = k * row + 3
        w = max(1.5, bar_w * v / top)
        short = label if len(label) <= 34 else label[:33] + "\u2026"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">{escape(short)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 7}" fill="{escape(colour)}" stroke="#222" stroke-width="0.5"/>'
            f'<text x="{label_w + w + 5:.1f}" y="{y + 14}" font-size="12">{escape(_fmt(v) + unit)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice_step(vmax: float, ticks: int = 4) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` intervals up to vmax."""
    import math

    raw = vmax / ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def svg_lines(x_labels: list[str], series: list[tuple[str, list[float | None], str]], title: str, y_label: str, chart_id: str = "lines") -> Markup:
    """A line chart over ``x_labels``; ``series`` are (name, values aligned with x_labels or None, colour)."""
    cid = escape(chart_id)
    if not x_labels or not series:
        return Markup('<p class="empty">No dated documents to chart.</p>')
    width, height = 760, 300
    left, right, top_pad, bottom = 56, 170, 14, 58
    pw, ph = width - left - right, height - top_pad - bottom
    step = _nice_step(max((v for _, vals, _ in series for v in vals if v is not None), default=0.0) or 1.0)
    vmax = step * 4
    while vmax < max((v for _, vals, _ in series for v in vals if v is not None), default=0.0):
        vmax += step
    n = len(x_labels)

    def x(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return top_pad + ph - ph * v / vmax

    desc = "; ".join(
        f"{name}: " + ", ".join(f"{x_labels[i]} {_fmt(v)}" for i, v in enumerate(vals) if v is not None)
        for name, vals, _ in series
    )
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="{cid}-t {cid}-d" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" style="max-width:{width}px">',
        f'<title id="{cid}-t">{escape(title)}</title><desc id="{cid}-d">{escape(desc)}</desc>',
        f'<line x1="{left}" y1="{top_pad + ph}" x2="{left + pw}" y2="{top_pad + ph}" stroke="#444"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + ph}" stroke="#444"/>',
    ]
    for k in range(round(vmax / step) + 1):
        v = step * k
        parts.append(
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + pw}" y2="{y(v):.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:g}</text>'
        )
    xstep = max(1, -(-n // 12))
    for i in range(0, n, xstep):
        parts.append(
            f'<text x="{x(i):.1f}" y="{top_pad + ph + 16}" text-anchor="end" font-size="11" '
            f'transform="rotate(-35 {x(i):.1f} {top_pad + ph + 16})">{escape(x_labels[i])}</text>'
        )
    parts.append(
        f'<text x="14" y="{top_pad + ph / 2:.1f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {top_pad + ph / 2:.1f})">{escape(y_label)}</text>'
    )
    dashes = ("", "6 3", "2 3", "8 3 2 3")
    for k, (name, vals, colour) in enumerate(series):
        dash = "" if k == 0 else dashes[k % len(dashes)]
        pts = [(x(i), y(v)) for i, v in enumerate(vals) if v is not None]
        if not pts:
            continue
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        sw = 3 if k == 0 else 2
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{escape(colour)}" stroke-width="{sw}"'
            + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
        )
        for px, py in pts:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{escape(colour)}"/>')
        ly = top_pad + 12 + 18 * k
        short = name if len(name) <= 20 else name[:19] + "\u2026"
        parts.append(
            f'<line x1="{left + pw + 12}" y1="{ly - 4}" x2="{left + pw + 34}" y2="{ly - 4}" stroke="{escape(colour)}" stroke-width="{sw}"'
            + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
            f'<text x="{left + pw + 40}" y="{ly}" font-size="12">{escape(short)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# ----------------------------------------------------------------------------------------------------------
# trend data (shared by the matplotlib plot, the HTML plot and the site)


@dataclass
class Trend:
    periods: list[str]
    series: list[tuple[str, list[Group | None]]]  # "all" first, then the biggest outlets


def trend_from_stats(st: Stats) -> Trend:
    periods = [g.key for g in st.groups if g.key != NO_DATE]
    series: list[tuple[str, list[Group | None]]] = [("all", [g for g in st.groups if g.key != NO_DATE])]
    docs = Counter()
    for (outlet, p), g in st.by_outlet_period.items():
        if p != NO_DATE:
            docs[outlet] += g.documents
    outlets = [o for o, _ in docs.most_common()]
    if len(outlets) > 1:
        for o in outlets[: MAX_SERIES - 1]:
            series.append((o, [st.by_outlet_period.get((o, p)) for p in periods]))
    return Trend(periods, series)


def _period_start(p: str, by: str) -> dt.date:
    if by == "day":
        return dt.date.fromisoformat(p)
    if by == "month":
        return dt.date.fromisoformat(p + "-01")
    year, week = p.split("-W")
    return dt.date.fromisocalendar(int(year), int(week), 1)


def _metric(g: Group | None, which: str) -> float | None:
    if g is None or not g.documents:
        return None
    return g.spans_per_1k_words if which == "rate" else 100 * g.share_sentences


def _chart_title(st: Stats) -> str:
    what = tech_name(st.technique) if st.technique else "all techniques"
    return f"propscan: {what}, by {st.by} ({st.key.label()})"


def write_plot(st: Stats, path: Path) -> Path:
    """A trend chart (by day/week/month) or an outlet comparison (by outlet): .png/.svg via matplotlib,
    .html as a self-contained page with inline SVG."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".html":
        atomic_write_text(path, stats_page(st))
        return path
    if suffix not in (".png", ".svg"):
        raise CorpusError(f"--plot: {path.name}: choose a .png, .svg or .html file")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        raise missing_extra("matplotlib", "corpus", "--plot .png/.svg") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    if st.by == "outlet":
        groups = [g for g in st.groups if g.documents][:MAX_BARS]
        groups.sort(key=lambda g: g.spans_per_1k_words)
        fig, axes = plt.subplots(1, 2, figsize=(11, 1.2 + 0.34 * max(len(groups), 3)), sharey=True, layout="constrained")
        names = [g.key if len(g.key) <= 32 else g.key[:31] + "\u2026" for g in groups]
        for ax, which, label, colour in (
            (axes[0], "rate", "spans per 1,000 words", "#0072B2"),
            (axes[1], "share", "% of sentences with a technique", "#E69F00"),
        ):
            vals = [_metric(g, which) or 0.0 for g in groups]
            bars = ax.barh(names, vals, color=colour, edgecolor="#222", linewidth=0.5)
            ax.bar_label(bars, labels=[f"{v:.1f}" for v in vals], padding=3, fontsize=9)
            ax.set_xlabel(label)
            ax.set_xlim(0, (max(vals) if vals else 1) * 1.18 or 1)
            ax.grid(axis="x", color="#ddd")
            ax.set_axisbelow(True)
        axes[0].set_ylabel("outlet")
    else:
        trend = trend_from_stats(st)
        if not trend.periods:
            raise CorpusError("--plot: no dated documents to draw a trend of (their dates are unknown)")
        xs = [_period_start(p, st.by) for p in trend.periods]
        fig, axes = plt.subplots(2, 1, figsize=(11, 7), sharex=True, layout="constrained")
        for ax, which, label in ((axes[0], "rate", "spans per 1,000 words"), (axes[1], "share", "% of sentences with a technique")):
            for k, (name, groups) in enumerate(trend.series):
                pts = [(x, _metric(g, which)) for x, g in zip(xs, groups)]
                pts = [(x, v) for x, v in pts if v is not None]
                if not pts:
                    continue
                style = dict(color="#111", linewidth=2.6, marker="o", markersize=4, zorder=3) if k == 0 else dict(
                    color=SERIES[(k - 1) % len(SERIES)], linewidth=1.5, marker="o", markersize=3,
                    linestyle=("-", "--", ":", "-.")[k % 4],
                )
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name, **style)
            ax.set_ylabel(label)
            ax.set_ylim(bottom=0)
            ax.grid(color="#ddd")
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
        if st.by == "month":
            months = (xs[-1].year - xs[0].year) * 12 + xs[-1].month - xs[0].month + 1
            axes[1].xaxis.set_major_locator(mdates.MonthLocator(interval=max(1, -(-months // 12))))
            axes[1].xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))
        else:
            loc = mdates.AutoDateLocator(maxticks=12)
            axes[1].xaxis.set_major_locator(loc)
            axes[1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
        axes[1].set_xlabel(st.by)
    fig.suptitle(_chart_title(st), fontsize=12)
    tmp = path.with_name(f".{path.name}.tmp{suffix}")
    try:
        fig.savefig(tmp, dpi=110, format=suffix[1:])
        tmp.replace(path)
    except OSError as e:  # matplotlib's write error names no file: name the chart's
        raise OutputError(path, problem(e)) from None
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def _table_rows(groups: list[Group]) -> list[dict[str, Any]]:
    return [
        {
            "key": g.key, "documents": g.documents, "words": g.words, "spans": g.spans, "rate": g.spans_per_1k_words,
            "share": g.share_sentences,
            "top": [{"i": _T_INDEX.get(t), "name": tech_name(t), "n": n} for t, n in g.top()],
        }
        for g in groups
    ]


def stats_charts(st: Stats) -> list[tuple[str, Markup]]:
    """(heading, inline SVG) pairs: outlet comparison bars, or trend lines over the periods that have documents."""
    rate = "Spans per 1,000 words"
    share = "Share of sentences with a technique" if not st.technique else f"Share of sentences with {tech_name(st.technique).lower()}"
    if st.by == "outlet":
        groups = [g for g in st.groups if g.documents][:MAX_BARS]
        return [
            (rate, svg_bars([(g.key, g.spans_per_1k_words) for g in groups], f"{rate}, by outlet", chart_id="c-rate")),
            (share, svg_bars([(g.key, 100 * g.share_sentences) for g in groups], f"{share}, by outlet", "%", "c-share", "#E69F00")),
        ]
    trend = trend_from_stats(st)
    out = []
    for which, title, label in (("rate", rate, "spans / 1k words"), ("share", share, "% sentences")):
        series = [
            (name, [_metric(g, which) for g in groups], "#111" if k == 0 else SERIES[(k - 1) % len(SERIES)])
            for k, (name, groups) in enumerate(trend.series)
        ]
        out.append((title, svg_lines(trend.periods, series, f"{title}, by {st.by}", label, chart_id=f"c-{which}")))
    return out


def stats_page(st: Stats) -> str:
    return _render(
        "corpus_stats.html",
        title=_chart_title(st),
        key=st.key,
        st=st,
        charts=stats_charts(st),
        rows=_table_rows(st.groups),
        total=_table_rows([st.total])[0],
        technique=tech_name(st.technique) if st.technique else None,
    )


# ----------------------------------------------------------------------------------------------------------
# the site


def _slugger():
    taken: set[str] = set()
    return lambda name: safe_file_name(name, taken)


def _auto_period(conn: sqlite3.Connection, key: SetKey) -> str:
    lo, hi = conn.execute(
        f"SELECT MIN(d.date), MAX(d.date) FROM analyses a JOIN documents d ON d.id = a.document_id WHERE {KEY_WHERE}",
        key_params(key),
    ).fetchone()
    if not lo:
        return "month"
    days = (dt.date.fromisoformat(hi) - dt.date.fromisoformat(lo)).days
    return "month" if days > 120 else "week" if days > 21 else "day"


def _trend_chart(base, by: str, chart_id: str, outlets: bool = True) -> Markup:
    groups = grouped(base, by)
    per: dict[tuple[str, str], Group] = {}
    for outlet, date, g in base:
        k = (outlet if outlet is not None else UNKNOWN_OUTLET, period(date, by))
        per.setdefault(k, Group(k[1])).add(g)
    st = Stats(SetKey("", "", None), by, None, groups, total(base), per if outlets else {})
    trend = trend_from_stats(st)
    series = [
        (name, [_metric(g, "rate") for g in gs], "#111" if k == 0 else SERIES[(k - 1) % len(SERIES)])
        for k, (name, gs) in enumerate(trend.series)
    ]
    return svg_lines(trend.periods, series, f"Spans per 1,000 words, by {by}", "spans / 1k words", chart_id=chart_id)


def _snippet(text: str, start: int, end: int) -> dict[str, str]:
    left = text[max(0, start - CONTEXT) : start]
    if start > CONTEXT and " " in left:
        left = "\u2026" + left[left.index(" ") + 1 :]
    right = text[end : end + CONTEXT]
    if end + CONTEXT < len(text) and " " in right:
        right = right[: right.rindex(" ")] + "\u2026"
    mark = text[start:end]
    if len(mark) > MAX_SPAN_SHOWN:
        mark = mark[: MAX_SPAN_SHOWN - 1] + "\u2026"
    return {"left": left.replace("\n", " "), "mark": mark.replace("\n", " "), "right": right.replace("\n", " ")}


def write_corpus_site(
    conn: sqlite3.Connection, out_dir: Path, key: SetKey, *, examples: int = 20, articles: bool = True
) -> Path:
    """Write the site for one analysis set; returns the path of ``index.html``. Files are written atomically."""
    out_dir = Path(out_dir)
    params = key_params(key)
    base = base_groups(conn, key)
    outlets = [g for g in grouped(base, "outlet")]
    overall = total(base)
    by = _auto_period(conn, key)
    outlet_slug = _slugger()
    outlet_href = {g.key: f"outlets/{outlet_slug(g.key)}.html" for g in outlets}
    tech_slug = _slugger()
    tech_href = {t: f"techniques/{tech_slug(t)}.html" for t in TECHNIQUE_IDS}

    # per-article reports: one write_site folder per outlet (chunked), bounded memory
    article_href: dict[int, str] = {}
    article_rows: dict[str, list[dict[str, Any]]] = {}
    folder_slug = _slugger()
    for g in outlets:
        cond = "d.outlet IS NULL" if g.key == UNKNOWN_OUTLET else "d.outlet = ?"
        rows = conn.execute(
            "SELECT a.id, d.doc_id, d.title, d.date, a.score, a.n_spans FROM analyses a JOIN documents d ON d.id = a.document_id"
            f" WHERE {KEY_WHERE} AND {cond} ORDER BY d.date IS NULL, d.date DESC, d.doc_id, a.id",
            params + (() if g.key == UNKNOWN_OUTLET else (g.key,)),
        ).fetchall()
        listed = []
        for k in range(0, len(rows), ARTICLE_CHUNK):
            chunk = rows[k : k + ARTICLE_CHUNK]
            if articles:
                folder = folder_slug(g.key if k == 0 else f"{g.key}-{k // ARTICLE_CHUNK + 1}")
                analyses = [load_analysis(conn, r[0]) for r in chunk]
                try:
                    write_site(analyses, out_dir / "articles" / folder)
                except CorpusError:
                    raise
                except Exception as e:  # a report problem names the article set, not a traceback
                    raise CorpusError(f"writing the article reports of {g.key!r}: {e}") from e
                page_names = _slugger()  # the names write_site gave, in the same order
                for r, a in zip(chunk, analyses):
                    href = f"articles/{folder}/{page_names(a.document.id)}.html"
                    if (out_dir / href).is_file():
                        article_href[r[0]] = href
                del analyses
            for r in chunk:
                if len(listed) < MAX_LISTED:
                    listed.append({"id": r[0], "doc_id": r[1], "title": r[2] or r[1], "date": r[3] or "", "score": r[4], "n_spans": r[5]})
        article_rows[g.key] = listed

    # technique summary
    tech_rows = []
    by_tech = {
        t: (n, docs, mean)
        for t, n, docs, mean in conn.execute(
            "SELECT s.technique, COUNT(*), COUNT(DISTINCT s.analysis_id), AVG(s.score) FROM spans s"
            f" JOIN analyses a ON a.id = s.analysis_id WHERE {KEY_WHERE} GROUP BY s.technique",
            params,
        )
    }
    for t in TECHNIQUE_IDS:
        n, docs, mean = by_tech.get(t, (0, 0, None))
        tech_rows.append({
            "id": t, "i": _T_INDEX[t], "name": tech_name(t), "href": tech_href[t], "spans": n, "documents": docs,
            "rate": 1000.0 * n / overall.words if overall.words else 0.0, "mean": mean,
        })
    tech_rows.sort(key=lambda r: -r["spans"])

    failures = conn.execute("SELECT source, doc_id, error, at FROM failures ORDER BY id LIMIT 200").fetchall()
    n_failures = conn.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
    dates = conn.execute(
        f"SELECT MIN(d.date), MAX(d.date) FROM analyses a JOIN documents d ON d.id = a.document_id WHERE {KEY_WHERE}", params
    ).fetchone()

    def outlet_row(g: Group) -> dict[str, Any]:
        row = _table_rows([g])[0]
        row["href"] = outlet_href[g.key]
        return row

    # index
    atomic_write_text(
        out_dir / "index.html",
        _render(
            "corpus_index.html",
            title="propscan corpus report",
            root="",
            key=key,
            total=_table_rows([overall])[0],
            dates=dates,
            outlets=[outlet_row(g) for g in outlets],
            tech_rows=tech_rows,
            profile=technique_bar_chart(dict(overall.techniques), chart_id="profile"),
            outlet_chart=svg_bars([(g.key, g.spans_per_1k_words) for g in outlets if g.documents][:MAX_BARS], "Spans per 1,000 words, by outlet", chart_id="outlets"),
            trend=_trend_chart(base, by, "trend"),
            by=by,
            failures=[dict(zip(("source", "doc_id", "error", "at"), f)) for f in failures],
            n_failures=n_failures,
        ),
    )

    # outlet pages
    for g in outlets:
        mine = [(o, d, gg) for o, d, gg in base if (o if o is not None else UNKNOWN_OUTLET) == g.key]
        rows = [dict(r, href=article_href.get(r["id"])) for r in article_rows[g.key]]
        atomic_write_text(
            out_dir / outlet_href[g.key],
            _render(
                "corpus_outlet.html",
                title=f"{g.key}: propscan corpus report",
                root="../",
                key=key,
                outlet=g.key,
                stats=_table_rows([g])[0],
                profile=technique_bar_chart(dict(g.techniques), chart_id="profile"),
                trend=_trend_chart(mine, by, "trend", outlets=False),
                by=by,
                articles=rows,
                more=g.documents - len(rows),
                tech_href=tech_href,
            ),
        )

    # technique pages
    words_by_outlet = {g.key: g for g in outlets}
    for t in TECHNIQUE_IDS:
        found = conn.execute(
            'SELECT a.id, d.doc_id, d.title, d.outlet, d.date, d.sha256, s.start, s."end", s.score, d.text'
            " FROM spans s JOIN analyses a ON a.id = s.analysis_id JOIN documents d ON d.id = a.document_id"
            f" WHERE s.technique = ? AND {KEY_WHERE} ORDER BY s.score DESC, d.doc_id, s.start LIMIT ?",
            (t, *params, examples * 4),
        ).fetchall()
        seen: set[tuple] = set()
        shown = []
        for aid, doc_id, title, outlet, date, sha, start, end, score, text in found:
            if (sha, start, end) in seen:
                continue  # the same text under another id (syndicated copies)
            seen.add((sha, start, end))
            shown.append({
                "doc_id": doc_id, "title": title or doc_id, "outlet": outlet or UNKNOWN_OUTLET, "date": date or "",
                "score": score, "href": article_href.get(aid), "outlet_href": outlet_href.get(outlet or UNKNOWN_OUTLET),
                **_snippet(text, start, end),
            })
            if len(shown) >= examples:
                break
        per_outlet = [
            {"outlet": g.key, "href": outlet_href[g.key], "spans": g.techniques.get(t, 0),
             "rate": 1000.0 * g.techniques.get(t, 0) / g.words if g.words else 0.0}
            for g in words_by_outlet.values()
        ]
        per_outlet.sort(key=lambda r: -r["rate"])
        atomic_write_text(
            out_dir / tech_href[t],
            _render(
                "corpus_technique.html",
                title=f"{tech_name(t)}: propscan corpus report",
                root="../",
                key=key,
                tech=BY_ID[t],
                i=_T_INDEX[t],
                reliability=reliability(key.model_name, key.model_version).get(t),
                summary=next(r for r in tech_rows if r["id"] == t),
                examples=shown,
                per_outlet=per_outlet,
            ),
        )
    return out_dir / "index.html"
