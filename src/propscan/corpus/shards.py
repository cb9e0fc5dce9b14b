"""Parquet result shards: written by the Ray engine, loaded into a database by ``propscan corpus import``."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from propscan.corpus.database import CorpusError, missing_extra, now
from propscan.corpus.rows import BatchWriter, DocRow, Result, SetKey, is_done


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
        out.update(score=None, created=now(), engine="ray", error=error or "analysis failed", spans=[], sentences=[],
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
