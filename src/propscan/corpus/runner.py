"""The local corpus runner (``propscan corpus run``): documents in, analyses into the database.

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

import os
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from propscan.corpus.database import connect
from propscan.corpus.rows import (
    DEFAULT_BATCH,
    BatchWriter,
    DocRow,
    Result,
    SetKey,
    analysis_of_content,
    doc_row,
    is_done,
    result_from_analysis,
)
from propscan.errors import InputError, PropscanError
from propscan.pipeline.analyze import analyze, in_order
from propscan.pipeline.ingest import EXTENSIONS, folder_files, iter_documents
from propscan.pipeline.model import load


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
    total = 0
    budget = max_total_bytes
    for p in paths:
        if p == "-":
            return None
        path = Path(p)
        if path.is_dir():
            documents: list[Path] = []  # a folder's PDFs and the like: one failure each (ingest reports them)
            files = folder_files(path, input_format, documents=documents)
            total += len(documents)
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
