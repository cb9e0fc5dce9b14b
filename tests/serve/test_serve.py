"""Tests for propscan.serve.app: the REST API and its limits, against the real app and the real model.

httpx drives the app in-process (Starlette's TestClient, or httpx.ASGITransport for the concurrency
tests). The only stub is a slow wrapper around the real model, for the queue/timeout tests. The last
test fuzzes every operation in the app's own OpenAPI document with schemathesis (no 5xx allowed,
responses must match the documented schemas and media types).
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import os
import re
import threading
import time
from pathlib import Path

import httpx
import jsonschema
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from propscan.serve import app as serve
from propscan.pipeline.analyze import analyze
from propscan.document import Document
from propscan.outputs.formats import to_csv
from propscan.serve.app import create_app
from propscan.serve.settings import Settings, SettingsError, check_settings, is_loopback, parse_size
from propscan.techniques import TECHNIQUE_IDS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "src/propscan/schema/analysis.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
EXAMPLE = (ROOT / "examples/city-council-op-ed.txt").read_text(encoding="utf-8")
PROPAGANDA = (
    "The council's reckless, shameful vote will gut our schools. These so-called experts are a gang of "
    "career politicians who hate this city. Every true patriot knows what we must do: stop them now!"
)
HTML_PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Council vote sparks outrage</title></head><body>"
    "<nav><a href='/'>Home</a> | <a href='/news'>News</a></nav><article><h1>Council vote sparks outrage</h1>"
    f"<p>{PROPAGANDA}</p><p>Residents said the café on Main Street would close if the plan goes ahead, "
    "and the mayor refused to answer questions about the budget.</p></article>"
    "<footer>Share this article: Facebook Twitter</footer></body></html>"
)
PROBLEM_KEYS = {"type", "title", "status", "detail"}


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_app(model=model), base_url="http://127.0.0.1") as c:
        yield c


def assert_problem(r: httpx.Response, status: int, *words: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert PROBLEM_KEYS <= set(body), body
    assert body["status"] == status and isinstance(body["detail"], str) and body["detail"]
    assert "\n" not in body["detail"]
    for w in words:
        assert w.lower() in body["detail"].lower(), body
    return body


def assert_analysis(a: dict, text: str) -> None:
    VALIDATOR.validate(a)
    assert a["schema_version"] == "1.2"
    assert a["document"]["text"] == text
    for s in a["spans"]:
        assert 0 <= s["start"] < s["end"] <= len(text)
        assert s["text"] == text[s["start"] : s["end"]]


# --------------------------------------------------------------------------------------------------
# analysis


def test_analyze_text_matches_the_library(client, model):
    r = client.post("/v1/analyze", json={"text": EXAMPLE, "id": "op-ed"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    a = r.json()
    assert_analysis(a, EXAMPLE)
    assert a["spans"], "the example op-ed has propaganda spans"
    assert a["document"]["id"] == "op-ed"
    expected = analyze(Document("op-ed", EXAMPLE, {"format": "text"}), model=model).to_dict()
    assert a == json.loads(json.dumps(expected))  # the same as Analysis.to_dict(), to the last digit


def test_analyze_options_threshold_techniques_clean(client):
    low = client.post("/v1/analyze", json={"text": EXAMPLE, "threshold": 0.05}).json()
    high = client.post("/v1/analyze", json={"text": EXAMPLE, "threshold": 0.95}).json()
    assert low["threshold"] == 0.05 and high["threshold"] == 0.95
    assert len(low["spans"]) >= len(high["spans"])
    keep = ["Loaded_Language", "Doubt"]
    only = client.post("/v1/analyze", json={"text": EXAMPLE, "techniques": keep}).json()
    assert_analysis(only, EXAMPLE)
    assert {s["technique"] for s in only["spans"]} <= set(keep)
    assert set(only["counts"]) <= set(keep)
    assert sum(only["counts"].values()) == len(only["spans"])
    # per-technique overrides: the calibrated scale, names checked
    base = client.post("/v1/analyze", json={"text": EXAMPLE}).json()
    off = client.post("/v1/analyze", json={"text": EXAMPLE, "threshold_for": {"Loaded_Language": 1.0}}).json()
    assert off["threshold_for"] == {"Loaded_Language": 1.0}
    assert any(s["technique"] == "Loaded_Language" for s in base["spans"])
    assert [s for s in base["spans"] if s["technique"] != "Loaded_Language"] == off["spans"]
    assert_problem(client.post("/v1/analyze", json={"text": EXAMPLE, "threshold_for": {"Slogan": 0.2}}), 422, "threshold_for")
    assert_problem(client.post("/v1/analyze", json={"text": EXAMPLE, "threshold_for": {"Slogans": 1.5}}), 422, "threshold_for")
    r = client.post("/v1/analyze/upload", files={"file": ("a.txt", EXAMPLE.encode())}, data={"threshold_for": "Loaded language=1"})
    assert r.status_code == 200 and r.json()["threshold_for"] == {"Loaded_Language": 1.0}
    r = client.post("/v1/analyze/upload", files={"file": ("a.txt", EXAMPLE.encode())}, data={"threshold_for": "Nope=0.1"})
    assert_problem(r, 422, "unknown technique")
    messy = EXAMPLE + "\n\nShare this article\nFacebook | Twitter | Email\n"
    raw = client.post("/v1/analyze", json={"text": messy, "clean": False}).json()
    assert_analysis(raw, messy)


def test_analyze_html_uses_ingest_extraction(client):
    r = client.post("/v1/analyze", json={"html": HTML_PAGE})
    assert r.status_code == 200, r.text
    a = r.json()
    text = a["document"]["text"]
    assert_analysis(a, text)
    assert text.startswith("Council vote sparks outrage\n\n")
    assert "Home" not in text and "<p>" not in text and "café" in text
    meta = a["document"]["metadata"]
    assert meta["format"] == "html" and meta["title"] == "Council vote sparks outrage"
    assert "path" not in meta  # no server path leaks into the result


def test_analyze_html_without_article_is_422(client):
    assert_problem(client.post("/v1/analyze", json={"html": "<html><body><p>Hi</p></body></html>"}), 422, "no article text")


def test_batch(client):
    docs = [{"text": PROPAGANDA, "id": "a"}, {"html": HTML_PAGE, "id": "b"}, {"text": EXAMPLE}]
    r = client.post("/v1/analyze/batch", json={"documents": docs, "threshold": 0.3})
    assert r.status_code == 200, r.text
    out = r.json()["analyses"]
    assert [a["document"]["id"] for a in out] == ["a", "b", "document-3"]
    for a in out:
        assert_analysis(a, a["document"]["text"])
        assert a["threshold"] == 0.3
    assert out[0]["document"]["text"] == PROPAGANDA


def test_batch_with_a_bad_document_names_it(client):
    r = client.post("/v1/analyze/batch", json={"documents": [{"text": "Fine."}, {"html": "<p>x</p>", "id": "bad"}]})
    assert_problem(r, 422, "documents[1]", "bad")


def test_upload_text_and_html_files(client):
    legacy = "Caf\u00e9 owners say the reckless council will gut our schools. " * 3
    r = client.post(
        "/v1/analyze/upload",
        files={"file": ("article123.txt", legacy.encode("cp1252"), "text/plain")},
        data={"threshold": "0.5", "clean": "false"},
    )
    assert r.status_code == 200, r.text
    a = r.json()
    assert_analysis(a, legacy)  # decoded from cp1252 by ingest, like the CLI does
    assert a["document"]["id"] == "123" and a["threshold"] == 0.5
    assert a["document"]["metadata"]["filename"] == "article123.txt"
    r = client.post("/v1/analyze/upload", files={"file": ("../../etc/page.html", HTML_PAGE.encode(), "text/html")})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["document"]["text"].startswith("Council vote sparks outrage")
    assert a["document"]["metadata"]["filename"] == "page.html"  # a bare name, never a path


def test_upload_problems(client):
    assert_problem(client.post("/v1/analyze/upload", json={"text": "x"}), 415, "multipart")
    assert_problem(client.post("/v1/analyze/upload", files={"other": ("a.txt", b"text")}), 422, "file")
    assert_problem(client.post("/v1/analyze/upload", files={"file": ("a.bin", b"\x00\x01\x02" * 50)}), 422, "binary")
    assert_problem(client.post("/v1/analyze/upload", files={"file": ("c.csv", b"id,text\n1,x\n")}), 415, "batch")
    r = client.post("/v1/analyze/upload", files={"file": ("a.txt", b"Some text here.")}, data={"threshold": "2"})
    assert_problem(r, 422, "threshold")
    r = client.post("/v1/analyze/upload", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json")


def test_techniques_model_healthz(client):
    t = client.get("/v1/techniques").json()
    assert [x["id"] for x in t] == list(TECHNIQUE_IDS)
    assert all(x["name"] and x["definition"] and x["example"] for x in t)
    m = client.get("/v1/model").json()
    assert m["name"] == "propscan-minilm" and m["version"]
    assert 0 <= m["dev"]["flc"]["f1"] <= 1 and set(m["by_technique"]) == set(TECHNIQUE_IDS)
    # every technique says, in words and figures, how often this model's highlights of it are right
    for x in t:
        r = x["reliability"]
        assert r["words"].endswith(f"precision {r['precision']:.2f})") and 0 <= r["recall"] <= 1
        assert r["words"].startswith("too few to judge") == (r["highlights"] < 20)
        assert 0 <= r["default_min_confidence"] <= 1  # never switched off
    assert client.get("/healthz").json() == {"status": "ok"}


def test_report_rendering_escapes_user_text(client, model):
    xss = f"{PROPAGANDA} <script>alert(1)</script> <img src=x onerror=alert(1)>"
    a = client.post("/v1/analyze", json={"text": xss, "id": "<b>id</b>"}).json()
    r = client.post("/v1/report?format=html", json=a)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page and "<b>id</b>" not in page
    body = re.search(r'<div class="ps-article"[^>]*>(.*?)</div>', page, re.S).group(1)
    assert html.unescape(re.sub(r"<[^>]*>", "", body)) == xss  # the markup is shown as text, all of it
    assert "script-src 'sha256-" in r.headers["content-security-policy"]
    csv_text = client.post("/v1/report?format=csv", json=a).text
    assert csv_text == to_csv([analyze(Document("<b>id</b>", xss, {"format": "text"}), model=model)])
    bad = dict(a, spans=[{"start": 5, "end": 10**6, "technique": "Doubt", "score": 0.5, "text": "", "alternatives": {}}])
    assert_problem(client.post("/v1/report", json=bad), 422, "outside the text")


# --------------------------------------------------------------------------------------------------
# errors: problem+json everywhere


def test_oversized_body_is_413_by_content_length_and_while_reading(client):
    big = b"x" * 3_000_000
    assert_problem(client.post("/v1/analyze", content=big, headers={"content-type": "application/json"}), 413, "2,000,000")

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(30):
            yield b" " * 100_000

    assert_problem(client.post("/v1/analyze", content=chunks(), headers={"content-type": "application/json"}), 413, "limit")


def test_body_limit_does_not_trust_content_length(model):
    """A Content-Length that understates the body: the count while reading still stops it."""
    app = create_app(model=model)
    sent: list[dict] = []
    chunks = [b'{"text": "' + b"a" * 1_000_000] * 3 + [b'"}']

    async def receive():
        body = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/analyze", "raw_path": b"/v1/analyze", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"content-length", b"20")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert b"body-too-large" in b"".join(m.get("body", b"") for m in sent[1:])


def test_wrong_content_type_invalid_json_and_validation(client):
    assert_problem(client.post("/v1/analyze", content=b"hello", headers={"content-type": "text/plain"}), 415, "application/json")
    assert_problem(client.post("/v1/analyze", content=b'{"text": "x"'), 415)  # no Content-Type at all
    assert_problem(client.post("/v1/analyze", content=b'{"text": ', headers={"content-type": "application/json"}), 400, "not valid JSON")
    body = assert_problem(client.post("/v1/analyze", json={"txt": "typo"}), 422)
    assert body["errors"] and all({"loc", "msg", "type"} <= set(e) for e in body["errors"])
    assert_problem(client.post("/v1/analyze", json={"text": "a", "html": "<p>b</p>"}), 422, "exactly one")
    assert_problem(client.post("/v1/analyze", json={"text": "   "}), 422, "empty")
    assert_problem(client.post("/v1/analyze", json={"text": "x", "threshold": 1.5}), 422, "threshold")
    assert_problem(client.post("/v1/analyze", json={"text": "x", "techniques": ["Propaganda"]}), 422, "techniques")
    lone = b'{"text": "before \\ud800 after"}'  # valid JSON, not valid Unicode: never a 500
    assert_problem(client.post("/v1/analyze", content=lone, headers={"content-type": "application/json"}), 422, "surrogate")


def test_ten_thousand_document_batch_is_rejected_fast(client):
    docs = [{"text": "Short text number %d." % i} for i in range(10_000)]
    t0 = time.perf_counter()
    r = client.post("/v1/analyze/batch", json={"documents": docs})
    elapsed = time.perf_counter() - t0
    body = assert_problem(r, 413, "10000 documents", "32")
    assert body["type"].endswith("too-many-documents")
    assert elapsed < 2.0, f"took {elapsed:.2f} s: the batch must be rejected before any analysis"
    assert client.post("/v1/analyze/batch", json={"documents": []}).status_code == 422


def test_unknown_path_method_and_no_docs_ui(client):
    assert_problem(client.get("/v1/nothing-here"), 404, "no such endpoint")
    body = assert_problem(client.delete("/v1/analyze"), 405, "DELETE")
    assert body["type"] == "about:blank"
    for ui in ("/docs", "/redoc"):
        assert_problem(client.get(ui), 404)
    spec = client.get("/openapi.json").json()
    assert spec["components"]["schemas"]["Analysis"]["required"] == SCHEMA["required"]
    text = json.dumps(spec)
    assert "cdn" not in text.lower() and "HTTPValidationError" not in text


def test_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    page = r.text
    assert "http://" not in page and "https://" not in page  # nothing loaded from elsewhere
    assert 'sandbox="allow-scripts"' in page  # the report frame cannot reach the page or its storage


# --------------------------------------------------------------------------------------------------
# API key


def test_api_key_required_when_set(model, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((type(a), type(b)))
        return real(a, b)

    monkeypatch.setattr(serve.hmac, "compare_digest", spy)
    with TestClient(create_app(model=model, settings=Settings(api_key="s3cret-key-\u00e9")), base_url="http://127.0.0.1") as c:
        assert c.get("/healthz").status_code == 200  # stays open
        assert 'id="ps-key"' in c.get("/").text  # the page holds no data; it asks for the key
        body = assert_problem(c.get("/v1/techniques"), 401, "API key")
        r = c.post("/v1/analyze", json={"text": "Fine."})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert_problem(c.post("/v1/analyze", json={"text": "Fine."}, headers={"X-API-Key": "wrong"}), 401)
        assert_problem(c.get("/v1/model", headers={"Authorization": "Basic czNjcmV0"}), 401)
        key = "s3cret-key-\u00e9".encode("utf-8")  # a non-ASCII key travels as its UTF-8 bytes
        assert c.get("/v1/techniques", headers={"X-API-Key": key}).status_code == 200
        assert c.post("/v1/analyze", json={"text": "Fine."}, headers={"Authorization": b"Bearer " + key}).status_code == 200
        assert "securitySchemes" in c.get("/openapi.json").json()["components"]
    assert body["title"] == "API key required"
    assert calls and all(t == (bytes, bytes) for t in calls), "keys must be compared with hmac.compare_digest"


# --------------------------------------------------------------------------------------------------
# binding


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_hosts_need_no_key(host):
    assert is_loopback(host)
    assert check_settings(Settings(host=host)) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org", "10.0.0.1"])
def test_public_bind_refused_without_key(host):
    assert not is_loopback(host)
    with pytest.raises(SettingsError, match="refusing to listen"):
        check_settings(Settings(host=host))
    with pytest.raises(SettingsError):
        create_app(settings=Settings(host=host))
    assert check_settings(Settings(host=host, api_key="k" * 32))  # a warning about plain HTTP, no error
    assert any("without an API key" in w for w in check_settings(Settings(host=host, insecure_public=True)))


def test_worker_processes_find_the_app_factory():
    from uvicorn.importer import import_from_string

    from propscan.serve import server

    assert import_from_string(server.APP_FACTORY) is server._app_from_env


def test_cli_serve_on_a_port_in_use_is_one_line_before_the_model_loads():
    """A real socket holds a loopback port; `propscan serve` on it says so in one line, exit 2, before
    loading the model (uvicorn alone would load it, log an error and exit with code 3)."""
    import socket
    import subprocess
    import sys

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "propscan", "serve", "--port", str(port)], capture_output=True,
                             text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert "loaded" not in res.stderr  # refused before the model was loaded


def test_cli_serve_refuses_public_bind(monkeypatch):
    from propscan.cli import app
    from propscan.serve import server

    started = []
    monkeypatch.setattr(server, "run", lambda settings: started.append(settings))
    monkeypatch.delenv("PROPSCAN_API_KEY", raising=False)
    r = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert r.exit_code == 2 and not started
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing to listen on 0.0.0.0" in lines[0], r.output
    r = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--max-body", "1MB", "--workers", "2"],
                           env={"PROPSCAN_API_KEY": "from-the-environment"})
    assert r.exit_code == 0, r.output
    s = started[-1]
    assert s.api_key == "from-the-environment" and s.max_body == 1_000_000 and s.workers == 2
    assert "from-the-environment" not in repr(s)
    r = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--insecure-public", "--queue", "3"])
    assert r.exit_code == 0 and started[-1].api_key is None and started[-1].queue == 3
    assert CliRunner().invoke(app, ["serve", "--max-body", "lots"]).exit_code == 2


def test_parse_size():
    assert parse_size("2MB") == 2_000_000 and parse_size("512kB") == 512_000
    assert parse_size("1MiB") == 1_048_576 and parse_size("1234") == 1234
    with pytest.raises(ValueError):
        parse_size("-1")


# --------------------------------------------------------------------------------------------------
# concurrency: a slow model (the real one behind a gate) to fill the queue


class SlowModel:
    """The real model, except that token_outputs waits until the test releases it."""

    def __init__(self, real):
        self._real = real
        self.entered = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name):
        return getattr(self._real, name)

    def token_outputs(self, text):
        self.entered.set()
        self.release.wait(30)
        return self._real.token_outputs(text)


async def _until(pred, timeout: float = 10.0) -> None:
    t0 = time.perf_counter()
    while not pred():
        assert time.perf_counter() - t0 < timeout, "timed out waiting"
        await asyncio.sleep(0.01)


def test_queue_full_is_503_with_retry_after(model):
    slow = SlowModel(model)
    app = create_app(model=slow, settings=Settings(queue=1, timeout=30))
    gate = app.state.propscan.gate

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=30) as c:
            first = asyncio.create_task(c.post("/v1/analyze", json={"text": "First text, now running."}))
            await _until(slow.entered.is_set)
            second = asyncio.create_task(c.post("/v1/analyze", json={"text": "Second text, waiting."}))
            await _until(lambda: gate.admitted == 2)
            t0 = time.perf_counter()
            third = await c.post("/v1/analyze", json={"text": "Third text: no room."})
            health = await c.get("/healthz")  # the event loop is free while the model works
            elapsed = time.perf_counter() - t0
            slow.release.set()
            done = await asyncio.gather(first, second)
            await _until(lambda: gate.admitted == 0)
            after = await c.post("/v1/analyze", json={"text": "Room again."})
            return third, health, elapsed, done, after

    third, health, elapsed, done, after = asyncio.run(main())
    body = assert_problem(third, 503, "busy")
    assert body["type"].endswith("/busy")
    assert int(third.headers["retry-after"]) >= 1
    assert health.status_code == 200 and elapsed < 1.0
    assert [r.status_code for r in done] == [200, 200]
    assert after.status_code == 200


def test_timeout_is_504_and_the_slot_comes_back(model):
    slow = SlowModel(model)
    app = create_app(model=slow, settings=Settings(queue=0, timeout=0.5))
    gate = app.state.propscan.gate

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            t0 = time.perf_counter()
            r = await c.post("/v1/analyze", json={"text": "This one takes too long."})
            elapsed = time.perf_counter() - t0
            busy = gate.admitted  # the abandoned job still holds its slot until its thread stops
            slow.release.set()
            await _until(lambda: gate.admitted == 0)
            return r, elapsed, busy, await c.post("/v1/analyze", json={"text": "Quick now."})

    r, elapsed, busy, after = asyncio.run(main())
    assert_problem(r, 504, "0.5 s")
    assert elapsed < 5 and busy == 1
    assert after.status_code == 200


# --------------------------------------------------------------------------------------------------
# schemathesis: the OpenAPI document against the running app


@pytest.fixture(autouse=True)
def _no_accurate_build(monkeypatch, tmp_path_factory):
    """These tests are about the API, not the accurate model (tests/pipeline/test_assemble.py is): where its
    base wheels are installed, a request naming it would build it first (a minute), so here it is absent
    and such a request gets the one-line error every install without it gives."""
    from propscan.pipeline import model as model_mod

    monkeypatch.setitem(model_mod.NAMES, "accurate", tmp_path_factory.mktemp("no-accurate") / "none")


def _fuzz_app():
    from propscan.pipeline.model import load

    return create_app(model=load(), settings=Settings(max_docs=4))


try:
    import schemathesis
    from hypothesis import HealthCheck, settings as hsettings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )
except ImportError:  # a test dependency (pip install -e '.[test]')
    schemathesis = None

if schemathesis is not None:
    fuzz_schema = schemathesis.openapi.from_asgi("/openapi.json", _fuzz_app())

    @fuzz_schema.parametrize()
    @hsettings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
    def test_openapi_fuzz(case):
        """Every operation: examples, coverage (incl. invalid data, wrong methods) and 20 fuzzed cases."""
        case.call_and_validate(
            checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
        )

else:

    def test_openapi_fuzz():
        msg = "schemathesis is not installed (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(msg + " -- failing because CI is set", pytrace=False)
        pytest.skip(msg)


def test_report_request_models_follow_the_schema():
    """POST /v1/report reads an analysis with pydantic models; they must name exactly the fields the
    JSON Schema (the one definition of the format) names, so a field added to one is added to both."""
    from propscan.serve.schemas import (
        AnalysisIn,
        DocumentOut,
        EvidenceIn,
        ModelIn,
        RemovedIn,
        SentenceIn,
        SpanIn,
    )

    def names(model) -> set[str]:
        return {f.alias or n for n, f in model.model_fields.items()}

    props = SCHEMA["properties"]
    assert names(AnalysisIn) == set(props)
    assert names(SpanIn) == set(SCHEMA["$defs"]["span"]["properties"])
    assert names(EvidenceIn) == set(SCHEMA["$defs"]["span"]["properties"]["evidence"]["items"]["properties"])
    assert names(SentenceIn) == set(SCHEMA["$defs"]["sentence"]["properties"])
    assert names(RemovedIn) == set(props["removed"]["items"]["properties"])
    assert names(ModelIn) == set(props["model"]["properties"])
    assert names(DocumentOut) == set(props["document"]["properties"])
    assert AnalysisIn.model_fields["schema_version"].annotation.__args__[-1] == SCHEMA["properties"]["schema_version"]["const"]


def test_report_endpoint_serves_every_format_the_cli_writes(client):
    """One registry of writers (formats.WRITERS): /v1/report?format= gives byte for byte what the
    command line writes for the same analysis."""
    from propscan.document import Analysis
    from propscan.outputs.formats import WRITERS

    a = client.post("/v1/analyze", json={"text": "The reckless, shameful council will gut our schools. Wake up!"}).json()
    for name, writer in WRITERS.items():
        r = client.post(f"/v1/report?format={name}", json=a)
        assert r.status_code == 200 and r.headers["content-type"].startswith(writer.media_type), (name, r.text[:200])
        if name != "html":  # the HTML report carries a fresh id per render
            assert r.text == writer.write([Analysis.from_dict(a)]), name
    assert client.post("/v1/report?format=pdf", json=a).status_code == 422
