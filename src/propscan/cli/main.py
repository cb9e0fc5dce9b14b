"""The command line: ``propscan analyze | evaluate | train | techniques | clean | serve`` (and ``corpus``,
from cli/corpus.py). Each command parses its options and calls library functions; nothing imports this."""

from __future__ import annotations

import errno
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from propscan.atomic import WRITE_ERRNOS, atomic_write_text, atomic_writer, once_writable, problem
from propscan.cli import common
from propscan.cli.common import cutoff_options, err, fail, progress_bar, say, url_list
from propscan.cli.corpus import corpus_app
from propscan.errors import InputError, OutputError, PropscanError
from propscan.evaluation.evaluate import predict, score
from propscan.outputs import formats, terminal
from propscan.outputs.report import write_site
from propscan.pipeline.analyze import analyze as run
from propscan.pipeline.analyze import in_order
from propscan.pipeline.clean import clean as clean_text
from propscan.pipeline.ingest import iter_documents
from propscan.pipeline.model import Model, check, load, locate, reliability
from propscan.ptc import read_articles, read_labels
from propscan.techniques import BY_ID, TECHNIQUES

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Find propaganda and persuasion techniques in news articles, span by span.",
)


@app.command()
def analyze(
    paths: Optional[list[str]] = common.PATHS,
    format: Optional[str] = typer.Option(
        None, "--format", "-f", help=f"{' | '.join(formats.WRITERS)}. Default: text on a terminal, json otherwise."
    ),
    urls: Optional[Path] = common.URLS,
    output_arg: Optional[str] = typer.Option(
        None, "--output", "-o", metavar="PATH",
        help="Write here (atomically) instead of stdout. With --format html, a folder (an existing one, or a path ending in /) gets a site: an index and one report per document.",
    ),
    threshold: Optional[str] = typer.Option(
        None, "--min-confidence", "--threshold", metavar="P",
        help="Report spans whose confidence (a calibrated probability, 0..1) is at least P, for every technique, instead of the cutoffs tuned per technique: lower finds more (recall), higher fewer (precision).",
    ),
    threshold_for: Optional[list[str]] = typer.Option(
        None, "--threshold-for", metavar="TECHNIQUE=P", help="The minimum confidence for one technique, e.g. \"Slogans=0.2\"; repeatable.",
    ),
    input_format: str = common.INPUT_FORMAT,
    text_field: str = common.TEXT_FIELD,
    id_field: str = common.ID_FIELD,
    max_bytes: int = typer.Option(1_000_000, help="Skip (with an error) documents larger than this many bytes of text."),
    no_clean: bool = common.NO_CLEAN,
    model_dir: Optional[str] = common.MODEL,
    skip_non_english: bool = typer.Option(
        False, "--skip-non-english", help="Skip (with a one-line error) texts identified as another language; by default they are analysed with a warning."
    ),
) -> None:
    """Analyse articles and print or write the spans found."""
    min_conf, per_technique = cutoff_options(threshold, threshold_for)
    paths = list(paths or []) + url_list(urls)
    if not paths:
        fail("nothing to analyse: give files, folders, URLs, - for stdin, or --urls FILE")
    output = Path(output_arg) if output_arg else None
    # a trailing slash means a folder, which only the html site can be
    as_folder = bool(output_arg) and (output_arg.endswith(("/", os.sep)) or (output is not None and output.is_dir()))
    out_console = Console()
    fmt = format or ("text" if out_console.is_terminal and output is None else "json")
    if fmt not in formats.FORMATS:
        fail(f"unknown format {fmt!r}; choose one of {', '.join(formats.FORMATS)}")
    if as_folder and fmt != "html":
        fail(f"--output {output_arg}: a folder; --format {fmt} writes one file, give a file name (only html writes a folder)")
    try:
        model = load(model_dir)
    except PropscanError as e:
        fail(str(e))
    docs = iter_documents(paths, input_format=input_format, text_field=text_field, id_field=id_field, max_bytes=max_bytes)
    many = len(paths) > 1 or any(p != "-" and Path(p).is_dir() for p in paths) or input_format in ("jsonl", "csv")
    streaming = fmt in formats.STREAMING
    analyze_one = lambda doc: run(doc, model=model, threshold=min_conf, clean=not no_clean, threshold_for=per_technique,  # noqa: E731
                              skip_non_english=skip_non_english)
    analyses: list = []
    errors: list = []
    try:
        with atomic_writer(output if streaming else None) as sink:
            def keep(a, first: bool) -> None:
                if not streaming:
                    analyses.append(a)
                elif fmt == "csv":
                    sink.write(formats.to_csv([a], header=first))
                else:
                    sink.write(formats.WRITERS[fmt].write([a]))

            done = _analyze_all(docs, analyze_one, keep, errors, progress=many and err.is_terminal, ahead=model.threads)
            if streaming and output is not None and done == 0:
                raise _NothingWritten
    except _NothingWritten:
        done = 0  # every input failed: leave any earlier output file as it was
    if streaming and output is not None and done:
        err.print(f"wrote {output}")
    if fmt == "text" and output is None:
        for a in analyses:
            terminal.render(a, out_console)
    elif analyses:
        _write(fmt, analyses, output, as_folder)
    if many or errors:
        err.print(f"{done + len(errors)} read, {done} analysed, {len(errors)} skipped")
    if errors:
        raise typer.Exit(1)


class _NothingWritten(Exception):
    pass


def _analyze_all(docs, analyze_one, keep, errors: list, progress: bool, ahead: int) -> int:
    """Analyse each document, hand each result to ``keep`` in input order, record errors and go on;
    returns the count. Up to ``ahead`` documents are analysed at once (analyze.in_order)."""
    done = 0
    t0 = time.perf_counter()
    with progress_bar(progress) as bar:
        task = bar.add_task("analysing", total=None, rate="")
        for item, result in in_order(analyze_one, docs, ahead, wanted=lambda x: not isinstance(x, InputError)):
            if result is None:
                errors.append(item)
                say("skipped", str(item))
                continue
            try:
                a = result.result()
            except PropscanError as e:
                errors.append(e)
                say("skipped", f"{item.id}: {e}")
                continue
            for warning in a.warnings:  # on stderr whatever the format, so a piped JSON run still says it
                say("warning:", f"{a.document.id}: {warning}", "yellow")
            keep(a, done == 0)
            done += 1
            bar.update(task, advance=1, rate=f"{done / (time.perf_counter() - t0):.1f} docs/s")
    return done


def _write(fmt: str, analyses: list, output: Optional[Path], as_folder: bool = False) -> None:
    if fmt == "html" and output is not None and (as_folder or (len(analyses) > 1 and not output.suffix)):
        err.print(f"wrote {write_site(analyses, output)} and {len(analyses)} report{'' if len(analyses) == 1 else 's'}")
        return
    text = formats.WRITERS[fmt].write(analyses)
    if output is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(output, text)
        err.print(f"wrote {output}")


@app.command()
def evaluate(
    articles: Path = typer.Option(..., help="Folder of article<ID>.txt files."),
    gold: Path = typer.Option(..., help="Gold FLC/TC labels: a file or a folder of .labels files."),
    predictions: Optional[Path] = typer.Option(None, help="FLC predictions to score; without it the model predicts."),
    threshold: Optional[str] = typer.Option(None, "--min-confidence", "--threshold", metavar="P", help="As in analyze."),
    threshold_for: Optional[list[str]] = typer.Option(None, "--threshold-for", metavar="TECHNIQUE=P", help="As in analyze."),
    model_dir: Optional[str] = common.MODEL,
    json_out: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Score predictions (or the model) with the SemEval-2020 Task 11 formulas: SI, TC, FLC, per technique."""
    import json

    min_conf, per_technique = cutoff_options(threshold, threshold_for)
    try:
        arts = read_articles(articles)
        gold_rows = read_labels(gold, arts)
        if any(g.technique is None for g in gold_rows):
            fail(f"{gold}: gold labels need a technique column (FLC/TC format)")
        if predictions is not None:
            pred = read_labels(predictions, arts)
            if any(p.technique is None for p in pred):
                fail(f"{predictions}: predictions need a technique column (FLC/TC format)")
            same_spans = {(g.article_id, g.start, g.end) for g in gold_rows} == {(p.article_id, p.start, p.end) for p in pred}
            report = score(gold_rows, pred, pred if same_spans else None)
        else:
            model = load(model_dir)
            with progress_bar(err.is_terminal) as progress:
                task = progress.add_task("evaluating", total=len(arts), rate="")
                confidences: list[float] = []
                pred, tc = predict(model, arts, gold_rows, min_conf, per_technique, progress=lambda _: progress.advance(task),
                                   scores=confidences)
            report = score(gold_rows, pred, tc, confidences)
    except PropscanError as e:
        fail(str(e))
    if json_out:
        print(json.dumps(report.as_dict(), indent=2))
        return
    _print_report(report)


def _print_report(report) -> None:
    con = Console()
    summary = Table(title="SemEval-2020 Task 11 figures", title_justify="left")
    for col in ("task", "precision", "recall", "F1", "predicted", "gold"):
        summary.add_column(col, justify="left" if col == "task" else "right")
    rows = [("SI (span identification)", report.si), ("FLC (spans + technique)", report.flc)]
    if report.tc is not None:
        rows.append(("TC (technique on gold spans, micro)", report.tc))
    for name, prf in rows:
        summary.add_row(name, f"{prf.precision:.4f}", f"{prf.recall:.4f}", f"{prf.f1:.4f}", str(prf.n_pred), str(prf.n_gold))
    con.print(summary)
    per = Table(title="Per technique (FLC; TC F1 where available)", title_justify="left")
    for col in ("technique", "P", "R", "F1", "pred", "gold", "TC F1"):
        per.add_column(col, justify="left" if col == "technique" else "right")
    for tech, prf in report.flc_by_technique.items():
        tc = f"{report.tc_by_technique[tech].f1:.3f}" if report.tc_by_technique else "-"
        per.add_row(BY_ID[tech].name, f"{prf.precision:.3f}", f"{prf.recall:.3f}", f"{prf.f1:.3f}", str(prf.n_pred), str(prf.n_gold), tc)
    con.print(per)
    if report.tc is None:
        con.print("TC is scored only when the predictions cover exactly the gold spans (or when the model predicts).")


@app.command()
def train(
    articles: list[Path] = typer.Option(
        ..., metavar="<folder>", help="PTC train articles folder; repeatable (train, then dev: a final model on all labelled articles)."
    ),
    labels: list[Path] = typer.Option(..., metavar="<path>", help="PTC FLC/TC labels (file or folder), one per --articles, in the same order."),
    out: Path = typer.Option(..., help="Where to write the model folder."),
    recipe: Optional[Path] = typer.Option(
        None, help="Training settings as JSON: a train config, or a model.json (its train_config is used, and detection is tuned by the rule it records)."
    ),
    extra: Optional[list[Path]] = typer.Option(
        None, metavar="<path>", help="Extra span-labelled texts (SemEval-2021 Task 6 subtask-2 JSON); repeatable."
    ),
    mask_unmapped: bool = typer.Option(
        False, "--mask-unmapped", help="Leave extra texts' spans of techniques outside the 14 out of the tagging loss (default: they count as no technique)."
    ),
    weak: Optional[list[Path]] = typer.Option(
        None, metavar="<path>", help="Texts labelled with techniques but no spans (SemEval-2024 Task 4 subtask-2a JSON), learnt by a multiple-instance loss; repeatable."
    ),
    teacher: Optional[str] = typer.Option(
        None, metavar="<model>", help="Distil from this model (accurate, fast or a model folder): its token probabilities are mixed into the tagging targets (weight 0.5)."
    ),
    transfer: Optional[list[Path]] = typer.Option(
        None, metavar="<path>", help="Unlabelled sentences (.tsv/.csv with a text column, JSON [{text}], or one per line) learnt from the teacher's probabilities alone; repeatable; needs --teacher."
    ),
    transfer_limit: Optional[int] = typer.Option(None, min=0, help="Use the first N transfer sentences (default: all)."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs (default 6, or the recipe's)."),
    encoder: Optional[str] = typer.Option(
        None, help="Base encoder: all-MiniLM-L6-v2 (default, or the recipe's), all-mpnet-base-v2 (make install-accurate), or a folder."
    ),
    device: Optional[str] = typer.Option(None, help="auto (default: a CUDA GPU when torch sees one), cpu, or cuda."),
    val_fold: Optional[int] = typer.Option(
        None, min=0, help="Hold out eighth N of the train articles, counting from 0 (the default split): a fold network, for scripts/retune_model.py --folds."
    ),
    dev_articles: Optional[Path] = typer.Option(None, help="PTC dev articles, to record dev figures in the model card."),
    dev_labels: Optional[Path] = typer.Option(None, help="PTC dev labels."),
    dev_figures_from: Optional[Path] = typer.Option(
        None, help="For a model trained on dev too: the model folder of the run with the same recipe trained without dev, whose dev figures the card reports."
    ),
    no_quantize: bool = typer.Option(False, "--no-quantize", help="Keep the ONNX model in fp32."),
) -> None:
    """Train, export to ONNX, tune detection on held-out data (and dev, when given): reproduces the shipped model.

    Run it again with the same --out and recipe to resume a run that stopped: it goes on from the
    last saved step (saved after every epoch and every 10 minutes; on another device or thread count if
    you like)."""
    cfg, rule = _train_config(recipe)
    if epochs is not None:
        cfg.epochs = epochs
    if encoder is not None:
        cfg.encoder = encoder
    if device is not None:
        cfg.device = device
    if val_fold is not None:
        if val_fold >= cfg.val_every:
            fail(f"--val-fold {val_fold}: the train articles are held out in {cfg.val_every} folds, 0 to {cfg.val_every - 1}")
        cfg.val_fold = val_fold
    if extra:
        cfg.extra = [str(x) for x in extra]
    if mask_unmapped:
        cfg.mask_unmapped = True
    if weak:
        cfg.weak = [str(x) for x in weak]
    if teacher is not None:
        cfg.teacher = teacher
    if transfer:
        cfg.transfer = [str(x) for x in transfer]
    if transfer_limit is not None:
        cfg.transfer_limit = transfer_limit
    if cfg.files("transfer") and not (cfg.teacher or any(m.get("teacher") for m in cfg.members)):
        fail("--transfer needs --teacher: transfer texts are learnt from a teacher's probabilities")
    for path in cfg.extra_files():
        if not Path(path).is_file():
            fail(f"{path}: no such extra training file")
    if len(articles) != len(labels):
        fail(f"give one --labels per --articles ({len(articles)} --articles, {len(labels)} --labels)")
    try:
        arts, labs = _labelled_sets(articles, labels)
        dev = None
        if dev_articles and dev_labels:
            dev_arts = read_articles(dev_articles)
            dev = (dev_arts, read_labels(dev_labels, dev_arts))
    except PropscanError as e:
        fail(str(e))
    if dev is not None and (both := sorted(set(dev[0]) & set(arts))):
        fail(f"{len(both)} dev articles are also training articles (say {both[0]}): their figures would not be fair; "
             "for a model trained on dev, give --dev-figures-from the run trained without it")
    if dev_figures_from is not None and dev is not None:
        fail("give --dev-articles or --dev-figures-from, not both")
    try:  # training imports these later on; checked here so that a runtime-only install fails before any work
        import torch  # noqa: F401
        import transformers  # noqa: F401

        from propscan.training.build import build_model_folder, dev_figures_lender
        from propscan.training.train import base_encoder_dir, check_resumable, check_training_files, train_device
    except ImportError as e:
        fail(f"training needs the train extra (make install-train, or pip install -e '.[train]'): {e}")
    try:
        base_encoder_dir(cfg.encoder), train_device(cfg.device)
        check_training_files(cfg)  # a malformed --extra, --weak or --transfer file fails now, not hours in
        if dev_figures_from is not None:  # a wrong folder would otherwise fail after hours of training
            dev_figures_lender(dev_figures_from, cfg, rule, not no_quantize)
        check_resumable(out / "checkpoint", cfg)
        for folder in {cfg.teacher, *(over.get("teacher") for over in cfg.members)} - {None}:
            Model(locate(folder))  # builds the accurate model once if it is the teacher
    except (ValueError, PropscanError) as e:
        fail(f"teacher {e}" if isinstance(e, PropscanError) else str(e))
    try:  # last of the checks, so that a refused run leaves no folder behind
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as e:
        fail(f"cannot write into {out}: {problem(e)}")
    sources = [_set_name(a) for a in articles] if len(articles) > 1 else None
    try:
        build_model_folder(arts, labs, out, cfg, dev=dev, quantize=not no_quantize, log=lambda m: err.print(m, highlight=False),
                           sources=sources, dev_from=dev_figures_from, rule=rule)
    except OutputError as e:  # a checkpoint that could not be saved; the last whole one is kept
        fail(str(e), 1)
    except OSError as e:  # the export or the model card on a full disk
        if e.errno not in WRITE_ERRNOS:
            raise
        kept = f"what was trained is kept in {out / 'checkpoint'}, and " if (out / "checkpoint" / "weights.pt").is_file() else ""
        fail(f"cannot write the model into {out}: {problem(e)}; {kept}the same command goes on {once_writable(e)}", 1)


def _labelled_sets(articles: list[Path], labels: list[Path]):
    """Several labelled article sets as one (train and dev for a final model); an id in two sets is refused."""
    arts: dict[str, str] = {}
    labs: list = []
    for folder, path in zip(articles, labels):
        these = read_articles(folder)
        if both := sorted(set(these) & set(arts)):
            fail(f"{folder}: article {both[0]} is in an earlier --articles folder too")
        arts.update(these)
        labs += read_labels(path, these)
    return arts, labs


def _set_name(folder: Path) -> str:
    """How the card names a training set: PTC's folders by their split (train-articles: PTC v2 train)."""
    name = folder.name or folder.resolve().name  # the name given (a link's own name), "." resolved
    return f"PTC v2 {name.removesuffix('-articles')}" if name in ("train-articles", "dev-articles") else name


def _train_config(recipe: Optional[Path]):
    """TrainConfig and tuning rule from a recipe file (a config, or a model.json holding one and the rule it
    was tuned by); defaults without one, and today's rule (tune.Rule()) for a recipe that records none."""
    import json
    from dataclasses import fields

    from propscan.training.train import TrainConfig, recipe_type_problem
    from propscan.training.tune import Rule

    if recipe is None:
        return TrainConfig(), Rule()
    try:
        data = json.loads(recipe.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"{recipe}: not a readable JSON recipe ({e})")
    rule = Rule()
    if isinstance(data, dict) and "tuning_rule" in data:
        if not isinstance(data["tuning_rule"], dict):
            fail(f"{recipe}: tuning_rule is not an object")
        rule = Rule.recorded(data)
        if problem := rule.problem():
            fail(f"{recipe}: tuning_rule: {problem}")
    data = data.get("train_config", data) if isinstance(data, dict) else data
    known = {f.name for f in fields(TrainConfig)}
    if not isinstance(data, dict) or not set(data) <= known:
        unknown = sorted(set(data) - known) if isinstance(data, dict) else "not an object"
        fail(f"{recipe}: not a train config (unknown settings: {unknown})")
    if problem := recipe_type_problem(data):
        fail(f"{recipe}: {problem}")
    try:
        return TrainConfig(**data), rule
    except ValueError as e:
        fail(f"{recipe}: {e}")


@app.command()
def clean(
    path: str = typer.Argument(..., help="A file (or - for stdin) to check for scraping debris."),
    input_format: str = common.INPUT_FORMAT,
    json_out: bool = typer.Option(False, "--json", help="Print the removed ranges as JSON."),
) -> None:
    """Show what cleaning would remove before analysis (repeated teasers, share/comment footers, search debris), and why."""
    import json

    con = Console()
    failed = False
    for item in iter_documents([path], input_format=input_format):
        if isinstance(item, InputError):
            say("skipped", str(item))
            failed = True
            continue
        cleaned = clean_text(item.text)
        if json_out:
            rows = [{"kind": r.kind, "start": r.start, "end": r.end, "reason": r.reason, "text": item.text[r.start : r.end]}
                    for r in cleaned.removed]
            print(json.dumps({"id": item.id, "removed": rows}, ensure_ascii=False, indent=2))
            continue
        table = Table(title=f"{item.id}: {len(cleaned.removed)} removals, {len(item.text) - len(cleaned.text)} of {len(item.text)} characters", title_justify="left")
        for col in ("kind", "range", "reason", "text"):
            table.add_column(col, overflow="fold")
        for r in cleaned.removed:
            snippet = item.text[r.start : r.end]
            snippet = snippet if len(snippet) <= 80 else snippet[:77] + "..."
            table.add_row(r.kind, f"{r.start}-{r.end}", r.reason, repr(snippet))
        con.print(table)
    if failed:
        raise typer.Exit(1)


@app.command()
def techniques(
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
    model_dir: Optional[str] = typer.Option(None, "--model", metavar="fast|accurate|PATH", help="Whose figures to show: fast (the default), accurate, or a model folder."),
) -> None:
    """List the 14 techniques: definitions, examples, and how reliably a model finds each."""
    import json
    from dataclasses import asdict

    try:
        config = check(model_dir)  # read model.json only: nothing is built or loaded
    except PropscanError as e:
        fail(str(e))
    rel = reliability(config.get("name"), config.get("version"))
    if json_out:
        print(json.dumps([asdict(t) | {"reliability": rel.get(t.id)} for t in TECHNIQUES], indent=2, ensure_ascii=False))
        return
    table = Table(show_lines=True)
    table.add_column("id")
    table.add_column("technique")
    table.add_column("definition and example", ratio=1)
    table.add_column("the model's highlights (PTC dev)", ratio=1)
    for t in TECHNIQUES:
        r = rel.get(t.id)
        how = (f"{r['words']}; finds {r['recall']:.0%} of annotated spans; shown from confidence {r['default_min_confidence']:.2f}"
               if r else "no figures for this model")
        table.add_row(t.id, f"[on {t.colour}]  [/] {t.name}", f"{t.definition}\n[italic]e.g. {t.example}[/]", how)
    Console().print(table)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on. Not a loopback address: needs an API key or --insecure-public."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes; each loads the model once and runs one analysis at a time."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="PROPSCAN_API_KEY", show_envvar=True,
        help="Require this key on /v1 (Authorization: Bearer KEY or X-API-Key). Prefer the environment variable: arguments show in ps.",
    ),
    insecure_public: bool = typer.Option(False, "--insecure-public", help="Allow a non-loopback address without an API key."),
    max_body: str = typer.Option("2MB", "--max-body", help="Largest request body: bytes, or with kB / MB / KiB / MiB."),
    max_docs: int = typer.Option(32, min=1, help="Most documents in one batch request."),
    timeout: float = typer.Option(30.0, min=0.001, help="Seconds a request may take (reading, waiting, analysing) before a 504."),
    queue: int = typer.Option(16, min=0, help="Requests that may wait for the model, per worker; more get 503 + Retry-After."),
    allow_fetch: bool = typer.Option(False, "--allow-fetch", help="Let clients send a link ({\"url\": ...}); the server fetches public addresses only."),
    header_timeout: float = typer.Option(10.0, help="Seconds a connection has to send a request's line and headers, else it is closed."),
    max_connections: int = typer.Option(512, min=1, help="Open connections per worker; beyond, requests get 503."),
    model_dir: Optional[str] = common.MODEL,
) -> None:
    """Serve the web page and the REST API (FastAPI on uvicorn); localhost only by default."""
    from propscan.serve.server import run as run_server
    from propscan.serve.settings import (
        Settings,
        SettingsError,
        check_settings,
        parse_size,
    )

    try:
        size = parse_size(max_body)
    except ValueError as e:
        fail(f"--max-body: {e}")
    settings = Settings(
        host=host, port=port, workers=workers, api_key=api_key or None, insecure_public=insecure_public,
        max_body=size, max_docs=max_docs, timeout=timeout, queue=queue,
        model_dir=model_dir, header_timeout=header_timeout, max_connections=max_connections,
        allow_fetch=allow_fetch,
    )
    try:
        for warning in check_settings(settings):
            say("warning:", warning, "yellow")
        run_server(settings)
    except SettingsError as e:
        fail(str(e))


app.add_typer(corpus_app, name="corpus")


def main() -> None:
    # SIGTERM unwinds like Ctrl-C: output temp files are removed and finished work is kept
    signal.signal(signal.SIGTERM, _terminated)
    code: int | str | None = 0
    try:
        app(prog_name="propscan")  # ends with SystemExit (click's standalone mode)
    except SystemExit as e:
        code = e.code
    except PropscanError as e:
        say("error:", str(e), "bold red")
        code = 2
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EDQUOT, errno.EFBIG):
            raise
        code = _stdout_failed(e)
    try:
        sys.stdout.flush()
    except OSError as e:  # a full disk seen only at the last flush
        code = _stdout_failed(e)
    sys.exit(code)


def _stdout_failed(e: OSError) -> int:
    _quiet_stdout()
    say("error:", f"cannot write standard output: {e.strerror or e}", "bold red")
    return 1


def _terminated(signum, frame) -> None:  # noqa: ARG001
    raise SystemExit(128 + signal.SIGTERM)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's own last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    main()
