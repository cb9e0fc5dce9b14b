"""The central data model: a Document, the Spans found in it, and the Analysis that holds them.

Every offset is a code-point offset into ``Document.text`` (the text the user gave us), end exclusive.
``Analysis.to_dict`` follows the versioned JSON Schema shipped as ``propscan/schema/analysis.schema.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .techniques import TECHNIQUE_IDS

SCHEMA_VERSION = "1.0"
SCHEMA_ID = "https://propscan.invalid/schema/analysis/1.0"


@dataclass
class Document:
    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Span:
    start: int
    end: int
    technique: str
    score: float  # confidence in [0, 1]
    # other techniques the span classifier considered, with their probabilities (the "why")
    alternatives: dict[str, float] = field(default_factory=dict)

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
    threshold: float | None = None  # None: the model's tuned per-technique thresholds

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(s.technique for s in self.spans)
        return {t: c[t] for t in TECHNIQUE_IDS if c[t]}

    def to_dict(self) -> dict[str, Any]:
        doc = self.document
        return {
            "schema": SCHEMA_ID,
            "schema_version": SCHEMA_VERSION,
            "model": {"name": self.model.name, "version": self.model.version},
            "document": {"id": doc.id, "text": doc.text, "metadata": doc.metadata},
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "counts": self.counts,
            "spans": [
                {
                    "start": s.start,
                    "end": s.end,
                    "technique": s.technique,
                    "score": round(s.score, 4),
                    "text": s.text_in(doc),
                    "alternatives": {k: round(v, 4) for k, v in s.alternatives.items()},
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
        if d.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {d.get('schema_version')!r} (expected {SCHEMA_VERSION})")
        doc = Document(d["document"]["id"], d["document"]["text"], d["document"].get("metadata", {}))
        spans = [
            Span(s["start"], s["end"], s["technique"], s["score"], s.get("alternatives", {})) for s in d["spans"]
        ]
        sents = [SentenceScore(s["start"], s["end"], s["score"]) for s in d["sentences"]]
        return cls(doc, spans, sents, d["score"], ModelInfo(**d["model"]), d.get("threshold"))
