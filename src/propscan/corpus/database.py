"""The corpus database: one SQLite file (stdlib ``sqlite3``, WAL mode) anyone can open.

``docs/corpus-schema.md`` documents the tables; the schema is created and upgraded by the ordered
``MIGRATIONS`` (``PRAGMA user_version`` is the version, ``schema_version`` the log).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from propscan.errors import PropscanError


class CorpusError(PropscanError):
    """A problem with a corpus database or its options (printed as one line by the CLI)."""


def missing_extra(package: str, extra: str, what: str) -> CorpusError:
    return CorpusError(f"{what} needs {package}: pip install 'propscan[{extra}]' (or pip install {package})")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


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
                (version + 1, now(), description),
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
