"""Decoding: token probabilities -> technique spans with character offsets, sentence and article scores.

The spans come from the per-technique detectors in detect.py (tuned on articles the network never trained on, calibrated);
this module adds what a reader sees around them: sentences and the article's score.
"""

from __future__ import annotations

import re

import numpy as np

from propscan.document import SentenceScore, Span, sentence_hits
from propscan.pipeline.detect import ANY, TRIM, detect, resolve_cutoffs
from propscan.pipeline.model import Model, TokenOutputs

__all__ = ["ANY", "TRIM", "decode_spans", "sentence_bounds", "sentence_scores", "article_score"]
# a sentence ends at . ! ? or … (optionally followed by a closing quote or bracket) before whitespace
SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+|\n+")


def decode_spans(
    model: Model, text: str, out: TokenOutputs, min_confidence: float | None = None,
    threshold_for: dict[str, float] | None = None,
) -> list[Span]:
    """The model's spans at its tuned per-technique cutoffs, or at ``min_confidence`` for every
    technique, with ``threshold_for`` overriding single techniques (all on the calibrated scale)."""
    cutoffs = resolve_cutoffs(model.settings, min_confidence, threshold_for)
    return detect(model, model.settings, text, out, cutoffs)


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
    hit = sum(sentence_hits([(s.start, s.end) for s in sentences], [(sp.start, sp.end) for sp in spans]))
    return hit / len(sentences)
