"""Decoding: token probabilities -> technique spans with character offsets, sentence and article scores.

Two decoders, chosen per model on held-out data (model.json "decoding.mode"):
- ``technique``: for each technique, runs of tokens whose probability passes that technique's threshold.
- ``any+classify``: runs of the "any technique" channel, then the span head names the technique(s).
``union`` keeps both, dropping exact duplicates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .document import SentenceScore, Span
from .encoding import Encoded
from .model import Model, TokenOutputs
from .techniques import TECHNIQUE_IDS

ANY = len(TECHNIQUE_IDS)
# PTC v2 trims these characters off both ends of every gold span, so we do the same
TRIM = " \n\t.,:;"
# Runs of the same technique separated by at most this many tokens are joined. This is the default;
# each model records the gap tuned on its held-out articles in model.json ("decoding.max_gap", tune.py).
MAX_GAP = 1
# A second technique is reported for a span found by the "any" channel when the span head gives it at
# least this probability. A fixed guess, not tuned: the shipped model decodes in "technique" mode,
# where it is unused; tune.py's any+classify and union scores on held-out data include its effect.
SECOND_LABEL = 0.35
# a sentence ends at . ! ? or … (optionally followed by a closing quote or bracket) before whitespace
SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+|\n+")


@dataclass
class Run:
    a: int  # token range [a, b)
    b: int
    channel: int


def runs(mask: np.ndarray, channel: int, max_gap: int = MAX_GAP) -> list[Run]:
    """Maximal runs of True tokens, joining runs separated by <= max_gap False tokens."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return []
    out: list[Run] = []
    a = prev = int(idx[0])
    for i in idx[1:]:
        i = int(i)
        if i - prev - 1 > max_gap:
            out.append(Run(a, prev + 1, channel))
            a = i
        prev = i
    out.append(Run(a, prev + 1, channel))
    return out


def snap(enc: Encoded, a: int, b: int) -> tuple[int, int]:
    """Grow a token run to whole words: never cut a word in the middle."""
    while a > 0 and not enc.word_start[a]:
        a -= 1
    while b < len(enc) and not enc.word_start[b]:
        b += 1
    return a, b


def char_span(text: str, enc: Encoded, a: int, b: int) -> tuple[int, int] | None:
    s, e = int(enc.offsets[a, 0]), int(enc.offsets[b - 1, 1])
    while s < e and text[s] in TRIM:
        s += 1
    while e > s and text[e - 1] in TRIM:
        e -= 1
    return (s, e) if e > s else None


def thresholds_for(model: Model, override: float | None) -> np.ndarray:
    """Per-channel thresholds: the tuned ones, or one value for all when the user overrides."""
    th = np.array([model.thresholds[t] for t in TECHNIQUE_IDS] + [model.thresholds["any"]], dtype=np.float32)
    if override is not None:
        th[:] = override
    return th


def candidate_runs(probs: np.ndarray, th: np.ndarray, mode: str, max_gap: int = MAX_GAP) -> list[Run]:
    found: list[Run] = []
    if mode in ("technique", "union"):
        for t in range(len(TECHNIQUE_IDS)):
            found += runs(probs[:, t] >= th[t], t, max_gap)
    if mode in ("any+classify", "union"):
        found += runs(probs[:, ANY] >= th[ANY], ANY, max_gap)
    return found


def decode_spans(
    model: Model, text: str, out: TokenOutputs, mode: str | None = None, threshold: float | None = None
) -> list[Span]:
    mode = mode or model.decoding.get("mode", "technique")
    found = candidate_runs(out.probs, thresholds_for(model, threshold), mode, model.decoding.get("max_gap", MAX_GAP))
    return spans_from_runs(model, text, out, found)


def spans_from_runs(model: Model | None, text: str, out: TokenOutputs, found: list[Run]) -> list[Span]:
    """Turn token runs into character spans; ``model=None`` skips the span head (technique runs only)."""
    probs = out.probs
    snapped = [(r, *snap(out.enc, r.a, r.b)) for r in found]
    if model is not None:
        cls = model.classify_spans(text, out, [(a, b) for _, a, b in snapped])
    else:
        cls = np.zeros((len(snapped), len(TECHNIQUE_IDS)), np.float32)
    spans: dict[tuple[int, int, str], Span] = {}
    for (r, a, b), p in zip(snapped, cls):
        cs = char_span(text, out.enc, a, b)
        if cs is None:
            continue
        alts = {TECHNIQUE_IDS[k]: float(p[k]) for k in np.argsort(-p)[:3] if p[k] >= 0.05}
        if r.channel == ANY:
            conf = float(probs[r.a : r.b, ANY].mean())
            order = np.argsort(-p)
            picks = [order[0]] + [k for k in order[1:2] if p[k] >= SECOND_LABEL]
            for k in picks:
                _add(spans, Span(cs[0], cs[1], TECHNIQUE_IDS[k], conf * float(p[k]) ** 0.5, alts))
        else:
            conf = float(probs[r.a : r.b, r.channel].mean())
            _add(spans, Span(cs[0], cs[1], TECHNIQUE_IDS[r.channel], conf, alts))
    return sorted(spans.values(), key=lambda s: (s.start, s.end, s.technique))


def _add(spans: dict, span: Span) -> None:
    key = (span.start, span.end, span.technique)
    if key not in spans or spans[key].score < span.score:
        spans[key] = span


def sentence_bounds(text: str) -> list[tuple[int, int]]:
    """Sentence ranges: split at line breaks and at sentence-final punctuation followed by space."""
    out, pos = [], 0
    for m in SENTENCE_END.finditer(text):
        if m.start() > pos and text[pos : m.start()].strip():
            out.append((pos, m.start()))
        pos = m.end()
    if pos < len(text) and text[pos:].strip():
        out.append((pos, len(text)))
    return out


def sentence_scores(text: str, out: TokenOutputs) -> list[SentenceScore]:
    """Each sentence scored by the highest "any technique" probability among its tokens."""
    p_any = out.probs[:, ANY] if len(out.enc) else np.zeros(0)
    starts = out.enc.offsets[:, 0] if len(out.enc) else np.zeros(0, dtype=np.int64)
    scores = []
    for s, e in sentence_bounds(text):
        sel = (starts >= s) & (starts < e)
        scores.append(SentenceScore(s, e, float(p_any[sel].max()) if sel.any() else 0.0))
    return scores


def article_score(sentences: list[SentenceScore], spans: list[Span]) -> float:
    """Share of sentences that contain at least one detected span (0 = none, 1 = every sentence)."""
    if not sentences:
        return 0.0
    hit = sum(any(sp.start < s.end and sp.end > s.start for sp in spans) for s in sentences)
    return hit / len(sentences)
