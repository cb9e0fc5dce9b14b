"""The web page of ``propscan serve`` in headless Debian Chromium (Playwright; see tests/browser_util.py).

A real uvicorn server with the real app and model runs on a free loopback port in a thread. The tests
paste the seed article, upload files, try XSS strings, download the JSON/CSV, reopen the browser-side
history, and take a screenshot (tests/output/serve.png). Every request the page makes must go to the
server itself (or be the report frame's srcdoc / a download blob): no CDN, no other host.
"""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import threading
import time
from pathlib import Path

import jsonschema
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # require_browser() skips (or fails under CI) with the reason
    expect = None

from browser_util import OUTPUT, Recording, launch, require_browser
from propscan.serve.app import create_app

ROOT = Path(__file__).resolve().parents[2]
SEED = Path(__file__).resolve().parents[3] / "shared/examples/seed-opinion-article.txt"
SCHEMA = json.loads((ROOT / "src/propscan/schema/analysis.schema.json").read_text(encoding="utf-8"))
XSS = "<img src=x onerror=alert(1)> and <script>alert(1)</script>"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    require_browser()
    import uvicorn

    from propscan.pipeline import model as model_mod

    # The page offers the accurate model where its base wheels are installed, and picks it; these tests
    # are about the page, so they see the same page on every machine: the fast model's alone (the test
    # of the choice below puts a package in place itself).
    patch = pytest.MonkeyPatch()
    patch.setitem(model_mod.NAMES, "accurate", tmp_path_factory.mktemp("no-accurate") / "none")
    port = _free_port()
    config = uvicorn.Config(create_app(model=model), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="propscan-test-server", daemon=True)
    thread.start()
    t0 = time.monotonic()
    while not srv.started:
        assert thread.is_alive() and time.monotonic() - t0 < 30, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(15)
    patch.undo()


@pytest.fixture(scope="module")
def browser(server):
    with launch() as b:
        yield b


@pytest.fixture(scope="module")
def seed_text() -> str:
    if not SEED.is_file():
        pytest.skip(f"{SEED} is absent (shared example data)")
    return SEED.read_text(encoding="utf-8")


class WebPage(Recording):
    """One browser context on the server's page, recording dialogs, script/CSP errors and requests."""

    def __init__(self, browser, base: str):
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.record(self.page, requests_from=self.context)  # the context also sees the report frame's requests
        self.page.goto(base + "/")
        self.frame = self.page.frame_locator("#ps-view")

    def analyze(self, text: str | None = None, html: bool = False) -> None:
        if text is not None:
            self.page.fill("#ps-text", text)
        if html:
            self.page.check('input[name="kind"][value="html"]')
        self.page.click("#ps-go")
        # locator waits, not wait_for_function: the page's CSP (rightly) forbids the eval that needs
        expect(self.page.locator("#ps-status")).to_have_text(re.compile(r"^Done"), timeout=60_000)

    def history(self) -> list[dict]:
        return self.page.evaluate("JSON.parse(localStorage.getItem('propscan.history.v1') || '[]')")

    def close(self, expect_errors: bool = False) -> None:
        assert self.dialogs == [], f"a dialog fired: {self.dialogs}"
        if not expect_errors:
            assert self.errors == [], f"script or CSP errors: {self.errors}"
        foreign = [u for u in self.requests if not (u.startswith(self.base + "/") or u.startswith(("about:", "blob:", "data:")))]
        assert foreign == [], f"requests to other hosts: {foreign}"
        self.context.close()


@pytest.fixture
def web(browser, server):
    p = WebPage(browser, server)
    yield p
    p.close()


def test_paste_seed_article_shows_highlights_history_and_downloads(web, seed_text):
    p = web
    p.analyze(seed_text)
    marks = p.frame.locator("mark.sp[data-h]")
    marks.first.wait_for()
    hist = p.history()
    assert len(hist) == 1
    a = hist[0]["analysis"]
    jsonschema.validate(a, SCHEMA)
    assert a["document"]["text"] == seed_text
    assert a["spans"] and marks.count() == a["passages"]
    assert p.frame.locator(".lg").count() == len(a["counts"])  # the report's legend, in the frame
    title = seed_text.strip().splitlines()[0].strip()
    assert p.page.inner_text("#ps-result-title") == title
    assert p.page.locator("#ps-history li").count() == 1
    assert title in p.page.inner_text("#ps-history")

    OUTPUT.mkdir(exist_ok=True)
    p.page.evaluate("window.scrollTo(0, 0)")
    p.page.screenshot(path=str(OUTPUT / "serve.png"), full_page=True)

    # the report's own script runs in the sandboxed frame: hovering a span shows its tooltip
    marks.first.scroll_into_view_if_needed()
    marks.first.hover()
    p.frame.locator("#ps-tip").wait_for(state="visible")
    assert "confidence" in p.frame.locator("#ps-tip").inner_text()

    with p.page.expect_download() as d:
        p.page.click("#ps-dl-json")
    downloaded = json.loads(Path(d.value.path()).read_text(encoding="utf-8"))
    assert downloaded == a and d.value.suggested_filename.endswith(".json")
    with p.page.expect_download() as d:
        p.page.click("#ps-dl-csv")
    rows = list(csv.reader(io.StringIO(Path(d.value.path()).read_text(encoding="utf-8"))))
    assert rows[0] == ["doc_id", "technique", "start", "end", "score", "text"] and len(rows) == len(a["spans"]) + 1

    # the history survives a reload and reopens the analysis without the model
    p.page.reload()
    assert p.page.locator("#ps-history li").count() == 1
    assert p.page.is_hidden("#ps-result")
    p.page.click("#ps-history .ps-hopen")
    p.frame.locator("mark.sp[data-h]").first.wait_for()
    # one highlighted passage per text range, whatever its number of techniques
    assert p.frame.locator("mark.sp[data-h]").count() == len({(s["start"], s["end"]) for s in a["spans"]}) == a["passages"]
    p.page.click("#ps-history .ps-hdel")
    assert p.history() == [] and p.page.is_visible("#ps-hist-empty")


def test_upload_text_and_html_files(web, seed_text, tmp_path):
    p = web
    p.page.set_input_files("#ps-file", str(SEED))
    assert "seed-opinion-article.txt" in p.page.inner_text("#ps-status")
    p.analyze()
    p.frame.locator("mark.sp[data-h]").first.wait_for()
    a = p.history()[0]["analysis"]
    assert a["document"]["text"] == seed_text
    assert a["document"]["id"] == "seed-opinion-article"
    assert a["document"]["metadata"]["filename"] == "seed-opinion-article.txt"

    page_html = tmp_path / "page.html"
    body = "".join(f"<p>{line}</p>" for line in seed_text.splitlines()[2:] if line.strip())
    page_html.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>An uploaded page</title></head>"
        f"<body><nav>Home | News | Sport</nav><article><h1>An uploaded page</h1>{body}</article></body></html>",
        encoding="utf-8",
    )
    p.page.set_input_files("#ps-file", str(page_html))
    p.analyze()
    assert p.page.inner_text("#ps-result-title") == "An uploaded page"
    hist = p.history()
    assert len(hist) == 2 and hist[0]["analysis"]["document"]["metadata"]["format"] == "html"
    assert "Home | News" not in hist[0]["analysis"]["document"]["text"]


def test_several_files_are_analysed_and_listed(browser, server, tmp_path):
    """Three files at once: each is listed with its result or its error, the first result is shown,
    and a listed result opens when pressed."""
    p = WebPage(browser, server)
    one, two, bad = tmp_path / "one.txt", tmp_path / "two.txt", tmp_path / "empty.txt"
    one.write_text("Crooked politicians will destroy our great nation. Wake up, patriots, before it is too late!\n")
    two.write_text("The council approved the budget on Tuesday after a short debate about park funding.\n")
    bad.write_text("   \n")
    p.page.set_input_files("#ps-file", [str(one), str(two), str(bad)])
    assert "Will analyse 3 files" in p.page.inner_text("#ps-status")
    p.page.click("#ps-go")
    expect(p.page.locator("#ps-status")).to_have_text(re.compile(r"^Done: 2 of 3 files analysed; 1 failed"), timeout=60_000)
    items = p.page.locator("#ps-batch li")
    assert items.count() == 3
    assert items.nth(0).inner_text().startswith("one.txt: score") and items.nth(1).inner_text().startswith("two.txt: score")
    assert items.nth(2).get_attribute("class") == "err" and items.nth(2).inner_text().startswith("empty.txt: ")
    assert p.page.inner_text("#ps-result-title").startswith("Crooked politicians")
    assert [h["analysis"]["document"]["id"] for h in p.history()] == ["two", "one"]
    items.nth(1).locator("button").click()
    expect(p.page.locator("#ps-result-title")).to_have_text(re.compile("^The council approved"))
    p.page.screenshot(path=str(OUTPUT / "web-several-files.png"), full_page=True)
    assert [e for e in p.errors if "status of 422" not in e] == []  # the empty file's refusal, nothing else
    p.close(expect_errors=True)


def test_xss_strings_are_shown_as_text(web):
    p = web
    text = f"The reckless, shameful council will gut our schools. {XSS}\nSecond line: {XSS}"
    p.analyze(text)
    p.frame.locator(".ps-article").wait_for()
    shown = p.frame.locator(".ps-article").inner_text()
    assert shown.count("<img src=x onerror=alert(1)>") == 2 and shown.count("<script>alert(1)</script>") == 2
    assert p.frame.locator("img").count() == 0
    assert p.frame.locator(".ps-article script").count() == 0
    assert p.page.locator("#ps-history img, #ps-history script").count() == 0
    xss_title = "<img src=x onerror=alert(1)><script>alert(1)</script>"
    p.analyze(f"{xss_title}\n\nThe reckless, shameful council will gut our schools.")
    assert p.page.inner_text("#ps-result-title") == xss_title  # the label is text, not markup
    assert xss_title in p.page.inner_text("#ps-history")
    page = p.page.content()
    assert "<img src=\"x\"" not in page
    p.page.wait_for_timeout(300)  # give a stray handler the chance to fire; close() asserts no dialog


def test_problems_are_shown(browser, server):
    p = WebPage(browser, server)
    p.page.click("#ps-go")
    assert p.page.is_visible("#ps-error") and "Nothing to analyse" in p.page.inner_text("#ps-error")
    p.page.fill("#ps-text", "<html><body><p>Too short.</p></body></html>")
    p.page.check('input[name="kind"][value="html"]')
    p.page.click("#ps-go")
    expect(p.page.locator("#ps-error")).to_contain_text("no article text", timeout=30_000)
    expect(p.page.locator("#ps-go")).to_be_enabled()
    assert p.page.is_hidden("#ps-result") and p.history() == []
    p.close(expect_errors=True)  # the browser logs the 422 response as a console error


@pytest.mark.parametrize("width", [1400, 400])
def test_the_report_frame_grows_to_its_content_and_is_titled(web, seed_text, width, model):
    """No fixed-height frame with a scrollbar of its own: the frame is as tall as the report, at a
    desktop and a phone width, and the pasted article is named by its first line."""
    p = web
    p.page.set_viewport_size({"width": width, "height": 900})
    p.analyze(seed_text)
    p.frame.locator("mark.sp[data-h]").first.wait_for()
    first_line = seed_text.strip().splitlines()[0].strip()[:80]
    expect(p.page.locator("#ps-view")).to_have_css("height", re.compile(r"^\d{4,}"), timeout=10_000)  # grown past 85vh
    inner = p.page.frame_locator("#ps-view").locator("html").evaluate("e => e.scrollHeight")
    outer = p.page.locator("#ps-view").evaluate("e => e.getBoundingClientRect().height")
    assert outer >= inner, (outer, inner)
    assert p.page.inner_text("#ps-result-title") and p.history()[0]["analysis"]["document"]["id"] == first_line
    assert "highlighted passage" in p.page.inner_text("#ps-summary")
    assert p.page.inner_text("#ps-summary").endswith(f"model {model.name} {model.version}")  # the model that made it
    OUTPUT.mkdir(parents=True, exist_ok=True)
    p.page.screenshot(path=str(OUTPUT / f"web-{width}.png"), full_page=True)


def test_the_page_offers_both_models_and_picks_accurate_for_a_pasted_article(browser, model, tmp_path_factory, monkeypatch):
    """Where the accurate model is installed the page offers fast and accurate, with accurate picked
    (one pasted article); the result names the model that made it. A real adapter package over
    MiniLM stands in for the accurate one (built by training/export.py, assembled into a temp cache)."""
    pytest.importorskip("peft")
    import torch
    import uvicorn

    from propscan.pipeline import encoders, encoding
    from propscan.pipeline import model as model_mod
    from propscan.training.export import export_package
    from propscan.training.train import TrainConfig, build_model, save_checkpoint

    root = tmp_path_factory.mktemp("accurate")
    torch.manual_seed(0)
    cfg = TrainConfig(encoder="all-MiniLM-L6-v2", lora_rank=4)
    net = build_model(cfg)
    (root / "ckpt").mkdir()
    tok = encoding.load_tokenizer(encoders.base_encoder_dir(cfg.encoder) / "tokenizer.json")
    save_checkpoint(net.state_dict(), tok, cfg, root / "ckpt", ["a"], ["b"])
    pkg = export_package(root / "ckpt", root / "pkg", "propscan-stand-in", "1")
    config = json.loads((model_mod.MODEL_DIR / "model.json").read_text())
    (pkg / "model.json").write_text(json.dumps({**config, "name": "propscan-stand-in", "version": "1"}))
    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(root / "cache"))
    monkeypatch.setitem(model_mod.NAMES, "accurate", pkg)
    model_mod.load.cache_clear()

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(model=model), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    t0 = time.monotonic()
    while not srv.started:
        assert thread.is_alive() and time.monotonic() - t0 < 30
        time.sleep(0.05)
    try:
        p = WebPage(browser, f"http://127.0.0.1:{port}")
        picks = p.page.locator('input[name="model"]')
        assert picks.count() == 2
        assert p.page.locator('input[name="model"][value="accurate"]').is_checked()
        assert p.page.inner_text(".ps-model") == "model propscan-stand-in 1"  # the header names the picked model
        p.analyze("Crooked politicians will destroy our great nation.\n\nWake up, patriots, before it is too late!")
        assert p.history()[0]["analysis"]["model"]["name"] == "propscan-stand-in"
        assert p.page.inner_text("#ps-summary").endswith("model propscan-stand-in 1")  # not the server's default
        p.page.check('input[name="model"][value="fast"]')
        assert p.page.inner_text(".ps-model") == f"model {model.name} {model.version}"
        p.analyze()
        assert p.history()[0]["analysis"]["model"]["name"] == model.name
        assert p.page.inner_text("#ps-summary").endswith(f"model {model.name} {model.version}")
        p.close()
    finally:
        srv.should_exit = True
        thread.join(15)
        model_mod.load.cache_clear()
