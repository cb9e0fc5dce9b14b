"""``propscan corpus ...``: the corpus commands, thin wrappers over propscan.corpus (run, stats, export,
report, import), corpus_ray and corpus_site."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Optional

import typer

from propscan.cli import common as cli
from propscan.corpus.database import connect
from propscan.corpus.export import export
from propscan.corpus.ray_engine import run_ray
from propscan.corpus.rows import DEFAULT_BATCH, choose_set
from propscan.corpus.runner import RunSummary, count_documents, run
from propscan.corpus.shards import import_shards
from propscan.corpus.site import write_corpus_site, write_plot
from propscan.corpus.stats import Stats, compute_stats
from propscan.errors import PropscanError
from propscan.pipeline.ingest import FORMATS
from propscan.pipeline.model import load
from propscan.techniques import BY_ID

corpus_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Analyse a whole corpus into SQLite; statistics, exports, a static site; Ray for scale-out.",
)


def _progress():
    return cli.progress_bar(cli.err.is_terminal)


@corpus_app.command("run")
def run_command(
    paths: Optional[list[str]] = cli.PATHS,
    urls: Optional[Path] = cli.URLS,
    db: Optional[Path] = typer.Option(None, "--db", help="The corpus database (SQLite), created if absent. Required for --engine local."),
    threshold_arg: Optional[str] = typer.Option(
        None, "--min-confidence", "--threshold", metavar="P",
        help="One minimum confidence (calibrated, 0..1) for all techniques instead of the ones tuned per technique."),
    input_format: str = cli.INPUT_FORMAT,
    text_field: str = cli.TEXT_FIELD,
    id_field: str = cli.ID_FIELD,
    max_bytes: int = typer.Option(1_000_000, min=1, help="Record documents larger than this many bytes of text as failures."),
    batch: int = typer.Option(DEFAULT_BATCH, min=1, help="Documents per commit (local) or per model call batch (ray)."),
    no_clean: bool = cli.NO_CLEAN,
    model_dir: Optional[str] = cli.MODEL,
    engine: str = typer.Option("local", help="local (one process) | ray (Ray Data; writes Parquet shards)."),
    shards: Optional[Path] = typer.Option(None, "--shards", help="ray: folder for the Parquet result shards."),
    concurrency: Optional[int] = typer.Option(None, min=1, help="ray: model actors (default: the cluster's CPUs)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="ray: cluster address (default: $RAY_ADDRESS, else a local Ray)."),
    chunk: int = typer.Option(2000, min=1, help="ray: documents per Ray Data job and per shard file."),
    num_cpus: Optional[int] = typer.Option(None, min=1, help="ray: CPUs of the local Ray started when no cluster address is given (default: all)."),
) -> None:
    """Analyse every document into the corpus database; re-running skips what is done."""
    paths = list(paths or []) + cli.url_list(urls)
    if not paths:
        cli.fail("nothing to analyse: give files, folders, URLs, - for stdin, or --urls FILE")
    threshold = cli.cutoff_options(threshold_arg, None)[0]
    if engine not in ("local", "ray"):
        cli.fail(f"--engine: {engine!r}; choose local or ray")
    if input_format not in FORMATS:
        cli.fail(f"--input-format: unknown format {input_format!r}; choose one of {', '.join(FORMATS)}")
    if engine == "ray":
        if shards is None:
            cli.fail("--engine ray needs --shards DIR (where the Parquet result shards go)")
        try:
            s = run_ray(
                paths, shards, db=db, threshold=threshold, clean=not no_clean, input_format=input_format,
                text_field=text_field, id_field=id_field, max_bytes=max_bytes, batch=batch, concurrency=concurrency,
                ray_address=ray_address, num_cpus=num_cpus, chunk=chunk, model_dir=model_dir,
                progress=_progress(), on_event=_event_printer(cli),
            )
        except PropscanError as e:
            cli.fail(str(e))
        except OSError as e:
            cli.fail(_os_problem(e))
        cli.err.print(s.line(), highlight=False)
        return
    if db is None:
        cli.fail("--db is required (the corpus database to write)")
    try:
        model = load(model_dir)
        conn = connect(db)
    except PropscanError as e:
        cli.fail(str(e))
    total = count_documents(paths, input_format)
    summary: RunSummary | None = None
    t0 = time.perf_counter()
    printer = _event_printer(cli)
    with _progress() as bar:
        task = bar.add_task("analysing", total=total, rate="")
        done = 0

        def on_event(kind: str, message: str) -> None:
            nonlocal done
            printer(kind, message)
            if kind == "analysed":
                done += 1
            elapsed = time.perf_counter() - t0
            bar.update(task, advance=1, rate=f"{done / elapsed:.1f} docs/s" if elapsed > 0 else "")

        try:
            summary = run(
                conn, paths, model=model, threshold=threshold, clean=not no_clean, input_format=input_format,
                text_field=text_field, id_field=id_field, max_bytes=max_bytes, batch=batch, on_event=on_event,
            )
        except KeyboardInterrupt:
            conn.close()
            cli.say("interrupted:", "finished documents are saved; run the same command again to continue", "yellow")
            raise typer.Exit(130) from None
        except PropscanError as e:
            cli.fail(str(e))
        except sqlite3.Error as e:  # a full disk, a locked or damaged file: the last commit stands
            cli.fail(f"{db}: {e}; every document committed before this is kept: free the problem and run the "
                     "same command again to continue", 1)
    conn.close()
    cli.err.print(summary.line(), highlight=False)
    if summary.failed and not (summary.analysed or summary.copied or summary.already):
        raise typer.Exit(1)


def _os_problem(e: OSError) -> str:
    where = e.filename if e.filename is not None else "output"
    return f"{where}: {e.strerror or e}"


def _event_printer(cli):
    def printer(kind: str, message: str) -> None:
        if kind == "failed":
            cli.say("failed", message)
        elif kind == "imported":
            cli.say("imported:", message, "green")

    return printer


@corpus_app.command("stats")
def stats_command(
    db: Path = typer.Option(..., "--db", help="The corpus database."),
    by: str = typer.Option("outlet", "--by", help="outlet | day | week | month | language"),
    technique: Optional[str] = typer.Option(None, "--technique", help="Only this technique (id or name)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw a chart: .png or .svg (matplotlib) or .html (self-contained)."),
    json_out: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    model_version: Optional[str] = typer.Option(None, help="Analyses of this model version (default: the most recent set)."),
    threshold: Optional[str] = typer.Option(None, help="Analyses made with this minimum confidence, or 'tuned' (default: the most recent set)."),
) -> None:
    """Per outlet or per day/week/month: documents, spans per 1,000 words, share of sentences with a technique, top techniques."""
    try:
        conn = connect(db, create=False)
        st = compute_stats(conn, by, technique, model_version, threshold)
        conn.close()
        if st is None:
            cli.fail(f"{db}: no analyses yet (run propscan corpus run first)", 1)
        if plot is not None:
            write_plot(st, plot)
    except PropscanError as e:
        cli.fail(str(e))
    except OSError as e:
        cli.fail(_os_problem(e))
    if st.note:
        cli.say("note:", st.note, "yellow")
    if json_out:
        print(json.dumps(st.as_dict(), ensure_ascii=False, indent=2))
    else:
        from rich.console import Console

        con = Console()
        con.print(stats_table(st, con.width))
    if plot is not None:
        cli.err.print(f"wrote {plot}", highlight=False)


# below this many columns the top techniques go into a table of their own under the figures, so that no
# column is squeezed to a word per line (checked at 80 columns by tests/cli/test_cli.py)
WIDE_STATS = 110


def stats_table(st: Stats, width: int = WIDE_STATS):
    """The figures per group, with each group's top techniques in a last column, or on a narrow
    console in a second table below."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    narrow = width < WIDE_STATS
    what = f" ({BY_ID[st.technique].name})" if st.technique else ""
    table = Table(title=Text(f"{st.key.label()}: by {st.by}{what}"), title_justify="left")
    table.add_column(st.by, overflow="fold")
    for col in ("documents", "words", "spans", "spans / 1k words", "sentences with technique"):
        table.add_column(col if not narrow else col.replace("sentences with technique", "sentences hit"),
                         justify="right", no_wrap=True)
    if not narrow:
        table.add_column("top techniques")
    tops = Table(title=Text("top techniques"), title_justify="left", show_header=False, box=None) if narrow else None
    if tops is not None:
        tops.add_column(st.by, overflow="fold", style="bold", max_width=24)
        tops.add_column("top techniques")
    for g in st.groups + [st.total]:
        top = Text(", ".join(f"{BY_ID[t].name if t in BY_ID else t} {n}" for t, n in g.top()))
        row = [Text(g.key, style="bold" if g is st.total else ""), f"{g.documents:,}", f"{g.words:,}", f"{g.spans:,}",
               f"{g.spans_per_1k_words:.2f}", f"{100 * g.share_sentences:.1f}%"]
        table.add_row(*row, *([] if narrow else [top]), end_section=g is st.groups[-1] if st.groups else False)
        if tops is not None:
            tops.add_row(g.key, top)
    return Group(table, Text(""), tops) if tops is not None else table


@corpus_app.command("export")
def export_command(
    db: Path = typer.Option(..., "--db", help="The corpus database."),
    format: str = typer.Option(..., "--format", "-f", help="parquet | csv | jsonl"),
    output: Path = typer.Option(..., "--output", "-o", help="The file to write (atomically)."),
    model_version: Optional[str] = typer.Option(None, help="Analyses of this model version (default: the most recent set)."),
    threshold: Optional[str] = typer.Option(None, help="Analyses made with this minimum confidence, or 'tuned' (default: the most recent set)."),
    all_sets: bool = typer.Option(False, "--all-sets", help="Every analysis set in the database, not just one."),
) -> None:
    """Export every span with its document id, outlet, date and title."""
    if output.is_dir():
        cli.fail(f"{output}: is a folder; give a file name (-o spans.{format})")
    n = _on_analysis_set(cli, db, model_version, threshold, lambda conn, key: export(conn, format, output, key),
                         all_sets=all_sets)
    cli.err.print(f"wrote {n} spans to {output}", highlight=False)


@corpus_app.command("report")
def report_command(
    db: Path = typer.Option(..., "--db", help="The corpus database."),
    output: Path = typer.Option(..., "--output", "-o", help="The site folder to write."),
    examples: int = typer.Option(20, min=1, help="Example spans per technique page."),
    model_version: Optional[str] = typer.Option(None, help="Analyses of this model version (default: the most recent set)."),
    threshold: Optional[str] = typer.Option(None, help="Analyses made with this minimum confidence, or 'tuned' (default: the most recent set)."),
    no_articles: bool = typer.Option(False, "--no-articles", help="Skip the per-article report pages."),
) -> None:
    """Write a static HTML site: index, outlet pages, technique pages with the most confident spans, article reports."""
    if output.exists() and not output.is_dir():
        cli.fail(f"{output}: is a file; give a folder for the site")
    index = _on_analysis_set(
        cli, db, model_version, threshold,
        lambda conn, key: write_corpus_site(conn, output, key, examples=examples, articles=not no_articles),
        need_analyses=True,
    )
    cli.err.print(f"wrote {index}", highlight=False)


def _on_analysis_set(cli, db, model_version, threshold, action, all_sets: bool = False, need_analyses: bool = False):
    """Open the database, pick the analysis set (model version + threshold), run ``action(conn, key)``;
    problems become one-line CLI errors."""
    try:
        conn = connect(db, create=False)
        key, note = (None, None) if all_sets else choose_set(conn, model_version, threshold)
        if need_analyses and key is None:
            cli.fail(f"{db}: no analyses yet (run propscan corpus run first)", 1)
        if note:
            cli.say("note:", note, "yellow")
        result = action(conn, key)
        conn.close()
        return result
    except PropscanError as e:
        cli.fail(str(e))
    except OSError as e:
        cli.fail(_os_problem(e))


@corpus_app.command("import")
def import_command(
    shards: Path = typer.Argument(..., help="The folder of Parquet shards written by corpus run --engine ray."),
    db: Path = typer.Option(..., "--db", help="The corpus database, created if absent."),
) -> None:
    """Load Parquet shards into the corpus database (idempotent)."""
    try:
        conn = connect(db)
        s = import_shards(conn, shards)
        conn.close()
    except PropscanError as e:
        cli.fail(str(e))
    except OSError as e:
        cli.fail(_os_problem(e))
    cli.err.print(s.line(), highlight=False)
