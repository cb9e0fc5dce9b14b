"""Language identification: the model reads English only, so every analysis records the language of
its text and warns when it is not English.

pycld2 (Chromium's Compact Language Detector 2, a compiled wheel from PyPI, model inside, nothing
downloaded): picked over py3langid after measuring both on 75 PTC dev articles, their first long
line, and our own one- and three-sentence texts in 10 languages (ru, de, fr, es, it, pt, nl, pl, uk,
tr): both were right on all 170, but pycld2 takes 0.26 ms a text against 4.5 ms and loads at once
against 0.56 s (a start-up cost on every command), and on very short texts ("Lock her up") it
abstains instead of guessing (py3langid said "pcm" for "Fake news media"). Only a reliable
identification of another language, on a text of at least MIN_CHARS characters, warns; and, at any
length, a text whose letters are mostly not Latin ones (Cyrillic, Chinese, Arabic, ...), which the
model's English word pieces cannot read whatever its language.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass

# CLD2 reads at most this much; a news article's first 100 kB say which language it is in
SAMPLE_CHARS = 100_000
# Shorter texts are not called: on them CLD2 both abstains on real Russian ("Предатели повсюду ...",
# 75 characters) and calls plain English Scots ("These traitors lie."), reliably.
MIN_CHARS = 100
# CLD2's near-English labels: English text is not to be warned about because CLD2 says "Scots"
ENGLISH = {"en", "sco"}
UNDETERMINED = "und"
# A text with at least this many letters, most of them outside the Latin script, is called by its script
# when CLD2 cannot name its language: a two-word Russian or Chinese headline (which CLD2 leaves
# undetermined) was highlighted as if the model could read it. Two letters: "中国" is a word.
MIN_LETTERS = 2
# what the warning calls a script: the first word of its letters' Unicode names, some made plainer
SCRIPT_NAMES = {"CJK": "Chinese characters", "HANGUL": "Korean Hangul", "HIRAGANA": "Japanese kana",
                "KATAKANA": "Japanese kana"}


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1 (or CLD2's code), "und" when undetermined
    name: str
    confidence: float  # the share of the text in that language, 0..1 (0 when undetermined)
    reliable: bool
    # set when the language is undetermined but most letters are not Latin: that script, and their share
    script: str | None = None
    script_share: float = 0.0

    @property
    def not_english(self) -> bool:
        return (self.reliable and self.code not in ENGLISH | {UNDETERMINED}) or self.script is not None

    def warning(self) -> str | None:
        if not self.not_english:
            return None
        if self.code == UNDETERMINED:
            return (f"the text is written mostly in {self.script} ({self.script_share:.0%} of its letters); the model "
                    "reads English only, so expect missed and spurious spans")
        return (f"the text looks like {self.name} ({self.code}, {self.confidence:.0%} of it); the model reads English "
                "only, so expect missed and spurious spans")


def _script(text: str) -> tuple[str, float] | None:
    """The script most of ``text``'s letters are in and their share, when that is not Latin (else None)."""
    letters = [c for c in text[:SAMPLE_CHARS] if c.isalpha()]
    if len(letters) < MIN_LETTERS:
        return None
    names = (unicodedata.name(c, "OTHER") for c in letters)
    other = Counter(name.split(" ")[0] for name in names if not name.startswith("LATIN"))
    if sum(other.values()) * 2 <= len(letters):
        return None
    word, _ = other.most_common(1)[0]
    share = sum(n for w, n in other.items() if SCRIPT_NAMES.get(w, w) == SCRIPT_NAMES.get(word, word)) / len(letters)
    return SCRIPT_NAMES.get(word, f"{word.capitalize()} letters"), share


def _undetermined(text: str, name: str) -> Language:
    """An undetermined language, called by its script when most of its letters are not Latin."""
    return Language(UNDETERMINED, name, 0.0, False, *(_script(text) or (None, 0.0)))


def identify(text: str) -> Language:
    """The main language of ``text`` (undetermined for short or mixed texts CLD2 cannot call)."""
    import pycld2

    sample = text[:SAMPLE_CHARS]
    if len(sample.strip()) < MIN_CHARS:
        return _undetermined(sample, "undetermined (too short to tell)")
    try:
        reliable, _, details = pycld2.detect(sample)
    except pycld2.error:  # control characters CLD2 rejects: drop them and try once more
        try:
            reliable, _, details = pycld2.detect("".join(c for c in sample if c.isprintable() or c in "\n\t "))
        except pycld2.error:
            return _undetermined(sample, "undetermined")
    name, code, percent, _ = details[0]
    if code in ("un", "xxx"):
        return _undetermined(sample, "undetermined")
    return Language(code, name.capitalize(), percent / 100.0, bool(reliable))
