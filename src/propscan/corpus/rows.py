"""What a document and its analysis become in the corpus tables; writing them (every document in
its own savepoint, in short batched transactions) and reading analysis sets back.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from propscan.corpus.database import CorpusError, now
from propscan.document import (
    Analysis,
    Document,
    ModelInfo,
    SentenceScore,
    Span,
    headline,
)
from propscan.pipeline.decode import sentence_bounds

DEFAULT_BATCH = 32  # documents per commit
COMMIT_SECONDS = 2.0  # ... or at least this often, so a slow corpus still saves its progress
UNKNOWN_OUTLET = "(unknown)"
NO_DATE = "(no date)"


# ----------------------------------------------------------------------------------------------------------
# rows: what goes into the tables


@dataclass
class DocRow:
    doc_id: str
    sha256: str
    source: str | None
    outlet: str | None
    date: str | None
    title: str | None
    metadata: str  # JSON object
    text: str
    n_words: int
    n_sentences: int


@dataclass(frozen=True)
class SetKey:
    """What makes an analysis of a document distinct: the model, the threshold (None: tuned) and cleaning."""

    model_name: str
    model_version: str
    threshold: float | None
    clean: bool = True

    def label(self) -> str:
        th = "tuned minimum confidences" if self.threshold is None else f"minimum confidence {self.threshold:g}"
        return f"{self.model_name} {self.model_version}, {th}{'' if self.clean else ', no cleaning'}"

    def as_dict(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "model_version": self.model_version, "threshold": self.threshold, "clean": self.clean}


@dataclass
class Result:
    """One analysis as stored: spans are (technique, start, end, score, alternatives JSON)."""

    key: SetKey
    score: float
    spans: list[tuple[str, int, int, float, str]]
    sentences: list[tuple[int, int, float]]
    created: str = field(default_factory=now)
    engine: str = "local"
    language: str = "und"
    language_confidence: float = 0.0
    details: str = "{}"  # JSON: {"warnings": [...], "removed": [...], "evidence": [per span, its words]}


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


_ISO_DAY = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")


def date_for(value: Any) -> str | None:
    """An ISO date (YYYY-MM-DD) from a metadata date; the date as written (no time-zone shift), else None."""
    if isinstance(value, (dt.datetime, dt.date)):
        return (value.date() if isinstance(value, dt.datetime) else value).isoformat()
    if not isinstance(value, str) or not value.strip():
        return None
    s = value.strip()
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        pass
    m = _ISO_DAY.match(s)
    if m:
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            return None
    return None


def outlet_for(metadata: dict[str, Any]) -> str | None:
    """The metadata ``site``/``outlet`` field, else the URL's host (without ``www.``), else the source's folder."""
    for key in ("site", "outlet"):
        v = metadata.get(key)
        if isinstance(v, str) and v.strip():
            return " ".join(v.split())
    url = metadata.get("url")
    if isinstance(url, str) and url.strip():
        u = url.strip()
        try:
            host = urlsplit(u if "//" in u else "//" + u).hostname
        except ValueError:
            host = None
        if host:
            return host[4:] if host.startswith("www.") else host
    path = metadata.get("path")
    if isinstance(path, str) and path and not path.startswith("<"):
        parent = Path(path).parent.name
        if parent:
            return parent
    return None


def doc_row(doc: Document) -> DocRow:
    meta = doc.metadata or {}
    title = meta.get("title")
    if not (isinstance(title, str) and title.strip()):
        title = headline(doc.text)
    return DocRow(
        doc_id=doc.id,
        sha256=content_hash(doc.text),
        source=str(meta["path"]) if meta.get("path") is not None else None,
        outlet=outlet_for(meta),
        date=date_for(meta.get("date")),
        title=" ".join(title.split()) if isinstance(title, str) and title.strip() else None,
        metadata=json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str),
        text=doc.text,
        n_words=len(doc.text.split()),
        n_sentences=len(sentence_bounds(doc.text)),
    )


def result_from_analysis(a: Analysis, clean: bool, engine: str = "local") -> Result:
    key = SetKey(a.model.name, a.model.version, a.threshold, clean)
    spans = [
        (s.technique, int(s.start), int(s.end), float(s.score), json.dumps({k: float(v) for k, v in s.alternatives.items()}))
        for s in a.spans
    ]
    sentences = [(int(s.start), int(s.end), float(s.score)) for s in a.sentences]
    # a span's evidence words ride in details, one list per span in span order (no migration needed)
    details = json.dumps({"warnings": a.warnings, "removed": a.removed,
                          "evidence": [[list(e) for e in s.evidence] for s in a.spans]}, ensure_ascii=False)
    return Result(key, float(a.score), spans, sentences, engine=engine, language=a.language,
                  language_confidence=float(a.language_confidence), details=details)


def sentence_hits(sentences: list[tuple[int, int, float]], spans: list[tuple[str, int, int, float, str]]) -> list[int]:
    """For each sentence, how many spans overlap it (span.start < sentence.end and span.end > sentence.start).

    #(start < e) - #(end <= s): a span ending at or before s also starts before e. O((n + m) log m).
    """
    starts = sorted(sp[1] for sp in spans)
    ends = sorted(sp[2] for sp in spans)
    return [bisect.bisect_left(starts, e) - bisect.bisect_right(ends, s) for s, e, _ in sentences]


# ----------------------------------------------------------------------------------------------------------
# writing


KEY_WHERE = "a.model_name = ? AND a.model_version = ? AND IFNULL(a.threshold, -1.0) = IFNULL(?, -1.0) AND a.clean = ?"


def key_params(key: SetKey) -> tuple:
    return (key.model_name, key.model_version, key.threshold, int(key.clean))


def is_done(conn: sqlite3.Connection, doc_id: str, sha256: str, key: SetKey) -> bool:
    row = conn.execute(
        f"SELECT 1 FROM analyses a JOIN documents d ON d.id = a.document_id WHERE d.doc_id = ? AND d.sha256 = ? AND {KEY_WHERE}",
        (doc_id, sha256, *key_params(key)),
    ).fetchone()
    return row is not None


def analysis_of_content(conn: sqlite3.Connection, sha256: str, key: SetKey) -> int | None:
    """An analysis of the same text (under any document id) with the same key: its rows can be copied."""
    row = conn.execute(
        f"SELECT a.id FROM analyses a JOIN documents d ON d.id = a.document_id WHERE d.sha256 = ? AND {KEY_WHERE} LIMIT 1",
        (sha256, *key_params(key)),
    ).fetchone()
    return row[0] if row else None


def _document_pk(conn: sqlite3.Connection, row: DocRow) -> int:
    found = conn.execute("SELECT id FROM documents WHERE doc_id = ? AND sha256 = ?", (row.doc_id, row.sha256)).fetchone()
    if found:
        return found[0]
    cur = conn.execute(
        "INSERT INTO documents (doc_id, sha256, source, outlet, date, title, metadata, text, n_words, n_sentences, added)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row.doc_id, row.sha256, row.source, row.outlet, row.date, row.title, row.metadata, row.text,
         row.n_words, row.n_sentences, now()),
    )
    return cur.lastrowid


def _insert(conn: sqlite3.Connection, row: DocRow, result: Result | int) -> bool:
    """Insert one document's analysis (a Result, or the id of an analysis of the same text to copy).

    Runs inside the caller's transaction, in a savepoint: the document's rows go in together or not at
    all. Returns False when the analysis is already there.
    """
    conn.execute("SAVEPOINT doc")
    try:
        doc_pk = _document_pk(conn, row)
        if isinstance(result, int):
            src = conn.execute(
                "SELECT model_name, model_version, threshold, clean, score, n_spans, n_sentences, n_sentences_hit, engine,"
                " language, language_confidence, details FROM analyses WHERE id = ?",
                (result,),
            ).fetchone()
            key = SetKey(src[0], src[1], src[2], bool(src[3]))
        else:
            key = result.key
        if is_done(conn, row.doc_id, row.sha256, key):
            conn.execute("RELEASE doc")
            return False
        if isinstance(result, int):
            cur = conn.execute(
                "INSERT INTO analyses (document_id, model_name, model_version, threshold, clean, score, n_spans,"
                " n_sentences, n_sentences_hit, engine, language, language_confidence, details, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc_pk, *src, now()),
            )
            new = cur.lastrowid
            conn.execute(
                'INSERT INTO spans (analysis_id, technique, start, "end", score, text, alternatives)'
                ' SELECT ?, technique, start, "end", score, text, alternatives FROM spans WHERE analysis_id = ? ORDER BY id',
                (new, result),
            )
            conn.execute(
                'INSERT INTO sentences (analysis_id, start, "end", score, n_spans)'
                ' SELECT ?, start, "end", score, n_spans FROM sentences WHERE analysis_id = ? ORDER BY id',
                (new, result),
            )
        else:
            hits = sentence_hits(result.sentences, result.spans)
            cur = conn.execute(
                "INSERT INTO analyses (document_id, model_name, model_version, threshold, clean, score, n_spans,"
                " n_sentences, n_sentences_hit, engine, language, language_confidence, details, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc_pk, *key_params(key), result.score, len(result.spans), len(result.sentences),
                 sum(1 for h in hits if h > 0), result.engine, result.language, result.language_confidence,
                 result.details, result.created),
            )
            aid = cur.lastrowid
            conn.executemany(
                'INSERT INTO spans (analysis_id, technique, start, "end", score, text, alternatives) VALUES (?, ?, ?, ?, ?, ?, ?)',
                [(aid, t, s, e, sc, row.text[s:e], alts) for t, s, e, sc, alts in result.spans],
            )
            conn.executemany(
                'INSERT INTO sentences (analysis_id, start, "end", score, n_spans) VALUES (?, ?, ?, ?, ?)',
                [(aid, s, e, sc, h) for (s, e, sc), h in zip(result.sentences, hits)],
            )
        conn.execute("RELEASE doc")
        return True
    except BaseException:
        # SQLite may already have rolled the whole transaction back (a full disk does): then there is no
        # savepoint left to undo, and the error to report is the one on its way, not "no such savepoint"
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK TO doc")
                conn.execute("RELEASE doc")
            except sqlite3.OperationalError:
                pass
        raise


def record_failure(conn: sqlite3.Connection, source: str, doc_id: str, error: str, at: str | None = None) -> None:
    conn.execute(
        "INSERT INTO failures (source, doc_id, error, at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (source, doc_id, error) DO UPDATE SET at = excluded.at, attempts = attempts + 1",
        (source, doc_id or "", error, at or now()),
    )


class BatchWriter:
    """Collects finished documents and failures in memory; ``flush`` writes them in one short transaction.

    Documents are never split across transactions; nothing is written while the model works, so other
    readers and writers of the database wait at most milliseconds.
    """

    def __init__(self, conn: sqlite3.Connection, batch: int = DEFAULT_BATCH, seconds: float = COMMIT_SECONDS):
        self.conn = conn
        self.batch = max(1, batch)
        self.seconds = seconds
        self.pending: list[tuple[DocRow, Result | int]] = []
        self.pending_keys: set[tuple[str, str, SetKey]] = set()
        self.failures: list[tuple[str, str, str, str]] = []
        self.last = time.monotonic()
        self.added = 0

    def pending_has(self, row: DocRow, key: SetKey) -> bool:
        return (row.doc_id, row.sha256, key) in self.pending_keys

    def pending_result(self, sha256: str, key: SetKey) -> Result | None:
        for r, res in self.pending:
            if r.sha256 == sha256 and isinstance(res, Result) and res.key == key:
                return res
        return None

    def add(self, row: DocRow, result: Result | int, key: SetKey) -> None:
        self.pending.append((row, result))
        self.pending_keys.add((row.doc_id, row.sha256, key))
        self.maybe_flush()

    def fail(self, source: str, doc_id: str, error: str) -> None:
        self.failures.append((source, doc_id, error, now()))
        self.maybe_flush()

    def maybe_flush(self) -> None:
        if len(self.pending) >= self.batch or time.monotonic() - self.last >= self.seconds:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.pending and not self.failures:
            return
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for row, result in self.pending:
                if _insert(conn, row, result):
                    self.added += 1
            for f in self.failures:
                record_failure(conn, *f)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.pending.clear()
        self.pending_keys.clear()
        self.failures.clear()


# ----------------------------------------------------------------------------------------------------------
# reading back


def analysis_sets(conn: sqlite3.Connection) -> list[tuple[SetKey, int, str]]:
    """Every (model, threshold, clean) combination in the database, with its analysis count and latest
    creation time, the one with the most recently stored analysis first."""
    rows = conn.execute(
        "SELECT model_name, model_version, threshold, clean, COUNT(*), MAX(created) FROM analyses"
        " GROUP BY model_name, model_version, IFNULL(threshold, -1.0), clean ORDER BY MAX(id) DESC"
    ).fetchall()
    return [(SetKey(r[0], r[1], r[2], bool(r[3])), r[4], r[5]) for r in rows]


def parse_threshold(value: str | None) -> float | None | str:
    """``tuned`` -> None (the tuned thresholds); a number -> float; None -> "any" (no filter)."""
    if value is None:
        return "any"
    if value.strip().lower() in ("tuned", "none", "default"):
        return None
    try:
        f = float(value)
    except ValueError:
        raise CorpusError(f"--threshold: {value!r} is neither a number nor 'tuned'") from None
    if not 0.0 <= f <= 1.0:
        raise CorpusError(f"--threshold: {f} is outside 0..1")
    return f


def choose_set(conn: sqlite3.Connection, model_version: str | None = None, threshold: str | None = None) -> tuple[SetKey | None, str | None]:
    """The analysis set to report on: the most recent one matching the filters. Returns (set, note):
    the note says which set was picked when the database holds several."""
    sets = analysis_sets(conn)
    if not sets:
        return None, None
    th = parse_threshold(threshold)
    matching = [
        s for s in sets
        if (model_version is None or s[0].model_version == model_version)
        and (th == "any" or s[0].threshold == th)
    ]
    if not matching:
        have = "; ".join(f"{k.label()} ({n} analyses)" for k, n, _ in sets)
        raise CorpusError(f"no analyses match --model-version/--threshold; the database holds: {have}")
    note = None
    if len(sets) > 1:
        note = (
            f"the database holds {len(sets)} analysis sets; showing {matching[0][0].label()}"
            " (choose another with --model-version / --threshold)"
        )
    return matching[0][0], note


def load_analysis(conn: sqlite3.Connection, analysis_id: int) -> Analysis:
    """Rebuild the Analysis (document, spans, sentences) stored under ``analysis_id``."""
    row = conn.execute(
        "SELECT d.doc_id, d.text, d.metadata, a.model_name, a.model_version, a.threshold, a.score,"
        " a.language, a.language_confidence, a.details"
        " FROM analyses a JOIN documents d ON d.id = a.document_id WHERE a.id = ?",
        (analysis_id,),
    ).fetchone()
    if row is None:
        raise CorpusError(f"no analysis {analysis_id}")
    doc_id, text, meta, name, version, threshold, score, language, confidence, details = row
    details = json.loads(details or "{}")
    evidence = details.get("evidence") or []
    spans = [
        Span(s, e, t, sc, json.loads(alts), [tuple(x) for x in evidence[k]] if k < len(evidence) else [])
        for k, (t, s, e, sc, alts) in enumerate(conn.execute(
            'SELECT technique, start, "end", score, alternatives FROM spans WHERE analysis_id = ? ORDER BY id', (analysis_id,)
        ))
    ]
    sentences = [
        SentenceScore(s, e, sc)
        for s, e, sc in conn.execute('SELECT start, "end", score FROM sentences WHERE analysis_id = ? ORDER BY id', (analysis_id,))
    ]
    return Analysis(Document(doc_id, text, json.loads(meta)), spans, sentences, score, ModelInfo(name, version), threshold,
                    language=language, language_confidence=confidence, warnings=details.get("warnings", []),
                    removed=details.get("removed", []))
