"""The calibration error and its noise floor (calibrate.reliability, calibrate.ece_floor)."""

from __future__ import annotations

import math

import numpy as np

from propscan.evaluation.evaluate import score
from propscan.pipeline import calibrate
from propscan.ptc import Label


def test_floor_of_one_bin_matches_the_binomial_spread():
    # n spans all at confidence p: the share right of a perfectly calibrated model is a binomial share,
    # whose mean absolute deviation from p is about sqrt(2 / pi) * sqrt(p (1 - p) / n)
    p, n = 0.3, 500
    mean, p95 = calibrate.ece_floor(np.full(n, p), draws=4000)
    expected = math.sqrt(2 / math.pi) * math.sqrt(p * (1 - p) / n)
    assert abs(mean - expected) < 0.1 * expected
    assert p95 > mean


def test_floor_falls_with_more_spans():
    rng = np.random.default_rng(3)
    few, many = rng.beta(2, 5, 300), rng.beta(2, 5, 3000)
    assert calibrate.ece_floor(many)[0] < 0.5 * calibrate.ece_floor(few)[0]


def test_floor_is_zero_when_nothing_is_left_to_chance():
    assert calibrate.ece_floor(np.array([0.0, 1.0, 1.0, 0.0])) == (0.0, 0.0)
    assert calibrate.ece_floor(np.array([])) == (0.0, 0.0)


def test_a_calibrated_sample_lands_near_the_floor_and_a_miscalibrated_one_far_above():
    rng = np.random.default_rng(7)
    scores = rng.beta(2, 5, 1500)
    right = rng.random(1500) < scores  # right as often as the confidence says
    ece, _ = calibrate.reliability(scores, right)
    _, p95 = calibrate.ece_floor(scores)
    assert ece < p95
    overconfident, _ = calibrate.reliability(scores, rng.random(1500) < scores / 2)
    assert overconfident > 3 * p95


def test_floor_is_reproducible_and_uses_the_same_bins_as_reliability():
    scores = np.random.default_rng(0).random(800)
    assert calibrate.ece_floor(scores, seed=1) == calibrate.ece_floor(scores, seed=1)
    # one bin instead of ten: the floor is then the spread of one overall share, far smaller
    assert calibrate.ece_floor(scores, bins=1)[0] < 0.5 * calibrate.ece_floor(scores, bins=10)[0]


def test_a_scored_report_carries_its_floor():
    gold = [Label("a", 0, 10, "Doubt"), Label("a", 20, 30, "Slogans")]
    pred = [Label("a", 2, 8, "Doubt"), Label("a", 40, 50, "Slogans"), Label("a", 21, 29, "Doubt")]
    report = score(gold, pred, scores=[0.6, 0.2, 0.4])
    assert report.ece == calibrate.reliability(np.array([0.6, 0.2, 0.4]), np.array([1.0, 0.0, 0.0]))[0]
    assert report.ece_floor() == calibrate.ece_floor(np.array([0.6, 0.2, 0.4]))
    assert score(gold, pred).ece_floor() is None
