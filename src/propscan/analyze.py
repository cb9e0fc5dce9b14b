"""The pipeline: Document -> (clean) -> model -> decode -> Analysis, offsets in the user's text."""

from __future__ import annotations

from .clean import Cleaned, clean as clean_text
from .decode import article_score, decode_spans, sentence_scores
from .document import Analysis, Document, ModelInfo, SentenceScore, Span
from .model import Model, load


def analyze(
    doc: Document,
    model: Model | None = None,
    threshold: float | None = None,
    clean: bool = True,
) -> Analysis:
    """Analyse one document. ``threshold`` replaces the tuned per-technique thresholds (0..1)."""
    model = model or load()
    cleaned = clean_text(doc.text) if clean else Cleaned(doc.text, doc.text, [])
    text = cleaned.text
    out = model.token_outputs(text)
    spans = decode_spans(model, text, out, threshold=threshold)
    sentences = sentence_scores(text, out)
    score = article_score(sentences, spans)
    if cleaned.text is not cleaned.original:
        spans = [_remap_span(cleaned, s) for s in spans]
        sentences = [SentenceScore(*cleaned.to_original(s.start, s.end), s.score) for s in sentences]
    return Analysis(doc, spans, sentences, score, ModelInfo(model.name, model.version), threshold=threshold)


def _remap_span(cleaned: Cleaned, s: Span) -> Span:
    start, end = cleaned.to_original(s.start, s.end)
    return Span(start, end, s.technique, s.score, s.alternatives)


def analyze_text(text: str, id: str = "text", **kw) -> Analysis:
    return analyze(Document(id, text), **kw)
