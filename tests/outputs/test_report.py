"""Tests for propscan.outputs.report (HTML report + static site) and propscan.outputs.chart.

The first half checks the HTML as text (escaping, offsets, self-containedness, speed); the second
half opens the report in headless Debian Chromium through Playwright (see tests/browser_util.py):
highlight and legend counts, toggles, the confidence slider, hover and keyboard tooltips, XSS
strings, the sentence strip, a screenshot, and the sortable index of ``write_site``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from browser_util import OUTPUT, Recording, launch
from propscan.outputs.chart import technique_bar_chart
from propscan.document import Analysis, Document, ModelInfo, SentenceScore, Span
from propscan.errors import InputError
from propscan.document import sentence_hits as _sentence_hits
from propscan.outputs.report import assign_lanes, render_html, safe_file_name, write_site
from propscan.techniques import BY_ID, TECHNIQUE_IDS

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'
LOADED, NAMES = "Loaded_Language", "Name_Calling,Labeling"

TEXT = (
    "The council's reckless, shameful vote will gut our schools.\n"
    "These so-called experts are a gang of career politicians.\n\n"
    f"Can we really trust them? {XSS_SCRIPT} {XSS_IMG} Café owners said “no”."
)


def _at(text: str, phrase: str, occurrence: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(phrase, start + 1)
    return start, start + len(phrase)


def _sentences(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"[^.?!\n]+[.?!]?", text) if m.group().strip()]


def make_analysis() -> Analysis:
    """Two techniques; crossing (A/B, B/G) and nested (C/F) overlaps; a span over the XSS string."""
    spans = [
        Span(*_at(TEXT, "reckless, shameful vote"), LOADED, 0.92, {NAMES: 0.05}),  # A
        Span(*_at(TEXT, "shameful vote will gut"), NAMES, 0.55),  # B crosses A and G
        Span(*_at(TEXT, "gut our schools"), LOADED, 0.60),  # G
        Span(*_at(TEXT, "so-called experts"), NAMES, 0.70),  # D
        Span(*_at(TEXT, "gang of career politicians"), LOADED, 0.81),  # C
        Span(*_at(TEXT, "career politicians"), NAMES, 0.35),  # F nested in C
        Span(*_at(TEXT, XSS_SCRIPT), LOADED, 0.45),  # E
    ]
    sents = _sentences(TEXT)
    hits = _sentence_hits(sents, [(s.start, s.end) for s in spans])
    scores = [0.9, 0.8, 0.6, 0.3, 0.1][: len(sents)] + [0.1] * (len(sents) - 5)
    sentences = [SentenceScore(s, e, sc) for (s, e), sc in zip(sents, scores)]
    doc = Document("article-1", TEXT, {"title": f"Council vote {XSS_IMG}", "source": XSS_SCRIPT})
    return Analysis(doc, spans, sentences, sum(hits) / len(sents), ModelInfo("propscan-test", "0.0"))


# --------------------------------------------------------------------------------------------------
# HTML as text


class _ArticleParser(HTMLParser):
    """Reads the article <div>: its text, and for each character the spans (data-i) covering it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0  # >0 inside the article
        self.stack: list[tuple[int, ...] | None] = []
        self.text: list[str] = []
        self.cover: list[frozenset[int]] = []
        self.heads: list[int] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and "ps-article" in (a.get("class") or "").split():
            self.depth = 1
            return
        if not self.depth:
            return
        if tag == "div":
            self.depth += 1
            return
        if tag == "mark":  # one mark per text range: data-i lists every span on it
            ids = tuple(int(i) for i in a["data-i"].split())
            self.stack.append(ids)
            if "data-h" in a:
                self.heads.extend(ids)
        else:
            self.stack.append(None)

    def handle_endtag(self, tag):
        if not self.depth:
            return
        if tag == "div":
            self.depth -= 1
            return
        self.stack.pop()

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)
            cover = frozenset(i for ids in self.stack if ids is not None for i in ids)
            self.cover += [cover] * len(data)


def parse_article(page: str) -> _ArticleParser:
    p = _ArticleParser()
    p.feed(page)
    return p


def test_article_text_and_span_fragments_match_offsets():
    a = make_analysis()
    p = parse_article(render_html([a]))
    assert "".join(p.text) == a.document.text  # code-point faithful, newlines kept
    for i, s in enumerate(a.spans):
        covered = [k for k, c in enumerate(p.cover) if i in c]
        assert covered == list(range(s.start, s.end)), f"span {i}"
    assert sorted(p.heads) == list(range(len(a.spans)))  # one keyboard stop per span


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet="ab <&>\"'\n😡é", min_size=1, max_size=40).flatmap(
        lambda text: st.tuples(
            st.just(text),
            st.lists(
                st.tuples(st.integers(0, len(text) - 1), st.integers(1, len(text)), st.sampled_from(TECHNIQUE_IDS)),
                max_size=8,
            ),
        )
    )
)
def test_fragments_for_any_overlap(case):
    text, raw = case
    spans = [Span(s, e, t, 0.5) for s, e, t in raw if s < e]
    a = Analysis(Document("h", text), spans, [SentenceScore(0, len(text), 0.5)], 0.0, ModelInfo("m", "1"))
    p = parse_article(render_html([a]))
    assert "".join(p.text) == text
    for i, s in enumerate(spans):
        assert [k for k, c in enumerate(p.cover) if i in c] == list(range(s.start, s.end))
    assert sorted(p.heads) == list(range(len(spans)))


def test_document_strings_are_escaped():
    out = render_html([make_analysis()])
    assert XSS_SCRIPT not in out
    assert "<img" not in out
    assert html.escape(XSS_SCRIPT, quote=False) in out
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in out  # in the title, escaped
    # the JSON blocks cannot be ended early
    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', out, re.S):
        assert "</" not in block and "<!--" not in block
    assert out.count("<script") == 3  # technique data, span data, the report script


def test_script_json_escapes_closing_tags():
    from propscan.outputs.report import script_json

    s = str(script_json({"x": "</script><!-- & \u2028"}))
    assert "<" not in s and ">" not in s and "&" not in s
    import json

    assert json.loads(s) == {"x": "</script><!-- & \u2028"}


def test_self_contained_and_csp_matches_script():
    out = render_html([make_analysis()])
    for bad in ("http://", "https://", "<link", "@import", "url(", "<img", "<iframe"):
        assert bad not in out, bad
    assert not re.search(r"<[a-z]+\s[^>]*\b(src|srcset|action|formaction)=", out)  # no tag loads anything
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', out).group(1)
    assert "default-src 'none'" in csp
    script = re.search(r"<script>(.*?)</script>", out, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp


def test_summary_counts_and_note():
    a = make_analysis()
    out = render_html([a])
    for t, n in a.counts.items():
        assert f'data-count="{n}"' in out
        assert html.escape(BY_ID[t].name) in out
    assert "What these scores mean" in out
    assert "share of sentences with a detected technique" in out
    for phrase in ("how often annotators", "false positives", "misses", "English news", "not as a verdict"):
        assert phrase in out
    assert out.count('class="cell') == len(a.sentences)
    assert "@media print" in out


def test_several_analyses_on_one_page():
    a, b = make_analysis(), make_analysis()
    b.document = Document("second", "Nothing to see here.", {})
    b.spans, b.sentences, b.score = [], [SentenceScore(0, 20, 0.1)], 0.0
    out = render_html([a, b])
    assert out.count('<section class="report"') == 2
    assert 'id="r0"' in out and 'id="r1"' in out
    assert out.count('id="ps-tip"') == 1
    assert out.count("What these scores mean") == 1
    assert "No technique detected in this document." in out
    assert len(set(re.findall(r'\bid="([^"]+)"', out))) == len(re.findall(r'\bid="([^"]+)"', out))  # unique ids


def test_empty_inputs_render():
    assert "No documents" in render_html([])
    a = Analysis(Document("empty", ""), [], [], 0.0, ModelInfo("m", "1"))
    assert "No technique detected" in render_html([a])


def test_bad_span_is_an_input_error():
    a = make_analysis()
    a.spans.append(Span(5, len(TEXT) + 3, LOADED, 0.5))
    with pytest.raises(InputError, match="outside the text"):
        render_html([a])
    a.spans[-1] = Span(1, 3, "Nonsense", 0.5)
    with pytest.raises(InputError, match="unknown technique"):
        render_html([a])


def test_long_documents_bin_the_strip_and_render_fast():
    """A 5 MB document (~58k sentences, ~38k spans) renders in a few seconds (typically < 1 s)."""
    a = big_analysis(5_000_000)
    t0 = time.perf_counter()
    out = render_html([a])
    secs = time.perf_counter() - t0
    assert secs < 10, f"5 MB render took {secs:.1f}s"
    assert 120 >= out.count('class="cell') > 50
    assert len(out) < 4 * len(a.document.text)


def big_analysis(size: int) -> Analysis:
    import random

    rng = random.Random(0)
    para = (Path(__file__).resolve().parents[2] / "examples" / "city-council-op-ed.txt").read_text(encoding="utf-8")
    text = (para * (size // len(para) + 1))[:size]
    sents, spans = [], []
    for s, e in _sentences(text):
        sents.append(SentenceScore(s, e, rng.random()))
        if rng.random() < 0.5 and e - s > 10:
            a = s + rng.randrange((e - s) // 2)
            b = min(e, a + rng.randrange(5, e - s))
            spans.append(Span(a, b, rng.choice(TECHNIQUE_IDS), rng.random()))
            if rng.random() < 0.3 and b - a > 3:
                spans.append(Span(a + 2, b, rng.choice(TECHNIQUE_IDS), rng.random()))
    return Analysis(Document("big", text), spans, sents, 0.5, ModelInfo("m", "1"))


def test_assign_lanes_never_shares_a_lane_between_overlapping_spans():
    spans = [(0, 10), (2, 5), (4, 12), (10, 11), (11, 20), (5, 6)]
    lanes = assign_lanes(spans)
    for i, (s1, e1) in enumerate(spans):
        for j, (s2, e2) in enumerate(spans):
            if i < j and s1 < e2 and s2 < e1:
                assert lanes[i] != lanes[j]
    assert max(lanes) == 2  # the maximum overlap depth is 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(1, 20)), max_size=10),
    st.lists(st.tuples(st.integers(0, 50), st.integers(1, 20)), max_size=10),
)
def test_sentence_hits_matches_brute_force(sents, spans):
    sents = [(s, s + n) for s, n in sents]
    spans = [(s, s + n) for s, n in spans]
    expected = [any(a < e and b > s for a, b in spans) for s, e in sents]
    assert _sentence_hits(sents, spans) == expected


def test_chart_svg():
    svg = str(technique_bar_chart({LOADED: 4, NAMES: 2, "Doubt": 0}, chart_id="c1"))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "Loaded language" in svg and "Name calling / labelling" in svg and "Doubt" not in svg
    assert svg.index("Loaded language") < svg.index("Name calling")  # largest first
    widths = [float(w) for w in re.findall(r'<rect [^>]* width="([\d.]+)"', svg)]
    assert widths == [200.0, 100.0]
    assert 'role="img"' in svg and "<title" in svg
    assert "No technique detected" in str(technique_bar_chart({}))


@pytest.mark.parametrize(
    ("doc_id", "expected"),
    [
        ("article111.txt", "article111.txt"),
        ("../../etc/passwd", "etc-passwd"),
        ("Café – “quotes”/slash", "Cafe-quotes-slash"),
        ("index", "doc-index"),
        ("CON", "doc-CON"),
        ("...", "document"),
        ("这是", "document"),
        ("a" * 200, "a" * 80),
    ],
)
def test_safe_file_name(doc_id, expected):
    assert safe_file_name(doc_id, set()) == expected


def test_safe_file_name_is_unique_case_insensitively():
    taken: set[str] = set()
    assert [safe_file_name(x, taken) for x in ("Doc", "doc", "DOC", "doc-2")] == ["Doc", "doc-2", "DOC-3", "doc-2-2"]


def _site_analyses() -> list[Analysis]:
    out = []
    for doc_id, score, n in (("b-second", 0.2, 1), ("a/first", 0.9, 3), ("c third <x>", 0.5, 2)):
        text = "Shameful lies. Reckless plans. Good news. " * 2
        spans = [Span(15 * k, 15 * k + 8, LOADED if k % 2 else NAMES, 0.5 + 0.1 * k) for k in range(n)]
        out.append(Analysis(Document(doc_id, text), spans, [SentenceScore(0, 14, 0.8)], score, ModelInfo("m", "1")))
    return out


def test_write_site_files(tmp_path):
    index = write_site(_site_analyses(), tmp_path / "site")
    assert index == tmp_path / "site" / "index.html"
    names = sorted(p.name for p in (tmp_path / "site").iterdir())
    assert names == ["a-first.html", "b-second.html", "c-third-x.html", "index.html"]  # no temp files left
    text = index.read_text(encoding="utf-8")
    for name in names[:-1]:
        assert f'href="{name}"' in text
    assert "c third &lt;x&gt;" in text and "<x>" not in text
    page = (tmp_path / "site" / "a-first.html").read_text(encoding="utf-8")
    assert 'href="index.html"' in page


# --------------------------------------------------------------------------------------------------
# in the browser


@pytest.fixture(scope="module")
def browser():
    with launch() as b:
        yield b


class Page(Recording):
    """A page on a rendered report, recording dialogs, script errors and requests."""

    def __init__(self, browser, path: Path):
        self.url = path.resolve().as_uri()
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.record(self.page)
        self.allowed = {self.url}
        self.page.goto(self.url)

    def js(self, expr: str, arg=None):
        return self.page.evaluate(expr, arg)

    def styles(self, span_index: int) -> list[dict]:
        return self.js(
            """i => Array.from(document.querySelectorAll(`#r0 mark.sp[data-i="${i}"]`)).map(m => {
                 const cs = getComputedStyle(m);
                 return {border: cs.borderBottomStyle, colour: cs.borderBottomColor, bg: cs.backgroundColor};
               })""",
            span_index,
        )

    def close(self) -> None:
        assert self.dialogs == [], f"a dialog fired: {self.dialogs}"
        assert self.errors == [], f"script or CSP errors: {self.errors}"
        assert set(self.requests) <= self.allowed, f"requests other than the report files: {self.requests}"
        self.page.close()


@pytest.fixture
def report_page(browser, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(render_html([make_analysis()]), encoding="utf-8")
    p = Page(browser, path)
    yield p
    p.close()


TRANSPARENT = "rgba(0, 0, 0, 0)"


def _visible(style: dict) -> bool:
    """Underline drawn in a colour and tinted; hidden spans have neither (their text stays)."""
    drawn = style["border"] != "none" and style["colour"] != TRANSPARENT
    assert drawn == (style["bg"] != TRANSPARENT), style
    return drawn


def _tip(p: Page) -> tuple[bool, str]:
    return p.page.is_visible("#ps-tip"), p.page.inner_text("#ps-tip") if p.page.is_visible("#ps-tip") else ""


def test_browser_highlights_and_legend_counts(report_page):
    p, a = report_page, make_analysis()
    assert p.js("document.querySelectorAll('#r0 mark.sp[data-h]').length") == len(a.passages)
    assert p.js("new Set(Array.from(document.querySelectorAll('#r0 mark.sp'), m => m.dataset.i)).size") == len(a.spans)
    legend = p.js(
        "Array.from(document.querySelectorAll('#r0 .lg'), b => [b.querySelector('.name').textContent, b.querySelector('.n').textContent])"
    )
    assert legend == [[BY_ID[t].name, str(n)] for t, n in a.counts.items()] == [["Loaded language", "4"], ["Name calling / labelling", "3"]]
    for i in range(len(a.spans)):
        assert all(_visible(s) for s in p.styles(i)), i
    # overlapping spans stay distinguishable: different underline offsets where they overlap
    pads = p.js("Array.from(document.querySelectorAll('#r0 mark.sp[data-i=\"5\"]'), m => getComputedStyle(m).paddingBottom)")
    outer = p.js("Array.from(document.querySelectorAll('#r0 mark.sp[data-i=\"4\"]'), m => getComputedStyle(m).paddingBottom)")
    assert set(pads).isdisjoint(outer)
    # underline style differs per technique, not only colour
    assert p.styles(0)[0]["border"] != p.styles(1)[0]["border"]
    assert XSS_SCRIPT in p.page.inner_text("#r0-text")
    assert XSS_IMG in p.page.inner_text("#r0-title")
    assert p.js("document.images.length") == 0


def test_browser_legend_toggles_a_technique(report_page):
    p, a = report_page, make_analysis()
    names = [i for i, s in enumerate(a.spans) if s.technique == NAMES]
    loaded = [i for i, s in enumerate(a.spans) if s.technique == LOADED]
    button = p.page.locator("#r0 .lg", has_text="Name calling")
    button.click()
    assert button.get_attribute("aria-pressed") == "false"
    for i in names:
        assert not any(_visible(s) for s in p.styles(i)), i
    for i in loaded:
        assert all(_visible(s) for s in p.styles(i)), i
    # hidden spans leave the keyboard order
    assert p.js("Array.from(document.querySelectorAll('#r0 mark[data-h]')).filter(m => m.tabIndex === 0).length") == len(loaded)
    assert p.page.inner_text("#r0 .filter .status") == f"{len(loaded)} of {len(a.spans)} technique labels shown"
    button.click()
    assert button.get_attribute("aria-pressed") == "true"
    for i in names:
        assert all(_visible(s) for s in p.styles(i)), i


def test_browser_confidence_slider_hides_low_spans(report_page):
    p, a = report_page, make_analysis()
    p.page.fill("#r0-min", "0.5")
    p.page.wait_for_function("document.querySelector('#r0 output.minv').textContent === '0.50'")
    for i, s in enumerate(a.spans):
        assert all(_visible(st) for st in p.styles(i)) == (s.score >= 0.5), (i, s.score)
    shown = sum(s.score >= 0.5 for s in a.spans)
    assert p.page.inner_text("#r0 .filter .status") == f"{shown} of {len(a.spans)} technique labels shown"
    assert p.page.inner_text("#r0 .lg.t0 .n") == "3/4"
    p.page.fill("#r0-min", "0")
    p.page.wait_for_function("document.querySelector('#r0 output.minv').textContent === '0.00'")
    assert all(_visible(st) for i in range(len(a.spans)) for st in p.styles(i))


def test_browser_hover_shows_tooltip(report_page):
    p = report_page
    assert not p.page.is_visible("#ps-tip")
    p.page.hover('#r0 mark.sp[data-i="3"][data-h]')  # "so-called experts"
    p.page.wait_for_selector("#ps-tip", state="visible")
    text = p.page.inner_text("#ps-tip")
    assert BY_ID[NAMES].name in text and BY_ID[NAMES].definition in text and BY_ID[NAMES].example in text
    assert "0.70" in text
    # where two spans overlap the tooltip lists both
    p.page.hover('#r0 mark.sp[data-i="1"][data-h]')  # "shameful vote" inside A, start of B
    p.page.wait_for_function("document.getElementById('ps-tip').textContent.includes('Loaded language')")
    text = p.page.inner_text("#ps-tip")
    assert "Name calling / labelling" in text and "Loaded language" in text
    p.page.mouse.move(5, 5)
    p.page.wait_for_selector("#ps-tip", state="hidden")


def test_browser_keyboard_focus_shows_tooltip(report_page):
    p = report_page
    p.page.focus("#r0-min")
    p.page.keyboard.press("Tab")
    assert p.js("document.activeElement.matches('mark.sp[data-h]') && document.activeElement.dataset.i") == "0"
    p.page.wait_for_selector("#ps-tip", state="visible")
    assert BY_ID[LOADED].definition in p.page.inner_text("#ps-tip")
    assert p.js("document.activeElement.getAttribute('aria-describedby')") == "ps-tip"
    assert p.js("document.getElementById('ps-tip').getAttribute('role')") == "tooltip"
    p.page.keyboard.press("Tab")
    assert p.js("document.activeElement.dataset.i") == "1"
    assert BY_ID[NAMES].definition in p.page.inner_text("#ps-tip")
    p.page.keyboard.press("Escape")
    p.page.wait_for_selector("#ps-tip", state="hidden")


def test_browser_sentence_strip_goes_to_the_sentence(report_page):
    p = report_page
    p.page.click('#r0 .cell[data-k="2"]')
    assert p.js("document.activeElement.id") == "r0-s2"


def test_browser_screenshot(report_page):
    OUTPUT.mkdir(exist_ok=True)
    p = report_page
    p.page.set_viewport_size({"width": 1200, "height": 1400})  # the whole page: the tooltip opens below the span
    p.page.hover('#r0 mark.sp[data-i="1"][data-h]')
    p.page.wait_for_selector("#ps-tip", state="visible")
    p.page.screenshot(path=str(OUTPUT / "report.png"), full_page=True)
    p.page.emulate_media(media="print")
    assert not p.page.is_visible("#r0-min")  # no controls in print
    assert p.page.is_visible("#r0 .legend")  # the legend is printed
    assert _visible(p.styles(0)[0])  # underlines kept
    p.page.screenshot(path=str(OUTPUT / "report-print.png"), full_page=True)
    assert (OUTPUT / "report.png").stat().st_size > 10_000


def test_browser_site_index_sorts(browser, tmp_path):
    index = write_site(_site_analyses(), tmp_path / "site")
    p = Page(browser, index)

    def order() -> list[str]:
        return p.js("Array.from(document.querySelectorAll('table.docs tbody tr td:first-child a'), a => a.textContent)")

    assert order() == ["b-second", "a/first", "c third <x>"]
    p.page.click("th:nth-child(2) button")  # score: highest first
    assert order() == ["a/first", "c third <x>", "b-second"]
    assert p.js("document.querySelector('th:nth-child(2)').getAttribute('aria-sort')") == "descending"
    p.page.click("th:nth-child(2) button")
    assert order() == ["b-second", "c third <x>", "a/first"]
    p.page.click("th:nth-child(1) button")  # document name, A to Z
    assert order() == ["a/first", "b-second", "c third <x>"]
    assert p.js("document.querySelector('th:nth-child(2)').hasAttribute('aria-sort')") is False
    p.close()
    # the links open the per-document reports
    p = Page(browser, index)
    p.page.click("text=a/first")
    p.page.wait_for_url("**/a-first.html")
    assert p.page.inner_text("h1") == "a/first"
    assert p.js("document.querySelectorAll('mark.sp[data-h]').length") == 3
    p.allowed.add(p.page.url)  # the index page and the report page, both local files
    p.close()


def test_removed_debris_is_struck_through_and_can_be_hidden():
    """Text cleaning dropped is shown grey and struck through, with a toggle; the piped terminal view
    marks it {removed: ...}. Real analysis of real debris."""
    from propscan.pipeline.analyze import analyze
    from propscan.document import Document
    from propscan.outputs.report import render_html
    from propscan.outputs.terminal import plain

    text = ("Share this article\nThe corrupt elites will stop at nothing to destroy our great nation. "
            "Wake up, patriots!\nRead more: subscribe to our newsletter\n")
    a = analyze(Document("debris", text))
    assert [text[r["start"]:r["end"]].strip() for r in a.removed] == ["Share this article", "Read more: subscribe to our newsletter"]
    html = render_html([a])
    assert html.count('<span class="rm" title="removed before analysis: ') == 2
    assert '<input type="checkbox" class="show-rm" checked>' in html and "2 passages of scraping debris" in html
    shown = plain(a)
    assert shown.startswith("{removed: Share this article}\n") and "{removed: Read more: subscribe to our newsletter}" in shown
    assert "[[" in shown  # the article itself is still analysed
