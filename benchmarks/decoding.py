"""How far decoding alone can take the model: per-technique decoding knobs tuned on held-out vs on dev.

    python benchmarks/decoding.py [--ptc ../shared/data/ptc] [--model DIR]

For every technique it tabulates FLC credit (SemEval-2020 formula) over threshold x max gap x span
growth (none | to the clause | to the sentence), on the held-out train articles (the model's tuning set,
``train.split_ids``) and on PTC dev. It then prints micro FLC F1 for: the model's own decoding; knobs
picked on held-out (what tune.py could do with more freedom); and knobs picked on dev itself, an oracle
that bounds what decoding can give this network (not a result: it is fitted to the test set).
About 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from propscan.decode import runs, sentence_bounds, spans_from_runs
from propscan.evaluate import flc_rows
from propscan.model import MODEL_DIR, Model
from propscan.ptc import read_articles, read_labels
from propscan.techniques import TECHNIQUE_IDS
from propscan.train import TrainConfig, held_out
from propscan.tune import GRID, OFF, _micro_f1, _parts, ascend

HERE = Path(__file__).resolve().parent
GAPS = (0, 1, 2, 3, 5, 8)
GROWTH = ("none", "clause", "sentence")
CLAUSE_MARK = re.compile(r"[,;:()\-–—\"“”]")


def grow(text: str, s: int, e: int, how: str) -> tuple[int, int]:
    """Grow [s, e) to the enclosing clause (between clause punctuation) or sentence."""
    if how == "none":
        return s, e
    for a, b in sentence_bounds(text):
        if a <= s < b:
            if how == "sentence":
                return a, max(e, b)
            left = [m.end() for m in CLAUSE_MARK.finditer(text, a, s)]
            right = [m.start() for m in CLAUSE_MARK.finditer(text, e, b)]
            na, nb = (left[-1] if left else a), (right[0] if right else b)
            while na < nb and text[na] == " ":
                na += 1
            while nb > na and text[nb - 1] in " .":
                nb -= 1
            return na, max(nb, e)
    return s, e


def table(model: Model, articles: dict[str, str], labels) -> dict[str, dict]:
    outs = {aid: model.token_outputs(text) for aid, text in articles.items()}
    gold = flc_rows(labels)
    tab: dict[str, dict] = {}
    for t, tech in enumerate(TECHNIQUE_IDS):
        g = [r for r in gold if r[1] == tech]
        tab[tech] = {OFF: _parts(g, [], tech)}
        for th in GRID:
            for gap in GAPS:
                found = {
                    aid: spans_from_runs(None, articles[aid], out, runs(out.probs[:, t] >= th, t, gap))
                    for aid, out in outs.items()
                }
                for how in GROWTH:
                    pred = [(aid, tech, *grow(articles[aid], s.start, s.end, how)) for aid, sp in found.items() for s in sp]
                    tab[tech][(float(th), gap, how)] = _parts(g, pred, tech)
    return tab


def score(tab: dict, choice: dict) -> float:
    return _micro_f1([tab[t][choice[t]] for t in tab])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ptc", type=Path, default=HERE.parent.parent / "shared/data/ptc")
    ap.add_argument("--model", type=Path, default=MODEL_DIR)
    args = ap.parse_args()
    model = Model(args.model)
    meta = json.loads((args.model / "model.json").read_text())
    train_arts = read_articles(args.ptc / "train/train-articles")
    train_labels = read_labels(args.ptc / "train/train-task-flc-tc.labels", train_arts)
    held, held_labels = held_out(train_arts, train_labels, TrainConfig(**meta.get("train_config", {})).val_every)
    dev = read_articles(args.ptc / "dev/dev-articles")
    dev_labels = read_labels(args.ptc / "dev/dev-task-flc-tc.labels", dev)
    ht, dt = table(model, held, held_labels), table(model, dev, dev_labels)

    gap = meta["decoding"].get("max_gap", 1)
    own = {t: OFF if th >= OFF else (float(th), gap, "none") for t, th in meta["thresholds"].items() if t != "any"}
    print(f"{'decoding':<64} {'held-out FLC':>12} {'dev FLC':>8}")
    print(f"{'the model own (threshold per technique, one gap)':<64} {score(ht, own):12.3f} {score(dt, own):8.3f}")
    for name, keep in (
        ("threshold + gap per technique", lambda k: k == OFF or k[2] == "none"),
        ("threshold + gap + growth per technique", lambda k: True),
    ):
        for on, tab in (("held-out", ht), ("dev (oracle)", dt)):
            choice = ascend({t: {k: v for k, v in opts.items() if keep(k)} for t, opts in tab.items()})
            print(f"{name + ', picked on ' + on:<64} {score(ht, choice):12.3f} {score(dt, choice):8.3f}")


if __name__ == "__main__":
    main()
