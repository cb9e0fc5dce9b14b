"""Calibration fitted on held-out + dev: the dev figures are out of fold (a dev article never calibrates
itself), and refitting moves the confidences, never which spans are reported."""

from __future__ import annotations

import numpy as np

from propscan.pipeline import calibrate
from propscan.techniques import TECHNIQUE_IDS
from propscan.training.tune import FOLDS, folds_of, out_of_fold


def _rows(rng: np.random.Generator, n: int, articles: list[str]):
    ev = rng.uniform(0.02, 0.9, n)
    tech = rng.choice(TECHNIQUE_IDS[:4], n)
    y = (rng.uniform(size=n) < ev * 0.7).astype(float)  # over-confident evidence, as on PTC dev
    return ev, y, tech, rng.choice(articles, n)


def test_every_dev_article_is_in_exactly_one_fold_and_every_fold_is_used():
    aids = np.array([f"a{i}" for i in range(12)] * 3)
    fold = folds_of(aids)
    assert all(len(set(fold[aids == a])) == 1 for a in set(aids))
    assert set(fold) == set(range(FOLDS))


def test_a_dev_fold_is_scored_without_its_own_labels():
    rng = np.random.default_rng(0)
    heldout = _rows(rng, 300, [f"h{i}" for i in range(20)])
    dev = _rows(rng, 400, [f"d{i}" for i in range(25)])
    before = out_of_fold(heldout, dev, 3.0)
    fold = folds_of(dev[3])
    flipped = dev[1].copy()
    flipped[fold == 0] = 1 - flipped[fold == 0]  # other labels for fold 0's articles only
    after = out_of_fold(heldout, (dev[0], flipped, dev[2], dev[3]), 3.0)
    np.testing.assert_allclose(after[fold == 0], before[fold == 0])  # fold 0's scores never saw its labels
    assert not np.allclose(after[fold != 0], before[fold != 0])  # the other folds' maps did


def test_out_of_fold_calibration_corrects_over_confidence_the_held_out_maps_keep():
    rng = np.random.default_rng(1)
    h_ev = rng.uniform(0.02, 0.9, 600)
    h_tech = rng.choice(TECHNIQUE_IDS[:4], 600)
    heldout = (h_ev, (rng.uniform(size=600) < h_ev).astype(float), h_tech, rng.choice([f"h{i}" for i in range(20)], 600))
    dev = _rows(rng, 1600, [f"d{i}" for i in range(40)])  # right less often than held-out at the same evidence
    held_only = calibrate.fit(heldout[0], heldout[1], heldout[2], list(TECHNIQUE_IDS), 3.0)
    ece_held = calibrate.reliability(np.array([float(held_only(t, e)) for t, e in zip(dev[2], dev[0])]), dev[1])[0]
    ece_oof = calibrate.reliability(out_of_fold(heldout, dev, 3.0), dev[1])[0]
    assert ece_oof < 0.6 * ece_held
