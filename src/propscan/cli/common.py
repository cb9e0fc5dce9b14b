"""What every command shares: one-line messages on stderr, the usage-error exit, the progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from propscan.techniques import check_confidence, parse_cutoffs

# soft_wrap: an error stays on one line however long the path, even when stderr is not a terminal
err = Console(stderr=True, soft_wrap=True)


def say(label: str, message: str, style: str = "red") -> None:
    """One line on stderr; the message (paths, label rows) is printed literally, never as markup."""
    err.print(Text.assemble((label, style), " ", message), highlight=False)


def fail(message: str, code: int = 2) -> None:
    say("error:", message, "bold red")
    raise typer.Exit(code)


def progress_bar(enabled: bool) -> Progress:
    """The progress bar of every multi-document command (on stderr, only on a terminal)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not enabled,
        transient=True,
    )


def url_list(path: Optional[Path]) -> list[str]:
    """The URLs of a --urls file: one a line; blank lines and # comments skipped."""
    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        fail(f"--urls {path}: {getattr(e, 'strerror', None) or e}")
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def cutoff_options(min_confidence: str | None, threshold_for: list[str] | None) -> tuple[float | None, dict[str, float]]:
    """--min-confidence and --threshold-for, checked: a one-line error and exit 2 when wrong."""
    value = None
    try:
        if min_confidence is not None:
            value = check_confidence(min_confidence, "--min-confidence:")
    except ValueError as e:
        fail(str(e))
    try:
        return value, parse_cutoffs(threshold_for or [])
    except ValueError as e:
        fail(f"--threshold-for: {e}")
    raise AssertionError  # fail() exits


# Options that analyze and corpus run share, defined once (typer reads these objects per command)
PATHS = typer.Argument(None, help="Files, folders (recursive), http(s) URLs, or - for stdin.")
URLS = typer.Option(None, "--urls", metavar="FILE", help="Also analyse the web pages listed in FILE, one URL a line (# starts a comment).")
INPUT_FORMAT = typer.Option("auto", help="auto | text | html | jsonl | csv")
TEXT_FIELD = typer.Option("text", help="JSONL/CSV field holding the article text.")
ID_FIELD = typer.Option("id", help="JSONL/CSV field holding the document id.")
NO_CLEAN = typer.Option(False, "--no-clean", help="Analyse the text exactly as given, without removing scraping debris.")
MODEL = typer.Option(None, "--model", metavar="fast|accurate|PATH",
                     help="The model: fast (the default; MiniLM), accurate (MPNet, after make install-accurate), or a model folder.")
