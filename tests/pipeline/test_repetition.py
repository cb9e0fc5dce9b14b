"""The repetition prior: later mentions of a phrase lean towards the Repetition technique.

Hand-made texts and probabilities for the pieces (features.occurs_earlier, model.repetition_prior);
the real shipped model for classify_spans and the held-out tuning of the bonus.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propscan.pipeline import encoding, features
from propscan.pipeline.model import REPETITION, repetition_prior
from propscan.ptc import Label
from propscan.techniques import TECHNIQUE_IDS
from propscan.training.tune import REPEAT_BONUSES, tune_repeat_bonus

TEXT = (
    "Illegal aliens crossed the river again. Officials said the numbers were rising. "
    "Now the illegal aliens are everywhere, and the alien question will not go away."
)


def _at(text: str, phrase: str, nth: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(nth + 1):
        start = text.lower().index(phrase, start + 1)
    return start, start + len(phrase)


@pytest.mark.parametrize(
    "phrase, nth, expected",
    [
        ("illegal aliens", 0, False),  # the first mention
        ("illegal aliens", 1, True),  # the second, case aside
        ("alien", 0, False),  # "aliens" earlier is a different word
        ("the", 1, True),
        ("officials said", 0, False),
    ],
)
def test_occurs_earlier(phrase: str, nth: int, expected: bool) -> None:
    s, e = _at(TEXT, phrase, nth)
    assert features.occurs_earlier(TEXT.lower(), s, e) is expected


def test_occurs_earlier_blank_and_trimmed() -> None:
    low = "war war   "
    assert features.occurs_earlier(low, 7, 10) is False  # only spaces
    assert features.occurs_earlier(low, 3, 8) is True  # " war " strips to "war"
    assert features.occurs_earlier(low, 0, 3) is False


def test_repetition_prior_multiplies_the_odds() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(len(TECHNIQUE_IDS)), size=4).astype(np.float32)
    earlier = np.array([True, False, True, False])
    out = repetition_prior(probs, earlier, 2.0)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(out[~earlier], probs[~earlier])
    odds = lambda p: p[:, REPETITION] / (1 - p[:, REPETITION])  # noqa: E731
    np.testing.assert_allclose(odds(out[earlier]), np.exp(2.0) * odds(probs[earlier]), rtol=1e-4)
    # the other techniques keep their order and ratios
    others = [k for k in range(len(TECHNIQUE_IDS)) if k != REPETITION]
    ratio = out[earlier][:, others] / probs[earlier][:, others]
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1], ratio.shape), rtol=1e-4)
    assert out is not probs and probs[0, REPETITION] < out[0, REPETITION]


def test_repetition_prior_no_bonus_or_no_repeat_is_identity() -> None:
    probs = np.full((2, len(TECHNIQUE_IDS)), 1 / len(TECHNIQUE_IDS), np.float32)
    assert repetition_prior(probs, np.array([True, True]), 0.0) is probs
    assert repetition_prior(probs, np.array([False, False]), 4.0) is probs


def test_classify_spans_bonus_moves_only_later_mentions(model) -> None:
    out = model.token_outputs(TEXT)
    ranges = [encoding.token_range(out.enc, *_at(TEXT, "illegal aliens", k)) for k in (0, 1)]
    plain = model.classify_spans(TEXT, out, ranges, repeat_bonus=0.0)
    boosted = model.classify_spans(TEXT, out, ranges, repeat_bonus=4.0)
    np.testing.assert_allclose(boosted[0], plain[0], rtol=1e-6)  # first mention untouched
    assert boosted[1, REPETITION] > plain[1, REPETITION]
    # without an argument the model's own tuned bonus applies
    own = model.decoding.get("repeat_bonus", 0.0)
    np.testing.assert_allclose(model.classify_spans(TEXT, out, ranges), model.classify_spans(TEXT, out, ranges, own))


def test_tune_repeat_bonus_picks_the_best_grid_value(model) -> None:
    s1, e1 = _at(TEXT, "illegal aliens", 0)
    s2, e2 = _at(TEXT, "illegal aliens", 1)
    gold = [Label("a", s1, e1, "Loaded_Language"), Label("a", s2, e2, "Repetition")]
    best, by_bonus = tune_repeat_bonus(model, {"a": TEXT}, {"a": model.token_outputs(TEXT)}, gold)
    assert set(by_bonus) == set(REPEAT_BONUSES)
    assert by_bonus[best] == max(by_bonus.values())
    assert best == min(b for b, f in by_bonus.items() if f == by_bonus[best])  # ties go to the smaller bonus
    # the largest bonus always names the second mention Repetition, so it scores at least 1 of 2
    assert by_bonus[max(REPEAT_BONUSES)] >= 0.5


def _earlier_brute_force(text: str, start: int, end: int) -> bool:
    """Reference: some whole-word occurrence of the stripped span text ends at or before ``start``."""
    needle = text[start:end].strip()
    word = lambda k: 0 <= k < len(text) and bool(re.match(r"\w", text[k]))  # noqa: E731
    return bool(needle) and any(
        text.startswith(needle, i) and not word(i - 1) and not word(i + len(needle))
        for i in range(0, start - len(needle) + 1)
    )


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.sampled_from(["war", "wars", "the", "Crisis", "crisis!", "élite", "a_b", "“war”"]), min_size=1, max_size=12),
    seps=st.lists(st.sampled_from([" ", "  ", "\n", ", ", "-"]), min_size=12, max_size=12),
    pick=st.data(),
)
def test_occurs_earlier_matches_a_brute_force_search(words, seps, pick) -> None:
    text = "".join(w + s for w, s in zip(words, seps)).lower()
    start = pick.draw(st.integers(0, len(text) - 1))
    end = pick.draw(st.integers(start + 1, len(text)))
    assert features.occurs_earlier(text, start, end) is _earlier_brute_force(text, start, end)


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.sampled_from(["war", "wars", "the", "Crisis", "crisis!", "élite", "a_b", "war.The"]), min_size=1, max_size=12),
    seps=st.lists(st.sampled_from([" ", "  ", "\n", ", ", "-", ""]), min_size=12, max_size=12),
    pick=st.data(),
)
def test_occurs_earlier_with_a_memo_answers_as_without(words, seps, pick) -> None:
    """One memo serves every span of a text, in any order: the answers stay the brute force's."""
    text = "".join(w + s for w, s in zip(words, seps)).lower()
    memo: dict[str, int] = {}
    for _ in range(6):
        start = pick.draw(st.integers(0, len(text) - 1))
        end = pick.draw(st.integers(start + 1, len(text)))
        assert features.occurs_earlier(text, start, end, memo) is _earlier_brute_force(text, start, end)


def test_mentions_glued_to_the_next_sentence_are_looked_up_once(model, monkeypatch) -> None:
    """A phrase glued to the next sentence occurs earlier only inside longer words ("lied.then"), so
    every mention read all those before it; classify_spans now looks each phrase up once."""
    text = "They lied.Then they ran. " * 300
    calls = []
    real = features._first_whole_end
    monkeypatch.setattr(features, "_first_whole_end", lambda *a: calls.append(a[1]) or real(*a))
    out = model.token_outputs(text)
    spans = [(m.start(), m.end()) for m in re.finditer(r"They lied\.", text)]
    probs = model.classify_spans(text, out, encoding.token_ranges(out.enc, spans), repeat_bonus=3.0)
    assert calls == ["they lied."]
    assert np.allclose(probs, model.classify_spans(text, out, encoding.token_ranges(out.enc, spans), repeat_bonus=0.0))
