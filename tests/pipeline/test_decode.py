"""Unit tests of propscan.pipeline.decode and detect's run helpers on hand-made arrays, plus decode_spans on real model outputs."""

from __future__ import annotations

import re

import numpy as np
import pytest

from propscan.pipeline import encoding
from propscan.pipeline.decode import TRIM, article_score, decode_spans, sentence_bounds, sentence_scores
from propscan.pipeline.detect import char_span, runs, snap
from propscan.document import SentenceScore, Span
from propscan.pipeline.encoding import Encoded
from propscan.techniques import TECHNIQUE_IDS

LOADED = (
    "These traitors and vile criminals are destroying our great nation! The so-called experts are lying "
    "to you, as always. Everyone knows the corrupt elite will never stop."
)


def mask(*bits: int) -> np.ndarray:
    return np.array(bits, dtype=bool)


def handmade(offsets: list[tuple[int, int]], word_start: list[bool] | None = None) -> Encoded:
    n = len(offsets)
    return Encoded(
        np.arange(n, dtype=np.int64),
        np.array(offsets, dtype=np.int64).reshape(-1, 2),
        np.array(word_start if word_start is not None else [True] * n, dtype=bool),
    )


# ----------------------------------------------------------------------------------------------------------
# runs


def test_runs_empty_and_all_false() -> None:
    assert runs(np.zeros(0, dtype=bool), 1) == []
    assert runs(mask(0, 0, 0, 0), 1) == []


def test_runs_single_and_all_true() -> None:
    assert runs(mask(0, 1, 0, 0, 0), 1) == [(1, 2)]
    assert runs(mask(1, 1, 1, 1), 1) == [(0, 4)]
    assert runs(mask(0, 0, 1, 1), 1) == [(2, 4)]  # a run reaching the end is closed


@pytest.mark.parametrize("max_gap", [0, 1, 2, 5])
def test_runs_join_gaps_up_to_max_gap(max_gap: int) -> None:
    for gap in range(0, max_gap + 1):
        m = np.array([True] * 2 + [False] * gap + [True] * 2 + [False] * 3)
        assert runs(m, max_gap) == [(0, 4 + gap)], gap
    gap = max_gap + 1
    m = np.array([False] + [True] * 2 + [False] * gap + [True] + [False])
    assert runs(m, max_gap) == [(1, 3), (3 + gap, 4 + gap)]


def test_runs_explicit_max_gap() -> None:
    m = mask(1, 0, 1, 0, 0, 1)
    assert runs(m, 0) == [(0, 1), (2, 3), (5, 6)]
    assert runs(m, 1) == [(0, 3), (5, 6)]
    assert runs(m, 2) == [(0, 6)]


@pytest.mark.parametrize("max_gap", [0, 1, 3])
def test_runs_cover_every_true_token(max_gap: int) -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        m = rng.random(40) < 0.3
        found = runs(m, max_gap)
        inside = np.zeros_like(m)
        for a, b in found:
            assert 0 <= a < b <= len(m)
            assert m[a] and m[b - 1]  # runs start and end on a True token
            inside[a:b] = True
        assert np.all(inside[m])
        for (_, b1), (a2, _) in zip(found, found[1:]):
            assert a2 - b1 > max_gap  # separate runs are more than max_gap apart


# ----------------------------------------------------------------------------------------------------------
# snap


@pytest.fixture(scope="module")
def word_pieces(model):
    text = "It was unbelievably rude."
    enc = encoding.encode(model.tokenizer, text)
    start = text.index("unbelievably")
    idx = [i for i, (s, e) in enumerate(enc.offsets) if start <= s < start + len("unbelievably")]
    assert len(idx) >= 3, "the test word should split into several word pieces"
    assert idx == list(range(idx[0], idx[-1] + 1))
    return text, enc, idx[0], idx[-1] + 1


def test_snap_grows_to_whole_words(word_pieces) -> None:
    text, enc, a, b = word_pieces
    for i in range(a, b):
        for j in range(i + 1, b + 1):
            assert snap(enc, i, j) == (a, b), (i, j)
    # a run from the middle of the word into the next word grows to both whole words
    assert snap(enc, a + 1, b + 1) == (a, b + 1)
    s, e = char_span(text, enc, *snap(enc, a + 1, a + 2))
    assert text[s:e] == "unbelievably"


def test_snap_keeps_whole_words(word_pieces) -> None:
    _, enc, a, b = word_pieces
    assert snap(enc, a, b) == (a, b)
    assert snap(enc, 0, 1) == (0, 1)
    assert snap(enc, 0, len(enc)) == (0, len(enc))
    assert snap(enc, len(enc) - 1, len(enc)) == (len(enc) - 1, len(enc))


def test_snap_handmade_at_edges() -> None:
    # "abcdef" as word pieces ab ##cd ##ef, then "gh"
    enc = handmade([(0, 2), (2, 4), (4, 6), (7, 9)], [True, False, False, True])
    assert snap(enc, 1, 2) == (0, 3)
    assert snap(enc, 2, 3) == (0, 3)
    assert snap(enc, 2, 4) == (0, 4)
    assert snap(enc, 3, 4) == (3, 4)


# ----------------------------------------------------------------------------------------------------------
# char_span


def test_char_span_trims_ptc_characters() -> None:
    text = ", shameful lies.\n"
    enc = handmade([(0, 1), (2, 10), (11, 15), (15, 16)])
    assert char_span(text, enc, 0, 4) == (2, 15)
    assert text[2:15] == "shameful lies"
    assert char_span(text, enc, 1, 3) == (2, 15)


@pytest.mark.parametrize("ch", list(TRIM))
def test_char_span_trims_each_trim_character(ch: str) -> None:
    text = f"{ch}{ch}lies{ch}{ch}"
    enc = handmade([(0, len(text))])
    assert char_span(text, enc, 0, 1) == (2, 6)


def test_char_span_keeps_other_punctuation() -> None:
    text = '"Lies!" (he said)'
    enc = handmade([(0, 1), (1, 5), (5, 6), (6, 7), (8, 9), (9, 11), (12, 16), (16, 17)])
    assert char_span(text, enc, 0, 4) == (0, 7)  # quotes and "!" are not PTC trim characters
    assert char_span(text, enc, 4, 8) == (8, 17)


def test_char_span_punctuation_only_is_none() -> None:
    text = "..., ;:"
    enc = handmade([(0, 1), (1, 2), (2, 3), (3, 4), (5, 6), (6, 7)])
    assert char_span(text, enc, 0, 6) is None
    assert char_span(text, enc, 2, 3) is None


# ----------------------------------------------------------------------------------------------------------
# sentence_bounds


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_bounds(text)]


def test_sentence_bounds_punctuation() -> None:
    assert sentences("One is here. Two is there! Three? Four… five") == ["One is here.", "Two is there!", "Three?", "Four…", "five"]


def test_sentence_bounds_newlines() -> None:
    text = "A title\n\nFirst sentence here. Second one\nThird line\r\nFourth."
    got = sentences(text)
    assert got[:3] == ["A title", "First sentence here.", "Second one"]
    assert got[3].rstrip("\r") == "Third line"
    assert got[4] == "Fourth."
    assert len(got) == 5


def test_sentence_bounds_empty_and_blank() -> None:
    assert sentence_bounds("") == []
    assert sentence_bounds("   \n\n \t") == []
    assert sentence_bounds("No final punctuation") == [(0, 20)]


def test_sentence_bounds_no_split_inside_numbers_or_without_space() -> None:
    assert sentences("Prices rose 3.5 percent.") == ["Prices rose 3.5 percent."]
    assert sentences("See example.com for more") == ["See example.com for more"]


@pytest.mark.parametrize(
    "text, first, second",
    [
        ('He said "Stop." Then he left.', 'He said "Stop', "Then he left."),
        ("She called it “a disgrace.” Nobody agreed.", "She called it “a disgrace", "Nobody agreed."),
        ("It ended (finally.) Good.", "It ended (finally", "Good."),
    ],
)
def test_sentence_bounds_split_after_closing_quote(text: str, first: str, second: str) -> None:
    got = sentences(text)
    assert len(got) == 2
    assert got[0].startswith(first)
    assert got[1] == second


@pytest.mark.parametrize(
    "text, first",
    [
        ('He said "Stop." Then he left.', 'He said "Stop."'),
        ("She called it “a disgrace.” Nobody agreed.", "She called it “a disgrace.”"),
    ],
)
def test_sentence_bounds_closing_quote_belongs_to_sentence(text: str, first: str) -> None:
    assert sentences(text)[0] == first


def test_sentence_bounds_are_ordered_and_disjoint() -> None:
    text = "Title\n\nOne sentence. Another one!\n\nA third? Yes.\nLast line without a stop"
    bounds = sentence_bounds(text)
    for s, e in bounds:
        assert 0 <= s < e <= len(text)
        assert text[s:e].strip()
    for (s1, e1), (s2, e2) in zip(bounds, bounds[1:]):
        assert e1 <= s2
    # every word is inside some sentence
    for m in re.finditer(r"\w+", text):
        assert any(s <= m.start() and m.end() <= e for s, e in bounds), m.group()


# ----------------------------------------------------------------------------------------------------------
# article_score


SENTS = [SentenceScore(0, 10, 0.9), SentenceScore(11, 20, 0.1), SentenceScore(21, 30, 0.5)]


def span(s: int, e: int) -> Span:
    return Span(s, e, "Loaded_Language", 0.5)


def test_article_score_handmade() -> None:
    assert article_score([], [span(0, 5)]) == 0.0
    assert article_score(SENTS, []) == 0.0
    assert article_score(SENTS, [span(2, 5)]) == pytest.approx(1 / 3)
    assert article_score(SENTS, [span(2, 5), span(3, 4)]) == pytest.approx(1 / 3)  # one sentence counts once
    assert article_score(SENTS, [span(8, 13)]) == pytest.approx(2 / 3)  # a span crossing a boundary
    assert article_score(SENTS, [span(0, 30)]) == 1.0
    assert article_score(SENTS, [span(2, 5), span(22, 25)]) == pytest.approx(2 / 3)


def test_article_score_touching_is_not_overlapping() -> None:
    assert article_score(SENTS, [span(10, 11)]) == 0.0  # the gap between sentences
    assert article_score(SENTS, [span(5, 11)]) == pytest.approx(1 / 3)  # ends where sentence 2 starts


# ----------------------------------------------------------------------------------------------------------
# decode_spans on real model outputs


@pytest.fixture(scope="module")
def loaded_out(model):
    return model.token_outputs(LOADED)


def test_decode_min_confidence_one_finds_nothing(model, loaded_out) -> None:
    assert decode_spans(model, LOADED, loaded_out, 1.0) == []


def test_decode_min_confidence_zero_covers_every_content_word(model, loaded_out) -> None:
    from propscan.pipeline.detect import STOP_WORDS

    spans = decode_spans(model, LOADED, loaded_out, 0.0)
    assert spans
    for m in re.finditer(r"\w+", LOADED):
        if m.group().lower() not in STOP_WORDS:
            assert any(s.start <= m.start() and m.end() <= s.end for s in spans), m.group()
    # every technique can be reported: each one missing at confidence 0 has no candidate whose evidence
    # reaches the floor below which no calibration map was fitted (detect.EVIDENCE_FLOOR). Repetition,
    # when its detector is the repeated-phrase one, needs a phrase the text already used.
    from propscan.pipeline.detect import EVIDENCE_FLOOR, Context, candidates, cleaned

    text = LOADED + " The corrupt elite again."
    out = model.token_outputs(text)
    found = {s.technique for s in decode_spans(model, text, out, 0.0)}
    assert len(found) >= 10, found  # the loaded text carries most techniques' evidence
    ctx, settings = Context(model, text, out), model.settings
    for t, tech in enumerate(TECHNIQUE_IDS):
        if tech not in found:
            kept = [cleaned(ctx, settings, c) for c in candidates(ctx, t, settings.detectors[tech], 0.0)]
            assert all(k is None or k.evidence < EVIDENCE_FLOOR for k in kept), tech


def test_decode_lower_min_confidence_finds_more(model, loaded_out) -> None:
    counts = [len(decode_spans(model, LOADED, loaded_out, p)) for p in (0.6, 0.3, 0.1, 0.0)]
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_decode_threshold_for_overrides_one_technique(model, loaded_out) -> None:
    base = decode_spans(model, LOADED, loaded_out)
    off = decode_spans(model, LOADED, loaded_out, threshold_for={"Loaded_Language": 1.0})
    assert any(s.technique == "Loaded_Language" for s in base)
    assert [s for s in base if s.technique != "Loaded_Language"] == off


@pytest.mark.parametrize("threshold", [None, 0.05, 0.2, 0.5])
def test_decode_span_invariants(model, loaded_out, threshold) -> None:
    spans = decode_spans(model, LOADED, loaded_out, threshold)
    keys = [(s.start, s.end, s.technique) for s in spans]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    for s in spans:
        assert 0 <= s.start < s.end <= len(LOADED)
        piece = LOADED[s.start : s.end]
        assert piece[0] not in TRIM and piece[-1] not in TRIM
        assert s.technique in TECHNIQUE_IDS
        assert 0.0 <= s.score <= 1.0
        assert threshold is None or s.score >= threshold
        assert s.alternatives[s.technique] == pytest.approx(s.score, abs=1e-4)  # one scale
        for k, v in s.alternatives.items():
            assert k in TECHNIQUE_IDS and 0.0 <= v <= 1.0
        # spans never cut a word: the characters around them are not word characters
        assert s.start == 0 or not (LOADED[s.start - 1].isalnum() and piece[0].isalnum())
        assert s.end == len(LOADED) or not (LOADED[s.end].isalnum() and piece[-1].isalnum())


def test_sentence_scores_follow_bounds(loaded_out) -> None:
    scores = sentence_scores(LOADED, loaded_out)
    assert [(s.start, s.end) for s in scores] == sentence_bounds(LOADED)
    assert all(0.0 <= s.score <= 1.0 for s in scores)
