"""Corpus analysis into SQLite: ``propscan corpus run | stats | export | report | import``.

A corpus database (stdlib ``sqlite3``, WAL mode) holds every document once, one analysis per
(document, model name + version, threshold, clean), its spans and its sentence scores, and the inputs
that failed. ``docs/corpus-schema.md`` documents the tables; the schema is created and upgraded by the
ordered ``MIGRATIONS`` (``PRAGMA user_version`` is the version, ``schema_version`` the log).

Crash safety: a run keeps finished documents in memory and writes them every ``batch`` documents (or
every ``COMMIT_SECONDS``) in one short transaction, each document inside its own savepoint. A document's
rows are therefore committed together or not at all: killing the process at any moment (``kill -9``)
loses at most the last uncommitted batch, and the next run redoes exactly those documents, because a
document whose analysis is already in the database is skipped (idempotent by content hash, model
version, threshold and cleaning).

Heavy optional packages are imported lazily: pyarrow (``pip install 'propscan[corpus]'``) for Parquet
export and shard import, matplotlib (same extra) for PNG/SVG plots, ray (``propscan[ray]``) for the
Ray engine (:mod:`propscan.corpus.ray_engine`).
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from propscan.document import Analysis, Document, ModelInfo, SentenceScore, Span, headline
from propscan.errors import InputError, PropscanError
from propscan.outputs.formats import csv_cell
from propscan.techniques import BY_ID, TECHNIQUE_IDS, resolve

DEFAULT_BATCH = 32  # documents per commit
COMMIT_SECONDS = 2.0  # ... or at least this often, so a slow corpus still saves its progress
UNKNOWN_OUTLET = "(unknown)"
NO_DATE = "(no date)"
GROUPINGS = ("outlet", "day", "week", "month")
EXPORT_FORMATS = ("parquet", "csv", "jsonl")
TOP_TECHNIQUES = 3


class CorpusError(PropscanError):
    """A problem with a corpus database or its options (printed as one line by the CLI)."""


def missing_extra(package: str, extra: str, what: str) -> CorpusError:
    return CorpusError(f"{what} needs {package}: pip install 'propscan[{extra}]' (or pip install {package})")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# ----------------------------------------------------------------------------------------------------------
# schema and migrations

# Each entry is (description, SQL script); entry k (0-based) upgrades a database from version k to k + 1.
# Never edit a released entry: append a new one. Statements run one by one inside one transaction.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "documents, analyses, spans, sentences, failures",
        """
CREATE TABLE schema_version (
    version INTEGER PRIMARY KEY,
    applied TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    source TEXT,
    outlet TEXT,
    date TEXT,
    title TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    text TEXT NOT NULL,
    n_words INTEGER NOT NULL,
    n_sentences INTEGER NOT NULL,
    added TEXT NOT NULL,
    UNIQUE (doc_id, sha256)
);
CREATE INDEX documents_sha256 ON documents (sha256);
CREATE INDEX documents_outlet_date ON documents (outlet, date);
CREATE INDEX documents_date ON documents (date);
CREATE TABLE analyses (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    threshold REAL,
    clean INTEGER NOT NULL DEFAULT 1,
    score REAL NOT NULL,
    n_spans INTEGER NOT NULL,
    n_sentences INTEGER NOT NULL,
    engine TEXT NOT NULL DEFAULT 'local',
    created TEXT NOT NULL
);
CREATE UNIQUE INDEX analyses_key ON analyses (document_id, model_name, model_version, IFNULL(threshold, -1.0), clean);
CREATE INDEX analyses_model ON analyses (model_name, model_version, threshold, clean);
CREATE TABLE spans (
    id INTEGER PRIMARY KEY,
    analysis_id INTEGER NOT NULL REFERENCES analyses (id) ON DELETE CASCADE,
    technique TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    score REAL NOT NULL,
    text TEXT NOT NULL,
    alternatives TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX spans_analysis ON spans (analysis_id);
CREATE INDEX spans_technique_score ON spans (technique, score);
CREATE TABLE sentences (
    id INTEGER PRIMARY KEY,
    analysis_id INTEGER NOT NULL REFERENCES analyses (id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    score REAL NOT NULL
);
CREATE INDEX sentences_analysis ON sentences (analysis_id);
CREATE TABLE failures (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    doc_id TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL,
    at TEXT NOT NULL,
    UNIQUE (source, doc_id, error)
);
""",
    ),
    (
        "sentence hit counts, failure attempts, span_view and analysis_view",
        """
ALTER TABLE sentences ADD COLUMN n_spans INTEGER NOT NULL DEFAULT 0;
UPDATE sentences SET n_spans = (
    SELECT COUNT(*) FROM spans sp
    WHERE sp.analysis_id = sentences.analysis_id AND sp.start < sentences."end" AND sp."end" > sentences.start
);
ALTER TABLE analyses ADD COLUMN n_sentences_hit INTEGER NOT NULL DEFAULT 0;
UPDATE analyses SET n_sentences_hit = (
    SELECT COUNT(*) FROM sentences se WHERE se.analysis_id = analyses.id AND se.n_spans > 0
);
ALTER TABLE failures ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
CREATE VIEW span_view AS
SELECT s.id AS span_id, d.doc_id, d.sha256, d.outlet, d.date, d.title, d.source,
       a.model_name, a.model_version, a.threshold, a.clean,
       s.technique, s.start, s."end", s.score, s.text,
       a.id AS analysis_id, d.id AS document_id
FROM spans s
JOIN analyses a ON a.id = s.analysis_id
JOIN documents d ON d.id = a.document_id;
CREATE VIEW analysis_view AS
SELECT a.id AS analysis_id, d.doc_id, d.sha256, d.outlet, d.date, d.title, d.source, d.n_words,
       a.model_name, a.model_version, a.threshold, a.clean, a.score,
       a.n_spans, a.n_sentences, a.n_sentences_hit, a.engine, a.created, d.id AS document_id
FROM analyses a
JOIN documents d ON d.id = a.document_id;
""",
    ),
    (
        "the language of an analysed text, and its warnings and removed debris",
        """
ALTER TABLE analyses ADD COLUMN language TEXT NOT NULL DEFAULT 'und';
ALTER TABLE analyses ADD COLUMN language_confidence REAL NOT NULL DEFAULT 0;
ALTER TABLE analyses ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
DROP VIEW analysis_view;
CREATE VIEW analysis_view AS
SELECT a.id AS analysis_id, d.doc_id, d.sha256, d.outlet, d.date, d.title, d.source, d.n_words,
       a.model_name, a.model_version, a.threshold, a.clean, a.score,
       a.n_spans, a.n_sentences, a.n_sentences_hit, a.language, a.language_confidence, a.engine, a.created,
       d.id AS document_id
FROM analyses a
JOIN documents d ON d.id = a.document_id;
""",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


def _statements(script: str) -> Iterator[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf.strip()
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {buf.strip()[:80]!r}")


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION, where: str = "database") -> int:
    """Upgrade the schema to ``target``, one migration per transaction. Returns the final version."""
    version = user_version(conn)
    if version > SCHEMA_VERSION:
        raise CorpusError(f"{where}: schema version {version} is newer than this propscan supports ({SCHEMA_VERSION}); upgrade propscan")
    if version == 0:
        tables = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if tables:
            raise CorpusError(f"{where}: not a propscan corpus database (it has tables but no propscan schema version)")
    while version < target:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = user_version(conn)  # another process may have migrated while we waited for the lock
            if version >= target:
                conn.execute("COMMIT")
                break
            description, script = MIGRATIONS[version]
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, applied, description) VALUES (?, ?, ?)",
                (version + 1, _now(), description),
            )
            conn.execute(f"PRAGMA user_version = {version + 1:d}")
            conn.execute("COMMIT")
            version += 1
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return version


def connect(path: str | os.PathLike[str], *, create: bool = True, target: int = SCHEMA_VERSION) -> sqlite3.Connection:
    """Open (and create or upgrade) a corpus database: WAL journal, foreign keys on, autocommit mode
    (transactions are explicit)."""
    path = Path(path)
    if not create and not path.is_file():
        raise CorpusError(f"{path}: no such corpus database (create one with propscan corpus run)")
    if path.is_dir():
        raise CorpusError(f"{path}: is a folder, not a database file")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=60)
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL: a committed transaction survives a killed process; only power loss can drop the
        # last commits, never corrupt the file
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn, target, where=str(path))
    except sqlite3.DatabaseError as e:
        raise CorpusError(f"{path}: not a usable SQLite database ({e})") from None
    return conn


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
    created: str = field(default_factory=_now)
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
    from propscan.pipeline.decode import sentence_bounds

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


_KEY_WHERE = "a.model_name = ? AND a.model_version = ? AND IFNULL(a.threshold, -1.0) = IFNULL(?, -1.0) AND a.clean = ?"


def _key_params(key: SetKey) -> tuple:
    return (key.model_name, key.model_version, key.threshold, int(key.clean))


def is_done(conn: sqlite3.Connection, doc_id: str, sha256: str, key: SetKey) -> bool:
    row = conn.execute(
        f"SELECT 1 FROM analyses a JOIN documents d ON d.id = a.document_id WHERE d.doc_id = ? AND d.sha256 = ? AND {_KEY_WHERE}",
        (doc_id, sha256, *_key_params(key)),
    ).fetchone()
    return row is not None


def analysis_of_content(conn: sqlite3.Connection, sha256: str, key: SetKey) -> int | None:
    """An analysis of the same text (under any document id) with the same key: its rows can be copied."""
    row = conn.execute(
        f"SELECT a.id FROM analyses a JOIN documents d ON d.id = a.document_id WHERE d.sha256 = ? AND {_KEY_WHERE} LIMIT 1",
        (sha256, *_key_params(key)),
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
         row.n_words, row.n_sentences, _now()),
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
                (doc_pk, *src, _now()),
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
                (doc_pk, *_key_params(key), result.score, len(result.spans), len(result.sentences),
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
        (source, doc_id or "", error, at or _now()),
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
        self.failures.append((source, doc_id, error, _now()))
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
# run (local engine)


@dataclass
class RunSummary:
    read: int = 0  # documents read from the inputs (not counting inputs that failed to read)
    analysed: int = 0  # analysed by the model in this run
    copied: int = 0  # same text already analysed under another id: rows copied
    already: int = 0  # already in the database: skipped
    failed: int = 0  # failures recorded (inputs and documents)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.analysed / self.seconds if self.seconds > 0 else 0.0

    def record(self, outcome: str, message: str, emit: Callable[[str, str], None]) -> None:
        """Count one document's outcome (analysed, copied, already or failed) and tell ``emit``: the local
        and the Ray engine keep their books the same way."""
        setattr(self, outcome, getattr(self, outcome) + 1)
        emit(outcome, message)

    def line(self) -> str:
        # a rate only when something was analysed: a re-run that found everything done is no "0.0 docs/s"
        rate = f" ({self.rate:.1f} docs/s)" if self.analysed else ""
        return (
            f"{self.read} read, {self.analysed} analysed, {self.copied} copied (same text), "
            f"{self.already} already in the database, {self.failed} failed in {self.seconds:.1f}s{rate}"
        )


def count_documents(paths: Iterable[str], input_format: str = "auto", max_total_bytes: int = 2 << 30) -> int | None:
    """How many documents the inputs hold, when that is cheap to know; None otherwise (stdin, CSV, huge JSONL).

    Folders are walked as ``ingest`` walks them (hidden entries skipped, files taken by extension); each
    text/HTML file is one document, each non-blank JSONL line one record.
    """
    from propscan.pipeline.ingest import EXTENSIONS, folder_files

    total = 0
    budget = max_total_bytes
    for p in paths:
        if p == "-":
            return None
        path = Path(p)
        if path.is_dir():
            files = folder_files(path, input_format)
        elif path.exists():
            files = [path]
        else:
            total += 1  # it will be one failure
            continue
        for f in files:
            fmt = input_format if input_format != "auto" else EXTENSIONS.get(f.suffix.lower(), "text")
            if fmt == "csv":
                return None
            if fmt != "jsonl":
                total += 1
                continue
            try:
                size = f.stat().st_size
                if size > budget:
                    return None
                budget -= size
                with open(f, "rb") as fh:
                    n = sum(1 for line in fh if line.strip())
            except OSError:
                n = 1
            total += max(n, 1)
    return total


Event = Callable[[str, str], None]  # (kind, message): kind is analysed | copied | already | failed


def run(
    db: str | os.PathLike[str] | sqlite3.Connection,
    paths: list[str],
    *,
    model=None,
    model_dir: str | None = None,
    threshold: float | None = None,
    clean: bool = True,
    input_format: str = "auto",
    text_field: str = "text",
    id_field: str = "id",
    max_bytes: int = 1_000_000,
    batch: int = DEFAULT_BATCH,
    on_event: Event | None = None,
) -> RunSummary:
    """Analyse every document of ``paths`` into the corpus database ``db`` (single process).

    Documents already analysed with the same key are skipped; failures are recorded and the run goes on.
    On KeyboardInterrupt the finished documents are committed before the interrupt propagates.
    """
    from propscan.pipeline.analyze import analyze, in_order
    from propscan.pipeline.ingest import iter_documents
    from propscan.pipeline.model import load

    conn = db if isinstance(db, sqlite3.Connection) else connect(db)
    model = model or load(model_dir)
    key = SetKey(model.name, model.version, threshold, clean)
    writer = BatchWriter(conn, batch)
    summary = RunSummary()
    emit = on_event or (lambda kind, message: None)
    docs = iter_documents(paths, input_format=input_format, text_field=text_field, id_field=id_field, max_bytes=max_bytes)
    rows = ((item, None if isinstance(item, InputError) else doc_row(item)) for item in docs)
    waiting: Counter[str] = Counter()  # texts (by hash) of documents read ahead whose turn has not come

    def already(row: DocRow) -> bool:
        return writer.pending_has(row, key) or is_done(conn, row.doc_id, row.sha256, key)

    def stored_copy(row: DocRow) -> Result | int | None:
        """A pending or stored analysis of the same text under any id, to copy instead of analysing."""
        return writer.pending_result(row.sha256, key) or analysis_of_content(conn, row.sha256, key)

    def worth_starting(pair) -> bool:
        """Start an analysis ahead of its turn unless the text is stored, pending, or an earlier document
        with the same text still waits for its turn (it is analysed then, or this one is in its turn if
        that analysis fails). The checks run again at its turn, when every earlier document is stored."""
        row = pair[1]
        if row is None:
            return False
        waiting[row.sha256] += 1
        if waiting[row.sha256] > 1:
            return False
        return not already(row) and stored_copy(row) is None

    def analyze_pair(pair):
        return analyze(pair[0], model=model, threshold=threshold, clean=clean)

    t0 = time.perf_counter()
    try:
        # up to model.threads documents analysed at once, handled in input order (analyze.in_order)
        for (item, row), started in in_order(analyze_pair, rows, model.threads, wanted=worth_starting):
            if row is None:
                writer.fail(item.source, "", item.problem)
                summary.record("failed", str(item), emit)
                continue
            waiting[row.sha256] -= 1
            summary.read += 1
            if already(row):
                summary.record("already", row.doc_id, emit)
                writer.maybe_flush()
                continue
            same = stored_copy(row)
            if same is not None:
                writer.add(row, same, key)
                summary.record("copied", row.doc_id, emit)
                continue
            try:
                # not started ahead: an earlier copy of the text was, and its analysis failed
                a = started.result() if started is not None else analyze_pair((item, row))
            except Exception as e:  # one bad document must not stop a corpus run
                problem = str(e) if isinstance(e, PropscanError) else f"analysis failed ({type(e).__name__}: {e})"
                writer.fail(row.source or "", row.doc_id, problem)
                summary.record("failed", f"{row.doc_id}: {problem}", emit)
                continue
            writer.add(row, result_from_analysis(a, clean), key)
            summary.record("analysed", row.doc_id, emit)
    finally:
        summary.seconds = time.perf_counter() - t0
        failing = sys.exc_info()[0] is not None
        try:
            writer.flush()  # finished documents only: never a partial one
        except sqlite3.Error:
            if not failing:
                raise
            # the error already on its way (say a full disk) is the one to report, not a second copy of it
        if not isinstance(db, sqlite3.Connection):
            conn.close()
    return summary


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


# ----------------------------------------------------------------------------------------------------------
# stats


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
    params = _key_params(key)
    outlet_col, date_col = ("a.language", "NULL") if by_language else ("d.outlet", "d.date")
    out: dict[tuple, Group] = {}
    for outlet, date, docs, words, sents, hit, spans in conn.execute(
        f"SELECT {outlet_col}, {date_col}, COUNT(*), SUM(d.n_words), SUM(a.n_sentences), SUM(a.n_sentences_hit), SUM(a.n_spans)"
        f" FROM analyses a JOIN documents d ON d.id = a.document_id WHERE {_KEY_WHERE} GROUP BY 1, 2",
        params,
    ):
        out[(outlet, date)] = Group("", docs, words or 0, sents or 0, hit or 0, 0 if technique else (spans or 0))
    tech_filter = " AND s.technique = ?" if technique else ""
    for outlet, date, tech, n in conn.execute(
        f"SELECT {outlet_col}, {date_col}, s.technique, COUNT(*) FROM spans s JOIN analyses a ON a.id = s.analysis_id"
        f" JOIN documents d ON d.id = a.document_id WHERE {_KEY_WHERE}{tech_filter} GROUP BY 1, 2, 3",
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
            f" JOIN documents d ON d.id = a.document_id WHERE {_KEY_WHERE} AND EXISTS ("
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


# ----------------------------------------------------------------------------------------------------------
# export


EXPORT_COLUMNS = (
    "doc_id", "sha256", "outlet", "date", "title", "source", "model_name", "model_version", "threshold", "clean",
    "technique", "start", "end", "score", "text",
)


def iter_export_rows(conn: sqlite3.Connection, key: SetKey | None) -> Iterator[dict[str, Any]]:
    cols = ", ".join(f'v."{c}"' for c in EXPORT_COLUMNS)
    if key is None:
        cur = conn.execute(f"SELECT {cols} FROM span_view v ORDER BY v.document_id, v.analysis_id, v.start, v.span_id")
    else:
        where = _KEY_WHERE.replace("a.", "v.")
        cur = conn.execute(
            f"SELECT {cols} FROM span_view v WHERE {where} ORDER BY v.document_id, v.start, v.span_id", _key_params(key)
        )
    for r in cur:
        d = dict(zip(EXPORT_COLUMNS, r))
        d["clean"] = bool(d["clean"])
        yield d


def export(conn: sqlite3.Connection, fmt: str, output: Path, key: SetKey | None, chunk: int = 10_000) -> int:
    """Write the spans (joined with their documents) as parquet, csv or jsonl, atomically. Returns the row count."""
    if fmt not in EXPORT_FORMATS:
        raise CorpusError(f"--format: {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    from propscan.atomic import atomic_writer

    rows = iter_export_rows(conn, key)
    n = 0
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise missing_extra("pyarrow", "corpus", "Parquet export") from None
        schema = pa.schema([
            ("doc_id", pa.string()), ("sha256", pa.string()), ("outlet", pa.string()), ("date", pa.string()),
            ("title", pa.string()), ("source", pa.string()), ("model_name", pa.string()), ("model_version", pa.string()),
            ("threshold", pa.float64()), ("clean", pa.bool_()), ("technique", pa.string()), ("start", pa.int64()),
            ("end", pa.int64()), ("score", pa.float64()), ("text", pa.string()),
        ])
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        try:
            with pq.ParquetWriter(str(tmp), schema) as w:
                buf: list[dict] = []
                for r in rows:
                    buf.append(r)
                    if len(buf) >= chunk:
                        w.write_table(pa.Table.from_pylist(buf, schema=schema))
                        n += len(buf)
                        buf.clear()
                if buf or n == 0:
                    w.write_table(pa.Table.from_pylist(buf, schema=schema))
                    n += len(buf)
            os.replace(tmp, output)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return n
    with atomic_writer(output) as fh:
        if fmt == "csv":
            w = csv.writer(fh, lineterminator="\r\n")  # RFC 4180, see formats.to_csv
            w.writerow(EXPORT_COLUMNS)
            for r in rows:
                w.writerow(["" if r[c] is None else csv_cell(r[c]) for c in EXPORT_COLUMNS])
                n += 1
        else:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
                n += 1
    return n


# ----------------------------------------------------------------------------------------------------------
# Parquet shards (written by the Ray engine, loaded by ``corpus import``)


def shard_schema():
    try:
        import pyarrow as pa
    except ImportError:
        raise missing_extra("pyarrow", "corpus", "Parquet shards") from None
    span = pa.struct([("technique", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("score", pa.float64()), ("alternatives", pa.string())])
    sentence = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("score", pa.float64())])
    return pa.schema([
        ("doc_id", pa.string()), ("sha256", pa.string()), ("source", pa.string()), ("outlet", pa.string()),
        ("date", pa.string()), ("title", pa.string()), ("metadata", pa.string()), ("text", pa.string()),
        ("n_words", pa.int64()), ("n_sentences", pa.int64()),
        ("model_name", pa.string()), ("model_version", pa.string()), ("threshold", pa.float64()), ("clean", pa.bool_()),
        ("score", pa.float64()), ("created", pa.string()), ("engine", pa.string()), ("error", pa.string()),
        ("spans", pa.list_(span)), ("sentences", pa.list_(sentence)),
        ("language", pa.string()), ("language_confidence", pa.float64()), ("details", pa.string()),
    ])


def failure_schema():
    import pyarrow as pa

    return pa.schema([("source", pa.string()), ("doc_id", pa.string()), ("error", pa.string()), ("at", pa.string())])


DOC_FIELDS = ("doc_id", "sha256", "source", "outlet", "date", "title", "metadata", "text", "n_words", "n_sentences")


def docrow_dict(row: DocRow) -> dict[str, Any]:
    return {f: getattr(row, f) for f in DOC_FIELDS}


def shard_row(doc: dict[str, Any], result: Result | None, key: SetKey, error: str | None = None) -> dict[str, Any]:
    out = {f: doc[f] for f in DOC_FIELDS}
    out.update(key.as_dict())
    if result is None:
        out.update(score=None, created=_now(), engine="ray", error=error or "analysis failed", spans=[], sentences=[],
                   language=None, language_confidence=None, details=None)
    else:
        out.update(
            score=result.score, created=result.created, engine=result.engine, error=None,
            spans=[{"technique": t, "start": s, "end": e, "score": sc, "alternatives": alts} for t, s, e, sc, alts in result.spans],
            sentences=[{"start": s, "end": e, "score": sc} for s, e, sc in result.sentences],
            language=result.language, language_confidence=result.language_confidence, details=result.details,
        )
    return out


def from_shard_row(r: dict[str, Any]) -> tuple[DocRow, Result | None, SetKey]:
    row = DocRow(**{f: r[f] for f in DOC_FIELDS})
    key = SetKey(r["model_name"], r["model_version"], r["threshold"], bool(r["clean"]))
    if r.get("error"):
        return row, None, key
    result = Result(
        key, r["score"],
        [(s["technique"], s["start"], s["end"], s["score"], s["alternatives"]) for s in r["spans"]],
        [(s["start"], s["end"], s["score"]) for s in r["sentences"]],
        created=r["created"], engine=r["engine"] or "ray",
        # shards written before the language columns hold none of them
        language=r.get("language") or "und", language_confidence=r.get("language_confidence") or 0.0,
        details=r.get("details") or "{}",
    )
    return row, result, key


@dataclass
class ImportSummary:
    files: int = 0
    rows: int = 0
    added: int = 0
    already: int = 0
    failures: int = 0

    def line(self) -> str:
        return (
            f"{self.files} shard files, {self.rows} rows: {self.added} analyses added, "
            f"{self.already} already in the database, {self.failures} failures recorded"
        )


def shard_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(result shards, failure shards) under ``folder``, in name order; hidden and temporary files skipped."""
    if not folder.is_dir():
        raise CorpusError(f"{folder}: no such shards folder")
    files = sorted(p for p in folder.rglob("*.parquet") if not any(part.startswith(".") for part in p.relative_to(folder).parts))
    failures = [p for p in files if p.name.startswith("failures-")]
    return [p for p in files if not p.name.startswith("failures-")], failures


def import_shards(conn: sqlite3.Connection, folder: Path, batch: int = 256) -> ImportSummary:
    """Load Parquet shards into the database; idempotent (what is there already is skipped)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise missing_extra("pyarrow", "corpus", "corpus import") from None
    parts, fails = shard_files(Path(folder))
    summary = ImportSummary(files=len(parts) + len(fails))
    writer = BatchWriter(conn, batch, seconds=float("inf"))
    for path in parts:
        pf = pq.ParquetFile(str(path))
        for rb in pf.iter_batches(batch_size=batch):
            for r in rb.to_pylist():
                summary.rows += 1
                row, result, key = from_shard_row(r)
                if result is None:
                    writer.fail(row.source or "", row.doc_id, r["error"])
                    summary.failures += 1
                    continue
                if writer.pending_has(row, key) or is_done(conn, row.doc_id, row.sha256, key):
                    summary.already += 1
                    continue
                writer.add(row, result, key)
            writer.flush()
    for path in fails:
        for r in pq.read_table(str(path)).to_pylist():
            summary.rows += 1
            summary.failures += 1
            writer.fail(r["source"] or "", r["doc_id"] or "", r["error"])
        writer.flush()
    writer.flush()
    summary.added = writer.added
    return summary
