"""Limits: the body limit (counted while read), the request timeout, security headers (middleware);
resource errors logged once."""

from __future__ import annotations

import asyncio
import errno
import math
import time
from typing import Any, Callable

import anyio
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers, MutableHeaders

from propscan.serve.problems import Problem, problem_response, shorten
from propscan.serve.settings import Settings, human_size, log

# Spans one /v1/report request may carry (413 beyond): far above any article's (the seed opinion piece
# has 32), low enough that rendering stays well under a second.
MAX_REPORT_SPANS = 20_000


_API_CSP = "default-src 'none'; frame-ancestors 'none'"


class Guard:
    """Pure ASGI middleware (no BaseHTTPMiddleware): counts the body while it is read, bounds the request
    time and adds security headers to every response."""

    def __init__(self, app: Any, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.settings.max_body
        started = False
        too_large = False  # the body was cut off unread: close the connection after the answer
        cs = anyio.CancelScope(deadline=anyio.current_time() + self.settings.timeout)

        async def send_guarded(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                cs.deadline = math.inf  # the answer is on its way: let it finish
                headers = MutableHeaders(scope=message)
                if too_large:  # the body was not read to its end: this connection cannot carry another request
                    headers["Connection"] = "close"
                for k, v in (
                    ("X-Content-Type-Options", "nosniff"),
                    ("Referrer-Policy", "no-referrer"),
                    ("X-Frame-Options", "DENY"),
                    ("Cache-Control", "no-store"),
                    ("Content-Security-Policy", _API_CSP),
                ):
                    if k not in headers:
                        headers[k] = v
            await send(message)

        async def reply(resp: Response) -> None:
            await resp(scope, receive, send_guarded)

        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and "transfer-encoding" in headers:
            # RFC 9112 6.1: a request with both may be smuggling a second one in its body; reject and close
            await reply(_closing(problem_response(
                400, "the request has both Content-Length and Transfer-Encoding; send one", kind="bad-request")))
            return
        if declared is not None:
            if not declared.strip().isdigit():
                await reply(problem_response(400, f"Content-Length {shorten(declared, 40)!r} is not a number of bytes", kind="bad-request"))
                return
            if int(declared) > limit:
                await _drain(receive, int(declared))
                await reply(_closing(_too_large(int(declared), limit)))
                return

        received = 0

        async def receive_counted() -> dict:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body", False):
                        await _drain(receive, DRAIN_MAX)  # so that the client reads the 413, see DRAIN_MAX
                    too_large = True
                    raise _too_large_problem(received, limit, more=True)
            return message

        most = _max_keys(scope, self.settings)
        try:
            with cs:
                if most is None:
                    await self.app(scope, receive_counted, send_guarded)
                else:
                    body = await _read_body(receive_counted)
                    keys = _count_keys(body)
                    docs = _count_documents(body) if scope["path"] == "/v1/analyze/batch" else 0
                    if keys > most and docs > self.settings.max_docs:
                        await reply(too_many_documents(docs, self.settings.max_docs))
                        return
                    if keys > most:
                        await reply(problem_response(
                            422, f"the body has {keys:,} object keys; {scope['path']} takes at most {most:,} "
                            "(unknown fields are refused)", kind="invalid-request"))
                        return
                    await self.app(scope, _replay(body, receive), send_guarded)
        except Problem as e:  # raised while reading the body somewhere without a handler in between
            if started:
                raise
            await reply(e.response())
            return
        if cs.cancelled_caught and not started:
            await reply(problem_response(
                504,
                f"the request took longer than {self.settings.timeout:g} s (--timeout), reading, waiting and analysing together",
                title="Request timed out",
                kind="timeout",
            ))


def _count_keys(body: bytes) -> int:
    """Object keys in a JSON body (a closing quote then a colon, less the escaped quotes inside strings
    such a count would take for one), counted by bytes.count before anything parses the body: a body
    stuffed with unknown keys is refused without parsing and validating each. 150,000 keys cost 120 ms
    of json.loads and 575 ms of validation errors, all on the event loop, stalling /healthz for every
    client; counting them costs about a millisecond. A key written with a space before its colon is
    not counted, and then meets the usual validation."""
    return body.count(b'":') - body.count(b'\\":')


def _count_documents(body: bytes) -> int:
    return body.count(b'"text":') + body.count(b'"html":')


def too_many_documents(n: int | str, limit: int) -> JSONResponse:
    return problem_response(
        413, f"the batch holds {n} documents; the limit is {limit} per request (--max-docs): split it into several requests",
        title="Too many documents", kind="too-many-documents")


def _max_keys(scope: dict, settings: Settings) -> int | None:
    """The most object keys a JSON request to this endpoint can legitimately hold; None: not counted."""
    if scope.get("method") != "POST":
        return None
    path = scope.get("path", "")
    if path == "/v1/analyze":
        return 64
    if path == "/v1/analyze/batch":
        return 64 + 8 * settings.max_docs
    if path == "/v1/report":  # spans and sentences of 6 and 3 keys, metadata free-form
        return 10_000 + 10 * MAX_REPORT_SPANS
    return None


async def _read_body(receive: Callable) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Callable) -> Callable:
    """A receive() that hands the app the body already read, then waits on the real one (disconnects)."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# An oversized body is read and thrown away, up to this many bytes, before the 413 is sent: a client
# that sends the whole body before reading (Python's urllib, curl without Expect) would otherwise see
# its connection reset instead of the answer. Beyond it the connection is closed unread.
DRAIN_MAX = 16 * 1024 * 1024


async def _drain(receive: Callable, most: int) -> None:
    """Read and discard the rest of a request body, at most ``most`` bytes (bounded in time by the
    request timeout around it, and in memory by one chunk at a time)."""
    seen = 0
    while seen < min(most, DRAIN_MAX):
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _closing(resp: Response) -> Response:
    """The response, with the connection closed after it (uvicorn honours Connection: close)."""
    resp.headers["Connection"] = "close"
    return resp


def _too_large_problem(size: int, limit: int, more: bool = False) -> Problem:
    return Problem(
        413,
        f"the request body is {'more than ' if more else ''}{size:,} bytes; the limit is {limit:,} bytes ({human_size(limit)}, --max-body)",
        title="Request body too large",
        kind="body-too-large",
    )


def _too_large(size: int, limit: int) -> JSONResponse:
    return _too_large_problem(size, limit).response()


def log_resource_errors_once(loop: asyncio.AbstractEventLoop, every: float = 60.0) -> None:
    """Out of file descriptors, asyncio logs a traceback at every failed accept; log it once a minute."""
    default = loop.get_exception_handler()
    last = [-math.inf]

    def handler(lp: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            now = time.monotonic()
            if now - last[0] >= every:
                last[0] = now
                log.error("propscan: out of resources accepting connections (%s); new connections wait "
                          "(logged at most once a minute)", exc.strerror)
            return
        if default is not None:
            default(lp, context)
        else:
            lp.default_exception_handler(context)

    loop.set_exception_handler(handler)
