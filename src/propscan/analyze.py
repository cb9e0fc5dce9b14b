"""The pipeline: Document -> (clean) -> model -> decode -> Analysis, offsets in the user's text."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .clean import Cleaned, clean as clean_text
from .decode import article_score, decode_spans, sentence_scores
from .document import Analysis, Document, ModelInfo, SentenceScore, Span
from .model import Model, load


def analyze(
    doc: Document,
    model: Model | None = None,
    threshold: float | None = None,
    clean: bool = True,
    threshold_for: dict[str, float] | None = None,
) -> Analysis:
    """Analyse one document.

    ``threshold`` is the minimum confidence (a calibrated probability, 0..1) for every technique
    instead of the cutoffs tuned per technique; ``threshold_for`` sets it for single techniques.
    """
    model = model or load()
    cleaned = clean_text(doc.text) if clean else Cleaned(doc.text, doc.text, [])
    text = cleaned.text
    out = model.token_outputs(text)
    spans = decode_spans(model, text, out, threshold, threshold_for)
    sentences = sentence_scores(text, out)
    score = article_score(sentences, spans)
    if cleaned.text is not cleaned.original:
        spans = [_remap_span(cleaned, s) for s in spans]
        sentences = [SentenceScore(*cleaned.to_original(s.start, s.end), s.score) for s in sentences]
    return Analysis(doc, spans, sentences, score, ModelInfo(model.name, model.version), threshold=threshold,
                    threshold_for=dict(threshold_for or {}))


def _remap_span(cleaned: Cleaned, s: Span) -> Span:
    start, end = cleaned.to_original(s.start, s.end)
    return Span(start, end, s.technique, s.score, s.alternatives)


def analyze_text(text: str, id: str = "text", **kw) -> Analysis:
    return analyze(Document(id, text), **kw)


def in_order(
    fn: Callable[[Any], Any], items: Iterable[Any], ahead: int, wanted: Callable[[Any], bool] = lambda x: True
) -> Iterator[tuple[Any, Future | None]]:
    """``(item, future of fn(item))`` in input order, with up to ``ahead`` calls running at once.

    For multi-document runs: while one text's decoding runs in Python, the next text's windows keep the
    model busy (all of the model's calls share its pool of ``threads``, so this never oversubscribes the
    cores). Items ``wanted`` rejects come back with ``None`` in their place; ``future.result()``
    re-raises what ``fn`` raised, at that item. ``ahead`` <= 1 runs everything in the caller's thread.
    """
    if ahead <= 1:
        for x in items:
            yield x, (_ran(fn, x) if wanted(x) else None)
        return
    pool = ThreadPoolExecutor(ahead, thread_name_prefix="propscan-doc")
    pending: deque[tuple[Any, Future | None]] = deque()
    try:
        for x in items:
            pending.append((x, pool.submit(fn, x) if wanted(x) else None))
            while len(pending) > ahead:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # an interrupted run waits only for texts already started


def _ran(fn: Callable[[Any], Any], x: Any) -> Future:
    f: Future = Future()
    try:
        f.set_result(fn(x))
    except Exception as e:  # handed to the caller at this item, as the threaded path does
        f.set_exception(e)
    return f
