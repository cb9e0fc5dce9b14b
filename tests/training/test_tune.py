"""Tuning on held-out + dev with cross-fitted dev figures: a dev article is always detected with
settings tuned without it, so its figures are what an unseen article gets (the real shipped network,
a few small PTC articles)."""

from __future__ import annotations

from dataclasses import astuple, replace

import numpy as np
import pytest

from conftest import PTC_DEV_ARTICLES, PTC_DEV_FLC, SHARED, copy_smallest_ptc
from propscan.pipeline import calibrate
from propscan.pipeline.detect import Detector
from propscan.pipeline.model import Model
from propscan.ptc import read_articles, read_labels
from propscan.techniques import TECHNIQUE_IDS
from propscan.training import tune
from propscan.training.tune import FOLDS, GRID, Search, contexts, cross_fit_predictions, dev_folds, folds_of

PTC_TRAIN = SHARED / "data" / "ptc" / "train"


def test_every_dev_article_is_in_exactly_one_fold_and_every_fold_is_used():
    aids = np.array([f"a{i}" for i in range(12)] * 3)
    fold = folds_of(aids)
    assert all(len(set(fold[aids == a])) == 1 for a in set(aids))
    assert set(fold) == set(range(FOLDS))
    assert dev_folds({a: "" for a in aids.tolist()}) == dict(zip(aids.tolist(), fold.tolist()))


def test_another_partition_deals_the_articles_otherwise_and_as_evenly():
    aids = np.array([f"a{i}" for i in range(23)])
    first, other = folds_of(aids), folds_of(aids, partition=3)
    assert not np.array_equal(first, other)  # another fold assignment ...
    assert np.array_equal(other, folds_of(aids[::-1], partition=3)[::-1])  # ... fixed by the ids, not their order
    assert sorted(np.bincount(other).tolist()) == sorted(np.bincount(first).tolist()) == [4, 4, 5, 5, 5]
    arts = {a: "" for a in aids.tolist()}
    assert dev_folds(arts, 3) == dict(zip(aids.tolist(), other.tolist())) != dev_folds(arts)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    if not (PTC_DEV_ARTICLES.is_dir() and (PTC_TRAIN / "train-articles").is_dir()):
        pytest.skip("PTC data absent")
    h = copy_smallest_ptc(PTC_TRAIN / "train-articles", PTC_TRAIN / "train-task-flc-tc.labels", 3, tmp_path_factory.mktemp("h"))
    d = copy_smallest_ptc(PTC_DEV_ARTICLES, PTC_DEV_FLC, FOLDS, tmp_path_factory.mktemp("d"))
    out = []
    for s in (h, d):
        arts = read_articles(s.articles)
        out.append((arts, read_labels(s.gold, arts)))
    return Model(threads=1), out[0], out[1]


@pytest.mark.parametrize("partition", [0, 2])
def test_a_dev_fold_is_detected_without_its_own_labels(small, monkeypatch, partition):
    model, heldout, (arts, gold) = small
    assert partition == 0 or dev_folds(arts, partition) != dev_folds(arts)  # the partition is another here
    tuned_on = []
    real = tune.tune

    def spy(model, articles, gold, **kw):
        tuned_on.append((set(articles), {g.article_id for g in gold}))
        return real(model, articles, gold, **kw)

    monkeypatch.setattr(tune, "tune", spy)
    pred, scores, _ = cross_fit_predictions(model, heldout, (arts, gold), log=lambda m: None, partition=partition)
    fold = dev_folds(arts, partition)
    assert len(tuned_on) == FOLDS
    for f, (articles, labelled) in enumerate(tuned_on):
        mine = {a for a in arts if fold[a] == f}
        assert articles == set(heldout[0]) | (set(arts) - mine)  # everything but the fold itself
        assert not labelled & mine  # nor any of its labels
    assert {p.article_id for p in pred} <= set(arts)  # only dev articles are predicted
    assert len(scores) == len(pred) and all(0 <= s <= 1 for s in scores)


def test_a_non_channel_detector_scored_from_one_run_matches_one_run_per_cutoff(small):
    """The search filters one run of a classify or repeat detector by cutoff: the same scores as
    detecting again at each cutoff; and its per-article counts give a subset of the articles the
    scores that detecting on that subset alone gives."""
    from propscan.evaluation.evaluate import flc_rows
    from propscan.pipeline.detect import Detector

    model, (arts, gold), _ = small
    ctxs = contexts(model, arts, {a: model.token_outputs(t) for a, t in arts.items()})
    rows = flc_rows(gold)
    search = Search(ctxs, rows)
    among = np.arange(len(search.aids)) != 0  # every article but the first
    tech = tune.TECHNIQUE_IDS[0]
    for det in (Detector("classify", 1, 0.2), Detector("repeat", 0, ngram=2), Detector("channel", 1)):
        fast, part = search.f1(0, det), search.f1(0, det, among)
        for cut, prf in fast.items():
            settings = tune._uncalibrated({t: det if i == 0 else Detector() for i, t in enumerate(tune.TECHNIQUE_IDS)},
                                          {t: cut if i == 0 else 2.0 for i, t in enumerate(tune.TECHNIQUE_IDS)})
            found = [(a, s.technique, s.start, s.end) for a, c in ctxs.items() for s in tune._detect_in(c, settings)]
            for got, pred, g in ((prf, found, rows), (part[cut], [r for r in found if r[0] != search.aids[0]],
                                                      [r for r in rows if r[0] != search.aids[0]])):
                slow = tune.metrics.flc_score([r for r in g if r[1] == tech], pred, [tech])[1][tech]
                assert (got.n_pred, got.n_gold) == (slow.n_pred, slow.n_gold), (det, cut)
                assert (got.precision, got.recall) == pytest.approx((slow.precision, slow.recall), abs=1e-12), (det, cut)
        assert set(fast) <= set(float(c) for c in GRID)
    assert any(p.n_pred for p in fast.values())  # the comparison was not of empty predictions


def test_a_technique_is_tuned_to_fire_often_enough_to_be_seen(monkeypatch):
    """Own-F1 tuning picks among settings that are right often enough (PRECISION_FLOOR) and fire neither
    far too often (RATE_CAP) nor so rarely that the technique is off in all but name (RATE_FLOOR)."""
    from propscan.evaluation.metrics import PRF

    n_gold = 40
    best_rare = PRF(0.5, 0.02, 0.04, max(1, int(tune.RATE_FLOOR * n_gold) - 1), n_gold)  # highest F1, fires too rarely
    seen = PRF(0.2, 0.05, 0.03, int(tune.RATE_FLOOR * n_gold), n_gold)
    flood = PRF(0.11, 0.6, 0.19, int(tune.RATE_CAP * n_gold) + 1, n_gold)
    vague = PRF(0.05, 0.3, 0.09, n_gold, n_gold)  # below the precision floor
    by_det = {0: {0.5: best_rare, 0.3: seen}, 1: {0.1: flood}, 2: {0.2: vague}}
    options = [tune.Detector("channel", g) for g in by_det]
    monkeypatch.setitem(tune.DETECTOR_SETS, tune.ALL, options)

    class Measured:  # a search that measured these scores
        def f1(self, t, det, among=None):
            return by_det[det.max_gap]

    search = Measured()
    detectors, cutoffs, scores = tune.tune_detectors(search, log=lambda m: None)
    assert all(scores[t] is seen and cutoffs[t] == 0.3 for t in TECHNIQUE_IDS if t != "Repetition")
    # no precise setting fires often enough: the best one in the rate window, below the precision floor
    by_det[0] = {0.5: best_rare}
    _, cutoffs, scores = tune.tune_detectors(search, log=lambda m: None)
    assert scores["Doubt"] is vague and cutoffs["Doubt"] == 0.2
    # and none in the window at all: the most precise one, better rare than switched off
    by_det[2] = {}
    _, cutoffs, scores = tune.tune_detectors(search, log=lambda m: None)
    assert scores["Doubt"] is best_rare and cutoffs["Doubt"] == 0.5
    # the rule before the rate floor (a model that records none is cross-fitted by it): F1 above the
    # precision floor, whatever the rate, else the most precise
    by_det[0] = {0.5: best_rare, 0.3: seen}
    _, cutoffs, scores = tune.tune_detectors(search, log=lambda m: None, rule=tune.Rule(None))
    assert scores["Doubt"] is best_rare
    by_det[0], by_det[2] = {}, {0.2: vague}
    _, cutoffs, scores = tune.tune_detectors(search, log=lambda m: None, rule=tune.Rule(None))
    assert scores["Doubt"] is flood  # the most precise of flood (0.11) and vague (0.05), though it floods


def test_a_narrow_rule_chooses_only_among_its_detectors():
    """The narrow set is six of the thirteen; a technique's best detector outside it is not chosen."""
    from propscan.evaluation.metrics import PRF

    narrow = tune.DETECTOR_SETS[tune.NARROW]
    assert len(narrow) == 6 and set(map(astuple, narrow)) < set(map(astuple, tune.DETECTOR_SETS[tune.ALL]))
    outside = next(d for d in tune.DETECTOR_SETS[tune.ALL] if d not in narrow)
    good, fair = PRF(0.6, 0.5, 0.55, 20, 20), PRF(0.3, 0.3, 0.3, 20, 20)

    class Measured:
        def f1(self, t, det, among=None):
            return {0.3: good if det == outside else fair}

    for rule, chosen in ((tune.Rule(), outside), (tune.Rule(detectors=tune.NARROW), None)):
        detectors, _, scores = tune.tune_detectors(Measured(), log=lambda m: None, rule=rule)
        for t in TECHNIQUE_IDS:
            if chosen is not None:
                assert detectors[t] == chosen and scores[t] is good
            else:
                assert detectors[t] in narrow + tune.REPEATER_SETS[tune.POOLED] and scores[t] is fair


def test_a_growing_rule_searches_its_detectors_grown_and_leaves_the_repeaters_as_they_are():
    """Rule.grow: every channel detector searched grows its runs by it, and the chosen one carries it
    (model.json then says how the runtime grows its runs); the other detectors stay as they are."""
    from propscan.evaluation.metrics import PRF

    seen = []

    class Measured:
        def f1(self, t, det, among=None):
            seen.append(det)
            return {0.3: PRF(0.3, 0.3, 0.3, 20, 20)}

    detectors, _, _ = tune.tune_detectors(Measured(), log=lambda m: None, rule=tune.Rule(detectors=tune.NARROW, grow=0.7))
    assert {d.grow for d in seen if d.source == "channel"} == {0.7} and all(d.grow == tune.NO_GROW for d in seen if d.source != "channel")
    assert all(d.grow == 0.7 and d.to_json()["grow"] == 0.7 for d in detectors.values() if d.source == "channel")
    assert {d.source for d in seen} == {"channel", "classify", "repeat"}
    assert tune.Rule(grow=0).problem() == "grow 0 is not a number in (0, 1]" and tune.Rule(grow=1).problem() is None


def test_a_rule_grows_the_classify_detectors_any_runs_by_its_own_ratio():
    """Rule.grow_any: every classify detector searched grows its "any technique" runs by it, the channel
    detectors by Rule.grow; a model.json from before the key reads as not grown."""
    from propscan.evaluation.metrics import PRF

    seen = []

    class Measured:
        def f1(self, t, det, among=None):
            seen.append(det)
            return {0.3: PRF(0.3, 0.3, 0.3, 20, 20)}

    tune.tune_detectors(Measured(), log=lambda m: None, rule=tune.Rule(detectors=tune.NARROW, grow=0.7, grow_any=0.5))
    assert {d.grow for d in seen if d.source == "classify"} == {0.5} and {d.grow for d in seen if d.source == "channel"} == {0.7}
    assert all(d.grow == tune.NO_GROW for d in seen if d.source == "repeat")
    assert tune.Rule.recorded({"tuning_rule": {"grow": 0.7}}).grow_any == tune.NO_GROW
    assert tune.Rule(grow_any=1.5).problem() == "grow_any 1.5 is not a number in (0, 1]"


def test_a_rate_floor_on_the_command_line_is_a_number_or_none():
    import argparse

    assert tune.rate_floor_arg("none") is None and tune.rate_floor_arg("0.25") == 0.25 and tune.rate_floor_arg("0") == 0
    for bad in ("x", "-1", "nan", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="give a number >= 0, or none"):
            tune.rate_floor_arg(bad)


def test_the_calibration_is_fitted_on_spans_found_by_detectors_chosen_without_their_article(small, monkeypatch):
    """Out of fold: each fold of the tuning articles is detected with the settings tune_detectors chooses
    on the other folds, so the calibration sees the spans an unseen article gets."""
    from propscan.evaluation.evaluate import flc_rows

    model, (h_arts, h_gold), (d_arts, d_gold) = small
    arts, gold = {**h_arts, **d_arts}, h_gold + d_gold
    search = Search(contexts(model, arts, {a: model.token_outputs(t) for a, t in arts.items()}), flc_rows(gold))
    seen = []
    real = tune.calibration_rows
    monkeypatch.setattr(tune, "calibration_rows", lambda ctxs, g, settings: seen.append((set(ctxs), settings)) or real(ctxs, g, settings))
    ev, y, tech, aids = tune.out_of_fold_rows(search, gold, False, tune.Rule())
    fold = dict(zip(search.aids, folds_of(np.array(search.aids))))
    assert sorted(a for part, _ in seen for a in part) == sorted(arts)  # every article in exactly one fold
    differs = False
    for part, settings in seen:
        others = np.array([a not in part for a in search.aids])
        detectors, cutoffs, _ = tune.tune_detectors(search, lambda m: None, among=others)
        assert (settings.detectors, settings.cutoffs) == (detectors, cutoffs)
        assert len({fold[a] for a in part}) == 1
        differs |= (detectors, cutoffs) != tune.tune_detectors(search, lambda m: None)[:2]
    assert differs  # on these articles, leaving a fold out changes some choice
    assert set(aids.tolist()) <= set(arts) and len(ev) == len(y) == len(tech) and len(ev) > 0


def test_out_of_fold_cutoffs_keep_each_techniques_chosen_detector(small, monkeypatch):
    """OUT_OF_FOLD_CUTOFFS: each fold is detected by the detectors chosen on all the tuning articles, at
    the cutoffs chosen for those detectors on the other folds, so every map is fitted on its runtime
    detector's kind of evidence; tune() fits the calibration on those rows."""
    from propscan.evaluation.evaluate import flc_rows

    model, (h_arts, h_gold), (d_arts, d_gold) = small
    arts, gold = {**h_arts, **d_arts}, h_gold + d_gold
    outs = {a: model.token_outputs(t) for a, t in arts.items()}
    search = Search(contexts(model, arts, outs), flc_rows(gold))
    final = tune.tune_detectors(search, lambda m: None)[0]
    seen = []
    real = tune.calibration_rows
    monkeypatch.setattr(tune, "calibration_rows", lambda ctxs, g, settings: seen.append((set(ctxs), settings)) or real(ctxs, g, settings))
    tune.out_of_fold_rows(search, gold, False, tune.Rule(), only=final)
    assert sorted(a for part, _ in seen for a in part) == sorted(arts) and len(seen) == tune.FOLDS
    free = []
    for part, settings in seen:
        others = np.array([a not in part for a in search.aids])
        assert settings.detectors == final
        assert settings.cutoffs == tune.tune_detectors(search, lambda m: None, among=others, only=final)[1]
        free.append(tune.tune_detectors(search, lambda m: None, among=others)[0])
    assert any(d != final for d in free)  # unrestricted, some fold would have chosen another detector
    rule = tune.Rule(calibration=tune.OUT_OF_FOLD_CUTOFFS)
    got = []
    real_rows = (np.zeros(0), np.zeros(0, bool), np.zeros(0, str), np.zeros(0, str))
    monkeypatch.setattr(tune, "fit_calibration", lambda rows, log=print: got.append(rows) or (calibrate.Calibration(None), {}))
    monkeypatch.setattr(tune, "out_of_fold_rows", lambda search, gold, hd, rule, only=None: got.append(only) or real_rows)
    tuned = tune.tune(model, arts, gold, log=lambda m: None, cache=dict(zip(arts.values(), outs.values())), rule=rule)
    assert got[0] == {t: Detector.from_json(d) for t, d in tuned["detectors"].items()} and got[1] is real_rows
    assert tuned["tuning_rule"]["calibration"] == tune.OUT_OF_FOLD_CUTOFFS


def test_a_recorded_tuning_rule_without_a_key_reads_as_the_rule_before_it():
    assert tune.Rule.recorded({}) == tune.Rule(None, tune.IN_SAMPLE, tune.ALL, tune.LOCAL)
    assert tune.Rule.recorded({"tuning_rule": {"rate_floor": 0.25}}) == tune.Rule(0.25, tune.IN_SAMPLE, tune.ALL, tune.LOCAL)
    assert tune.Rule.recorded({"tuning_rule": tune.Rule().to_json()}) == tune.Rule() == tune.Rule(tune.RATE_FLOOR, tune.OUT_OF_FOLD, tune.ALL, tune.POOLED)
    assert tune.Rule.recorded({"tuning_rule": {"calibration": tune.OUT_OF_FOLD}}).detectors == tune.ALL
    narrow = tune.Rule(0.25, tune.OUT_OF_FOLD, tune.NARROW, tune.LOCAL)
    assert tune.Rule.recorded({"tuning_rule": narrow.to_json()}) == narrow
    assert tune.Rule.recorded({"tuning_rule": {"detectors": tune.NARROW}}).repeaters == tune.LOCAL  # recorded before the key
    pooled = tune.Rule(0.25, tune.OUT_OF_FOLD, tune.NARROW, tune.POOLED)
    assert tune.Rule.recorded({"tuning_rule": pooled.to_json()}) == pooled
    assert tune.Rule.recorded({"tuning_rule": {"rate_floor": 0.25}}).grow == tune.NO_GROW  # recorded before the key
    grown = replace(pooled, grow=0.7)
    assert tune.Rule.recorded({"tuning_rule": grown.to_json()}) == grown


def test_repetition_chooses_among_the_rules_repeated_phrase_detectors():
    """Only Repetition may take a repeated-phrase detector, and only those of its rule's set."""
    from propscan.evaluation.metrics import PRF

    local, pooled = tune.REPEATER_SETS[tune.LOCAL], tune.REPEATER_SETS[tune.POOLED]
    assert all(not d.pool for d in local) and all(d.pool for d in pooled)
    assert [d.ngram for d in local] == [d.ngram for d in pooled]
    best, fair = PRF(0.6, 0.5, 0.55, 20, 20), PRF(0.3, 0.3, 0.3, 20, 20)
    target = pooled[1]

    class Measured:
        def f1(self, t, det, among=None):
            return {0.3: best if det == target else fair}

    for repeaters, expect in ((tune.LOCAL, False), (tune.POOLED, True)):  # each rule, only its own set
        detectors, _, _ = tune.tune_detectors(Measured(), log=lambda m: None, rule=tune.Rule(repeaters=repeaters))
        assert (detectors["Repetition"] == target) is expect
        assert all(d.source != "repeat" for t, d in detectors.items() if t != "Repetition")


def test_rule_options_change_only_what_the_command_line_gives():
    """scripts/retune_model.py and benchmarks/quality.py read a rule the same way: options named after
    Rule's fields, each replacing its field in the base rule only when given (a rate floor of none too)."""
    import argparse

    ap = argparse.ArgumentParser()
    tune.add_rule_options(ap, "the base rule")
    base = tune.Rule(0.25, tune.IN_SAMPLE, tune.ALL, tune.LOCAL)
    assert tune.rule_from(ap.parse_args([]), base) == base
    got = tune.rule_from(ap.parse_args(["--rate-floor", "none", "--detectors", "narrow"]), base)
    assert got == tune.Rule(None, tune.IN_SAMPLE, tune.NARROW, tune.LOCAL)
    assert tune.rule_from(ap.parse_args(["--calibration", "out_of_fold"]), base).calibration == tune.OUT_OF_FOLD
    assert tune.rule_from(ap.parse_args(["--repeaters", "pooled"]), base) == replace(base, repeaters=tune.POOLED)
    with pytest.raises(SystemExit):
        ap.parse_args(["--detectors", "wide"])
    with pytest.raises(SystemExit):
        ap.parse_args(["--repeaters", "global"])
    assert tune.rule_from(ap.parse_args(["--grow", "0.7"]), base) == replace(base, grow=0.7)
    for bad in ("0", "1.5", "x"):
        with pytest.raises(SystemExit):
            ap.parse_args(["--grow", bad])
