"""Tests for propscan.pipeline.clean: debris removal and the exact offset map back to the original text."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propscan.pipeline.clean import Cleaned, Removed, clean

SHARED = Path(__file__).resolve().parents[3] / "shared"
SEED = SHARED / "examples" / "seed-opinion-article.txt"
PTC_DEV = SHARED / "data" / "ptc" / "dev" / "dev-articles"


def read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as fh:
        return fh.read()


def check_invariants(c: Cleaned) -> None:
    """Removed ranges are sorted, disjoint, non-empty; cutting them from the original gives the cleaned text;
    every kept segment maps back character for character."""
    prev = 0
    for r in c.removed:
        assert prev <= r.start < r.end <= len(c.original), r
        prev = r.end
    kept, pos = [], 0
    for r in c.removed:
        kept.append(c.original[pos : r.start])
        pos = r.end
    kept.append(c.original[pos:])
    assert "".join(kept) == c.text
    for cs, o, ln in c.segments:
        assert c.text[cs : cs + ln] == c.original[o : o + ln]
        assert c.to_original(cs, cs + ln) == (o, o + ln)


# ---------------------------------------------------------------------------------------------------------
# the seed example: a real scraped article


@pytest.fixture(scope="module")
def seed() -> tuple[str, Cleaned]:
    if not SEED.exists():
        pytest.skip(f"{SEED} not available")
    text = read(SEED)
    return text, clean(text)


def test_seed_teaser_removed_body_kept(seed):
    text, c = seed
    teaser = next(line for line in text.splitlines() if line.rstrip().endswith(("[…]", "[...]")))
    start = teaser.rstrip()[:-3].rstrip()
    assert text.count(start) == 2  # the excerpt and the paragraph it was cut from
    assert c.text.count(start) == 1
    assert teaser not in c.text and "[…]" not in c.text
    full = next(line for line in text.splitlines() if line.startswith(start) and line != teaser)
    assert full in c.text
    assert any(r.kind == "repeated-teaser" and text[r.start : r.end].rstrip("\r\n") == teaser for r in c.removed)


def test_seed_search_fragment_removed(seed):
    text, c = seed
    line = next(line for line in text.splitlines() if "Search Results" in line)
    assert "Search Results" not in c.text and "Web results" not in c.text
    # the sentence the fragment was pasted into reads on, with single spaces
    assert line.replace("Search Results Web results ", "") in c.text
    (r,) = [r for r in c.removed if r.kind == "search-fragment"]
    assert text[r.start : r.end].strip() == "Search Results Web results"


def test_seed_footer_removed(seed):
    text, c = seed
    for debris in ("Share it:", "Leave a Reply", "Your email address will not be published", "Required fields are marked"):
        assert debris in text
        assert debris not in c.text
    kinds = {r.kind for r in c.removed}
    assert {"repeated-teaser", "search-fragment", "share-footer", "comment-form"} <= kinds
    assert kinds <= {"repeated-teaser", "search-fragment", "share-footer", "comment-form", "whitespace"}


def test_seed_prose_survives(seed):
    text, c = seed
    lines = [line for line in text.splitlines() if len(line) > 80 and "Search Results" not in line and "[…]" not in line]
    # every long prose line is still there (the title and headings too)
    assert len(lines) > 20
    for line in lines:
        assert line in c.text
    assert text.splitlines()[0] in c.text
    last_prose = [line for line in text.splitlines() if line.strip()][-4]
    assert last_prose.startswith("Based on") and last_prose in c.text
    # only small pieces go: the removed text is a small share of the article
    assert sum(r.end - r.start for r in c.removed) < 0.1 * len(text)


def test_seed_removed_ranges_map_to_original(seed):
    text, c = seed
    check_invariants(c)
    for r in c.removed:
        assert text[r.start : r.end]  # each range is real text of the original
        assert r.reason
    # every cleaned line maps back onto the same characters of the original
    pos = 0
    for line in c.text.split("\n"):
        s, e = pos, pos + len(line)
        os_, oe = c.to_original(s, e)
        if all(not (os_ < r.end and r.start < oe) for r in c.removed):
            assert text[os_:oe] == line
        pos = e + 1


# ---------------------------------------------------------------------------------------------------------
# clean PTC news text is left alone


def test_ptc_dev_articles_unchanged():
    if not PTC_DEV.is_dir():
        pytest.skip(f"{PTC_DEV} not available")
    files = sorted(PTC_DEV.glob("*.txt"))
    assert files
    for f in files:
        text = read(f)
        c = clean(text)
        assert {r.kind for r in c.removed} <= {"whitespace"}, (f.name, c.removed)
        check_invariants(c)
        if not c.removed:
            assert c.text is text


# ---------------------------------------------------------------------------------------------------------
# single rules


@pytest.mark.parametrize(
    "line,kind",
    [
        ("Share it:", "share-footer"),
        ("Share this:", "share-footer"),
        ("Share this story!", "share-footer"),
        ("Facebook Twitter WhatsApp Email", "share-footer"),
        ("Leave a Reply", "comment-form"),
        ("Leave a Reply Cancel reply", "comment-form"),
        ("Your email address will not be published. Required fields are marked *", "comment-form"),
        ("Required fields are marked *", "comment-form"),
        ("3 thoughts on “Council votes to close harbour ferry”", "comment-form"),
        ("Subscribe to our newsletter", "newsletter"),
        ("Sign up for our free weekly newsletter and get the best stories first.", "newsletter"),
        ("We use cookies to personalise content and ads and to analyse our traffic.", "cookie-notice"),
        ("This website uses cookies to improve your experience.", "cookie-notice"),
        ("Accept all cookies", "cookie-notice"),
        ("Post navigation", "navigation"),
        ("Related posts", "navigation"),
        ("Related Articles:", "navigation"),
        ("You may also like", "navigation"),
        ("Read more", "navigation"),
        ("READ MORE: Minister resigns after week of protests", "navigation"),
        ("Previous post: Farmers block motorway in fuel price protest", "navigation"),
        ("Search Results", "search-fragment"),
        ("Web results", "search-fragment"),
    ],
)
def test_boilerplate_line_removed(line, kind):
    before = "The council voted on Monday night to end the ferry subsidy.\n"
    after = "\nResidents say the ferry is the only way to reach the hospital.\n"
    text = before + line + after
    c = clean(text)
    check_invariants(c)
    assert line not in c.text
    assert before in c.text and after.strip() in c.text
    assert [r.kind for r in c.removed if r.kind != "whitespace"] == [kind]
    (r,) = [r for r in c.removed if r.kind == kind]
    assert text[r.start : r.end] == line + "\n"


@pytest.mark.parametrize(
    "line",
    [
        "Readers were asked to share it: the editor said the story mattered.",
        "We use cookies to track every reader, the whistleblower told parliament on Tuesday.",
        "Read more about the plan in the council minutes, the spokesman said.",
        "Related to this, the minister said the plan had always been popular.",
        "Google's search results were blamed for the spread of the rumour.",
        "Comments from residents were overwhelmingly negative.",
        "Advertisement",
        "Email *",
        "Sign up for more newsletters here",
        "The Search Results page of the ministry listed nothing at all.",
    ],
)
def test_prose_and_unlisted_lines_kept(line):
    text = "Title of the story\n\n" + line + "\nAnother sentence follows here.\n"
    c = clean(text)
    assert c.removed == []
    assert c.text is text


def test_search_fragment_lines_and_chrome():
    text = (
        "The minister defended the plan.\n"
        "Search Results\n"
        "www.example.com › news › 2020\n"
        "People also ask\n"
        "Critics said the plan would cost far more than promised.\n"
    )
    c = clean(text)
    check_invariants(c)
    assert c.text == "The minister defended the plan.\nCritics said the plan would cost far more than promised.\n"
    assert [r.kind for r in c.removed] == ["search-fragment"] * 3


def test_inline_search_words_removed_with_one_space():
    text = "US fighters are bombarding Search Results Web results Kata’ib Hezbollah positions.\n"
    c = clean(text)
    assert c.text == "US fighters are bombarding Kata’ib Hezbollah positions.\n"
    s = c.text.index("Kata")
    assert c.to_original(s, s + 7) == (text.index("Kata"), text.index("Kata") + 7)


def test_teaser_with_cut_word_and_bare_ellipsis():
    body = (
        "The regional council approved the new budget on Thursday after a long and often bitter debate "
        "about school funding, road repairs and the future of the harbour ferry service."
    )
    cut = body[:120]  # ends in the middle of a word
    text = f"Budget passed\n\n{cut}[…]\n\n{body}\nMore prose here.\n"
    c = clean(text)
    assert "[…]" not in c.text and c.text.count(body) == 1
    assert c.text.startswith("Budget passed\n\n" + body)

    long_cut = body[:100].rsplit(" ", 1)[0]
    text2 = f"Budget passed\n\n{long_cut}…\n\n{body}\n"
    c2 = clean(text2)
    assert "…" not in c2.text and "repeated-teaser" in [r.kind for r in c2.removed]

    # the same excerpt twice is not a teaser of anything
    assert clean(f"{long_cut}…\n{long_cut}…\n").removed == []
    # a short bare "..." line is not a teaser
    text3 = "Budget passed\n\nThe council approved it...\n\nThe council approved it on Thursday.\n"
    assert clean(text3).text is text3


def test_duplicate_lead_paragraph_removed_but_not_repeated_sentences():
    lead = (
        "The regional council approved the new budget on Thursday after a long and often bitter debate "
        "about school funding, road repairs and the ferry."
    )
    text = f"Budget passed\n\n{lead}\n\n{lead}\nThe vote was eleven to four.\n"
    c = clean(text)
    assert c.text.count(lead) == 1 and c.text.startswith(f"Budget passed\n\n{lead}\nThe vote")
    assert [r.kind for r in c.removed if r.kind != "whitespace"] == ["repeated-teaser"]
    # a sentence repeated inside the running text (one sentence per line) is rhetoric, not a teaser
    text2 = f"Budget passed\n\nFirst line.\n{lead}\nMiddle line.\n{lead}\n"
    assert clean(text2).text is text2


def test_whitespace_runs():
    assert clean("a\n\n\n\nb").text == "a\n\nb"
    assert clean("a\r\n\r\n\r\nb").text == "a\r\n\r\nb"
    assert clean("a \n \n\t\n b").text == "a \n\n b"  # the blank lines' own spaces go too
    assert clean("a     b").text == "a b"
    for kept in ("a\n\nb", "a  b", "a\r\n\r\nb", "x\n"):
        c = clean(kept)
        assert c.text is kept and c.removed == []
    c = clean("one\n\n\n\n\ntwo     three")
    check_invariants(c)
    assert c.text == "one\n\ntwo three"
    assert all(r.kind == "whitespace" for r in c.removed)


def test_to_original_edges():
    text = "Keep this.\nShare it:\nAnd this.\n"
    c = clean(text)
    assert c.text == "Keep this.\nAnd this.\n"
    n = len(c.text)
    assert c.to_original(0, 0) == (0, 0)
    assert c.to_original(n, n) == (len(text), len(text))
    s = c.text.index("And")
    assert c.to_original(s, s) == (text.index("And"),) * 2
    # a span across the removed line covers it in the original
    assert c.to_original(0, n) == (0, len(text))
    os_, oe = c.to_original(5, s + 3)
    assert text[os_:oe] == "this.\nShare it:\nAnd"
    for bad in ((-1, 2), (3, 2), (0, n + 1)):
        with pytest.raises(ValueError):
            c.to_original(*bad)


def test_nothing_to_clean_and_empty():
    for text in ("", "Just one sentence.", "Title\n\nBody line one.\nBody line two.\n"):
        c = clean(text)
        assert c.text is text and c.removed == []
        assert c.to_original(0, len(text)) == (0, len(text))
    c = clean("Share it:\n")
    assert c.text == "" and c.to_original(0, 0) == (0, 0)
    assert Removed("x", 0, 1, "r").kind == "x"
    with pytest.raises(ValueError):
        Cleaned("abc", "ab")  # a cleaned text without a map


def test_large_text_is_fast():
    para = "The council approved the new budget on Thursday after a long debate about schools.\n"
    text = (para * 40 + "Share it:\n\n\n\n") * 300  # about 1 MB, 1200 removals
    t0 = time.perf_counter()
    c = clean(text)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5.0
    assert "Share it:" not in c.text and "\n\n\n" not in c.text
    assert [r.kind for r in c.removed].count("share-footer") == 300
    assert len(c.segments) <= len(c.removed) + 1
    mid = len(c.text) // 2
    os_, oe = c.to_original(mid, mid + 10)
    assert text[os_:oe] == c.text[mid : mid + 10]


# ---------------------------------------------------------------------------------------------------------
# property tests

WORDS = (
    "council harbour ferry minister budget vote island residents plan cost school road bridge week night "
    "hospital petition service engine summer boat town people leader decision signs gallery operator route"
).split()

FOOTER = "Share it:\n\nLeave a Reply\n\nYour email address will not be published. Required fields are marked *"
DEBRIS_LINES = {
    "footer": ["Share it:", "Leave a Reply", "Your email address will not be published"],
    "cookie": ["We use cookies to improve your experience on our website."],
    "newsletter": ["Subscribe to our newsletter"],
    "nav": ["Post navigation", "Related posts"],
    "search-lines": ["Search Results", "www.example.com › news", "People also ask"],
}


@st.composite
def article_with_debris(draw):
    n = draw(st.integers(2, 8))
    paras = []
    for i in range(n):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=8, max_size=30))
        spaces = draw(st.lists(st.sampled_from([" ", " ", " ", "  ", "     "]), min_size=len(words), max_size=len(words)))
        body = "".join(w + sp for w, sp in zip(words, spaces)).rstrip()
        paras.append(f"Paragraph{i} {body}.")  # unique, capitalised, never a boilerplate line
    shown = list(paras)  # the paragraphs as they appear in the page (maybe with pasted search words)
    kinds = draw(
        st.lists(
            st.sampled_from(["teaser", "footer", "cookie", "newsletter", "nav", "search-lines", "search-inline"]),
            max_size=4,
            unique=True,
        )
    )
    expect_gone: list[str] = []
    if "search-inline" in kinds:
        k = draw(st.integers(0, n - 1))
        head, _, tail = paras[k].partition(" ")
        shown[k] = head + " Search Results Web results " + tail
        expect_gone.append("Search Results Web results")
    blocks = list(shown)
    if "teaser" in kinds:  # an excerpt of a paragraph, cut anywhere after 60 characters, placed before it
        k = draw(st.integers(0, n - 1))
        p = shown[k]
        cut = p[: draw(st.integers(min(60, len(p) - 1), len(p) - 1))]
        blocks.insert(blocks.index(p), cut + " […]")
        expect_gone.append(cut + " […]")
    for kind in kinds:
        if kind in DEBRIS_LINES:
            block = FOOTER if kind == "footer" else "\n".join(DEBRIS_LINES[kind])
            blocks.insert(draw(st.integers(0, len(blocks))), block)
            expect_gone.extend(DEBRIS_LINES[kind])
    seps = draw(
        st.lists(
            st.sampled_from(["\n", "\n\n", "\r\n", "\r\n\r\n", "\n\n\n\n", "\n \n\n"]),
            min_size=len(blocks) + 1,
            max_size=len(blocks) + 1,
        )
    )
    text = "Headline of the story" + seps[0] + "".join(b + sep for b, sep in zip(blocks, seps[1:]))
    return text, paras, expect_gone


def squash(s: str) -> str:
    return " ".join(s.split())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(article_with_debris(), st.data())
def test_property_debris_removed_and_map_exact(sample, data):
    text, paras, gone = sample
    c = clean(text)
    check_invariants(c)
    for debris in gone:
        assert debris not in c.text, (debris, c.text)
    flat = squash(c.text)
    for p in paras:  # no prose lost (space runs may be collapsed)
        assert squash(p) in flat
    if not c.text:
        return
    # random spans inside one kept segment map onto identical original text
    for _ in range(5):
        seg = data.draw(st.sampled_from(c.segments))
        cs, o, ln = seg
        s = data.draw(st.integers(cs, cs + ln - 1))
        e = data.draw(st.integers(s + 1, cs + ln))
        os_, oe = c.to_original(s, e)
        assert text[os_:oe] == c.text[s:e]
    # any span: its first and last characters map exactly
    s = data.draw(st.integers(0, len(c.text) - 1))
    e = data.draw(st.integers(s + 1, len(c.text)))
    os_, oe = c.to_original(s, e)
    assert text[os_] == c.text[s] and text[oe - 1] == c.text[e - 1]


ALPHABET = st.sampled_from(
    list("ab .,:*…[]\n\r\t") + ["Share it:", "Search Results", "Web results", "Leave a Reply", "Read more", "[…]", "\n\n\n"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=120).map("".join))
def test_property_any_text_keeps_invariants(text):
    c = clean(text)
    check_invariants(c)
