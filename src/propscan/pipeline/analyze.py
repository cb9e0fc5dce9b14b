"""The pipeline: Document -> (clean) -> model -> decode -> Analysis, offsets in the user's text."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from propscan.document import Analysis, Document, ModelInfo, SentenceScore, Span
from propscan.errors import PropscanError
from propscan.pipeline.clean import Cleaned
from propscan.pipeline.clean import clean as clean_text
from propscan.pipeline.decode import article_score, decode_spans, sentence_scores
from propscan.pipeline.language import identify
from propscan.pipeline.model import Model, load

# Texts longer than this many characters are analysed block by block, so memory stays bounded by one
# block's encoder states (about 25k tokens x 384 floats) whatever the text's length, and time stays
# linear: a 5 MB text peaked at 2.49 GB RSS in one piece, 330 MB in blocks (`/usr/bin/time -v propscan
# analyze`, 2026-12-01), 174 s against 33 s for 1 MB. Techniques defined across
# a whole article (Repetition) see one block at a time; news articles are far shorter than a block.
BLOCK_CHARS = 100_000


def analyze(
    doc: Document | str,
    model: Model | None = None,
    threshold: float | None = None,
    clean: bool = True,
    threshold_for: dict[str, float] | None = None,
    skip_non_english: bool = False,
) -> Analysis:
    """Analyse one document (a plain string is a document with the id "text").

    ``threshold`` is the minimum confidence (a calibrated probability, 0..1) for every technique
    instead of the cutoffs tuned per technique; ``threshold_for`` sets it for single techniques.
    """
    if isinstance(doc, str):
        doc = Document("text", doc)
    model = model or load()
    cleaned = clean_text(doc.text) if clean else Cleaned(doc.text, doc.text, [])
    text = cleaned.text
    language = identify(text)
    if skip_non_english and language.not_english:
        raise PropscanError(f"not analysed (--skip-non-english): {language.warning()}")
    spans: list[Span] = []
    sentences: list[SentenceScore] = []
    for start, end in blocks(text, BLOCK_CHARS):
        block = text[start:end]
        out = model.token_outputs(block)
        spans += [_shifted(s, start) for s in decode_spans(model, block, out, threshold, threshold_for)]
        sentences += [SentenceScore(s.start + start, s.end + start, s.score) for s in sentence_scores(block, out)]
        del out  # a block's encoder states are the largest thing held; free them before the next block
    score = article_score(sentences, spans)
    if cleaned.text is not cleaned.original:
        spans = [_remap_span(cleaned, s) for s in spans]
        sentences = [SentenceScore(*cleaned.to_original(s.start, s.end), s.score) for s in sentences]
    warnings = [w for w in (language.warning(), unreadable_warning(doc.text)) if w]
    # debris the reader should know was not analysed (collapsed blank lines are not worth listing)
    removed = [{"kind": r.kind, "start": r.start, "end": r.end, "reason": r.reason}
               for r in cleaned.removed if r.kind != "whitespace"]
    return Analysis(doc, spans, sentences, score, ModelInfo(model.name, model.version), threshold=threshold,
                    threshold_for=dict(threshold_for or {}), language=language.code,
                    language_confidence=language.confidence, warnings=warnings, removed=removed)


def unreadable_warning(text: str) -> str | None:
    """What U+FFFD in a text means for its analysis (ingest puts one where a byte was not UTF-8)."""
    n = text.count("\ufffd")
    if not n:
        return None
    return (f"{n} character{'s' if n > 1 else ''} could not be read (shown as \ufffd: bytes that were not valid UTF-8 "
            f"where the text came from); the words next to {'them' if n > 1 else 'it'} may be misread")


def blocks(text: str, size: int = BLOCK_CHARS) -> list[tuple[int, int]]:
    """[start, end) ranges of at most ``size`` characters covering ``text``, cut at a paragraph break,
    else a sentence end, else a space, where one falls in the block's last quarter."""
    out, pos = [], 0
    while len(text) - pos > size:
        window = text[pos + size * 3 // 4 : pos + size]
        cut = window.rfind("\n")
        if cut < 0:
            cut = max(window.rfind(p) for p in (". ", "! ", "? "))
            cut = cut + 1 if cut >= 0 else window.rfind(" ")
        end = pos + size * 3 // 4 + cut + 1 if cut >= 0 else pos + size
        out.append((pos, end))
        pos = end
    if pos < len(text) or not out:
        out.append((pos, len(text)))
    return out


def _shifted(s: Span, by: int) -> Span:
    return s.moved(s.start + by, s.end + by, lambda a, b: (a + by, b + by)) if by else s


def _remap_span(cleaned: Cleaned, s: Span) -> Span:
    return s.moved(*cleaned.to_original(s.start, s.end), cleaned.to_original)


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
