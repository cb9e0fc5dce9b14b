"""The technique-profile bar chart of a report, as inline SVG (no plotting library, no external files).

Bars are drawn in the technique's colour with a dark outline (so light colours such as Flag-waving's
yellow stay visible) and every bar carries its name and count as text, so the chart never relies on
colour alone. The SVG scales with its container (viewBox + width 100%).
"""

from __future__ import annotations

from markupsafe import Markup, escape

from propscan.techniques import BY_ID

ROW = 24  # px per bar
LABEL_W = 262  # room for the longest name ("Whataboutism / straw man / red herring") at 12px
BAR_W = 200  # the longest bar
COUNT_W = 46  # room for the count after a bar
WIDTH = LABEL_W + BAR_W + COUNT_W


def technique_bar_chart(counts: dict[str, int], chart_id: str = "chart") -> Markup:
    """Horizontal bars, one per technique with at least one span, largest first (ties: inventory order).

    ``counts`` maps technique id -> number of spans (``Analysis.counts``). ``chart_id`` must be unique
    in the page; it prefixes the ids that label the SVG for assistive technology.
    """
    cid = escape(chart_id)
    items = [(t, n) for t, n in counts.items() if n > 0]
    items.sort(key=lambda kv: -kv[1])  # stable: keeps inventory order for ties
    if not items:
        return Markup('<p class="empty">No technique detected.</p>')
    top = max(n for _, n in items)
    height = ROW * len(items) + 4
    total = sum(n for _, n in items)
    desc = "; ".join(f"{BY_ID[t].name}: {n}" for t, n in items)
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="{cid}-t {cid}-d" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{cid}-t">Technique profile: {total} span{"s" if total != 1 else ""} by technique</title>',
        f'<desc id="{cid}-d">{escape(desc)}</desc>',
    ]
    for row, (t, n) in enumerate(items):
        tech = BY_ID[t]
        y = row * ROW + 2
        w = max(2.0, BAR_W * n / top)
        parts.append(
            f'<g class="chart-row">'
            f'<text x="{LABEL_W - 8}" y="{y + 15}" text-anchor="end" class="chart-label">{escape(tech.name)}</text>'
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{ROW - 8}" rx="2" '
            f'fill="{escape(tech.colour)}" stroke="#222" stroke-width="0.75"/>'
            f'<text x="{LABEL_W + w + 6:.1f}" y="{y + 15}" class="chart-count">{n}</text>'
            f"</g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
