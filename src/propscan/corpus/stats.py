"""Corpus statistics: documents, passages and techniques per outlet and period, for one analysis set."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from propscan.corpus.database import CorpusError
from propscan.corpus.rows import (
    KEY_WHERE,
    NO_DATE,
    UNKNOWN_OUTLET,
    SetKey,
    choose_set,
    key_params,
)
from propscan.techniques import BY_ID, TECHNIQUE_IDS, resolve

GROUPINGS = ("outlet", "day", "week", "month")


TOP_TECHNIQUES = 3


@dataclass
class Group:
    key: str
    documents: int = 0
    words: int = 0
    sentences: int = 0
    sentences_hit: int = 0
    spans: int = 0
    techniques: Counter = field(default_factory=Counter)

    def add(self, other: Group) -> None:
        self.documents += other.documents
        self.words += other.words
        self.sentences += other.sentences
        self.sentences_hit += other.sentences_hit
        self.spans += other.spans
        self.techniques.update(other.techniques)

    @property
    def spans_per_1k_words(self) -> float:
        return 1000.0 * self.spans / self.words if self.words else 0.0

    @property
    def share_sentences(self) -> float:
        return self.sentences_hit / self.sentences if self.sentences else 0.0

    def top(self, n: int = TOP_TECHNIQUES) -> list[tuple[str, int]]:
        order = {t: i for i, t in enumerate(TECHNIQUE_IDS)}
        return sorted(self.techniques.items(), key=lambda kv: (-kv[1], order.get(kv[0], 99)))[:n]

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.key,
            "documents": self.documents,
            "words": self.words,
            "spans": self.spans,
            "spans_per_1k_words": round(self.spans_per_1k_words, 6),
            "sentences": self.sentences,
            "sentences_with_technique": self.sentences_hit,
            "share_sentences_with_technique": round(self.share_sentences, 6),
            "top_techniques": [
                {"technique": t, "name": BY_ID[t].name if t in BY_ID else t, "spans": n} for t, n in self.top()
            ],
            "techniques": dict(self.techniques),
        }


def technique_id(name: str) -> str:
    """A technique id from an id, a name or an alias (``Loaded_Language``, ``loaded language``, ...)."""
    try:
        return resolve(name)
    except ValueError:
        raise CorpusError(f"--technique: unknown technique {name!r}; see propscan techniques") from None


def base_groups(conn: sqlite3.Connection, key: SetKey, technique: str | None = None,
                by_language: bool = False) -> list[tuple[str | None, str | None, Group]]:
    """Sums per (outlet, date) for one analysis set: the building block of every grouping.
    ``by_language``: per (language, no date) instead, the language in the outlet's place."""
    params = key_params(key)
    outlet_col, date_col = ("a.language", "NULL") if by_language else ("d.outlet", "d.date")
    out: dict[tuple, Group] = {}
    for outlet, date, docs, words, sents, hit, spans in conn.execute(
        f"SELECT {outlet_col}, {date_col}, COUNT(*), SUM(d.n_words), SUM(a.n_sentences), SUM(a.n_sentences_hit), SUM(a.n_spans)"
        f" FROM analyses a JOIN documents d ON d.id = a.document_id WHERE {KEY_WHERE} GROUP BY 1, 2",
        params,
    ):
        out[(outlet, date)] = Group("", docs, words or 0, sents or 0, hit or 0, 0 if technique else (spans or 0))
    tech_filter = " AND s.technique = ?" if technique else ""
    for outlet, date, tech, n in conn.execute(
        f"SELECT {outlet_col}, {date_col}, s.technique, COUNT(*) FROM spans s JOIN analyses a ON a.id = s.analysis_id"
        f" JOIN documents d ON d.id = a.document_id WHERE {KEY_WHERE}{tech_filter} GROUP BY 1, 2, 3",
        params + ((technique,) if technique else ()),
    ):
        g = out[(outlet, date)]
        g.techniques[tech] += n
        if technique:
            g.spans += n
    if technique:
        for g in out.values():
            g.sentences_hit = 0
        for outlet, date, n in conn.execute(
            f"SELECT {outlet_col}, {date_col}, COUNT(*) FROM sentences se JOIN analyses a ON a.id = se.analysis_id"
            f" JOIN documents d ON d.id = a.document_id WHERE {KEY_WHERE} AND EXISTS ("
            '  SELECT 1 FROM spans sp WHERE sp.analysis_id = se.analysis_id AND sp.technique = ?'
            '  AND sp.start < se."end" AND sp."end" > se.start)'
            " GROUP BY 1, 2",
            params + (technique,),
        ):
            out[(outlet, date)].sentences_hit = n
    return [(o, d, g) for (o, d), g in out.items()]


def period(date: str | None, by: str) -> str:
    if date is None:
        return NO_DATE
    if by == "day":
        return date
    if by == "month":
        return date[:7]
    y, w, _ = dt.date.fromisoformat(date).isocalendar()
    return f"{y}-W{w:02d}"


def group_key(outlet: str | None, date: str | None, by: str) -> str:
    if by == "outlet":
        return outlet if outlet is not None else UNKNOWN_OUTLET
    if by == "all":
        return "all"
    return period(date, by)


def grouped(base: list[tuple[str | None, str | None, Group]], by: str) -> list[Group]:
    groups: dict[str, Group] = {}
    for outlet, date, g in base:
        k = group_key(outlet, date, by)
        groups.setdefault(k, Group(k)).add(g)
    out = list(groups.values())
    if by == "outlet":
        out.sort(key=lambda g: (g.key == UNKNOWN_OUTLET, -g.documents, g.key))
    else:
        out.sort(key=lambda g: (g.key == NO_DATE, g.key))
    return out


def total(base: list[tuple[str | None, str | None, Group]]) -> Group:
    t = Group("all")
    for _, _, g in base:
        t.add(g)
    return t


@dataclass
class Stats:
    key: SetKey
    by: str
    technique: str | None
    groups: list[Group]
    total: Group
    # (outlet, period) -> Group, for per-outlet trend lines
    by_outlet_period: dict[tuple[str, str], Group]
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "analysis_set": self.key.as_dict(),
            "by": self.by,
            "technique": self.technique,
            "groups": [g.as_dict() for g in self.groups],
            "total": self.total.as_dict(),
        }


def compute_stats(
    conn: sqlite3.Connection,
    by: str = "outlet",
    technique: str | None = None,
    model_version: str | None = None,
    threshold: str | None = None,
) -> Stats | None:
    if by not in GROUPINGS + ("language", "all"):
        raise CorpusError(f"--by: {by!r}; choose one of {', '.join(GROUPINGS + ('language',))}")
    tech = technique_id(technique) if technique else None
    key, note = choose_set(conn, model_version, threshold)
    if key is None:
        return None
    if by == "language":  # the language's code in the outlet's place
        base = base_groups(conn, key, tech, by_language=True)
        return Stats(key, by, tech, grouped(base, "outlet"), total(base), {}, note)
    base = base_groups(conn, key, tech)
    per: dict[tuple[str, str], Group] = {}
    if by in ("day", "week", "month"):
        for outlet, date, g in base:
            k = (outlet if outlet is not None else UNKNOWN_OUTLET, period(date, by))
            per.setdefault(k, Group(k[1])).add(g)
    return Stats(key, by, tech, grouped(base, by), total(base), per, note)
