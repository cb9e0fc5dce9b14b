"""Terminal view: the article with technique spans highlighted, a legend and a per-technique table.

On a TTY rich colours the spans; piped, the same layout comes out as plain text with spans marked
``[[text]]{Technique}`` so it stays readable and grep-able.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .document import Analysis
from .techniques import BY_ID


def highlighted(a: Analysis) -> Text:
    text = Text(a.document.text)
    for s in sorted(a.spans, key=lambda s: (s.end - s.start), reverse=True):  # short spans drawn last, on top
        text.stylize(f"underline on {BY_ID[s.technique].colour}", s.start, s.end)
    return text


def plain(a: Analysis) -> str:
    """Spans marked inline; overlapping spans are listed again below the text."""
    text, out, pos, shown = a.document.text, [], 0, []
    for s in sorted(a.spans, key=lambda s: (s.start, -s.end)):
        if s.start < pos:
            continue
        out += [text[pos : s.start], "[[", text[s.start : s.end], "]]{", BY_ID[s.technique].name, "}"]
        pos = s.end
        shown.append(s)
    out.append(text[pos:])
    shown_ids = {id(s) for s in shown}
    rest = [s for s in a.spans if id(s) not in shown_ids]  # a set: linear even with many spans
    if rest:
        out.append("\n\nOverlapping spans:\n")
        out += [f"  {s.start}-{s.end} {BY_ID[s.technique].name} ({s.score:.2f}): {text[s.start:s.end]!r}\n" for s in rest]
    return "".join(out)


def summary_table(a: Analysis) -> Table:
    # the title as Text, not a str: rich would parse a document id such as "notes[/]" as markup
    title = Text(f"{a.document.id}: article score {a.score:.2f}, {len(a.spans)} spans")
    table = Table(title=title, title_justify="left")
    table.add_column("technique")
    table.add_column("spans", justify="right")
    table.add_column("mean confidence", justify="right")
    for tech, n in sorted(a.counts.items(), key=lambda kv: -kv[1]):
        scores = [s.score for s in a.spans if s.technique == tech]
        name = Text(BY_ID[tech].name, style=f"on {BY_ID[tech].colour}")
        table.add_row(name, str(n), f"{sum(scores) / n:.2f}")
    return table


def render(a: Analysis, console: Console) -> None:
    if console.is_terminal:
        console.print(Group(highlighted(a), Text(""), summary_table(a)))
    else:
        console.print(plain(a), markup=False, highlight=False, soft_wrap=True)
        console.print(summary_table(a))
