"""The central data model: a Document, the Spans found in it, and the Analysis that holds them.

Every offset is a code-point offset into ``Document.text`` (the text the user gave us), end exclusive.
``Analysis.to_dict`` follows the versioned JSON Schema shipped as ``propscan/schema/analysis.schema.json``.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from propscan.techniques import TECHNIQUE_IDS

SCHEMA_VERSION = "1.2"
SCHEMA_ID = "https://propscan.invalid/schema/analysis/1.2"
# 1.1 added ``threshold_for``, ``passages``, ``language``, ``warnings`` and ``removed``; 1.2 a span's ``evidence``;
# older files read as before (no evidence)
READABLE_VERSIONS = ("1.0", "1.1", SCHEMA_VERSION)


@dataclass
class Document:
    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


# A text without a title in its metadata is named by its first line when that line is short enough to be
# a headline (PTC articles and most pasted news start with one).
HEADLINE_CHARS = 150


def headline(text: str) -> str | None:
    """The first non-empty line, if it reads as a headline: at most HEADLINE_CHARS characters, with
    more text after it (a one-line text is a body, not a title)."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    return lines[0] if len(lines) > 1 and len(lines[0]) <= HEADLINE_CHARS else None


@dataclass
class Span:
    start: int
    end: int
    technique: str
    score: float  # calibrated: the probability that annotators marked an overlapping span of this technique
    # other techniques the span classifier considered, with their probabilities (the "why")
    alternatives: dict[str, float] = field(default_factory=dict)
    # per word: (start, end, the token probability of the channel that found the span): which words
    # carried the label (uncalibrated, a relative weight)
    evidence: list[tuple[int, int, float]] = field(default_factory=list)

    def moved(self, start: int, end: int, place) -> Span:
        """The same span at new offsets; ``place(start, end)`` moves each evidence word the same way."""
        return Span(start, end, self.technique, self.score, self.alternatives,
                    [(*place(ws, we), w) for ws, we, w in self.evidence])

    def text_in(self, doc: Document) -> str:
        return doc.text[self.start : self.end]


@dataclass
class SentenceScore:
    start: int
    end: int
    score: float  # highest token probability of any technique inside the sentence


@dataclass
class ModelInfo:
    name: str
    version: str


@dataclass
class Analysis:
    document: Document
    spans: list[Span]
    sentences: list[SentenceScore]
    score: float  # article-level propaganda score in [0, 1]
    model: ModelInfo
    threshold: float | None = None  # the minimum confidence for every technique; None: the tuned cutoffs
    threshold_for: dict[str, float] = field(default_factory=dict)  # per-technique overrides of it
    language: str = "und"  # ISO 639-1 code of the text's language; "und": undetermined
    language_confidence: float = 0.0  # share of the text in that language, 0..1
    warnings: list[str] = field(default_factory=list)  # what the reader should know (say, not English)
    # what cleaning removed before analysis: {"kind", "start", "end", "reason"}, ranges in document.text
    removed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(s.technique for s in self.spans)
        return {t: c[t] for t in TECHNIQUE_IDS if c[t]}

    @property
    def passages(self) -> list[list[Span]]:
        """The spans grouped by text range: one passage per distinct (start, end), its spans by score.

        A range flagged with two techniques is one highlighted passage, not two; counts of passages
        never count the same words twice for that reason.
        """
        by: dict[tuple[int, int], list[Span]] = {}
        for s in self.spans:
            by.setdefault((s.start, s.end), []).append(s)
        return [sorted(v, key=lambda s: -s.score) for _, v in sorted(by.items())]

    def to_dict(self) -> dict[str, Any]:
        doc = self.document
        return {
            "schema": SCHEMA_ID,
            "schema_version": SCHEMA_VERSION,
            "model": {"name": self.model.name, "version": self.model.version},
            "document": {"id": doc.id, "text": doc.text, "metadata": doc.metadata},
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "threshold_for": dict(self.threshold_for),
            "counts": self.counts,
            "passages": len(self.passages),
            "language": {"code": self.language, "confidence": round(self.language_confidence, 2)},
            "warnings": list(self.warnings),
            "removed": [dict(r) for r in self.removed],
            "spans": [
                {
                    "start": s.start,
                    "end": s.end,
                    "technique": s.technique,
                    "score": round(s.score, 4),
                    "text": s.text_in(doc),
                    "alternatives": {k: round(v, 4) for k, v in s.alternatives.items()},
                    "evidence": [{"start": ws, "end": we, "weight": w} for ws, we, w in s.evidence],
                }
                for s in self.spans
            ],
            "sentences": [
                {"start": s.start, "end": s.end, "score": round(s.score, 4)} for s in self.sentences
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Analysis:
        if d.get("schema_version") not in READABLE_VERSIONS:
            raise ValueError(f"unsupported schema_version {d.get('schema_version')!r} (expected one of {', '.join(READABLE_VERSIONS)})")
        doc = Document(d["document"]["id"], d["document"]["text"], d["document"].get("metadata", {}))
        spans = [
            Span(s["start"], s["end"], s["technique"], s["score"], s.get("alternatives", {}),
                 [(e["start"], e["end"], e["weight"]) for e in s.get("evidence", [])]) for s in d["spans"]
        ]
        sents = [SentenceScore(s["start"], s["end"], s["score"]) for s in d["sentences"]]
        lang = d.get("language") or {}
        return cls(doc, spans, sents, d["score"], ModelInfo(**d["model"]), d.get("threshold"), d.get("threshold_for", {}),
                   lang.get("code", "und"), lang.get("confidence", 0.0), list(d.get("warnings", [])),
                   [dict(r) for r in d.get("removed", [])])


def sentence_hits(sentences: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[bool]:
    """For each sentence, does any span overlap it? O((n + m) log m), not O(n * m)."""
    if not spans:
        return [False] * len(sentences)
    by_start = sorted(spans)
    starts = [s for s, _ in by_start]
    max_end, m = [], -1
    for _, e in by_start:
        m = max(m, e)
        max_end.append(m)
    hits = []
    for s, e in sentences:
        k = bisect.bisect_left(starts, e)  # spans starting before the sentence ends
        hits.append(k > 0 and max_end[k - 1] > s)
    return hits
