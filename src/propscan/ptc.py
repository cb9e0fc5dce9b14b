"""PTC / SemEval-2020 Task 11 file formats: article folders and FLC/TC or SI label files.

FLC/TC rows: ``id<TAB>technique<TAB>start<TAB>end``; SI rows: ``id<TAB>start<TAB>end``.
Offsets are code-point offsets into the article decoded as UTF-8, end exclusive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from propscan.atomic import atomic_write_text
from propscan.errors import InputError
from propscan.techniques import TECHNIQUE_IDS

ARTICLE_NAME = re.compile(r"^article(.+)\.txt$")


@dataclass(frozen=True, order=True)
class Label:
    article_id: str
    start: int
    end: int
    technique: str | None = None  # None in SI files


def article_id_for(path: Path) -> str:
    """``article123.txt`` -> ``123``; any other file name -> its stem."""
    m = ARTICLE_NAME.match(path.name)
    return m.group(1) if m else path.stem


def read_article(path: Path) -> str:
    # newline="" keeps the text byte-faithful so PTC offsets line up
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()
    except UnicodeDecodeError as e:
        raise InputError(path, f"not valid UTF-8 (byte {e.start})") from None
    except OSError as e:
        raise InputError(path, e.strerror or str(e)) from None


def read_articles(folder: Path) -> dict[str, str]:
    """All ``*.txt`` files of a folder, keyed by article id."""
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    articles: dict[str, str] = {}
    for p in sorted(folder.glob("*.txt")):
        aid = article_id_for(p)
        if aid in articles:
            raise InputError(p, f"article id {aid!r} is used by two files in this folder")
        articles[aid] = read_article(p)
    if not articles:
        raise InputError(folder, "no .txt articles in this folder")
    return articles


def _label_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".labels" or p.name.endswith(".labels"))
        if not files:
            raise InputError(path, "no .labels files in this folder")
        return files
    if not path.exists():
        raise InputError(path, "no such file")
    return [path]


def parse_label_line(line: str, where: str) -> Label:
    cols = line.rstrip("\r\n").split("\t")
    if len(cols) == 4:
        aid, tech, s, e = cols
        if tech not in TECHNIQUE_IDS:
            raise InputError(where, f"unknown technique {tech!r}")
    elif len(cols) == 3:
        aid, s, e = cols
        tech = None
    else:
        raise InputError(where, f"expected 3 (SI) or 4 (FLC/TC) tab-separated columns, got {len(cols)}")
    try:
        start, end = int(s), int(e)
    except ValueError:
        raise InputError(where, f"offsets must be integers, got {s!r} and {e!r}") from None
    if start < 0 or end <= start:
        raise InputError(where, f"bad span {start}-{end}: need 0 <= start < end")
    return Label(aid, start, end, tech)


def read_labels(path: Path, articles: dict[str, str] | None = None) -> list[Label]:
    """Read a labels file (or a folder of per-article files); check offsets against articles if given.

    Raises InputError naming file and line for the first bad row.
    """
    labels: list[Label] = []
    for f in _label_files(Path(path)):
        try:
            text = f.read_text(encoding="utf-8-sig")  # tolerate a BOM from spreadsheet exports
        except (UnicodeDecodeError, OSError) as e:
            raise InputError(f, f"cannot read labels: {e}") from None
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{f}:{n}"
            lab = parse_label_line(line, where)
            if articles is not None:
                if lab.article_id not in articles:
                    raise InputError(where, f"article {lab.article_id!r} is not in the articles folder")
                if lab.end > len(articles[lab.article_id]):
                    raise InputError(
                        where,
                        f"span {lab.start}-{lab.end} runs past the end of article {lab.article_id}"
                        f" ({len(articles[lab.article_id])} characters)",
                    )
            labels.append(lab)
    return labels


def format_flc(rows: Iterable[Label]) -> Iterator[str]:
    for r in rows:
        yield f"{r.article_id}\t{r.technique}\t{r.start}\t{r.end}\n"


def format_si(rows: Iterable[Label]) -> Iterator[str]:
    for r in rows:
        yield f"{r.article_id}\t{r.start}\t{r.end}\n"


def write_labels(path: Path, rows: Iterable[Label], si: bool = False) -> None:
    lines = format_si(rows) if si else format_flc(rows)
    atomic_write_text(Path(path), "".join(lines))
