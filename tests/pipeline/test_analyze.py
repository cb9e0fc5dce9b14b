"""analyze.in_order: documents analysed side by side come back in input order, errors at their item."""

from __future__ import annotations

import threading
import time

import pytest

from propscan.pipeline.analyze import in_order


class Boom(Exception):
    pass


def make_fn(delays: dict[int, float]):
    live, peak, lock, seen = [0], [0], threading.Lock(), []

    def fn(x: int) -> int:
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
            seen.append((x, threading.current_thread().name))
        time.sleep(delays.get(x, 0.01))
        with lock:
            live[0] -= 1
        if x == 4:
            raise Boom(x)
        return x * 10

    return fn, peak, seen


@pytest.mark.parametrize("ahead", [2, 3])
def test_results_in_input_order_with_calls_side_by_side(ahead: int) -> None:
    # early items are the slow ones, so finishing order differs from input order
    fn, peak, seen = make_fn({0: 0.15, 1: 0.1, 2: 0.05})
    items = list(range(8))
    out = []
    for x, fut in in_order(fn, items, ahead, wanted=lambda x: x != 6):
        if x == 6:
            assert fut is None
            out.append((x, None))
            continue
        try:
            out.append((x, fut.result()))
        except Boom:
            out.append((x, "boom"))
    assert out == [(0, 0), (1, 10), (2, 20), (3, 30), (4, "boom"), (5, 50), (6, None), (7, 70)]
    assert peak[0] == ahead  # really side by side, and never more than asked
    assert 6 not in [x for x, _ in seen]
    assert all(name.startswith("propscan-doc") for _, name in seen)


def test_ahead_one_runs_in_the_callers_thread() -> None:
    fn, peak, seen = make_fn({})
    res = [(x, f.result() if x != 4 else pytest.raises(Boom, f.result)) for x, f in in_order(fn, range(6), 1)]
    assert [x for x, _ in res] == list(range(6))
    assert peak[0] == 1
    assert {name for _, name in seen} == {threading.current_thread().name}


def test_stopping_early_leaves_no_thread_running() -> None:
    fn, _, seen = make_fn({})
    gen = in_order(fn, range(100), 2)
    for x, f in gen:
        if x == 3:
            break
    gen.close()
    assert len(seen) <= 6  # only the look-ahead was started, the rest cancelled
    assert not [t for t in threading.enumerate() if t.name.startswith("propscan-doc")]


def test_what_cleaning_removed_is_listed(model) -> None:
    """The JSON says which debris was left out of the analysis, with ranges into the user's text."""
    from propscan.pipeline.analyze import analyze
    from propscan.document import Document

    body = "The shameful traitors on the council voted again, and the so-called experts cheered them on."
    text = f"{body}\n\nShare it:\nFacebook | Twitter | Email\n"
    a = analyze(Document("d", text), model=model)
    kinds = {r["kind"] for r in a.to_dict()["removed"]}
    assert kinds and "whitespace" not in kinds
    for r in a.removed:
        assert text[r["start"]:r["end"]].strip() and r["reason"]
        assert not any(s.start < r["end"] and s.end > r["start"] for s in a.spans)  # never analysed
    raw = analyze(Document("d", text), model=model, clean=False)
    assert raw.removed == []


def test_every_span_says_which_words_carried_it():
    """Schema 1.2: a span's evidence is its words with the token probability of the channel that found
    it, mapped back to the user's text like the span (here through cleaning, which moves offsets)."""
    from pathlib import Path

    from propscan.pipeline.analyze import analyze
    from propscan.document import Analysis, Document

    text = Path(__file__).resolve().parents[2].joinpath("examples", "city-council-op-ed.txt").read_text()
    a = analyze(Document("op-ed", "Share this article\n\n" + text))
    assert a.spans
    for s in a.spans:
        assert s.evidence, s
        for ws, we, w in s.evidence:
            word = a.document.text[ws:we]
            assert s.start <= ws < we <= s.end and word.strip() == word and any(c.isalnum() for c in word)
            assert 0.0 <= w <= 1.0
    again = Analysis.from_dict(a.to_dict())
    assert [s.evidence for s in again.spans] == [s.evidence for s in a.spans]
    old = a.to_dict()
    old["schema_version"] = "1.1"
    for s in old["spans"]:
        del s["evidence"]
    assert all(s.evidence == [] for s in Analysis.from_dict(old).spans)
