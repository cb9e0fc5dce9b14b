"""Connection-level limits of a real ``propscan serve`` (a subprocess on a loopback port): request
headers that never finish, Content-Length with Transfer-Encoding, a 413 that ordinary clients read,
bodies stuffed with keys, nested spans in /v1/report."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    port = _free_port()
    log = open(tmp_path_factory.mktemp("serve") / "log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "propscan", "serve", "--port", str(port), "--max-body", "2MB",
                             "--header-timeout", "2"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            break
        except OSError:
            assert proc.poll() is None, "the server exited"
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(30)
    log.close()


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _raw(base: str, data: bytes, wait: float = 5.0) -> bytes:
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except socket.timeout:
            out += b"<still open>"
    return out


def test_urllib_reads_the_413_of_a_body_sent_whole(base):
    status, body = _post(base + "/v1/analyze", json.dumps({"text": "x" * 3_000_000}).encode())
    assert status == 413 and body["type"].endswith("body-too-large") and "2,000,000 bytes" in body["detail"]


def test_a_chunked_body_too_large_gets_413(base):
    def chunks():
        for _ in range(300):  # 3 MB
            yield b"a" * 10_000

    req = urllib.request.Request(base + "/v1/analyze", data=chunks(),
                                 headers={"content-type": "application/json", "Transfer-Encoding": "chunked"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=60)
    assert e.value.code == 413


def test_content_length_with_transfer_encoding_is_refused_and_closed(base):
    smuggled = (b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    out = _raw(base, smuggled)
    assert out.startswith(b"HTTP/1.1 400") and b"both Content-Length and Transfer-Encoding" in out
    assert out.count(b"HTTP/1.1 ") == 1 and b"<still open>" not in out  # the second request is never answered


def test_headers_that_never_finish_are_closed(base):
    t0 = time.monotonic()
    out = _raw(base, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", wait=15)
    assert out == b"" and 1.5 <= time.monotonic() - t0 < 10  # --header-timeout 2


def test_a_keep_alive_connection_gets_the_same_deadline(base):
    out = _raw(base, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", wait=15)
    assert out.count(b"HTTP/1.1 200") == 1 and out.endswith(b'{"status":"ok"}')


def test_a_body_stuffed_with_keys_is_refused_before_parsing(base):
    body = {"text": "A short text."} | {f"{i:x}": 0 for i in range(150_000)}
    t0 = time.monotonic()
    status, problem = _post(base + "/v1/analyze", json.dumps(body).encode())
    assert status == 422 and "150,001 object keys" in problem["detail"] and "at most 64" in problem["detail"]
    assert time.monotonic() - t0 < 2


def test_report_spans_are_capped_and_nesting_renders_linearly(base):
    text = ("word " * 8000)[:40000]
    analysis = json.loads(urllib.request.urlopen(urllib.request.Request(
        base + "/v1/analyze", data=json.dumps({"text": "They are shameful traitors."}).encode(),
        headers={"content-type": "application/json"}), timeout=60).read())
    analysis["document"]["text"] = text
    analysis["spans"] = [{"start": 0, "end": 40000 - i, "technique": "Loaded_Language", "score": 0.5,
                          "text": "", "alternatives": {}} for i in range(3000)]
    analysis["sentences"] = []
    analysis["counts"] = {"Loaded_Language": 3000}
    analysis["passages"] = 3000
    req = urllib.request.Request(base + "/v1/report?format=html", data=json.dumps(analysis).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            size = len(r.read())
    except urllib.error.HTTPError as e:
        pytest.fail(f"{e.code}: {e.read()[:300]!r}")
    assert size < 5_000_000  # 3,000 nested spans over 40 kB: n x text would be 60 MB
