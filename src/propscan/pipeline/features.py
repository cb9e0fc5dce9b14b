"""Span features shared by the training code and the runtime span classifier.

A span is represented by its pooled encoder states plus two cheap article-level signals that the
encoder cannot see inside one window: how often the same words recur in the article (the Repetition
technique is defined by it) and the span's length.
"""

from __future__ import annotations

import numpy as np

N_EXTRA = 2


def repeat_count(text_lower: str, span_lower: str) -> int:
    """Occurrences of the span's words anywhere in the article (at least 1 for the span itself)."""
    needle = span_lower.strip()
    if not needle:
        return 1
    return max(1, text_lower.count(needle))


def occurs_earlier(text_lower: str, start: int, end: int, memo: dict[str, int] | None = None) -> bool:
    """Whether the span's words already occur, as whole words, before the span in the article.

    PTC labels the later mentions of a repeated phrase as Repetition, rarely the first: of the dev
    spans whose words occurred earlier, 73% carry Repetition; of the other spans, 4%.
    str.find, not a regex over the prefix: no copy of the text per span, which matters in long texts.
    ``memo`` (one per text) keeps where each phrase first occurs as whole words, for callers that ask
    about many mentions of the same words: a phrase glued to the next sentence ("lied.Then") occurs
    earlier only inside longer words, so each mention read all those before it (8,000 mentions, 15
    million steps).
    """
    needle = text_lower[start:end].strip()
    if not needle:
        return False
    if memo is not None:
        if needle not in memo:
            memo[needle] = _first_whole_end(text_lower, needle, len(text_lower))
        return memo[needle] <= start
    return _first_whole_end(text_lower, needle, start) <= start


def _first_whole_end(text_lower: str, needle: str, before: int) -> int:
    """Where the first mention of ``needle`` as whole words that ends by ``before`` ends (past the text
    when there is none)."""
    i = text_lower.find(needle, 0, before)
    while i >= 0:
        j = i + len(needle)
        if not (i > 0 and _word_char(text_lower[i - 1])) and not (j < len(text_lower) and _word_char(text_lower[j])):
            return j
        i = text_lower.find(needle, i + 1, before)
    return len(text_lower) + 1


def _word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def extra_features(text_lower: str, start: int, end: int, n_tokens: int) -> np.ndarray:
    reps = repeat_count(text_lower, text_lower[start:end])
    return np.array([np.log1p(reps - 1), np.log1p(n_tokens)], dtype=np.float32)


def pool(hidden: np.ndarray, token_logits: np.ndarray, a: int, b: int) -> np.ndarray:
    """Mean and max of hidden states over tokens [a, b) plus the mean token logits."""
    h = hidden[a:b]
    return np.concatenate([h.mean(0), h.max(0), token_logits[a:b].mean(0)]).astype(np.float32)


def span_input(hidden: np.ndarray, token_logits: np.ndarray, text_lower: str, a: int, b: int, start: int,
               end: int) -> np.ndarray:
    """The span classifier's input for tokens [a, b) covering characters [start, end): pooled states
    and logits, then the repetition count and length."""
    return np.concatenate([pool(hidden, token_logits, a, b), extra_features(text_lower, start, end, b - a)])
