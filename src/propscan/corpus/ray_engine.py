"""The Ray engine of ``propscan corpus run --engine ray``: the same analysis, scaled out with Ray Data.

The driver reads the inputs with the same ``ingest.iter_documents`` as the local engine (same ids, texts,
metadata, failures) and hands the documents, ``chunk`` at a time, to Ray Data
(``ray.data.from_items``). ``map_batches`` runs :class:`Analyzer`, a callable class, on an actor pool of
``concurrency`` actors: each actor loads the model once and analyses batch after batch. The results
stream back to the driver (``iter_batches``), which writes one Parquet shard per chunk into the shards
folder, atomically (temp file + rename), and inputs that failed into ``failures-*.parquet``.
``propscan corpus import --db DB SHARDS`` loads them (``--db`` on the run does it at the end).

The documents travel through Ray's object store and the results come back to the driver, so a
multi-node cluster needs no shared file system: only the driver reads the inputs and writes the shards.
Every node needs propscan (and its model) installed, as on the driver. See ``docs/ray.md``.

Results are identical to the local engine: the same code (``analyze.analyze``) on the same text, with
one onnxruntime thread per actor (thread count does not change the model's outputs).

Re-running with the same shards folder skips the documents whose results are already in a shard; with
``--db`` it also skips those already in the database.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from propscan.corpus.database import CorpusError, connect, missing_extra, now
from propscan.corpus.rows import SetKey, doc_row, is_done, result_from_analysis
from propscan.corpus.runner import RunSummary, count_documents
from propscan.corpus.shards import (
    docrow_dict,
    failure_schema,
    import_shards,
    shard_files,
    shard_row,
    shard_schema,
)
from propscan.document import Document
from propscan.errors import InputError, PropscanError
from propscan.pipeline.analyze import analyze
from propscan.pipeline.ingest import iter_documents
from propscan.pipeline.model import Model, check, env_threads, locate


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise missing_extra("ray[data]", "ray", "--engine ray") from None
    return ray


class Analyzer:
    """The Ray Data callable class: the model is loaded once per actor, then every batch is analysed."""

    def __init__(self, model_dir: str | None, threshold: float | None, clean: bool, threads: int = 1):
        self.model = Model(locate(model_dir), threads=threads)
        self.threshold = threshold
        self.clean = clean
        self.key = SetKey(self.model.name, self.model.version, threshold, clean)

    def __call__(self, batch):
        import pyarrow as pa

        out = []
        for r in batch.to_pylist():
            doc = Document(r["doc_id"], r["text"], json.loads(r["metadata"]))
            try:
                a = analyze(doc, model=self.model, threshold=self.threshold, clean=self.clean)
                out.append(shard_row(r, result_from_analysis(a, self.clean, engine="ray"), self.key))
            except Exception as e:  # recorded as a failure of this document; the run goes on
                problem = str(e) if isinstance(e, PropscanError) else f"analysis failed ({type(e).__name__}: {e})"
                out.append(shard_row(r, None, self.key, error=problem))
        return pa.Table.from_pylist(out, schema=shard_schema())


def analyzer_class(model_dir: str | None, threshold: float | None, clean: bool, threads: int = 1) -> type:
    """An Analyzer subclass with its settings built in: no constructor arguments to keep in Ray's object store."""
    settings = {"model_dir": model_dir, "threshold": threshold, "clean": clean, "threads": threads}

    class ConfiguredAnalyzer(Analyzer):
        def __init__(self):
            super().__init__(**settings)

    return ConfiguredAnalyzer


def _model_key(model_dir: str | None, threshold: float | None, clean: bool) -> SetKey:
    try:
        config = check(model_dir)
    except PropscanError as e:
        raise CorpusError(str(e)) from None
    return SetKey(config["name"], config["version"], threshold, clean)


def _done_in_shards(folder: Path, key: SetKey) -> set[tuple[str, str]]:
    """(doc_id, sha256) of the documents whose results for ``key`` are already in a shard."""
    import pyarrow.parquet as pq

    done: set[tuple[str, str]] = set()
    if not folder.is_dir():
        return done
    parts, _ = shard_files(folder)
    cols = ["doc_id", "sha256", "model_name", "model_version", "threshold", "clean", "error"]
    for path in parts:
        try:
            t = pq.read_table(str(path), columns=cols)
        except Exception:  # a foreign or damaged file: its documents are analysed again
            continue
        for r in t.to_pylist():
            if (
                r["error"] is None and r["model_name"] == key.model_name and r["model_version"] == key.model_version
                and r["threshold"] == key.threshold and bool(r["clean"]) == key.clean
            ):
                done.add((r["doc_id"], r["sha256"]))
    return done


def _write_parquet(table, path: Path) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp")
    try:
        pq.write_table(table, str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def run_ray(
    paths: list[str],
    shards: Path,
    *,
    db: Path | None = None,
    threshold: float | None = None,
    clean: bool = True,
    input_format: str = "auto",
    text_field: str = "text",
    id_field: str = "id",
    max_bytes: int = 1_000_000,
    batch: int = 8,
    concurrency: int | None = None,
    ray_address: str | None = None,
    num_cpus: int | None = None,
    chunk: int = 2000,
    model_dir: str | None = None,
    progress=None,
    on_event=None,
) -> RunSummary:
    """Analyse ``paths`` with Ray Data into Parquet shards under ``shards`` (and into ``db`` if given)."""
    ray = _ray()
    try:
        import pyarrow as pa
    except ImportError:
        raise missing_extra("pyarrow", "ray", "--engine ray") from None
    shards = Path(shards)
    shards.mkdir(parents=True, exist_ok=True)
    key = _model_key(model_dir, threshold, clean)
    emit = on_event or (lambda kind, message: None)
    conn = connect(db) if db is not None else None
    done = _done_in_shards(shards, key)
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    summary = RunSummary()

    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    threads = env_threads() or 1
    analyzer = analyzer_class(model_dir, threshold, clean, threads)
    state: dict[str, Any] = {"started": False, "actors": None}

    def ensure_ray() -> int:
        """Start (or connect to) Ray on first use, so a run with nothing left to do never starts it."""
        if state["actors"] is None:
            if not ray.is_initialized():
                kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
                if address:
                    kwargs["address"] = address
                elif num_cpus:
                    kwargs["num_cpus"] = num_cpus
                ray.init(**kwargs)
                state["started"] = True  # ours: shut down at the end
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            for attr in ("enable_operator_progress_bars", "print_on_execution_start"):
                if hasattr(ctx, attr):
                    setattr(ctx, attr, False)
            logging.getLogger("ray.data").setLevel(logging.ERROR)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"ray\.data")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray")
            state["actors"] = concurrency or max(1, int(ray.cluster_resources().get("CPU", 1)))
        return state["actors"]

    t0 = time.perf_counter()
    total = count_documents(paths, input_format)
    bar_ctx = progress if progress is not None else _NoBar()
    seq = 0
    try:
        with bar_ctx as bar:
            task = bar.add_task("analysing (ray)", total=total, rate="")

            def advance(n: int = 1) -> None:
                elapsed = time.perf_counter() - t0
                bar.update(task, advance=n, rate=f"{summary.analysed / elapsed:.1f} docs/s" if elapsed > 0 else "")

            def process(rows: list[dict[str, Any]]) -> None:
                nonlocal seq
                if not rows:
                    return
                actors = ensure_ray()
                blocks = max(1, min(-(-len(rows) // max(batch, 1)), actors * 4))
                try:
                    ds = ray.data.from_items(rows, override_num_blocks=blocks)
                except TypeError:  # Ray < 2.10
                    ds = ray.data.from_items(rows, parallelism=blocks)
                ds = ds.map_batches(
                    analyzer,
                    batch_size=batch,
                    batch_format="pyarrow",
                    compute=ray.data.ActorPoolStrategy(size=actors),
                    num_cpus=1,
                )
                tables = []
                for out in ds.iter_batches(batch_format="pyarrow", batch_size=None):
                    tables.append(out)
                    errors = out.column("error").to_pylist()
                    ids = out.column("doc_id").to_pylist()
                    for doc_id, error in zip(ids, errors):
                        if error is None:
                            summary.record("analysed", doc_id, emit)
                        else:
                            summary.record("failed", f"{doc_id}: {error}", emit)
                    advance(out.num_rows)
                table = pa.concat_tables(tables).cast(shard_schema()) if tables else None
                if table is not None and table.num_rows:
                    _write_parquet(table, shards / f"part-{run_id}-{seq:05d}.parquet")
                    seq += 1

            pending: list[dict[str, Any]] = []
            failures: list[dict[str, Any]] = []
            seen: set[tuple[str, str]] = set()
            for item in iter_documents(paths, input_format=input_format, text_field=text_field, id_field=id_field, max_bytes=max_bytes):
                if isinstance(item, InputError):
                    failures.append({"source": item.source, "doc_id": "", "error": item.problem, "at": now()})
                    summary.record("failed", str(item), emit)
                    advance()
                    continue
                summary.read += 1
                row = doc_row(item)
                ident = (row.doc_id, row.sha256)
                if ident in done or ident in seen or (conn is not None and is_done(conn, row.doc_id, row.sha256, key)):
                    summary.record("already", row.doc_id, emit)
                    advance()
                    continue
                seen.add(ident)
                pending.append(docrow_dict(row))
                if len(pending) >= chunk:
                    process(pending)
                    pending = []
            process(pending)
            if failures:
                _write_parquet(pa.Table.from_pylist(failures, schema=failure_schema()), shards / f"failures-{run_id}.parquet")
    finally:
        summary.seconds = time.perf_counter() - t0
        if state["started"]:
            ray.shutdown()
    if conn is not None:
        imported = import_shards(conn, shards)
        summary.copied = 0
        conn.close()
        emit("imported", imported.line())
    return summary


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        pass
