"""Links as input: pages served by a local HTTP server on loopback, and every refusal a one-line error
naming the URL while the other inputs are still analysed."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from conftest import run_cli
from propscan.pipeline import fetch
from propscan.errors import InputError

ARTICLE = ("<html><head><title>Council vote</title></head><body><article><h1>Council vote</h1>"
           + "".join(f"<p>The shameful traitors on the council voted again, paragraph {i}, and the so-called "
                     "experts cheered them on.</p>" for i in range(8)) + "</article></body></html>")


class _Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        routes = {
            "/a": (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.encode()),
            "/r": (301, {"Location": "/a"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/pdf": (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4"),
            "/txt": (200, {"Content-Type": "text/plain"}, b"The shameful traitors lied again to everyone."),
        }
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            try:
                for _ in range(400):
                    self.wfile.write(b"<p>" + b"x" * 60000 + b"</p>")
            except OSError:
                pass
            return
        status, headers, body = routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_a_page_is_fetched_extracted_and_analysed(site):
    res = run_cli("analyze", f"{site}/r", "-f", "json")
    assert res.rc == 0, res.stderr
    a = json.loads(res.stdout)
    meta = a["document"]["metadata"]
    assert meta["url"] == f"{site}/r" and meta["final_url"] == f"{site}/a" and meta["fetched"].endswith("Z")
    assert meta["format"] == "html" and a["document"]["text"].startswith("Council vote\n\n")
    for s in a["spans"]:  # offsets point into the extracted text, as for HTML files
        assert a["document"]["text"][s["start"]:s["end"]] == s["text"]
    assert a["spans"]


@pytest.mark.parametrize("path, words", [
    ("/loop", "more than 5 redirects"),
    ("/pdf", "not a web page (content type application/pdf)"),
    ("/big", "the page is larger than 10,000,000 bytes"),
    ("/missing", "the server answered HTTP 404"),
])
def test_refused_pages_are_one_line_errors_and_the_rest_is_analysed(site, tmp_path, path, words):
    (tmp_path / "urls.txt").write_text(f"# pages\n{site}{path}\n\n{site}/txt\n", encoding="utf-8")
    res = run_cli("analyze", "--urls", tmp_path / "urls.txt", "-f", "jsonl")
    assert res.rc == 1 and f"skipped {site}{path}: {words}" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert [json.loads(line)["document"]["metadata"]["url"] for line in res.stdout.splitlines()] == [f"{site}/txt"]


@pytest.mark.parametrize("url, words", [
    ("file:///etc/passwd", "only http and https URLs are fetched, not file://"),
    ("ftp://example.org/a.html", "only http and https URLs are fetched, not ftp://"),
    ("http://user:secret@example.org/a", "a URL with a user name or password is not fetched"),
    ("http://nothing.invalid/a", "cannot resolve the host name (DNS)"),
    ("http://bücher.invalid/a", "cannot resolve the host name (DNS)"),
])
def test_urls_that_are_not_fetched(url, words):
    with pytest.raises(InputError) as e:
        fetch.fetch(url)
    assert words in str(e.value) and str(e.value).startswith(url)


def test_idn_hosts_become_punycode():
    assert fetch.check_url("https://bücher.example/x?y=1") == "https://xn--bcher-kva.example/x?y=1"


def test_private_addresses_are_refused_when_asked(site):
    with pytest.raises(InputError, match="not a public address"):
        fetch.fetch(f"{site}/a", allow_private=False)
    assert fetch.fetch(f"{site}/a").data.startswith(b"<html>")


# -------------------------------------------------------------------------------------------- the server


def _client(model, **settings):
    from fastapi.testclient import TestClient

    from propscan.serve.app import create_app
    from propscan.serve.settings import Settings

    return TestClient(create_app(model=model, settings=Settings(**settings)))


def test_the_server_fetches_only_with_allow_fetch(model, site):
    with _client(model) as c:
        r = c.post("/v1/analyze", json={"url": f"{site}/a"})
        assert r.status_code == 403 and "--allow-fetch" in r.json()["detail"]
        assert r.headers["content-type"].startswith("application/problem+json")
        assert 'id="ps-url"' not in c.get("/").text  # no link field on the page either


def test_the_server_refuses_loopback_and_private_addresses(model, site):
    with _client(model, allow_fetch=True) as c:
        r = c.post("/v1/analyze", json={"url": f"{site}/a"})
        assert r.status_code == 403 and "not a public address" in r.json()["detail"]
        for url in ("http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data", "http://[::1]/x"):
            r = c.post("/v1/analyze", json={"url": url})
            assert r.status_code == 403 and r.json()["type"].endswith("fetch-refused"), (url, r.text)
        r = c.post("/v1/analyze", json={"url": "file:///etc/passwd"})
        assert r.status_code == 422 and "only http and https" in r.json()["detail"]
        assert 'id="ps-url"' in c.get("/").text


def test_the_server_fetches_a_page_when_allowed(model, site, monkeypatch):
    from propscan.serve.work import FETCH_PRIVATE_ENV

    monkeypatch.setenv(FETCH_PRIVATE_ENV, "1")  # the test's pages are on loopback
    with _client(model, allow_fetch=True) as c:
        r = c.post("/v1/analyze", json={"url": f"{site}/r"})
        assert r.status_code == 200, r.text
        a = r.json()
        assert a["document"]["metadata"]["url"] == f"{site}/r" and a["document"]["metadata"]["final_url"] == f"{site}/a"
        assert a["spans"]
        r = c.post("/v1/analyze", json={"url": f"{site}/pdf"})
        assert r.status_code == 422 and "content type application/pdf" in r.json()["detail"]
