"""Cleaning scraped text before analysis, with an exact offset map back to the original.

``clean(text)`` drops scraping debris from the text the model sees and records every dropped range:

- ``repeated-teaser``: an excerpt paragraph ending in ``[…]`` / ``[...]`` (or a long one ending in ``…`` /
  ``...``) whose text starts a later line; a long stand-alone paragraph near the top that reappears verbatim
  at the start of a later line. The first (teaser) copy is dropped, the later one is kept.
- ``share-footer``, ``comment-form``, ``newsletter``, ``cookie-notice``, ``navigation``: whole lines that
  are nothing but a known boilerplate phrase ("Share it:", "Leave a Reply", "Your email address will not be
  published. Required fields are marked *", "Subscribe to our newsletter", "We use cookies …",
  "Post navigation", "Related posts", "Read more", "READ MORE: <headline>", …). A phrase inside a
  sentence is never touched.
- ``search-fragment``: a pasted search-engine fragment: the inline words "Search Results Web results", a
  line that is only "Search Results" / "Web results", and the search-page chrome lines right after such a
  line (result URLs, "People also ask", "Related searches", …). Snippet text is kept: it may be prose.
- ``whitespace``: runs of three or more line breaks become two (one blank line), runs of three or more
  spaces/tabs become one. Single blank lines and double spaces are left alone.

Cleaning only ever deletes characters: every character of ``Cleaned.text`` is a character of the original,
in order. The map is a sorted list of ``(cleaned_start, original_start, length)`` segments, so
``Cleaned.to_original`` is exact: for a span that does not cross a removed range,
``original[os:oe] == cleaned.text[s:e]``. The rules are conservative on purpose (a false removal of prose
is worse than a missed piece of debris): clean PTC-style news text (title, blank line, one sentence per
line) comes back unchanged.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

Segment = tuple[int, int, int]  # (cleaned_start, original_start, length)


@dataclass
class Removed:
    kind: str  # "repeated-teaser", "share-footer", "comment-form", "newsletter", "cookie-notice",
    # "navigation", "search-fragment" or "whitespace"
    start: int  # range in the ORIGINAL text, end exclusive
    end: int
    reason: str


@dataclass
class Cleaned:
    original: str
    text: str
    removed: list[Removed] = field(default_factory=list)
    # kept pieces of the original, in order; None means "nothing removed" (text must equal original)
    segments: list[Segment] | None = None

    def __post_init__(self) -> None:
        if self.segments is None:
            if self.text != self.original:
                raise ValueError("Cleaned: segments are required when text differs from the original")
            self.segments = [(0, 0, len(self.text))] if self.text else []
        self._starts = [s[0] for s in self.segments]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a span [start, end) of the cleaned text onto the original text.

        A span inside one kept segment maps to the identical original text. A span that crosses a removed
        range maps to the original range from its first to its last character, removed text included.
        An empty span maps to an empty span at the corresponding position.
        """
        n = len(self.text)
        if not (0 <= start <= end <= n):
            raise ValueError(f"span ({start}, {end}) is outside the cleaned text (length {n})")
        if not self.segments:
            return 0, 0
        if start == n:
            _, o, ln = self.segments[-1]
            ostart = o + ln
        else:
            ostart = self._position(start)
        if end == start:
            return ostart, ostart
        return ostart, self._position(end - 1) + 1

    def _position(self, p: int) -> int:
        cs, o, _ = self.segments[bisect_right(self._starts, p) - 1]
        return o + (p - cs)

    def pieces(self, start: int, end: int) -> list[tuple[int, int]]:
        """The original ranges that make up the cleaned span [start, end), one per kept segment it touches."""
        out = []
        i = max(bisect_right(self._starts, start) - 1, 0)
        while i < len(self.segments) and start < end:
            cs, o, ln = self.segments[i]
            if start < cs + ln:
                stop = min(end, cs + ln)
                out.append((o + start - cs, o + stop - cs))
                start = stop
            i += 1
        return out


# ----------------------------------------------------------------------------------------------------------
# boilerplate lines: (kind, pattern matched against the whole stripped line, max line length)

_NETWORKS = (
    r"(?:facebook|twitter|x|linkedin|whatsapp|e-?mail|pinterest|reddit|telegram|print|share|tweet|"
    r"messenger|flipboard|tumblr|copy link|sms|vk|threads|bluesky|mastodon)"
)

_BOILERPLATE: list[tuple[str, re.Pattern[str], int]] = [
    (kind, re.compile(rf"(?:{pat})", re.IGNORECASE), maxlen)
    for kind, pat, maxlen in [
        ("share-footer", r"share(?: it| this| this (?:article|story|post|page)| on \w+| via \w+)?\s*[:!.]?", 40),
        ("share-footer", r"share (?:this|the) (?:article|story|post) on (?:social media|facebook|twitter)\s*[:!.]?", 80),
        ("share-footer", rf"{_NETWORKS}(?:\s*[|,/·•:]?\s*{_NETWORKS})+", 120),
        ("share-footer", r"(?:click|tap) to share on \w+(?: \(opens in new window\))?", 80),
        ("comment-form", r"leave a (?:reply|comment)(?:\s+cancel reply)?\s*:?", 40),
        ("comment-form", r"cancel reply|post a comment|add a comment|join the discussion\s*:?", 40),
        ("comment-form", r"\d+\s+(?:comments?|responses?|thoughts on .{1,200})\s*:?|comments?\s*\(\d+\)\s*:?", 240),
        ("comment-form", r"your email address will not be published\.?(?:\s*required fields are marked\s*\*?\.?)?", 100),
        ("comment-form", r"required fields are marked\s*\*?\.?", 40),
        ("comment-form", r"save my name,? email,? and website in this browser for the next time i comment\.?", 100),
        ("comment-form", r"notify me of (?:follow-up comments|new posts|new comments) (?:by|via) e-?mail\.?", 80),
        ("comment-form", r"you must be (?:logged in|signed in) to post a comment\.?", 60),
        ("newsletter", r"(?:subscribe to|sign up for|sign up to) our (?:free |daily |weekly |email |e-mail )*newsletters?\b.*", 200),
        ("newsletter", r"enter your e-?mail(?: address)? (?:to subscribe|below|here).*", 200),
        ("cookie-notice", r"we use cookies\b(?=.*\b(?:web ?site|site|experience|brows|personali[sz]|analy[sz]|traffic|"
         r"advertis|ads\b|cookie policy|privacy policy|consent|agree|accept)).*", 400),
        ("cookie-notice", r"this (?:web)?site uses cookies\b.*", 400),
        ("cookie-notice", r"by (?:continuing to (?:use|browse)|using) (?:this|our) (?:web)?site,? you (?:agree|consent)\b.*cookies.*", 400),
        ("cookie-notice", r"accept (?:all )?cookies|cookie (?:settings|preferences|policy)|manage (?:cookies|cookie preferences)", 40),
        ("navigation", r"post navigation|posts navigation|article navigation", 40),
        ("navigation", r"related(?: posts| articles| stories| news| content| coverage| reading)?\s*:?", 40),
        ("navigation", r"you (?:may|might) also (?:like|be interested in)\s*[:.]?", 50),
        ("navigation", r"(?:read more|continue reading|keep reading)\s*(?:[:.…»›→>]|\.\.\.)?", 40),
        ("navigation", r"read more\s*:\s*\S.*", 200),
        ("navigation", r"(?:previous|next) (?:post|article|story)\s*:?(?:\s+\S.*)?", 200),
    ]
]

# ----------------------------------------------------------------------------------------------------------
# search-engine fragments

_SEARCH_INLINE = re.compile(r"Search [Rr]esults[ \t]+Web [Rr]esults")
_SEARCH_HEADER = re.compile(r"(?:search results|web results)(?:\s+web results)?\s*:?", re.IGNORECASE)
_SEARCH_CHROME = re.compile(
    r"https?://\S+|www\.\S+|[\w-]+(?:\.[\w-]+)+(?:\s*›.*)?|"
    r"people also ask|related searches|searches related to .*|top stories|more results|images|videos|news|"
    r"cached|similar|translate this page|feedback|about [\d,.\s]+ results.*|did you mean:?.*|"
    r"showing results for .*|all results|web results|search results",
    re.IGNORECASE,
)

# ----------------------------------------------------------------------------------------------------------
# teasers

_ELLIPSIS = re.compile(r"\s*(?:(\[\s*(?:…|\.\.\.|&hellip;)\s*\])|…|\.\.\.)\s*$")
_STRONG_MIN_CHARS, _STRONG_MIN_WORDS = 40, 6  # teaser ending in "[…]"
_WEAK_MIN_CHARS, _WEAK_MIN_WORDS = 80, 12  # teaser ending in a bare "…"
_DUP_MIN_CHARS, _DUP_MIN_WORDS = 100, 15  # stand-alone duplicate paragraph near the top
_MAX_TEASER_CANDIDATES = 200  # lines ending in an ellipsis that are checked against the rest of the text
_DUP_MAX_BLOCK = 3  # ... among the first blocks (0-based index) of the text

_WHITESPACE = re.compile(r"(?P<nl>(?:[ \t\f\v\r]*\n){3,})|(?P<sp>[ \t]{3,})")


@dataclass
class _Line:
    start: int  # offset of the first character
    end: int  # offset after the line terminator
    content_end: int  # offset of the line terminator (end of the visible content)


def _lines(text: str) -> list[_Line]:
    out = []
    pos, n = 0, len(text)
    while pos < n:
        nl = text.find("\n", pos)
        end = n if nl < 0 else nl + 1
        cend = end if nl < 0 else nl
        if cend > pos and text[cend - 1] == "\r":
            cend -= 1
        out.append(_Line(pos, end, cend))
        pos = end
    return out


def _short(s: str, n: int = 60) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _boilerplate(text: str, lines: list[_Line]) -> list[Removed]:
    out = []
    for ln in lines:
        s = text[ln.start : ln.content_end].strip()
        if not s or len(s) > 400:
            continue
        for kind, pat, maxlen in _BOILERPLATE:
            if len(s) <= maxlen and pat.fullmatch(s):
                out.append(Removed(kind, ln.start, ln.end, f'boilerplate line "{_short(s)}"'))
                break
    return out


def _search_fragments(text: str, lines: list[_Line]) -> list[Removed]:
    out = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        s = text[ln.start : ln.content_end].strip()
        if s and _SEARCH_HEADER.fullmatch(s):
            out.append(Removed("search-fragment", ln.start, ln.end, f'search-engine heading "{_short(s)}"'))
            j = i + 1
            while j < len(lines):  # the search-page chrome lines that follow (blank lines are skipped over)
                t = text[lines[j].start : lines[j].content_end].strip()
                if t and not _SEARCH_CHROME.fullmatch(t):
                    break
                if t:
                    out.append(
                        Removed("search-fragment", lines[j].start, lines[j].end, f'search-page line "{_short(t)}"')
                    )
                j += 1
            i = j
            continue
        for m in _SEARCH_INLINE.finditer(text, ln.start, ln.content_end):
            a, b = m.span()
            if b < ln.content_end and text[b] == " ":
                b += 1
            elif a > ln.start and text[a - 1] == " ":
                a -= 1
            out.append(Removed("search-fragment", a, b, f'pasted search-engine words "{m.group()}"'))
        i += 1
    return out


def _at_line_start(text: str, idx: int) -> bool:
    k = idx
    while k > 0 and text[k - 1] in " \t":
        k -= 1
    return k == 0 or text[k - 1] == "\n"


def _find_at_line_start(text: str, needle: str, start: int, max_tries: int = 50) -> int:
    idx = text.find(needle, start)
    tries = 0
    while idx >= 0 and tries < max_tries:
        if _at_line_start(text, idx):
            return idx
        idx = text.find(needle, idx + 1)
        tries += 1
    return -1


def _teasers(text: str, lines: list[_Line]) -> list[Removed]:
    out = []
    # 1. an excerpt ending in an ellipsis whose text starts a later line
    checked = 0
    for ln in lines:
        s = text[ln.start : ln.content_end].strip()
        m = _ELLIPSIS.search(s) if s.endswith(("]", "…", "...")) else None
        if not m:
            continue
        checked += 1
        if checked > _MAX_TEASER_CANDIDATES:  # each check scans the rest of the text: bound the work
            break
        body = s[: m.start()].rstrip()
        strong = m.group(1) is not None
        min_chars, min_words = (_STRONG_MIN_CHARS, _STRONG_MIN_WORDS) if strong else (_WEAK_MIN_CHARS, _WEAK_MIN_WORDS)
        candidates = [body]
        if " " in body:  # the excerpt may cut the last word short: "... his pres[…]"
            candidates.append(body.rsplit(" ", 1)[0])
        for cand in candidates:
            if len(cand) < min_chars or len(cand.split()) < min_words:
                continue
            idx = _find_at_line_start(text, cand, ln.end)
            nl = text.find("\n", idx) if idx >= 0 else -1
            if idx >= 0 and text[idx : nl if nl >= 0 else len(text)].strip() != s:  # not a copy of the excerpt
                out.append(
                    Removed(
                        "repeated-teaser", ln.start, ln.end,
                        f'excerpt "{_short(s, 50)}" repeats the start of the paragraph at {idx}',
                    )
                )
                break
    # 2. a long stand-alone paragraph near the top that reappears verbatim at the start of a later line
    block, prev_blank = -1, True
    for k, ln in enumerate(lines):
        s = text[ln.start : ln.content_end].strip()
        if not s:
            prev_blank = True
            continue
        if prev_blank:
            block += 1
        prev_blank = False
        if block > _DUP_MAX_BLOCK:
            break
        next_blank = k + 1 >= len(lines) or not text[lines[k + 1].start : lines[k + 1].content_end].strip()
        starts_block = k == 0 or not text[lines[k - 1].start : lines[k - 1].content_end].strip()
        if not (starts_block and next_blank):
            continue
        if len(s) < _DUP_MIN_CHARS or len(s.split()) < _DUP_MIN_WORDS:
            continue
        idx = _find_at_line_start(text, s, ln.end)
        if idx >= 0:
            after = text[idx + len(s) : idx + len(s) + 1]
            if after in ("", "\n", "\r", " "):
                out.append(
                    Removed(
                        "repeated-teaser", ln.start, ln.end,
                        f'paragraph "{_short(s, 50)}" appears again at {idx}',
                    )
                )
    return out


def _drop_overlaps(cands: list[Removed]) -> list[Removed]:
    out: list[Removed] = []
    for r in sorted(cands, key=lambda r: (r.start, -r.end)):
        if r.end <= r.start:
            continue
        if out and r.start < out[-1].end:
            continue  # overlaps an earlier removal: keep the earlier one only
        out.append(r)
    return out


def _segments(n: int, removed: list[Removed]) -> list[Segment]:
    segs, pos, c = [], 0, 0
    for r in removed:
        if r.start > pos:
            segs.append((c, pos, r.start - pos))
            c += r.start - pos
        pos = max(pos, r.end)
    if pos < n:
        segs.append((c, pos, n - pos))
    return segs


def _whitespace(inter: str) -> list[tuple[int, int, str]]:
    out = []
    for m in _WHITESPACE.finditer(inter):
        a, b = m.span()
        if m.group("nl"):
            first = inter.index("\n", a) + 1
            last = inter.rindex("\n", a, b)
            if last > a and inter[last - 1] == "\r":
                last -= 1
            if last > first:
                out.append((first, last, f"run of {m.group().count(chr(10))} line breaks"))
        else:
            out.append((a + 1, b, f"run of {b - a} spaces/tabs"))
    return out


def clean(text: str) -> Cleaned:
    """Drop scraping debris from ``text``; see the module docstring for what is removed and why."""
    if not text:
        return Cleaned(text, text, [])
    lines = _lines(text)
    removed = _drop_overlaps(_teasers(text, lines) + _search_fragments(text, lines) + _boilerplate(text, lines))
    segs = _segments(len(text), removed)
    inter = "".join(text[o : o + ln] for _, o, ln in segs) if removed else text
    tmp = Cleaned(text, inter, [], segs)
    for a, b, reason in _whitespace(inter):
        for oa, ob in tmp.pieces(a, b):
            removed.append(Removed("whitespace", oa, ob, reason))
    if not removed:
        return Cleaned(text, text, [])
    removed.sort(key=lambda r: r.start)
    segs = _segments(len(text), removed)
    out = "".join(text[o : o + ln] for _, o, ln in segs)
    return Cleaned(text, out, removed, segs)
