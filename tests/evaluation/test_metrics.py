"""Tests for propscan.evaluation.metrics (SemEval-2020 Task 11 scoring).

Expected values are worked out by hand in the comments next to each case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from propscan.evaluation.metrics import PRF, flc_score, merge_overlapping, si_score, tc_score

approx = pytest.approx


def assert_prf(prf: PRF, p: float, r: float, f1: float) -> None:
    assert (prf.precision, prf.recall, prf.f1) == (approx(p), approx(r), approx(f1))


# ---------------------------------------------------------------- merge_overlapping


def test_merge_overlapping_unsorted_and_nested():
    # (0,5)+(3,8) overlap -> (0,8); (12,15) lies inside (10,20).
    assert merge_overlapping([(10, 20), (0, 5), (12, 15), (3, 8)]) == [(0, 8), (10, 20)]


def test_merge_overlapping_touching_not_merged():
    # [0,5) and [5,8) share no character index.
    assert merge_overlapping([(5, 8), (0, 5)]) == [(0, 5), (5, 8)]


def test_merge_overlapping_drops_empty_spans():
    # (5,5) is empty, (7,3) is inverted: both ignored.
    assert merge_overlapping([(5, 5), (7, 3), (0, 2)]) == [(0, 2)]


def test_prf_as_dict():
    d = PRF(0.5, 0.25, 1 / 3, 2, 4).as_dict()
    assert d == {"precision": 0.5, "recall": 0.25, "f1": 1 / 3, "n_pred": 2, "n_gold": 4}


# ---------------------------------------------------------------- SI


def test_si_exact_match():
    gold = [("a", 0, 10), ("a", 20, 30)]
    prf = si_score(gold, list(gold))
    assert_prf(prf, 1.0, 1.0, 1.0)
    assert (prf.n_pred, prf.n_gold) == (2, 2)


def test_si_disjoint():
    prf = si_score([("a", 0, 10)], [("a", 20, 30)])
    assert_prf(prf, 0.0, 0.0, 0.0)
    assert (prf.n_pred, prf.n_gold) == (1, 1)


def test_si_partial_overlap():
    # pred [10,20) vs gold [15,25): |∩| = 5 -> P = 5/10, R = 5/10, F1 = 0.5.
    assert_prf(si_score([("a", 15, 25)], [("a", 10, 20)]), 0.5, 0.5, 0.5)


def test_si_partial_overlap_asymmetric():
    # pred [0,4) inside gold [0,10): P = 4/4 = 1, R = 4/10 = 0.4,
    # F1 = 2*1*0.4/1.4 = 4/7.
    assert_prf(si_score([("a", 0, 10)], [("a", 0, 4)]), 1.0, 0.4, 4 / 7)


def test_si_one_pred_spanning_two_gold():
    # pred [0,30) vs gold [0,10), [20,30): credit from BOTH gold spans.
    # P = (10/30 + 10/30) / 1 = 2/3; R = (10/10 + 10/10) / 2 = 1;
    # F1 = 2*(2/3)*1 / (5/3) = 0.8.
    prf = si_score([("a", 0, 10), ("a", 20, 30)], [("a", 0, 30)])
    assert_prf(prf, 2 / 3, 1.0, 0.8)
    assert (prf.n_pred, prf.n_gold) == (1, 2)


def test_si_overlapping_predictions_merged():
    # pred [0,6) + [4,10) merge into [0,10) == gold: P = R = 1 with n_pred = 1.
    # (Unmerged it would be R = (6/10 + 6/10)/1 = 1.2 and n_pred = 2.)
    prf = si_score([("a", 0, 10)], [("a", 0, 6), ("a", 4, 10)])
    assert_prf(prf, 1.0, 1.0, 1.0)
    assert prf.n_pred == 1


def test_si_overlapping_gold_merged_and_duplicates():
    # gold [0,6) + [4,10) -> [0,10); the duplicated pred [0,10) collapses to one.
    prf = si_score([("a", 0, 6), ("a", 4, 10)], [("a", 0, 10), ("a", 0, 10)])
    assert_prf(prf, 1.0, 1.0, 1.0)
    assert (prf.n_pred, prf.n_gold) == (1, 1)


def test_si_touching_predictions_not_merged():
    # pred [0,5), [5,8) stay two spans; gold [0,5).
    # P = (5/5 + 0/3) / 2 = 0.5; R = 5/5 = 1; F1 = 2*0.5/1.5 = 2/3.
    # (If merged to [0,8): P would be 5/8.)
    prf = si_score([("a", 0, 5)], [("a", 0, 5), ("a", 5, 8)])
    assert_prf(prf, 0.5, 1.0, 2 / 3)
    assert prf.n_pred == 2


def test_si_empty_spans_ignored():
    # The zero-length and inverted predictions count for nothing, not even in n_pred.
    prf = si_score([("a", 0, 10)], [("a", 0, 10), ("a", 3, 3), ("a", 9, 2)])
    assert_prf(prf, 1.0, 1.0, 1.0)
    assert prf.n_pred == 1


def test_si_empty_prediction():
    prf = si_score([("a", 0, 10)], [])
    assert_prf(prf, 0.0, 0.0, 0.0)
    assert (prf.n_pred, prf.n_gold) == (0, 1)


def test_si_both_empty():
    prf = si_score([], [])
    assert_prf(prf, 0.0, 0.0, 0.0)
    assert (prf.n_pred, prf.n_gold) == (0, 0)


def test_si_articles_missing_on_one_side():
    # a: exact match; b only in gold (recall denominator); c only in pred
    # (precision denominator). P = 1/2, R = 1/2, F1 = 0.5.
    gold = [("a", 0, 10), ("b", 0, 10)]
    pred = [("a", 0, 10), ("c", 0, 10)]
    prf = si_score(gold, pred)
    assert_prf(prf, 0.5, 0.5, 0.5)
    assert (prf.n_pred, prf.n_gold) == (2, 2)


def test_si_same_offsets_different_articles_do_not_match():
    # Same offsets but article b != a: no credit.
    assert_prf(si_score([("a", 0, 10)], [("b", 0, 10)]), 0.0, 0.0, 0.0)


# ---------------------------------------------------------------- FLC


def test_flc_exact_match_with_cross_technique_overlap():
    # X [0,10) and Y [5,15) overlap but differ in technique: kept separate.
    gold = [("a", "X", 0, 10), ("a", "Y", 5, 15)]
    micro, per = flc_score(gold, list(gold))
    assert_prf(micro, 1.0, 1.0, 1.0)
    assert (micro.n_pred, micro.n_gold) == (2, 2)
    assert_prf(per["X"], 1.0, 1.0, 1.0)
    assert_prf(per["Y"], 1.0, 1.0, 1.0)


def test_flc_different_technique_overlaps_not_merged():
    # gold X [0,10), Y [5,15); pred only X [0,10).
    # X: P = R = 1. Y: n_pred = 0 -> P = 0; R = 0/1 = 0.
    # micro: P = 1/1 = 1; R = 1/2 = 0.5; F1 = 2/3.
    # (If gold merged across techniques into one span, n_gold would be 1.)
    gold = [("a", "X", 0, 10), ("a", "Y", 5, 15)]
    micro, per = flc_score(gold, [("a", "X", 0, 10)])
    assert_prf(micro, 1.0, 0.5, 2 / 3)
    assert (micro.n_pred, micro.n_gold) == (1, 2)
    assert_prf(per["X"], 1.0, 1.0, 1.0)
    assert_prf(per["Y"], 0.0, 0.0, 0.0)
    assert (per["Y"].n_pred, per["Y"].n_gold) == (0, 1)


def test_flc_same_technique_overlaps_merged():
    # pred X [0,6) + X [4,10) merge into X [0,10) == gold: P = R = 1, n_pred = 1.
    micro, per = flc_score([("a", "X", 0, 10)], [("a", "X", 0, 6), ("a", "X", 4, 10)])
    assert_prf(micro, 1.0, 1.0, 1.0)
    assert micro.n_pred == 1
    assert per["X"].n_pred == 1


def test_flc_wrong_technique_no_credit():
    # Same span, wrong label: zero everywhere.
    micro, per = flc_score([("a", "X", 0, 10)], [("a", "Y", 0, 10)])
    assert_prf(micro, 0.0, 0.0, 0.0)
    assert (micro.n_pred, micro.n_gold) == (1, 1)
    assert set(per) == {"X", "Y"}


def test_flc_micro_sums_numerators_over_techniques():
    # X: pred [10,20) vs gold [15,25): prec_num 0.5, rec_num 0.5 (1 pred, 1 gold).
    # Y: pred [0,4) vs gold [0,10): prec_num 1, rec_num 0.4; Y gold [50,60) missed.
    #    -> Y: P = 1/1 = 1, R = 0.4/2 = 0.2, F1 = 0.4/1.2 = 1/3.
    # micro: P = (0.5 + 1)/2 = 0.75; R = (0.5 + 0.4)/3 = 0.3;
    #        F1 = 2*0.75*0.3/1.05 = 3/7.
    gold = [("a", "X", 15, 25), ("a", "Y", 0, 10), ("b", "Y", 50, 60)]
    pred = [("a", "X", 10, 20), ("a", "Y", 0, 4)]
    micro, per = flc_score(gold, pred)
    assert_prf(per["X"], 0.5, 0.5, 0.5)
    assert_prf(per["Y"], 1.0, 0.2, 1 / 3)
    assert_prf(micro, 0.75, 0.3, 3 / 7)


def test_flc_touching_spans_not_merged():
    # Same logic as SI: pred X [0,5), X [5,8) vs gold X [0,5): P = 0.5, R = 1.
    micro, _ = flc_score([("a", "X", 0, 5)], [("a", "X", 0, 5), ("a", "X", 5, 8)])
    assert_prf(micro, 0.5, 1.0, 2 / 3)


def test_flc_empty_prediction():
    micro, per = flc_score([("a", "X", 0, 10)], [])
    assert_prf(micro, 0.0, 0.0, 0.0)
    assert (micro.n_pred, micro.n_gold) == (0, 1)
    assert set(per) == {"X"}
    assert_prf(per["X"], 0.0, 0.0, 0.0)


def test_flc_default_technique_keys_are_union():
    micro, per = flc_score([("a", "X", 0, 10)], [("b", "Z", 0, 10)])
    assert set(per) == {"X", "Z"}


def test_flc_techniques_given_fixes_keys():
    # Q never appears -> zeros; Y appears in data but is not requested -> absent.
    gold = [("a", "X", 0, 10), ("a", "Y", 20, 30)]
    micro, per = flc_score(gold, list(gold), techniques=["X", "Q"])
    assert list(per) == ["X", "Q"]
    assert_prf(per["X"], 1.0, 1.0, 1.0)
    assert per["Q"] == PRF(0.0, 0.0, 0.0, 0, 0)
    # Micro still covers every row (X and Y).
    assert (micro.n_pred, micro.n_gold) == (2, 2)


# ---------------------------------------------------------------- TC


def test_tc_exact_match():
    gold = [("a", "X", 0, 10), ("b", "Y", 5, 9)]
    micro, per = tc_score(gold, list(reversed(gold)))
    assert_prf(micro, 1.0, 1.0, 1.0)
    assert_prf(per["X"], 1.0, 1.0, 1.0)
    assert_prf(per["Y"], 1.0, 1.0, 1.0)


def test_tc_duplicated_gold_span_two_techniques():
    # Span (a,0,10): gold {X, Y}, pred {X, Y} -> credit 2.
    # Span (a,20,30): gold {Z}, pred {X}     -> credit 0.
    # micro: P = 2/3, R = 2/3, F1 = 2/3.
    # X: credit 1, pred rows 2, gold rows 1 -> P = 1/2, R = 1, F1 = 2/3.
    # Y: credit 1, 1 pred, 1 gold -> 1. Z: credit 0, 0 pred, 1 gold -> 0.
    gold = [("a", "X", 0, 10), ("a", "Y", 0, 10), ("a", "Z", 20, 30)]
    pred = [("a", "X", 0, 10), ("a", "Y", 0, 10), ("a", "X", 20, 30)]
    micro, per = tc_score(gold, pred)
    assert_prf(micro, 2 / 3, 2 / 3, 2 / 3)
    assert (micro.n_pred, micro.n_gold) == (3, 3)
    assert_prf(per["X"], 0.5, 1.0, 2 / 3)
    assert_prf(per["Y"], 1.0, 1.0, 1.0)
    assert_prf(per["Z"], 0.0, 0.0, 0.0)
    assert (per["X"].n_pred, per["X"].n_gold) == (2, 1)


def test_tc_multiset_caps_credit():
    # gold X once; pred X twice on the same span: credit min(1, 2) = 1.
    # P = 1/2, R = 1/1, F1 = 2/3.
    micro, per = tc_score([("a", "X", 0, 10)], [("a", "X", 0, 10), ("a", "X", 0, 10)])
    assert_prf(micro, 0.5, 1.0, 2 / 3)
    assert_prf(per["X"], 0.5, 1.0, 2 / 3)


def test_tc_spans_must_match_exactly():
    # Overlapping but not identical offsets earn nothing in TC.
    micro, _ = tc_score([("a", "X", 0, 10)], [("a", "X", 0, 9)])
    assert_prf(micro, 0.0, 0.0, 0.0)


def test_tc_empty_prediction():
    micro, per = tc_score([("a", "X", 0, 10)], [])
    assert_prf(micro, 0.0, 0.0, 0.0)
    assert (micro.n_pred, micro.n_gold) == (0, 1)
    assert set(per) == {"X"}


def test_tc_techniques_given_fixes_keys():
    gold = [("a", "X", 0, 10), ("a", "Y", 0, 10)]
    _, per = tc_score(gold, list(gold), techniques=["Q", "X"])
    assert list(per) == ["Q", "X"]
    assert per["Q"] == PRF(0.0, 0.0, 0.0, 0, 0)
    assert_prf(per["X"], 1.0, 1.0, 1.0)


# ---------------------------------------------------------------- real data

DEV_FLC = Path(__file__).resolve().parents[3] / "shared/data/ptc/dev/dev-task-flc-tc.labels"


def test_real_dev_labels_self_and_shortened():
    if not DEV_FLC.is_file():
        pytest.skip(f"{DEV_FLC} not present")
    gold: list[tuple[str, str, int, int]] = []
    for line in DEV_FLC.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        article, technique, start, end = line.split("\t")
        gold.append((article, technique, int(start), int(end)))
    assert gold

    flc_micro, _ = flc_score(gold, gold)
    tc_micro, _ = tc_score(gold, gold)
    si_gold = [(a, s, e) for a, _, s, e in gold]
    assert flc_micro.f1 == approx(1.0)
    assert tc_micro.f1 == approx(1.0)
    assert si_score(si_gold, si_gold).f1 == approx(1.0)

    # Cut every span's end back by half its length: predictions lie inside gold.
    shortened = [(a, s, e - (e - s) // 2) for a, s, e in si_gold]
    prf = si_score(si_gold, shortened)
    assert prf.precision == approx(1.0)
    assert 0.4 < prf.recall < 0.6
