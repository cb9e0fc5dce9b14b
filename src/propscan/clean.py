"""Cleaning scraped text before analysis, with an exact offset map back to the original.

(Placeholder interface: returns the text unchanged. The real cleaner replaces this module.)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Removed:
    kind: str  # e.g. "repeated-teaser", "share-footer", "search-fragment", "whitespace"
    start: int  # range in the ORIGINAL text, end exclusive
    end: int
    reason: str


@dataclass
class Cleaned:
    original: str
    text: str
    removed: list[Removed] = field(default_factory=list)

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a span [start, end) of the cleaned text onto the original text."""
        return start, end


def clean(text: str) -> Cleaned:
    return Cleaned(text, text, [])
