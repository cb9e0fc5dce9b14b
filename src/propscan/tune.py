"""Tune decoding on held-out data: the span head's repetition bonus, per-technique thresholds, the
"any" threshold, and the decoder mode.

Runs the exported (ONNX) model once per held-out article and then searches thresholds on the cached
token outputs. The objective is micro FLC F1 (SemEval-2020 formula) on the split of PTC train that
training held out (train.split_ids); PTC dev is never used for tuning.

FLC scores each technique separately and micro-averages by summing numerators and denominators, so
a technique's contribution depends only on its own spans: we tabulate (precision credit, recall
credit, #pred, #gold) per technique and threshold once, then pick thresholds by coordinate ascent on
the micro F1 — which can switch a technique's own channel off where it only adds false positives.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from . import metrics
from .decode import ANY, candidate_runs, runs, spans_from_runs
from .evaluate import flc_rows, gold_span_counts, tc_labels
from .model import Model, TokenOutputs
from .ptc import Label
from .techniques import TECHNIQUE_IDS

# fine steps at the low end: rare techniques rarely get high token probabilities
GRID = np.round(np.concatenate([[0.02, 0.04, 0.06, 0.08], np.arange(0.10, 0.91, 0.05)]), 2)
OFF = 1.01  # a threshold no probability reaches: the technique's own channel is off
GAPS = (0, 1, 2, 3, 5)
# Repetition log-odds added for spans whose words occurred earlier (model.repetition_prior). The shipped
# model's held-out TC micro-F1 by bonus (tune.py, 47 articles): 0 -> 0.618, 2 -> 0.620, 3 -> 0.622,
# 4 -> 0.628, 6 -> 0.630, 8 -> 0.626 (the 2026-11-25 weights peaked at 4: 0.632).
REPEAT_BONUSES = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)

Row = tuple[str, str, int, int]


def _rows(aid: str, spans) -> list[Row]:
    return [(aid, s.technique, s.start, s.end) for s in spans]


def _parts(gold: list[Row], pred: list[Row], tech: str) -> tuple[float, float, int, int]:
    prf = metrics.flc_score(gold, pred, [tech])[1][tech]
    return prf.precision * prf.n_pred, prf.recall * prf.n_gold, prf.n_pred, prf.n_gold


def _micro_f1(parts: list[tuple[float, float, int, int]]) -> float:
    pn, rn, npred, ngold = (sum(x) for x in zip(*parts))
    p = pn / npred if npred else 0.0
    r = rn / ngold if ngold else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def ascend(table: dict[str, dict[float, tuple]], passes: int = 3) -> dict[str, float]:
    """Coordinate ascent over per-technique thresholds maximising micro F1."""
    choice = {t: max(opts, key=lambda th: _micro_f1([opts[th]])) for t, opts in table.items()}
    for _ in range(passes):
        for t, opts in table.items():
            others = [table[u][choice[u]] for u in table if u != t]
            choice[t] = max(opts, key=lambda th: _micro_f1(others + [opts[th]]))
    return choice


def technique_table(
    articles: dict[str, str], outs: dict[str, TokenOutputs], gold: list[Row], base: dict[str, list[Row]]
) -> dict[str, dict[float, tuple]]:
    """Per technique and threshold: FLC parts of (base spans of that technique + its own runs)."""
    table: dict[str, dict[float, tuple]] = {}
    for t, tech in enumerate(TECHNIQUE_IDS):
        g = [r for r in gold if r[1] == tech]
        table[tech] = {OFF: _parts(g, base.get(tech, []), tech)}
        for th in GRID:
            pred = list(base.get(tech, []))
            for aid, out in outs.items():
                pred += _rows(aid, spans_from_runs(None, articles[aid], out, runs(out.probs[:, t] >= th, t)))
            table[tech][float(th)] = _parts(g, pred, tech)
    return table


def tune_repeat_bonus(
    model: Model, articles: dict[str, str], outs: dict[str, TokenOutputs], gold: list[Label]
) -> tuple[float, dict[float, float]]:
    """The repetition bonus with the best TC micro-F1 on the held-out gold spans (ties: the smaller)."""
    counts, gold_rows = gold_span_counts(gold), flc_rows(gold)
    by_bonus = {}
    for bonus in REPEAT_BONUSES:
        pred = [lab for aid in outs if counts[aid] for lab in tc_labels(model, aid, articles[aid], outs[aid], counts[aid], bonus)]
        by_bonus[bonus] = metrics.tc_score(gold_rows, flc_rows(pred), TECHNIQUE_IDS)[0].f1
    best = max(REPEAT_BONUSES, key=lambda b: (round(by_bonus[b], 6), -b))
    return best, by_bonus


def tune(model: Model, articles: dict[str, str], gold: list[Label], log=print) -> dict:
    outs: dict[str, TokenOutputs] = {aid: model.token_outputs(text) for aid, text in articles.items()}
    gold_rows: list[Row] = flc_rows(gold)
    # 0. the span head's repetition bonus (TC on the held-out gold spans); the any+classify decoder uses it
    bonus, tc_by_bonus = tune_repeat_bonus(model, articles, outs, gold)
    model.decoding = {**model.decoding, "repeat_bonus": bonus}
    log("  repetition bonus (held-out TC F1): " + ", ".join(f"{b:g} -> {f:.3f}" for b, f in tc_by_bonus.items())
        + f" -> {bonus:g}")

    def any_classify(th_any: float) -> list[Row]:
        vec = np.full(len(TECHNIQUE_IDS) + 1, OFF, dtype=np.float32)
        vec[ANY] = th_any
        pred: list[Row] = []
        for aid, out in outs.items():
            pred += _rows(aid, spans_from_runs(model, articles[aid], out, candidate_runs(out.probs, vec, "any+classify")))
        return pred

    # 1. the "any" channel + span classifier
    by_any = {float(th): any_classify(float(th)) for th in GRID}
    th_any = max(by_any, key=lambda th: metrics.flc_score(gold_rows, by_any[th])[0].f1)
    base_rows = by_any[th_any]
    scores = {"any+classify": metrics.flc_score(gold_rows, base_rows)[0].f1}
    # 2. technique channels alone, and added to the any+classify spans
    choices = {}
    for mode, base in (("technique", {}), ("union", _by_technique(base_rows))):
        table = technique_table(articles, outs, gold_rows, base)
        choices[mode] = ascend(table)
        scores[mode] = _micro_f1([table[t][choices[mode][t]] for t in table])
    mode = max(scores, key=scores.get)
    per_tech = choices.get(mode, {t: OFF for t in TECHNIQUE_IDS})
    thresholds = {t: float(per_tech[t]) for t in TECHNIQUE_IDS} | {"any": th_any}
    # 3. how many low-probability tokens may sit inside one span, for the chosen thresholds
    vec = np.array([thresholds[t] for t in TECHNIQUE_IDS] + [th_any], dtype=np.float32)
    by_gap = {}
    for gap in GAPS:
        pred: list[Row] = []
        for aid, out in outs.items():
            pred += _rows(aid, spans_from_runs(model, articles[aid], out, candidate_runs(out.probs, vec, mode, gap)))
        by_gap[gap] = metrics.flc_score(gold_rows, pred)[0].f1
    max_gap = max(by_gap, key=by_gap.get)
    log("  max gap: " + ", ".join(f"{g} -> {f:.3f}" for g, f in by_gap.items()))
    for t in TECHNIQUE_IDS:
        log(f"  {t:<40} threshold {'off' if per_tech[t] >= OFF else f'{per_tech[t]:.2f}'}")
    log(f"  any threshold {th_any:.2f}; held-out FLC F1 by mode: "
        + ", ".join(f"{m} {f:.3f}" for m, f in scores.items()) + f" -> {mode}")
    scores[f"{mode}, max_gap {max_gap}"] = by_gap[max_gap]
    return {
        "thresholds": thresholds,
        "decoding": {"mode": mode, "max_gap": max_gap, "repeat_bonus": bonus},
        "heldout_flc_f1": scores,
        "heldout_tc_f1": tc_by_bonus[bonus],
    }


def _by_technique(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        out[r[1]].append(r)
    return out
