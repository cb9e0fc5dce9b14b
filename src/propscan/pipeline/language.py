"""Language identification: the model reads English only, so every analysis records the language of
its text and warns when it is not English.

pycld2 (Chromium's Compact Language Detector 2, a compiled wheel from PyPI, model inside, nothing
downloaded): picked over py3langid after measuring both on 75 PTC dev articles, their first long
line, and our own one- and three-sentence texts in 10 languages (ru, de, fr, es, it, pt, nl, pl, uk,
tr): both were right on all 170, but pycld2 takes 0.26 ms a text against 4.5 ms and loads at once
against 0.56 s (a start-up cost on every command), and on very short texts ("Lock her up") it
abstains instead of guessing (py3langid said "pcm" for "Fake news media"). Only a reliable
identification of another language, on a text of at least MIN_CHARS characters, warns.
"""

from __future__ import annotations

from dataclasses import dataclass

# CLD2 reads at most this much; a news article's first 100 kB say which language it is in
SAMPLE_CHARS = 100_000
# Shorter texts are not called: on them CLD2 both abstains on real Russian ("Предатели повсюду ...",
# 75 characters) and calls plain English Scots ("These traitors lie."), reliably.
MIN_CHARS = 100
# CLD2's near-English labels: English text is not to be warned about because CLD2 says "Scots"
ENGLISH = {"en", "sco"}
UNDETERMINED = "und"


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1 (or CLD2's code), "und" when undetermined
    name: str
    confidence: float  # the share of the text in that language, 0..1 (0 when undetermined)
    reliable: bool

    @property
    def not_english(self) -> bool:
        return self.reliable and self.code not in ENGLISH | {UNDETERMINED}

    def warning(self) -> str | None:
        if not self.not_english:
            return None
        return (f"the text looks like {self.name} ({self.code}, {self.confidence:.0%} of it); the model reads English "
                "only, so expect missed and spurious spans")


def identify(text: str) -> Language:
    """The main language of ``text`` (undetermined for short or mixed texts CLD2 cannot call)."""
    import pycld2

    sample = text[:SAMPLE_CHARS]
    if len(sample.strip()) < MIN_CHARS:
        return Language(UNDETERMINED, "undetermined (too short to tell)", 0.0, False)
    try:
        reliable, _, details = pycld2.detect(sample)
    except pycld2.error:  # control characters CLD2 rejects: drop them and try once more
        try:
            reliable, _, details = pycld2.detect("".join(c for c in sample if c.isprintable() or c in "\n\t "))
        except pycld2.error:
            return Language(UNDETERMINED, "undetermined", 0.0, False)
    name, code, percent, _ = details[0]
    if code in ("un", "xxx"):
        return Language(UNDETERMINED, "undetermined", 0.0, False)
    return Language(code, name.capitalize(), percent / 100.0, bool(reliable))
