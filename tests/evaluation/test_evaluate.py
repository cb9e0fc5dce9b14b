"""evaluate.predict with the network's outputs given: the same predictions, and the network not run
again (a build and benchmarks/quality.py reuse the outputs the cross-fitting already computed)."""

from __future__ import annotations

from propscan.evaluation.evaluate import predict
from propscan.ptc import Label

TEXTS = {
    "a": "These traitors and vile criminals are destroying our great nation! Everyone knows it.",
    "b": "The corrupt elite lies again, and the corrupt elite will never stop. Make our country great.",
}


def test_predict_uses_given_outputs_and_matches_running_the_network(model, monkeypatch):
    gold = [Label("a", 4, 12, "Name_Calling,Labeling"), Label("b", 4, 17, "Name_Calling,Labeling")]
    scores: list[float] = []
    pred, tc = predict(model, TEXTS, gold, scores=scores)
    outputs = {aid: model.token_outputs(text) for aid, text in TEXTS.items()}

    def no_network(text):
        raise AssertionError("the network ran although its outputs were given")

    monkeypatch.setattr(model, "token_outputs", no_network)
    given_scores: list[float] = []
    assert predict(model, TEXTS, gold, scores=given_scores, outputs=outputs) == (pred, tc)
    assert given_scores == scores and pred and len(tc) == 2
