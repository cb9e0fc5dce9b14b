"""Detection: token probabilities -> clean, calibrated technique spans.

Each technique has its own detector, chosen on the tuning articles for that technique's own FLC F1
(training.tune.tune_detectors), so no technique is switched off because it lowers an aggregate:

- ``channel``: runs of tokens whose probability for the technique passes a threshold (grown over weaker
  neighbours when the detector's ``grow`` says so);
- ``classify``: runs of the "any technique" channel that the span head names as this technique;
- ``repeat`` (Repetition): the later occurrences of a phrase the article already used, where the
  model's "any technique" probability supports them, at that occurrence or (``pool``) over all the
  phrase's occurrences. PTC defines Repetition by the article itself.

Every candidate carries an evidence value in [0, 1] (the highest token probability of its run,
the span head's probability, or the mean "any" probability of the repeated phrase). The calibration maps it onto the probability that annotators marked an
overlapping span of the same technique; a span is kept when that probability reaches the
technique's cutoff (tuned, or the user's ``--min-confidence`` / ``--threshold-for``).
Spans are then cleaned: whole words, no leading or trailing function words, web addresses or HTML
character references ("&quot;"), never only function words, punctuation, digits or such markup. No span runs over a sentence end glued to the next sentence
("attacks.The", scraping debris), a paragraph break or the start of a list item: candidates are cut
there, as they would be at "attacks. The" by the network's own reading.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from propscan.document import Span
from propscan.pipeline import encoding
from propscan.pipeline.calibrate import Calibration
from propscan.pipeline.features import occurs_earlier
from propscan.techniques import TECHNIQUE_IDS

ANY = len(TECHNIQUE_IDS)
TRIM = " \n\t.,:;"
DOUBT = TECHNIQUE_IDS.index("Doubt")
REPETITION = TECHNIQUE_IDS.index("Repetition")
# Function words a span may not begin or end with, and may not consist of (the junk spans "of",
# "our", "who" users saw). English only: the model reads English only.
STOP_WORDS = frozenset(
    """a an the of to in on at by for with from into onto upon over under about after before between
    through during without within and or but nor so yet if than then as because while although though
    whether is are was were be been being am do does did done have has had having i me my mine myself
    you your yours yourself he him his himself she her hers herself it its itself we us our ours
    ourselves they them their theirs themselves this that these those there here who whom whose which
    what when where why how not no can could will would shall should may might must just also too very
    all any some such only own same other each both either neither more most much many s t d ll ve re
    m don doesn didn isn wasn aren weren won wouldn couldn shouldn""".split()
)
WORD = re.compile(r"\w[\w'’-]*")
# Both encoders' WordPiece tokenizers read a word longer than this (max_input_chars_per_word) as one
# unknown token: the network never saw its letters. Such a "word" (a base64 blob, a hash, a key held down)
# is no content word, so no span is made of one or ends in one: a text of 300,000 "a"s came out as three
# 100,000-character Bandwagon spans. PTC train and dev hold no word this long (their outputs are unchanged).
LONGEST_WORD = 100
# Alternatives shown for a span: the techniques whose calibrated probability for the same words
# reaches this, at most three. Below it, an alternative says nothing a reader can use.
ALTERNATIVE_MIN = 0.05
# A line of at most this many words with no sentence-final full stop is a heading ("Where did the
# story start?"), not a sentence; Doubt is not reported inside one (training/tune.py measures the effect).
HEADING_WORDS = 12
# A numbered or lettered heading ("3. What were the lies?", "b) Why now?") is a heading too: its marker's
# full stop is no sentence end. PTC has no such lines (2 in dev, both links), so no dev figure moves; the
# seed article has five.
LIST_MARKER = re.compile(r"^(?:\(?(?:\d{1,3}|[A-Za-z])[.)]|[-*•])\s+")
# A sentence end with no space after it ("missile attacks.The evidences"): two lower-case letters, the
# punctuation, then a capitalised word. Rare in clean news text (4 in PTC dev, inside no gold span;
# benchmarks/quality.py printed the same dev figures with and without it); "U.S.A", "Ph.D" and
# "example.com" do not match.
GLUED_END = re.compile(r"(?<=[a-z]{2}[.!?])[A-Z][a-z]")
# A paragraph break (a blank line): no span runs across one. None of PTC train's 6,128 gold spans does
# (the seed article's scraped sections otherwise ran together into 1,500-character spans).
PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
# Web and e-mail addresses: no technique lives in one, so their words are not content words (a span of
# nothing else is dropped, one that ends in a link is trimmed back to its prose, and a link repeated is
# no Repetition). None of PTC train's or dev's 7,191 gold spans is one (2 run over part of one, inside
# prose). A bare domain ("Crux.com") stays a word, a name: it counts as an address only with a scheme,
# "www." or a path ("pic.twitter.com/FJmng7Z").
_URL_END = r"[^\s<>\"“”'‘’]*[^\s<>\"“”'‘’.,;:!?)\]}]"
LINK = rf"(?:https?://|www\.){_URL_END}|\b(?:[a-z0-9-]+\.)+[a-z]{{2,}}/{_URL_END}|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
# HTML character references left in scraped or feed text ("They don&#8217;t", "&quot;experts&quot;"): their
# letters ("quot", "amp") are no words either, so no span begins or ends in one. Cleaning only deletes, so
# they are not decoded (docs/design.md). PTC's texts hold none.
ENTITY = r"&(?:[a-z][a-z0-9]{1,31}|#[0-9]{1,7}|#x[0-9a-f]{1,6});"
MARKUP = re.compile(f"{LINK}|{ENTITY}", re.IGNORECASE)
# No address or character reference holds a space, and each holds "/", "@", "&" or "www.": MARKUP is
# matched only in the runs of non-space characters that hold one, and not in a run longer than this (PTC's
# longest run is 160 characters; a longer "address" is read as words). The same matches as over the whole
# text (PTC train, dev and test, the seed article, 200,000 random strings: runs/markup/cmp.py), without the
# backtracking that took 87 s over a 300,000-letter run, every letter a new try at an e-mail address;
# within a run it can still cost the run's length squared, so the cap bounds it (600 kB of 1,000-character
# runs built to be slow: about 2-5 s).
LONGEST_RUN = 1000
NON_SPACE = re.compile(r"\S+")
MARKUP_SIGN = re.compile(r"[/@&]|www\.", re.IGNORECASE)
# The lowest evidence a detector ever keeps. Tuning searches cutoffs from here up (training.tune.GRID),
# so the calibration maps were fitted on candidates above it; a confidence asked for below a nearly flat
# map's range (--min-confidence 0.1 where Flag-waving's map gives 0.25 at the least) would otherwise set
# the token threshold to 0 and every token of a section would join one run.
EVIDENCE_FLOOR = 0.02


@dataclass
class Detector:
    source: str = "channel"  # channel | classify | repeat
    max_gap: int = 1
    any_threshold: float = 0.4  # classify: the "any" runs it names
    ngram: int = 2  # repeat: longest phrase, in words
    # repeat: the evidence is the phrase's, averaged over all its occurrences, not the one occurrence's.
    # Annotators mark a repeated phrase at most of its mentions or at none, so the article-wide reading
    # is the better judge (Repetition FLC F1 on the 122 tuning articles, best cutoff: accurate 0.103 ->
    # 0.170, fast 0.127 -> 0.166; docs/experiments.md, 2026-12-03 fifth session)
    pool: bool = False
    # channel: each run found at the threshold is grown over the neighbouring tokens whose probability
    # reaches ``grow`` x the threshold (two thresholds, as in hysteresis); 1: not grown. The network's
    # probabilities are highest on a span's core words, so runs at a cutoff tuned for precision are
    # shorter than annotators' spans (fast, PTC dev, median characters: Flag-waving 8 against 19,
    # Exaggeration 9 against 30). Set by the tuning rule (tune.Rule.grow). classify: the same for the
    # "any technique" runs the span classifier names (tune.Rule.grow_any).
    grow: float = 1.0

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Detector:
        return cls(**d)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source, "max_gap": self.max_gap}
        if self.source == "classify":
            d["any_threshold"] = self.any_threshold
        if self.source == "repeat":
            d["ngram"] = self.ngram
            if self.pool:  # written only when set: a model.json before it reads the same
                d["pool"] = True
        if self.source in ("channel", "classify") and self.grow != 1.0:  # the same
            d["grow"] = self.grow
        return d


@dataclass
class Candidate:
    technique: int
    a: int  # token range [a, b)
    b: int
    evidence: float


@dataclass
class Context:
    """One text's model outputs and what detectors share: span-head results, any-runs, phrases."""

    model: Any
    text: str
    out: Any  # model.TokenOutputs
    lower: str = ""
    markup: list[tuple[int, int]] = field(default_factory=list)  # character ranges of MARKUP matches
    # tokens no span runs across: those that begin a sentence glued to the one before, a paragraph or a
    # list item, or the text below a numbered heading
    cuts: list[int] = field(default_factory=list)
    _head: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    _any_runs: dict[tuple[float, int, float], list[tuple[int, int]]] = field(default_factory=dict)
    _phrases: dict[int, dict[tuple[str, ...], list[tuple[int, int]]]] = field(default_factory=dict)
    _pooled_by: dict[tuple[int, tuple[str, ...]], float] = field(default_factory=dict)  # Context.pooled's memo
    first_whole: dict[str, int] = field(default_factory=dict)  # occurs_earlier's memo for this text

    def __post_init__(self) -> None:
        self.lower = self.text.lower()
        self.markup = markup_ranges(self.text)
        starts = self.out.enc.offsets[:, 0] if len(self.out.enc) else np.zeros(0, dtype=np.int64)
        glued = [int(i) for m in GLUED_END.finditer(self.text) for i in np.flatnonzero(starts == m.start())[:1]]
        breaks = (numbered_heading_ends(self.text) + list_item_starts(self.text)
                  + [m.end() for m in PARAGRAPH_BREAK.finditer(self.text)])
        below = [int(i) for i in np.searchsorted(starts, breaks) if 0 < i < len(starts)]
        self.cuts = sorted(set(glued + below))

    def split(self, a: int, b: int) -> list[tuple[int, int]]:
        """Token range [a, b) cut at the cuts inside it (glued sentence starts, paragraph and list item
        starts, the text below a numbered heading)."""
        inner = [c for c in self.cuts if a < c < b]
        return list(zip([a, *inner], [*inner, b]))

    def word_runs(self, mask: np.ndarray, gap: int) -> list[tuple[int, int]]:
        """Runs of ``mask`` (``runs``), cut at glued sentence starts, grown to whole words: the token
        ranges every run-based detector starts from."""
        return [snap(self.out.enc, a, b) for r in runs(mask, gap) for a, b in self.split(*r)]

    def head(self, ranges: list[tuple[int, int]]) -> list[np.ndarray]:
        """Span-head probabilities for token ranges, computed once per range."""
        todo = [r for r in dict.fromkeys(ranges) if r not in self._head]
        if todo and self.model is not None:
            for r, p in zip(todo, self.model.classify_spans(self.text, self.out, todo)):
                self._head[r] = p
        return [self._head.get(r, np.zeros(len(TECHNIQUE_IDS))) for r in ranges]

    def phrases(self, ngram: int) -> dict[tuple[str, ...], list[tuple[int, int]]]:
        """Every phrase of 1..``ngram`` words that begins and ends with a content word, holds one of
        more than two letters and occurs more than once, with the token ranges of its occurrences, in
        text order ((-1, -1) for one no token covers)."""
        if ngram not in self._phrases:
            found_words, words, content, before = self._words
            found: dict[tuple[str, ...], list[tuple[int, int]]] = {}
            for i in range(len(words)):  # by start, so each phrase's occurrences come in text order
                if not content[i]:
                    continue
                for n in range(1, min(ngram, len(words) - i) + 1):
                    if content[i + n - 1] and before[i + n] > before[i]:
                        found.setdefault(tuple(words[i : i + n]), []).append((found_words[i][0], found_words[i + n - 1][1]))
            # token ranges only for the repeated ones: most phrases occur once, and no detector reads those
            repeated = {phrase: where for phrase, where in found.items() if len(where) > 1}
            ranges = iter(encoding.token_ranges(self.out.enc, [se for where in repeated.values() for se in where]))
            self._phrases[ngram] = {phrase: [next(ranges) for _ in where] for phrase, where in repeated.items()}
        return self._phrases[ngram]

    def pooled(self, ngram: int, phrase: tuple[str, ...], means: list[float | None] | None = None) -> float:
        """A repeated phrase's pooled evidence (``_pooled`` over its mentions' ``means``, read when not
        given), once per phrase: every mention's span asks for it again (its alternatives), and a phrase
        said 90,000 times would have read 8 billion mentions' probabilities (stopped after minutes)."""
        key = (ngram, phrase)
        if key not in self._pooled_by:
            self._pooled_by[key] = _pooled(_any_means(self, self.phrases(ngram)[phrase]) if means is None else means)
        return self._pooled_by[key]

    @cached_property
    def _words(self) -> tuple[list[tuple[int, int, str]], list[str], list[bool], list[int]]:
        """The text's words (start, end, word), the words, which are content words, and how many strong
        words (content words of more than two letters) come before each position: once per text, for
        every phrase length a detector asks for."""
        found_words = [(m.start(), m.end(), m.group()) for m in WORD.finditer(self.lower)]
        words = [w for _, _, w in found_words]
        content = [_content(w) and not inside(s, e, self.markup) for s, e, w in found_words]
        before = [0]
        for c, w in zip(content, words):
            before.append(before[-1] + (c and len(w) > 2))
        return found_words, words, content, before

    def grown_runs(self, probs: np.ndarray, threshold: float, gap: int, grow: float = 1.0) -> list[tuple[int, int]]:
        """word_runs of ``probs >= threshold``; with ``grow`` < 1, the runs of ``probs >= grow * threshold``
        that hold a token reaching ``threshold`` (each run grown over its weaker neighbours)."""
        if grow >= 1.0:
            return self.word_runs(probs >= threshold, gap)
        return [(a, b) for a, b in self.word_runs(probs >= grow * threshold, gap) if probs[a:b].max() >= threshold]

    def any_runs(self, threshold: float, gap: int, grow: float = 1.0) -> list[tuple[int, int]]:
        key = (threshold, gap, grow)
        if key not in self._any_runs:
            self._any_runs[key] = self.grown_runs(self.out.probs[:, ANY], threshold, gap, grow)
        return self._any_runs[key]


# ------------------------------------------------------------------------------------------ runs


def runs(mask: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """Maximal runs [a, b) of True, joining runs separated by at most ``max_gap`` False entries."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) - 1 > max_gap)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]] + 1
    return [(int(a), int(b)) for a, b in zip(starts, ends)]


def snap(enc: encoding.Encoded, a: int, b: int) -> tuple[int, int]:
    """Grow a token range to whole words: never cut a word in the middle."""
    while a > 0 and not enc.word_start[a]:
        a -= 1
    while b < len(enc) and not enc.word_start[b]:
        b += 1
    return a, b


# ------------------------------------------------------------------------------------ cleaning


def _words(text: str, enc: encoding.Encoded, a: int, b: int) -> list[tuple[int, int, str]]:
    """The words of token range [a, b): (first token, end token, lower-cased text)."""
    out, i = [], a
    while i < b:
        j = i + 1
        while j < b and not enc.word_start[j]:
            j += 1
        out.append((i, j, text[int(enc.offsets[i, 0]) : int(enc.offsets[j - 1, 1])].lower()))
        i = j
    return out


def evidence(ctx: Context, settings: Settings, c: Candidate) -> list[tuple[int, int, float]]:
    """Per word of the span: (start, end, token probability) from the channel that found it, the
    technique's own or (for spans the classifier named, and repeats) "any technique": which words carried
    the label. Uncalibrated; a relative weight of the words, not a confidence."""
    det = settings.detectors[TECHNIQUE_IDS[c.technique]]
    probs = ctx.out.probs[:, c.technique if det.source == "channel" else ANY]
    enc = ctx.out.enc
    return [(int(enc.offsets[i, 0]), int(enc.offsets[j - 1, 1]), round(float(probs[i:j].max()), 3))
            for i, j, w in _words(ctx.text, enc, c.a, c.b) if any(ch.isalnum() for ch in w)]


def _content(word: str) -> bool:
    w = word.strip("'’\"“”-")
    return len(w) <= LONGEST_WORD and any(c.isalpha() for c in w) and w not in STOP_WORDS


def markup_ranges(text: str) -> list[tuple[int, int]]:
    """The character ranges of the web and e-mail addresses and HTML character references in ``text``."""
    runs = (r.span() for r in NON_SPACE.finditer(text))
    return [m.span() for s, e in runs if e - s <= LONGEST_RUN and MARKUP_SIGN.search(text, s, e)
            for m in MARKUP.finditer(text, s, e)]


def inside(start: int, end: int, ranges: list[tuple[int, int]]) -> bool:
    """Whether characters [start, end) lie inside one of ``ranges`` (sorted, not overlapping)."""
    k = bisect.bisect_right(ranges, (start, float("inf"))) - 1
    return k >= 0 and ranges[k][0] <= start and end <= ranges[k][1]


def trim(text: str, enc: encoding.Encoded, a: int, b: int, markup: list[tuple[int, int]] | None = None) -> tuple[int, int] | None:
    """Drop leading and trailing function words, punctuation and markup (``markup``: addresses and character
    references, found in ``text`` when not given); None when no content word is left."""
    markup = markup_ranges(text) if markup is None else markup
    words = _words(text, enc, a, b)
    keep = [k for k, (i, j, w) in enumerate(words)
            if _content(w) and not inside(int(enc.offsets[i, 0]), int(enc.offsets[j - 1, 1]), markup)]
    if not keep:
        return None
    return words[keep[0]][0], words[keep[-1]][1]


def char_span(text: str, enc: encoding.Encoded, a: int, b: int) -> tuple[int, int] | None:
    s, e = int(enc.offsets[a, 0]), int(enc.offsets[b - 1, 1])
    while s < e and text[s] in TRIM:
        s += 1
    while e > s and text[e - 1] in TRIM:
        e -= 1
    return (s, e) if e > s else None


def list_items(text: str) -> list[tuple[int, int]]:
    """(where the item begins, past its line's end) for each line that begins with a list marker ("b) The
    military authority", "4. Warning to all groups!", "- then"), leading blanks skipped."""
    return [(m.end() - len(m.group().lstrip()), m.end()) for m in re.finditer(r"[^\n]+", text)
            if LIST_MARKER.match(m.group().lstrip())]


def numbered_heading_ends(text: str) -> list[int]:
    """Where the text below each numbered heading ("4. Warning to all groups!") begins: no span runs from a
    section title into its section (the seed article had "groups!\nNow, some European countries" as one).
    Only numbered ones: PTC puts one sentence a line, and 24 of its 7,191 gold spans run on from a short
    question or exclamation line (in_heading's test) into the next; none from a numbered one."""
    return [end + 1 for start, end in list_items(text) if in_heading(text, start, end) and end < len(text)]


def list_item_starts(text: str) -> list[int]:
    """Where each list item begins: no span runs from one list item into the next (PTC has no such lines;
    the seed article's lettered items ran together into one 417-character Flag-waving span)."""
    return [start for start, _ in list_items(text)]


def in_heading(text: str, start: int, end: int) -> bool:
    """Whether [start, end) lies in a short line that is not a sentence (a title or section heading)."""
    ls = text.rfind("\n", 0, start) + 1
    le = text.find("\n", end)
    line = LIST_MARKER.sub("", text[ls : le if le >= 0 else len(text)].strip())
    one_sentence = not re.search(r"[.!?…][\"'”’)\]]?\s", line)
    return bool(line) and one_sentence and len(line.split()) <= HEADING_WORDS and not line.endswith((".", "…", '."', ".”"))


# ---------------------------------------------------------------------------------- candidates


def candidates(ctx: Context, t: int, det: Detector, floor: float) -> list[Candidate]:
    """Technique ``t``'s candidates with evidence >= ``floor``, before cleaning."""
    probs = ctx.out.probs
    if det.source == "channel":
        return [Candidate(t, a, b, float(probs[a:b, t].max())) for a, b in ctx.grown_runs(probs[:, t], floor, det.max_gap, det.grow)]
    if det.source == "classify":
        rng = ctx.any_runs(det.any_threshold, det.max_gap, det.grow)
        return [Candidate(t, a, b, float(p[t])) for (a, b), p in zip(rng, ctx.head(rng)) if p[t] >= floor]
    if det.source == "repeat":
        return [c for c in repeats(ctx, t, det.ngram, det.pool) if c.evidence >= floor]
    raise ValueError(f"unknown detector source {det.source!r}")


def repeats(ctx: Context, t: int, ngram: int, pool: bool = False) -> list[Candidate]:
    """Later occurrences of phrases of 1..``ngram`` words (Context.phrases) already used earlier in the
    text, with the mean "any technique" probability of their tokens as evidence: of that occurrence, or
    (``pool``) of all the phrase's occurrences, the first one included."""
    found = []
    for phrase, where in ctx.phrases(ngram).items():
        means = _any_means(ctx, where)
        if all(m is None for m in means[1:]):
            continue
        pooled = ctx.pooled(ngram, phrase, means) if pool else None
        found += [Candidate(t, a, b, m if pooled is None else pooled) for (a, b), m in zip(where[1:], means[1:]) if m is not None]
    return found


def _any_means(ctx: Context, where: list[tuple[int, int]]) -> list[float | None]:
    """The mean "any technique" probability of each token range (None for (-1, -1))."""
    p_any = ctx.out.probs[:, ANY]
    # ndarray.mean's value without its Python wrapper (this runs for every mention of every repeated
    # phrase): the same float32 sum, and a quotient rounded to float32 once, which equals mean's
    # float64 division rounded back (checked on 100,000 random slices; the dev outputs are unchanged)
    return [float(np.float32(np.add.reduce(p_any[a:b]) / (b - a))) if a >= 0 else None for a, b in where]


def _pooled(means: list[float | None]) -> float:
    """A repeated phrase's pooled evidence: its mentions' means averaged (those no token covers left out)."""
    # np.mean's arithmetic (a pairwise float64 sum, then the division) without its Python wrapper
    vals = [m for m in means if m is not None]
    return float(np.add.reduce(np.array(vals)) / len(vals))


def evidence_for(ctx: Context, k: int, det: Detector, a: int, b: int, head: np.ndarray) -> float:
    """Technique ``k``'s evidence for the token range [a, b), as its own detector measures it."""
    if det.source == "classify":
        return float(head[k])
    if det.source == "repeat":
        s, e = int(ctx.out.enc.offsets[a, 0]), int(ctx.out.enc.offsets[b - 1, 1])
        if not occurs_earlier(ctx.lower, s, e, ctx.first_whole):
            return 0.0
        phrase = tuple(WORD.findall(ctx.lower[s:e]))
        if det.pool and phrase in ctx.phrases(det.ngram):  # a repeated phrase the detector reads: its
            return ctx.pooled(det.ngram, phrase)  # evidence pooled over its occurrences, as there
        # otherwise the words' own reading: they recur only inside other words ("cover" in "cover-up"),
        # or the phrase is longer than the detector's, so it cannot find them and has no pooled value
        return float(ctx.out.probs[a:b, ANY].mean())
    return float(ctx.out.probs[a:b, k].max())


# -------------------------------------------------------------------------------------- detect


@dataclass
class Settings:
    """What a model's detection runs with (model.json: detectors, calibration, cutoffs)."""

    detectors: dict[str, Detector]
    calibration: Calibration
    cutoffs: dict[str, float]  # calibrated-probability cutoffs, per technique
    heading_doubt: bool = False  # report Doubt inside headings

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        dets = config.get("detectors")
        if dets:
            return cls(
                {t: Detector.from_json(dets[t]) for t in TECHNIQUE_IDS},
                Calibration(config.get("calibration")),
                {t: float(config["cutoffs"][t]) for t in TECHNIQUE_IDS},
                bool(config.get("decoding", {}).get("heading_doubt", False)),
            )
        # a model tuned before per-technique detectors: its token thresholds, uncalibrated
        gap = int(config.get("decoding", {}).get("max_gap", 1))
        th = config.get("thresholds", {})
        return cls({t: Detector("channel", gap) for t in TECHNIQUE_IDS}, Calibration(None),
                   {t: min(float(th.get(t, 0.5)), 1.0) for t in TECHNIQUE_IDS})


def resolve_cutoffs(settings: Settings, min_confidence: float | None, per_technique: dict[str, float] | None) -> dict[str, float]:
    """The tuned cutoffs, replaced by ``min_confidence`` for all, then by ``per_technique`` overrides."""
    cut = dict(settings.cutoffs) if min_confidence is None else {t: float(min_confidence) for t in TECHNIQUE_IDS}
    cut.update(per_technique or {})
    return cut


def detect(
    model: Any, settings: Settings, text: str, out: Any, cutoffs: dict[str, float],
    ctx: Context | None = None, with_alternatives: bool = True,
) -> list[Span]:
    """Clean, calibrated spans of every technique whose cutoff they reach.

    ``ctx`` reuses one text's span-head results across calls (tuning); ``with_alternatives=False``
    skips the other techniques' probabilities, which only the reader needs.
    """
    if len(out.enc) == 0:
        return []
    ctx = ctx or Context(model, text, out)
    found: dict[tuple[int, int, int], Candidate] = {}
    for t, tech in enumerate(TECHNIQUE_IDS):
        det, cut = settings.detectors[tech], cutoffs[tech]
        if cut > 1.0:
            continue
        floor = max(settings.calibration.inverse(tech, cut), EVIDENCE_FLOOR)
        for c in candidates(ctx, t, det, floor):
            kept = cleaned(ctx, settings, c)
            if kept is None:
                continue
            key = (kept.a, kept.b, t)
            if key not in found or found[key].evidence < kept.evidence:
                found[key] = kept
    items = list(found.values())
    heads = ctx.head([(c.a, c.b) for c in items]) if with_alternatives else [None] * len(items)
    spans: dict[tuple[int, int, str], Span] = {}
    for c, head in zip(items, heads):
        tech = TECHNIQUE_IDS[c.technique]
        score = float(settings.calibration(tech, c.evidence))
        if score < cutoffs[tech]:
            continue
        cs = char_span(text, out.enc, c.a, c.b)
        if cs is None:
            continue
        alts = alternatives(ctx, settings, c.a, c.b, head) if with_alternatives else {}
        alts[tech] = score
        top = dict(sorted(alts.items(), key=lambda kv: -kv[1])[:3])
        top[tech] = score
        words = [(ws, we, w) for ws, we, w in evidence(ctx, settings, c) if cs[0] <= ws and we <= cs[1]]
        span = Span(cs[0], cs[1], tech, score, {k: round(v, 4) for k, v in top.items()}, words)
        key = (cs[0], cs[1], tech)
        if key not in spans or spans[key].score < score:
            spans[key] = span
    return sorted(spans.values(), key=lambda s: (s.start, s.end, s.technique))


def cleaned(ctx: Context, settings: Settings, c: Candidate) -> Candidate | None:
    """The candidate as a reader may see it: trimmed to content words (None when none is left, or for a
    Doubt inside a heading), its evidence re-read over the trimmed tokens for a channel detector."""
    r = trim(ctx.text, ctx.out.enc, c.a, c.b, ctx.markup)
    if r is None:
        return None
    a, b = r
    if c.technique == DOUBT and not settings.heading_doubt:
        s, e = int(ctx.out.enc.offsets[a, 0]), int(ctx.out.enc.offsets[b - 1, 1])
        if in_heading(ctx.text, s, e):
            return None
    det = settings.detectors[TECHNIQUE_IDS[c.technique]]
    ev = float(ctx.out.probs[a:b, c.technique].max()) if det.source == "channel" else c.evidence
    return Candidate(c.technique, a, b, ev)


def alternatives(ctx: Context, settings: Settings, a: int, b: int, head: np.ndarray) -> dict[str, float]:
    """Every technique's calibrated probability for the same words, where it reaches ALTERNATIVE_MIN."""
    out = {}
    for k, tech in enumerate(TECHNIQUE_IDS):
        p = float(settings.calibration(tech, evidence_for(ctx, k, settings.detectors[tech], a, b, head)))
        if p >= ALTERNATIVE_MIN:
            out[tech] = p
    return out
