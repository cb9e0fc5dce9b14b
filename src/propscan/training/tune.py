"""Tune detection: per technique, the detector and its cutoff; the calibration; the span head's
repetition bonus.

Runs the exported (ONNX) model once per article, then searches on the cached token outputs. The tuning
articles are the split of PTC train that training held out (train.split_ids) and, when a build is
given PTC dev, dev too. The dev figures are then cross-fitted (``cross_fitted``): each fifth of dev is
scored with settings tuned on the held-out articles and the other four fifths, so they are what an
article the tuning never saw gets. Why dev joins: 47 held-out articles hold 5-30 gold spans of a rare
technique, too few to choose its detector (held-out F1 0.32 for Doubt, dev 0.05), and the same
articles then also fitted the calibration, which made it over-confident on dev (ECE 0.079). Tuned on
107 articles, the cross-fitted dev figures were: mean per-technique FLC F1 0.108 (0.101 on held-out
alone), ECE 0.047 (docs/experiments.md, 2026-12-01 fourth session).

Each technique is tuned for its own FLC F1 (SemEval-2020 formula), never for the micro average: the
micro objective switched the eight weakest techniques off (their spans only add false positives to
the total), which made a 14-technique tool report five. A technique's detector and cutoff are picked
by its own F1; then one calibration maps every detector's evidence onto the probability that the span
is right (calibrate.py), so a confidence means the same for every technique. The calibration is fitted
on spans found out of fold (each fifth of the tuning articles detected with settings chosen on the
rest), because the settings chosen on an article find spans there that are right more often than an
unseen article's (Rule.calibration).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import astuple, dataclass, fields, replace

import numpy as np

from propscan.evaluation import metrics
from propscan.evaluation.evaluate import Report, correct, flc_rows, gold_span_counts, predict, score, tc_labels
from propscan.pipeline import calibrate
from propscan.pipeline.detect import EVIDENCE_FLOOR, REPETITION, Context, Detector, Settings, detect
from propscan.pipeline.model import Model, TokenOutputs
from propscan.ptc import Label
from propscan.techniques import TECHNIQUE_IDS

# Evidence cutoffs searched, fine at the low end: rare techniques rarely get high probabilities.
# It starts at detect.EVIDENCE_FLOOR, the lowest evidence the runtime keeps.
GRID = np.round(np.concatenate([[EVIDENCE_FLOOR, 0.03, 0.04, 0.06, 0.08], np.arange(0.10, 0.91, 0.05)]), 2)
GAPS = (0, 1, 2, 3, 5)
# The detectors each technique may use (detect.py); Repetition also tries the repeated-phrase ones.
CHANNELS = [Detector("channel", gap) for gap in GAPS]
CLASSIFIERS = [Detector("classify", gap, th) for th in (0.2, 0.3, 0.4, 0.5) for gap in (1, 5)]
# The repeated-phrase detectors a tuning rule may search (Rule.repeaters): evidence at the occurrence
# (LOCAL, the rule before 2026-12-03's fifth session) or pooled over the phrase's occurrences (POOLED).
# Cross-fitted PTC dev, each shipped network by its recorded rule, local -> pooled (SI / FLC / mean
# per-technique FLC F1 / ECE; Repetition's own F1): fast 2026-12-01.5 0.4118 -> 0.4094, 0.2127 -> 0.2216,
# 0.1107 -> 0.1155, 0.0441 -> 0.0355 (0.129 -> 0.197); accurate 2026-12-03.3 0.4434 -> 0.4524, 0.2601 ->
# 0.2694, 0.1300 -> 0.1410, 0.0203 -> 0.0232 (0.06 -> 0.218); TC unchanged (docs/experiments.md).
# FLC and the mean rise for both, so Rule's default is POOLED; its costs are the fast model's SI and the
# accurate one's ECE (still half the 0.05 target). By the accurate model's rule (narrow, out of fold) with
# pooled repeaters the fast network gains on all five figures: 0.4154 / 0.2205 / 0.1155 / 0.0388, TC
# 0.6199 (propscan-minilm 2026-12-01.6).
LOCAL, POOLED = "local", "pooled"
REPEATER_SETS = {
    LOCAL: [Detector("repeat", 0, ngram=n) for n in (1, 2, 3)],
    POOLED: [Detector("repeat", 0, ngram=n, pool=True) for n in (1, 2, 3)],
}
# The detector sets a tuning rule may search (Rule.detectors). NARROW keeps six of the thirteen: with fewer
# options the choice on ~120 articles overfits less (cross-fitted PTC dev, out-of-fold calibration, rate
# floor 0.25; SI / FLC / mean per-technique FLC F1 / ECE, all -> narrow: fast 0.4106 -> 0.4171, 0.2122 ->
# 0.2117, 0.1105 -> 0.1110, 0.0432 -> 0.0425; accurate 0.4369 -> 0.4420, 0.2500 -> 0.2497, 0.1200 -> 0.1242,
# 0.0239 -> 0.0235; docs/experiments.md, 2026-12-03 third session). Rule's default stays ALL: FLC is a
# little lower by NARROW for both models, so a retune by it does not pass the ship rule (fourth session).
ALL, NARROW = "all", "narrow"
DETECTOR_SETS = {
    ALL: CHANNELS + CLASSIFIERS,
    NARROW: [d for d in CHANNELS if d.max_gap in (2, 5)] + [d for d in CLASSIFIERS if d.any_threshold in (0.2, 0.3)],
}
# Repetition log-odds added for spans whose words occurred earlier (model.repetition_prior). The shipped
# model's TC micro-F1 by bonus on the 122 tuning articles (scripts/retune_model.py, 2026-12-01.5,
# onnxruntime 1.32.0): 0 -> 0.588, 1 -> 0.595, 2 -> 0.602, 4 -> 0.612, 6 -> 0.620, 8 -> 0.621 (on
# 2026-12-01.4's older runtime outputs: 0.623 at 8); larger ones measured lower
# (a one-off script, same day: 10 -> 0.621 and 16 -> 0.620 on held-out, 0.616 / 0.615 on dev).
REPEAT_BONUSES = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
# What a technique's detector must do on the held-out articles to be picked for its own F1: be right
# at least PRECISION_FLOOR of the time (FLC precision) and predict at most RATE_CAP spans per gold span.
# Without them, own-F1 tuning on 47 articles picks floods of low-precision spans for the rare
# techniques (dev micro FLC 0.178, mean per-technique F1 0.098); with them 0.2125 / 0.101, all 14
# techniques predicted (PTC dev, 2026-11-30 weights; floors 0.15 and caps 3 measured lower, see
# docs/experiments.md).
PRECISION_FLOOR = 0.10
RATE_CAP = 2.0
# ... and predict at least RATE_FLOOR spans per gold span: otherwise tuning may pick a setting that
# fires once in 122 articles (Appeal to authority, 1 span, on onnxruntime 1.32.0 outputs) and predicts
# nothing on dev: the technique switched off in all but name. A technique with no precise setting in
# that window gets its best one below the floor (its reliability words then say it is rarely right),
# and only one with no setting in the window its most precise (docs/experiments.md, 2026-12-02, third session).
RATE_FLOOR = 0.25
FOLDS = 5
# Dev is dealt into fifths this many ways (folds_of's partitions) for the figures a model card and
# benchmarks/quality.py report as their mean: one partition's calibration error is a draw (the
# shipped fast model's: 0.018 on the first, 0.030-0.061 on others; docs/experiments.md, 2026-12-04,
# sixteenth session), while SI, FLC and TC move by under 0.01.
PARTITIONS = 5
SHRINKS = (0.1, 0.3, 1.0, 3.0, 10.0)
# The spans the calibration is fitted on. OUT_OF_FOLD: each fifth of the tuning articles detected by
# the detectors and cutoffs chosen on the other four fifths, as an unseen article is. IN_SAMPLE (the
# rule before 2026-12-03): detected by those chosen on the same articles, whose spans are right more
# often than an unseen article's, because the choice favoured what happened to be right there: the
# 12-block accurate network's confidences were 0.04 too high on dev (0.302 shown, 0.263 right; out of
# fold: docs/experiments.md, 2026-12-03).
OUT_OF_FOLD, IN_SAMPLE = "out_of_fold", "in_sample"
# OUT_OF_FOLD_CUTOFFS: each fifth detected by the detectors chosen on all the tuning articles, at the cutoffs
# chosen for them on the other four fifths. A technique's map turns its runtime detector's evidence into a
# probability; fitted on spans of whatever detector each fold chose, it also saw other kinds of evidence
# (a channel's peak probability beside the span head's) wherever the folds disagreed. Cross-fitted PTC dev,
# accurate 2026-12-03.3's network, narrow detectors, pooled repeaters (SI / FLC / mean per-technique F1 / ECE):
# OUT_OF_FOLD 0.4524 / 0.2694 / 0.1410 / 0.0232, OUT_OF_FOLD_CUTOFFS 0.4528 / 0.2675 / 0.1399 / 0.0189 (shipped as
# propscan-mpnet 2026-12-03.7); fast 2026-12-01.6 by its recorded rule otherwise: 0.4154 / 0.2205 / 0.1155 / 0.0388
# -> 0.4145 / 0.2200 / 0.1153 / 0.0267 (docs/experiments.md, 2026-12-03 sixth session). The fast network under
# INT8_RUNTIME grown at 0.7, mean of 5 partitions of dev: OUT_OF_FOLD 0.4404 / 0.2574 / 0.1343 / 0.0459,
# OUT_OF_FOLD_CUTOFFS 0.4405 / 0.2578 / 0.1344 / 0.0416 (shipped as propscan-minilm 2026-12-04.3; seventeenth
# session). Rule's default stays OUT_OF_FOLD until a tuning measures both models' detection figures level by it.
OUT_OF_FOLD_CUTOFFS = "out_of_fold_cutoffs"
# Rule.grow: the runs of every channel detector searched are grown over neighbours reaching grow x their
# threshold (detect.Detector.grow). Cross-fitted PTC dev, each shipped network by its recorded rule with
# the channel runs grown (SI / FLC / TC / mean per-technique FLC F1 / ECE; docs/experiments.md, fifteenth
# session): fast 2026-12-04 0.4247 / 0.2392 / 0.6218 / 0.1232 / 0.0184; at 0.85 0.4253 / 0.2411 / 0.6218 /
# 0.1265 / 0.0208; at 0.7 0.4317 / 0.2542 / 0.6218 / 0.1320 / 0.0218. Accurate 2026-12-04 0.4526 / 0.2672 /
# 0.6670 / 0.1391 / 0.0205; at 0.85 0.4547 / 0.2688 / 0.6670 / 0.1392 / 0.0207; at 0.7 0.4584 / 0.2730 /
# 0.6670 / 0.1460 / 0.0253. Spans nearer annotators' for a calibration a little further off, on both
# networks. Averaged over five partitions of dev (PARTITIONS) the fast network grown at 0.7 was level or
# better on all five and ships so (its model.json records grow 0.7); the accurate one's ECE rose by 0.001,
# so the default stays NO_GROW (docs/experiments.md, sixteenth session). Growing the classify
# detectors' runs too, or offering grown detectors beside the plain ones for each technique to choose,
# was less consistent (lower SI on the accurate network). Rule.grow_any grows the classify detectors'
# "any technique" runs: on the fast network under INT8_RUNTIME (propscan-minilm 2026-12-04.3, grown 0.7),
# mean of 5 partitions of dev, 0.4405 / 0.2578 / 0.6218 / 0.1344 / 0.0416 -> 0.4566 / 0.2617 / 0.6218 /
# 0.1398 / 0.0412 at grow_any 0.7 (docs/experiments.md, seventeenth session).
NO_GROW = 1.0
CALIBRATIONS = (OUT_OF_FOLD, OUT_OF_FOLD_CUTOFFS, IN_SAMPLE)  # Rule.calibration's values

Row = tuple[str, str, int, int]


@dataclass(frozen=True)
class Rule:
    """How detection is tuned. model.json records it (``tuning_rule``), so a model's dev figures are
    cross-fitted by the rule it was tuned with (benchmarks/quality.py)."""

    rate_floor: float | None = RATE_FLOOR  # tune_detectors; None: the rule before the rate floor
    calibration: str = OUT_OF_FOLD  # or OUT_OF_FOLD_CUTOFFS, IN_SAMPLE
    detectors: str = ALL  # a key of DETECTOR_SETS
    repeaters: str = POOLED  # a key of REPEATER_SETS
    grow: float = NO_GROW  # every channel detector searched grows its runs so (Detector.grow)
    grow_any: float = NO_GROW  # ... and every classify detector its "any technique" runs

    @classmethod
    def recorded(cls, config: dict) -> Rule:
        """A model.json's rule; a key it lacks reads as the rule before that key existed."""
        rule = config.get("tuning_rule", {})
        return cls(rule.get("rate_floor"), rule.get("calibration", IN_SAMPLE), rule.get("detectors", ALL),
                   rule.get("repeaters", LOCAL), rule.get("grow", NO_GROW), rule.get("grow_any", NO_GROW))

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def problem(self) -> str | None:
        """What makes this rule one tuning cannot run by (a hand-edited recipe's), or None."""
        floor = self.rate_floor
        if floor is not None and (isinstance(floor, bool) or not isinstance(floor, (int, float)) or not floor >= 0):
            return f"rate_floor {floor!r} is not a number >= 0 or null"
        for name in ("grow", "grow_any"):
            grow = getattr(self, name)
            if isinstance(grow, bool) or not isinstance(grow, (int, float)) or not 0 < grow <= 1:
                return f"{name} {grow!r} is not a number in (0, 1]"
        for name, valid in (("calibration", CALIBRATIONS), ("detectors", tuple(DETECTOR_SETS)),
                            ("repeaters", tuple(REPEATER_SETS))):
            if (value := getattr(self, name)) not in valid:
                return f"{name} {value!r} is none of {', '.join(valid)}"
        return None


def _grown(det: Detector, rule: Rule) -> Detector:
    """``det`` growing its runs as ``rule`` says for its kind (channel runs, or the classify detectors'
    "any technique" runs)."""
    grow = {"channel": rule.grow, "classify": rule.grow_any}.get(det.source)
    return det if grow is None else replace(det, grow=grow)


def rate_floor_arg(value: str) -> float | None:
    """A command line's rate floor: a number >= 0, or ``none`` (the rule before the rate floor)."""
    return None if value == "none" else _number_arg(value, lambda x: x >= 0, "give a number >= 0, or none")


def grow_arg(value: str) -> float:
    """A command line's grow ratio: a number in (0, 1]."""
    return _number_arg(value, lambda x: 0 < x <= 1, "give a number above 0 and at most 1")


def _number_arg(value: str, ok, advice: str) -> float:
    import argparse

    try:
        number = float(value)
    except ValueError:
        number = float("nan")  # fails every check
    if not ok(number):
        raise argparse.ArgumentTypeError(f"{value!r}: {advice}")
    return number


UNSET = object()  # a rule option the command line did not give (not None: that is a rate floor's value)


def add_rule_options(ap, unset: str) -> None:
    """A tuning rule's command-line options, each named after its Rule field (a card's retune line,
    build._retune_command, writes them by those names); ``unset`` says what an option not given means."""
    ap.add_argument("--rate-floor", default=UNSET, type=rate_floor_arg, metavar="X|none",
                    help=f"the rate floor (none: the rule before the rate floor); not given: {unset}")
    ap.add_argument("--calibration", default=UNSET, choices=CALIBRATIONS,
                    help=f"the spans the calibration is fitted on ({OUT_OF_FOLD_CUTOFFS}: the chosen detectors, cutoffs chosen out "
                         f"of fold; {IN_SAMPLE}: the rule before 2026-12-03); not given: {unset}")
    ap.add_argument("--detectors", default=UNSET, choices=tuple(DETECTOR_SETS),
                    help=f"the detectors each technique chooses among (tune.DETECTOR_SETS); not given: {unset}")
    ap.add_argument("--repeaters", default=UNSET, choices=tuple(REPEATER_SETS),
                    help=f"Repetition's repeated-phrase detectors (tune.REPEATER_SETS); not given: {unset}")
    ap.add_argument("--grow", default=UNSET, type=grow_arg, metavar="X",
                    help=f"grow each technique channel's runs over neighbouring tokens reaching X times its threshold (1: not grown); not given: {unset}")
    ap.add_argument("--grow-any", default=UNSET, type=grow_arg, metavar="X",
                    help=f"grow the 'any technique' runs the span classifier names over neighbouring tokens reaching X times their threshold (1: not grown); not given: {unset}")


def rule_from(args, base: Rule) -> Rule:
    """``base`` but for the rule options the command line gave (add_rule_options)."""
    return replace(base, **{f.name: getattr(args, f.name) for f in fields(Rule) if getattr(args, f.name) is not UNSET})


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


def _uncalibrated(detectors: dict[str, Detector], cutoffs: dict[str, float], heading_doubt: bool = False) -> Settings:
    return Settings(detectors, calibrate.Calibration(None), cutoffs, heading_doubt)


def contexts(model: Model, articles: dict[str, str], outs: dict[str, TokenOutputs]) -> dict[str, Context]:
    """One detection context per article, so span-head results are computed once across the search."""
    return {aid: Context(model, articles[aid], out) for aid, out in outs.items()}


class Search:
    """The detector search's measurements: for a (technique, detector), every evidence cutoff's FLC
    counts (metrics.flc_counts) per tuning article, measured once. The scores on any subset of the
    articles (the folds of the out-of-fold calibration) are then sums, not another detection run."""

    def __init__(self, ctxs: dict[str, Context], gold: list[Row]):
        self.ctxs, self.gold = ctxs, gold
        self.aids = list(ctxs)
        self._counts: dict[tuple, dict[float, np.ndarray]] = {}

    def f1(self, t: int, det: Detector, among: np.ndarray | None = None, heading_doubt: bool = False) -> dict[float, metrics.PRF]:
        """Technique ``t``'s FLC scores with ``det`` per evidence cutoff in GRID, on the articles the
        boolean mask ``among`` (over ``aids``) selects; None: all of them."""
        return {cut: _prf(c if among is None else c[among]) for cut, c in self.counts(t, det, heading_doubt).items()}

    def counts(self, t: int, det: Detector, heading_doubt: bool = False) -> dict[float, np.ndarray]:
        """Per cutoff, an (articles, 4) array: precision credit, predicted spans, recall credit, gold spans."""
        key = (t, astuple(det), heading_doubt)
        if key not in self._counts:
            self._counts[key] = self._measure(t, det, heading_doubt)
        return self._counts[key]

    def _measure(self, t: int, det: Detector, heading_doubt: bool) -> dict[float, np.ndarray]:
        tech = TECHNIQUE_IDS[t]
        g = [r for r in self.gold if r[1] == tech]
        row = {a: i for i, a in enumerate(self.aids)}
        # A channel detector's runs change with the cutoff (a lower one joins more tokens), so it runs once
        # per cutoff. Every other detector's candidates are fixed and only their evidence is compared with
        # the cutoff, so one run at the lowest cutoff, filtered, gives each cutoff's spans.
        found: list[tuple[str, str, int, int, float]] | None = None
        by_cut = {}
        for cut in GRID:
            if found is None or det.source == "channel":
                dets = {u: det if u == tech else Detector() for u in TECHNIQUE_IDS}
                cuts = {u: float(cut) if u == tech else 2.0 for u in TECHNIQUE_IDS}
                settings = _uncalibrated(dets, cuts, heading_doubt)
                found = [(aid, s.technique, s.start, s.end, s.score) for aid, ctx in self.ctxs.items() for s in _detect_in(ctx, settings)]
            pred = [r[:4] for r in found if r[4] >= cut]
            table = np.zeros((len(self.aids), 4))
            for (aid, _), c in metrics.flc_counts(g, pred).items():
                table[row[aid]] += c
            by_cut[float(cut)] = table
            if not pred:
                break  # higher cutoffs find nothing either
        return by_cut


def _prf(counts: np.ndarray) -> metrics.PRF:
    total = counts.sum(axis=0)
    return metrics.prf(float(total[0]), int(total[1]), float(total[2]), int(total[3]))


def _detect_in(ctx: Context, settings: Settings):
    return detect(ctx.model, settings, ctx.text, ctx.out, settings.cutoffs, ctx=ctx, with_alternatives=False)


def tune_detectors(search: Search, log=print, rule: Rule = Rule(), among: np.ndarray | None = None,
                   only: dict[str, Detector] | None = None):
    """Per technique, the detector (among ``rule.detectors``; given ``only``, the technique's detector there)
    and evidence cutoff with the best FLC F1 of its own on the tuning articles (those ``among`` selects;
    None: all).

    A rate floor of None is the rule models were tuned by before 2026-12-02 (no rate floor; a technique
    with no precise setting gets its most precise one): cross-fitting such a model uses it too, so its
    dev figures are reproduced."""
    rate_floor = rule.rate_floor
    lowest = 0.0 if rate_floor is None else rate_floor
    detectors, cutoffs, scores = {}, {}, {}
    for t, tech in enumerate(TECHNIQUE_IDS):
        options = ([only[tech]] if only is not None
                   else [_grown(d, rule) for d in DETECTOR_SETS[rule.detectors]]
                   + (REPEATER_SETS[rule.repeaters] if t == REPETITION else []))
        best = seen = fallback = None
        for det in options:
            for cut, prf in search.f1(t, det, among).items():
                if prf.n_pred == 0:
                    continue
                # the most precise setting, should none fire within the rate window
                low = (round(prf.precision, 6), round(prf.recall, 6), cut)
                if fallback is None or low > fallback[0]:
                    fallback = (low, det, cut, prf)
                if not lowest * prf.n_gold <= prf.n_pred <= RATE_CAP * prf.n_gold:
                    continue
                # ties: more recall credit, then the higher cutoff (fewer spans)
                key = (round(prf.f1, 6), round(prf.recall, 6), cut)
                if rate_floor is not None and (seen is None or key > seen[0]):  # below the precision floor: a weak hint, said so
                    seen = (key, det, cut, prf)
                if prf.precision >= PRECISION_FLOOR and (best is None or key > best[0]):
                    best = (key, det, cut, prf)
        best = best or seen or fallback or ((), options[0] if only is not None else Detector(), float(GRID[0]), metrics.PRF(0, 0, 0, 0, 0))
        _, detectors[tech], cutoffs[tech], scores[tech] = best
        log(f"  {tech:<40} {detectors[tech].to_json()} evidence >= {cutoffs[tech]:.2f}: FLC F1 {scores[tech].f1:.3f}")
    return detectors, cutoffs, scores


def token_outputs(model: Model, articles: dict[str, str], cache: dict | None = None) -> dict[str, TokenOutputs]:
    """The network's outputs per article id, taken from ``cache`` (keyed by text) where there, kept there."""
    cache = {} if cache is None else cache
    for text in articles.values():
        if text not in cache:
            cache[text] = model.token_outputs(text)
    return {aid: cache[text] for aid, text in articles.items()}


def calibrated_cutoffs(cal: calibrate.Calibration, evidence: dict[str, float]) -> dict[str, float]:
    """Each technique's evidence cutoff on the calibrated scale, rounded down, so the spans at the tuned
    evidence cutoff still pass their calibrated cutoff."""
    return {t: math.floor(float(cal(t, evidence[t])) * 1e4) / 1e4 for t in TECHNIQUE_IDS}


def calibration_rows(ctxs: dict[str, Context], gold: list[Label], settings: Settings) -> tuple[np.ndarray, ...]:
    """The spans the detectors of ``settings`` (uncalibrated) find: evidence, right or not (annotators
    marked an overlapping span of the technique), technique, article id."""
    pred: list[Label] = []
    evidence: list[float] = []
    for aid, ctx in ctxs.items():
        for sp in _detect_in(ctx, settings):
            pred.append(Label(aid, sp.start, sp.end, sp.technique))
            evidence.append(sp.score)  # uncalibrated: the score is the evidence
    return (np.array(evidence, dtype=np.float64), correct(gold, pred),
            np.array([p.technique for p in pred], dtype=str), np.array([p.article_id for p in pred], dtype=str))


def out_of_fold_rows(search: Search, gold: list[Label], heading_doubt: bool, rule: Rule,
                     only: dict[str, Detector] | None = None) -> tuple[np.ndarray, ...]:
    """``calibration_rows`` as unseen articles get them: each fold of the tuning articles (folds_of)
    detected by the detectors and cutoffs ``tune_detectors`` chooses on the other folds (given ``only``,
    those detectors, and the cutoffs chosen for them there)."""
    fold = folds_of(np.array(search.aids, dtype=str))
    parts = []
    for k in sorted(set(fold.tolist())):
        detectors, cutoffs, _ = tune_detectors(search, lambda m: None, rule, among=fold != k, only=only)
        mine = {a: search.ctxs[a] for a, f in zip(search.aids, fold) if f == k}
        parts.append(calibration_rows(mine, gold, _uncalibrated(detectors, cutoffs, heading_doubt)))
    return tuple(np.concatenate(cols) for cols in zip(*parts))


def folds_of(aids: np.ndarray, partition: int = 0) -> np.ndarray:
    """Each row's fold: articles in sorted order, dealt round the FOLDS folds. Another ``partition``
    deals them in another fixed order (by a hash of the partition number and the article id)."""
    key = None if partition == 0 else (lambda a: hashlib.sha1(f"{partition}:{a}".encode()).hexdigest())
    order = {a: i for i, a in enumerate(sorted(set(aids.tolist()), key=key))}
    return np.array([order[a] % FOLDS for a in aids.tolist()], dtype=np.int64)


def fit_calibration(rows: tuple[np.ndarray, ...], log=print):
    """Fit the per-technique Platt maps on ``rows`` (calibration_rows), the shrinkage chosen by
    cross-validated log-loss over folds of the tuning articles."""
    ev, y, tech, aids = rows
    fold = folds_of(aids)
    losses = {}
    for shrink in SHRINKS:
        loss = 0.0
        for f in range(FOLDS):
            tr, te = fold != f, fold == f
            cal = calibrate.fit(ev[tr], y[tr], tech[tr], list(TECHNIQUE_IDS), shrink)
            loss += calibrate.log_loss(cal, ev[te], y[te], tech[te]) * te.sum()
        losses[shrink] = loss / max(len(ev), 1)
    shrink = min(losses, key=losses.get)
    log("  calibration shrinkage (log-loss, 5 folds of the tuning articles): " + ", ".join(f"{s:g} -> {v:.4f}" for s, v in losses.items()) + f" -> {shrink:g}")
    cal = calibrate.fit(ev, y, tech, list(TECHNIQUE_IDS), shrink)
    return cal, {"shrink": shrink, "cv_log_loss": {str(k): round(v, 4) for k, v in losses.items()}, "n_spans": len(ev)}


def by_technique(gold: list[Row], pred: list[Row]) -> dict[str, dict]:
    """Per technique FLC precision, recall, F1 and gold count, rounded for model.json."""
    per = metrics.flc_score(gold, pred, TECHNIQUE_IDS)[1]
    return {t: {"precision": round(p.precision, 4), "recall": round(p.recall, 4), "f1": round(p.f1, 4), "n_gold": p.n_gold,
                "n_pred": p.n_pred} for t, p in per.items()}


def tune(model: Model, articles: dict[str, str], gold: list[Label], log=print, cache: dict | None = None,
         rule: Rule = Rule()) -> dict:
    """Tune on ``articles``. ``cache`` (text -> the network's outputs), when given, keeps the outputs for
    later calls on the same articles (``cross_fitted`` tunes six times): the network runs once per article."""
    outs = token_outputs(model, articles, cache)
    gold_rows: list[Row] = flc_rows(gold)
    # 0. the span head's repetition bonus (TC on the held-out gold spans); the classify detectors use it
    bonus, tc_by_bonus = tune_repeat_bonus(model, articles, outs, gold)
    model.decoding = {**model.decoding, "repeat_bonus": bonus}
    log("  repetition bonus (TC F1 on the tuning articles): " + ", ".join(f"{b:g} -> {f:.3f}" for b, f in tc_by_bonus.items())
        + f" -> {bonus:g}")
    # 1. per technique: detector and evidence cutoff, for its own F1 (Doubt in headings left out)
    search = Search(contexts(model, articles, outs), gold_rows)
    detectors, evidence, scores = tune_detectors(search, log, rule)
    # 2. Doubt inside headings: kept or not, by Doubt's own held-out F1
    doubt = TECHNIQUE_IDS.index("Doubt")
    with_heads = search.f1(doubt, detectors["Doubt"], heading_doubt=True)
    doubt_in_headings = with_heads.get(evidence["Doubt"], scores["Doubt"]).f1
    heading_doubt = doubt_in_headings > scores["Doubt"].f1
    log(f"  Doubt F1 without headings {scores['Doubt'].f1:.3f}, with {doubt_in_headings:.3f}")
    # 3. calibration on the spans found as an unseen article's are (Rule.calibration); the cutoffs move
    # onto the calibrated scale
    if rule.calibration == IN_SAMPLE:
        rows = calibration_rows(search.ctxs, gold, _uncalibrated(detectors, evidence, heading_doubt))
    else:
        rows = out_of_fold_rows(search, gold, heading_doubt, rule, detectors if rule.calibration == OUT_OF_FOLD_CUTOFFS else None)
    cal, cal_info = fit_calibration(rows, log)
    cal_info["rows"] = rule.calibration
    cutoffs = calibrated_cutoffs(cal, evidence)
    settings = Settings(detectors, cal, cutoffs, heading_doubt)
    pred = [(aid, s.technique, s.start, s.end) for aid, out in outs.items() for s in detect(model, settings, articles[aid], out, cutoffs)]
    micro = metrics.flc_score(gold_rows, pred)[0]
    log(f"  FLC F1 on the tuning articles {micro.f1:.3f} (P {micro.precision:.3f}, R {micro.recall:.3f}; in sample)")
    return {
        "thresholds": {t: float(evidence[t]) for t in TECHNIQUE_IDS},
        "detectors": {t: d.to_json() for t, d in detectors.items()},
        "calibration": cal.to_json(),
        "calibration_fit": cal_info,
        "cutoffs": cutoffs,
        "decoding": {"repeat_bonus": bonus, "heading_doubt": heading_doubt},
        "tuning_flc_f1": {"micro": micro.f1},
        "tuning_by_technique": by_technique(gold_rows, pred),
        "tuning_tc_f1": tc_by_bonus[bonus],
        "tuning_rule": rule.to_json(),
    }


def dev_folds(articles: dict[str, str], partition: int = 0) -> dict[str, int]:
    """Each article's fold, as ``folds_of`` deals them."""
    ids = list(articles)
    return dict(zip(ids, folds_of(np.array(ids), partition).tolist()))


def cross_fitted(model: Model, heldout: tuple[dict[str, str], list[Label]], dev: tuple[dict[str, str], list[Label]],
                 log=print, cache: dict | None = None, rule: Rule = Rule(), partition: int = 0) -> Report:
    """PTC dev's figures as articles the tuning never saw get them (``cross_fit_predictions``)."""
    pred, scores, tc = cross_fit_predictions(model, heldout, dev, log, cache, rule, partition)
    return score(dev[1], pred, tc, scores)


def cross_fitted_partitions(model: Model, heldout: tuple[dict[str, str], list[Label]],
                            dev: tuple[dict[str, str], list[Label]], log=print, cache: dict | None = None,
                            rule: Rule = Rule(), partitions: int = PARTITIONS) -> list[Report]:
    """``cross_fitted`` for each of the first ``partitions`` ways of dealing dev into fifths (the first, the
    model card's, logged); benchmarks and cards report their mean (evaluate.mean_five)."""
    return [cross_fitted(model, heldout, dev, log if k == 0 else (lambda m: None), cache, rule, k) for k in range(partitions)]


def cross_fit_predictions(model: Model, heldout: tuple[dict[str, str], list[Label]],
                          dev: tuple[dict[str, str], list[Label]], log=print, cache: dict | None = None,
                          rule: Rule = Rule(), partition: int = 0):
    """Each fifth of dev (by article) detected with settings tuned on the held-out articles and the other
    four fifths, its confidences from that fold's calibration: FLC predictions, their scores, and TC
    predictions for the gold spans. ``partition`` chooses how dev is dealt into fifths (``folds_of``): the
    figures move with it, the calibration error most (docs/design.md), so benchmarks average several.
    Leaves ``model`` configured with the last fold's settings."""
    (h_arts, h_gold), (d_arts, d_gold) = heldout, dev
    fold = dev_folds(d_arts, partition)
    pred: list[Label] = []
    scores: list[float] = []
    tc: list[Label] = []
    for f in range(FOLDS):
        rest = {a: t for a, t in d_arts.items() if fold[a] != f}
        tuned = tune(model, {**h_arts, **rest}, h_gold + [g for g in d_gold if g.article_id in rest], log=lambda m: None, cache=cache,
                     rule=rule)
        model.configure(tuned)
        mine = {a: t for a, t in d_arts.items() if fold[a] == f}
        p, t = predict(model, mine, [g for g in d_gold if g.article_id in mine], scores=scores,
                       outputs=token_outputs(model, mine, cache))
        pred += p
        tc += t
        log(f"  dev fold {f + 1}/{FOLDS}: tuned on {len(h_arts) + len(rest)} articles, scored {len(mine)}")
    return pred, scores, tc
