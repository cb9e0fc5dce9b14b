"""Terminal view: the article with technique spans highlighted, a legend and a per-technique table.

On a TTY rich colours the spans; piped, the same layout comes out as plain text with spans marked
``[[text]]{Technique}`` so it stays readable and grep-able. Text that cleaning removed before the
model read it is dim and struck through on a TTY, and marked ``{removed: text}`` when piped.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from propscan.document import Analysis
from propscan.pipeline.model import reliability
from propscan.techniques import BY_ID


def highlighted(a: Analysis) -> Text:
    text = Text(a.document.text)
    for r in a.removed:
        text.stylize("dim strike", r["start"], r["end"])
    # one style per passage (its most confident technique); short passages drawn last, on top
    for p in sorted(a.passages, key=lambda p: (p[0].end - p[0].start), reverse=True):
        text.stylize(f"underline on {BY_ID[p[0].technique].colour}", p[0].start, p[0].end)
    return text


def plain(a: Analysis) -> str:
    """Passages marked inline, each with all its techniques; overlapping passages are listed below;
    removed debris marked ``{removed: ...}`` (spans never fall inside it: the model did not read it)."""
    text, out, pos, shown = a.document.text, [], 0, set()
    passages = a.passages
    marks = [(p[0].start, p[0].end, p) for p in passages] + [(r["start"], r["end"], None) for r in a.removed]
    for start, end, p in sorted(marks, key=lambda m: (m[0], -m[1])):
        if start < pos:
            continue
        if p is None:
            core = text[start:end].rstrip()  # the line break after a removed line stays outside the marker
            out += [text[pos:start], "{removed: ", core, "}", text[start + len(core) : end]]
        else:
            out += [text[pos:start], "[[", text[start:end], "]]{", " + ".join(BY_ID[x.technique].name for x in p), "}"]
            shown.add(id(p))
        pos = end
    out.append(text[pos:])
    rest = [p for p in passages if id(p) not in shown]
    if rest:
        out.append("\n\nOverlapping passages:\n")
        out += [f"  {p[0].start}-{p[0].end} {' + '.join(f'{BY_ID[x.technique].name} ({x.score:.2f})' for x in p)}: "
                f"{text[p[0].start:p[0].end]!r}\n" for p in rest]
    return "".join(out)


def summary_table(a: Analysis) -> Table:
    # the title as Text, not a str: rich would parse a document id such as "notes[/]" as markup
    n = len(a.passages)
    title = Text(f"{a.document.id}: article score {a.score:.2f}, {n} passage{'' if n == 1 else 's'} highlighted")
    table = Table(title=title, title_justify="left")
    table.add_column("technique")
    table.add_column("passages", justify="right")
    table.add_column("mean confidence", justify="right")
    table.add_column("this model's highlights of it")
    rel = reliability(a.model.name, a.model.version)
    for tech, k in sorted(a.counts.items(), key=lambda kv: -kv[1]):
        scores = [s.score for s in a.spans if s.technique == tech]
        name = Text(BY_ID[tech].name, style=f"on {BY_ID[tech].colour}")
        table.add_row(name, str(k), f"{sum(scores) / k:.2f}", rel.get(tech, {}).get("words", ""))
    return table


def as_text(a: Analysis, width: int = 100) -> str:
    """What the terminal shows when piped (marked text, then the summary table), as a string: for -o FILE."""
    import io

    buf = io.StringIO()
    render(a, Console(file=buf, width=width, force_terminal=False, no_color=True))
    return buf.getvalue()


def render(a: Analysis, console: Console) -> None:
    if console.is_terminal:
        console.print(Group(highlighted(a), Text(""), summary_table(a)))
    else:
        console.print(plain(a), markup=False, highlight=False, soft_wrap=True)
        console.print(summary_table(a))
