"""Time the HTML report for a large synthetic document (no model needed).

    python benchmarks/report_render.py [--mb 5] [--repeat 3] [--out FILE]

The text is the example op-ed repeated to the requested size, with one sentence score per sentence
and a span (sometimes two overlapping) in about half of the sentences, all 14 techniques mixed.
Prints the best render time of ``render_html`` and the size of the page it produced.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from pathlib import Path

from propscan.document import Analysis, Document, ModelInfo, SentenceScore, Span
from propscan.outputs.report import render_html
from propscan.techniques import TECHNIQUE_IDS

HERE = Path(__file__).resolve().parent


def synthetic(size: int, seed: int = 0) -> Analysis:
    rng = random.Random(seed)
    para = (HERE.parent / "examples" / "city-council-op-ed.txt").read_text(encoding="utf-8")
    text = (para * (size // len(para) + 1))[:size]
    sents, spans = [], []
    for m in re.finditer(r"[^.?!\n]+[.?!]?", text):
        s, e = m.span()
        sents.append(SentenceScore(s, e, rng.random()))
        if rng.random() < 0.5 and e - s > 10:
            a = s + rng.randrange((e - s) // 2)
            b = min(e, a + rng.randrange(5, e - s))
            spans.append(Span(a, b, rng.choice(TECHNIQUE_IDS), rng.random()))
            if rng.random() < 0.3 and b - a > 3:
                spans.append(Span(a + 2, b, rng.choice(TECHNIQUE_IDS), rng.random()))
    return Analysis(Document("synthetic", text), spans, sents, 0.5, ModelInfo("synthetic", "0"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=5.0, help="document size in millions of characters")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="also write the page here")
    args = ap.parse_args()
    a = synthetic(int(args.mb * 1_000_000))
    best, page = float("inf"), ""
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        page = render_html([a])
        best = min(best, time.perf_counter() - t0)
    size = len(page.encode("utf-8"))
    print(
        f"document: {len(a.document.text):,} characters, {len(a.sentences):,} sentences, {len(a.spans):,} spans\n"
        f"render_html: {best:.2f} s (best of {args.repeat}); output {size / 1e6:.1f} MB "
        f"({size / len(a.document.text.encode('utf-8')):.2f}x the text)"
    )
    if args.out:
        args.out.write_text(page, encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
