"""Exporting one analysis set as Parquet, CSV or JSON lines, streamed in chunks."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from propscan.atomic import atomic_writer
from propscan.corpus.database import CorpusError, missing_extra
from propscan.corpus.rows import KEY_WHERE, SetKey, key_params
from propscan.outputs.formats import csv_cell

EXPORT_FORMATS = ("parquet", "csv", "jsonl")


EXPORT_COLUMNS = (
    "doc_id", "sha256", "outlet", "date", "title", "source", "model_name", "model_version", "threshold", "clean",
    "technique", "start", "end", "score", "text",
)


def iter_export_rows(conn: sqlite3.Connection, key: SetKey | None) -> Iterator[dict[str, Any]]:
    cols = ", ".join(f'v."{c}"' for c in EXPORT_COLUMNS)
    if key is None:
        cur = conn.execute(f"SELECT {cols} FROM span_view v ORDER BY v.document_id, v.analysis_id, v.start, v.span_id")
    else:
        where = KEY_WHERE.replace("a.", "v.")
        cur = conn.execute(
            f"SELECT {cols} FROM span_view v WHERE {where} ORDER BY v.document_id, v.start, v.span_id", key_params(key)
        )
    for r in cur:
        d = dict(zip(EXPORT_COLUMNS, r))
        d["clean"] = bool(d["clean"])
        yield d


def export(conn: sqlite3.Connection, fmt: str, output: Path, key: SetKey | None, chunk: int = 10_000) -> int:
    """Write the spans (joined with their documents) as parquet, csv or jsonl, atomically. Returns the row count."""
    if fmt not in EXPORT_FORMATS:
        raise CorpusError(f"--format: {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
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
