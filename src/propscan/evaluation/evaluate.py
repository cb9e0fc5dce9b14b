"""Evaluation on PTC-format data with the SemEval-2020 Task 11 formulas (SI, TC, FLC, per technique)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from propscan.evaluation import metrics
from propscan.pipeline import calibrate, encoding
from propscan.pipeline.decode import decode_spans
from propscan.pipeline.model import Model, TokenOutputs
from propscan.ptc import Label
from propscan.techniques import TECHNIQUE_IDS


# The five dev figures a model is judged by (docs/training.md: the ship rule), in Report.five()'s order;
# lower is better for the calibration error only.
FIVE = ("SI", "FLC", "TC", "mean", "ECE")


@dataclass
class Report:
    si: metrics.PRF
    flc: metrics.PRF
    flc_by_technique: dict[str, metrics.PRF]
    tc: metrics.PRF | None
    tc_by_technique: dict[str, metrics.PRF] | None
    # expected calibration error of the span scores (10 bins) and its table, when scores were given
    ece: float | None = None
    reliability: list[tuple[float, float, int, float, float]] | None = None
    confidences: np.ndarray | None = None  # the scores the ECE was computed over, for ece_floor()

    @property
    def mean_technique_f1(self) -> float:
        """The unweighted mean of the 14 per-technique FLC F1 scores (rare techniques count as much)."""
        return sum(p.f1 for p in self.flc_by_technique.values()) / len(self.flc_by_technique)

    def five(self) -> tuple[float, ...]:
        """SI, FLC and TC F1, the mean per-technique FLC F1 and the ECE (FIVE)."""
        return self.si.f1, self.flc.f1, self.tc.f1 if self.tc else float("nan"), self.mean_technique_f1, \
            self.ece if self.ece is not None else float("nan")

    def ece_floor(self) -> tuple[float, float] | None:
        """The ECE a perfectly calibrated model with these confidences would show by chance (mean, 95th
        percentile; calibrate.ece_floor), when scores were given."""
        return None if self.confidences is None else calibrate.ece_floor(self.confidences)

    def as_dict(self) -> dict:
        d = {
            "si": self.si.as_dict(),
            "flc": self.flc.as_dict(),
            "flc_by_technique": {k: v.as_dict() for k, v in self.flc_by_technique.items()},
            "flc_mean_technique_f1": self.mean_technique_f1,
        }
        if self.ece is not None:
            d["ece"] = self.ece
            d["reliability"] = [dict(zip(("low", "high", "n", "mean_score", "share_correct"), row)) for row in self.reliability]
        if self.tc is not None:
            d["tc"] = self.tc.as_dict()
            d["tc_by_technique"] = {k: v.as_dict() for k, v in self.tc_by_technique.items()}
        return d


def mean_five(reports: list[Report]) -> tuple[float, ...]:
    """The five figures (Report.five) averaged over reports, e.g. cross-fittings over several partitions of dev."""
    return tuple(sum(col) / len(col) for col in zip(*(r.five() for r in reports)))


def score(gold: list[Label], pred: list[Label], tc_pred: list[Label] | None = None,
          scores: list[float] | None = None) -> Report:
    """SI, FLC and TC; with ``scores`` (one per ``pred`` row), their calibration too."""
    si = metrics.si_score([(g.article_id, g.start, g.end) for g in gold], [(p.article_id, p.start, p.end) for p in pred])
    flc, flc_t = metrics.flc_score(flc_rows(gold), flc_rows(pred), TECHNIQUE_IDS)
    tc = tc_t = None
    if tc_pred is not None:
        tc, tc_t = metrics.tc_score(flc_rows(gold), flc_rows(tc_pred), TECHNIQUE_IDS)
    report = Report(si, flc, flc_t, tc, tc_t)
    if scores is not None:
        report.confidences = np.array(scores, dtype=float)
        report.ece, report.reliability = calibrate.reliability(report.confidences, correct(gold, pred))
    return report


def correct(gold: list[Label], pred: list[Label]) -> np.ndarray:
    """For each predicted span: did annotators mark an overlapping span of the same technique?"""
    by: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for g in gold:
        by[(g.article_id, g.technique)].append((g.start, g.end))
    return np.array([any(s < p.end and e > p.start for s, e in by[(p.article_id, p.technique)]) for p in pred], dtype=float)


def flc_rows(rows: list[Label]) -> list[tuple[str, str, int, int]]:
    """Labels as the (article id, technique, start, end) rows the metrics take."""
    return [(r.article_id, r.technique, r.start, r.end) for r in rows]


def classify_given_spans(
    model: Model, text: str, out: TokenOutputs, spans: list[tuple[int, int]], repeat_bonus: float | None = None
) -> list[list[str]]:
    """Techniques ranked by the span head for each span (a span outside the tokens gets the inventory order)."""
    ranges = encoding.token_ranges(out.enc, spans)
    ok = [i for i, r in enumerate(ranges) if r[0] >= 0]
    probs = model.classify_spans(text, out, [ranges[i] for i in ok], repeat_bonus)
    order: dict[int, np.ndarray] = {i: np.argsort(-p) for i, p in zip(ok, probs)}
    return [[TECHNIQUE_IDS[k] for k in order.get(i, np.arange(len(TECHNIQUE_IDS)))] for i in range(len(spans))]


def gold_span_counts(gold: list[Label]) -> dict[str, dict[tuple[int, int], int]]:
    """Per article, each distinct gold span and how many techniques it carries."""
    by: dict[str, dict[tuple[int, int], int]] = defaultdict(lambda: defaultdict(int))
    for g in gold:
        by[g.article_id][(g.start, g.end)] += 1
    return by


def tc_labels(
    model: Model, aid: str, text: str, out: TokenOutputs, counts: dict[tuple[int, int], int],
    repeat_bonus: float | None = None,
) -> list[Label]:
    """TC: for each distinct gold span with k labels, the k most probable techniques."""
    spans = list(counts)
    ranked = classify_given_spans(model, text, out, spans, repeat_bonus)
    return [Label(aid, s, e, t) for (s, e), r in zip(spans, ranked) for t in r[: counts[(s, e)]]]


def predict(
    model: Model,
    articles: dict[str, str],
    gold: list[Label] | None = None,
    min_confidence: float | None = None,
    threshold_for: dict[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
    scores: list[float] | None = None,
    outputs: dict[str, TokenOutputs] | None = None,
) -> tuple[list[Label], list[Label] | None]:
    """FLC predictions for every article, and TC predictions for the gold spans when gold is given.
    ``scores``, when given, receives each prediction's confidence, in order. ``outputs`` (per article
    id), when given, are the network's outputs already computed: it does not run again."""
    gold_by = gold_span_counts(gold or [])
    pred: list[Label] = []
    tc: list[Label] | None = [] if gold is not None else None
    for aid, text in articles.items():
        out = outputs[aid] if outputs is not None else model.token_outputs(text)
        for s in decode_spans(model, text, out, min_confidence, threshold_for):
            pred.append(Label(aid, s.start, s.end, s.technique))
            if scores is not None:
                scores.append(s.score)
        if tc is not None and gold_by[aid]:
            tc += tc_labels(model, aid, text, out, gold_by[aid])
        if progress:
            progress(aid)
    return pred, tc


def evaluate(model: Model, articles: dict[str, str], gold: list[Label], **kw) -> Report:
    confidences: list[float] = []
    pred, tc = predict(model, articles, gold, scores=confidences, **kw)
    return score(gold, pred, tc, confidences)
