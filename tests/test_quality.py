"""The figures in the model card are the figures the shipped runtime produces.

Runs the real CLI the way a user (or the issue's check) would: ``propscan analyze --format semeval``
over the PTC dev articles, then scores the rows with the SemEval-2020 formulas and compares them with
model.json's recorded dev figures. A regression in decoding, cleaning, windowing or the exported
model shows up here as a mismatch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from propscan import metrics
from propscan.model import MODEL_DIR
from propscan.ptc import read_articles, read_labels

PTC_DEV = Path(__file__).resolve().parents[2] / "shared/data/ptc/dev"


@pytest.fixture(scope="module")
def dev_predictions(tmp_path_factory):
    if not PTC_DEV.is_dir():
        pytest.skip("PTC dev data not present")
    out = tmp_path_factory.mktemp("dev") / "pred.labels"
    run = subprocess.run(
        [sys.executable, "-m", "propscan", "analyze", str(PTC_DEV / "dev-articles"), "--format", "semeval", "-o", str(out)],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    arts = read_articles(PTC_DEV / "dev-articles")
    return arts, read_labels(PTC_DEV / "dev-task-flc-tc.labels", arts), read_labels(out, arts)


def test_cli_dev_figures_match_the_model_card(dev_predictions) -> None:
    _, gold, pred = dev_predictions
    card = json.loads((MODEL_DIR / "model.json").read_text())["dev"]
    si = metrics.si_score([(g.article_id, g.start, g.end) for g in gold], [(p.article_id, p.start, p.end) for p in pred])
    flc, _ = metrics.flc_score(
        [(g.article_id, g.technique, g.start, g.end) for g in gold], [(p.article_id, p.technique, p.start, p.end) for p in pred]
    )
    assert si.f1 == pytest.approx(card["si"]["f1"], abs=0.005)
    assert flc.f1 == pytest.approx(card["flc"]["f1"], abs=0.005)


def test_predictions_are_well_formed(dev_predictions) -> None:
    arts, _, pred = dev_predictions
    assert pred, "the model found nothing on 75 propaganda-annotated articles"
    assert {p.article_id for p in pred} <= set(arts)
    assert len({p.article_id for p in pred}) >= 60  # nearly every dev article has annotated propaganda
    for p in pred:
        span = arts[p.article_id][p.start : p.end]
        assert span and span == span.strip(" \n\t.,:;")
