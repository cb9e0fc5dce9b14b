"""The web server: ``propscan serve`` -- a FastAPI app on uvicorn with a web page and a REST API.

``create_app(model=None, settings=Settings())`` builds the app; ``run(settings)`` serves it with uvicorn.

How a request is handled:

- **One model per process.** Each uvicorn worker process loads the model once, at start-up (the
  lifespan), and every request in that process shares it. ``--workers N`` runs N processes; each gets
  ``cores // N`` onnxruntime threads unless ``PROPSCAN_THREADS`` says otherwise.
- **The work runs in a thread pool, not on the event loop.** All CPU work of a request (HTML extraction,
  the model, rendering, JSON encoding) is one *job* in a per-process pool of ``slots`` threads (1: the
  ONNX session already uses the cores it is given). The event loop only reads, validates and waits, so
  ``/healthz`` and the "busy" answers stay instant while the model works.
- **Bounded concurrency.** At most ``slots + queue`` jobs per process are admitted (running or
  waiting); the next request gets ``503`` with ``Retry-After`` at once. A job whose request has gone
  (timeout, client closed) keeps its place until its thread really stops, so the bound is on real work.
- **Limits.** The body is counted while it is read (``413``; Content-Length is checked first but not
  trusted); a batch holds at most ``max_docs`` documents (``413``, rejected before any analysis); the
  whole request (reading, queueing, work) must finish within ``timeout`` seconds (``504``).
- **Errors** are RFC 9457 ``application/problem+json`` objects ``{type, title, status, detail}``, FastAPI's
  own validation errors and 404/405 included.
- **Nothing is stored, and nothing is fetched unless asked.** Requests are analysed in memory and
  forgotten (uploads are parsed in memory: no temporary files); the page keeps its history in the
  browser's localStorage. HTML arrives in the request and goes through ingest's trafilatura code path;
  no endpoint takes a server path. A ``url`` document is fetched only with ``--allow-fetch``, and never
  from a non-public address (fetch.py, checked after DNS and at every redirect).
- **API key** (``--api-key`` / ``PROPSCAN_API_KEY``): ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``
  on every ``/v1`` endpoint, compared with ``hmac.compare_digest``. ``/``, ``/healthz`` and
  ``/openapi.json`` stay open (they hold no user data). Without a key the server binds loopback only,
  unless ``--insecure-public``.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import inspect
import io
import ipaddress
import json
import logging
import math
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from importlib import resources
from typing import Annotated, Any, Callable, Literal

import anyio
import h11
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from propscan.document import SCHEMA_VERSION, Analysis, Document
from propscan.errors import InputError, PropscanError
from propscan.outputs.formats import WRITERS
from propscan.pipeline.ingest import EXTENSIONS
from propscan.pipeline.model import NAMES, reliability
from propscan.techniques import TECHNIQUE_IDS, TECHNIQUES, parse_cutoffs, resolve

log = logging.getLogger("uvicorn.error.propscan")  # printed by uvicorn's own log handlers

SETTINGS_ENV = "PROPSCAN_SERVE_SETTINGS"  # how `run` hands the settings to uvicorn's worker processes
PROBLEM_BASE = "https://propscan.invalid/problems/"
PROBLEM_JSON = "application/problem+json"
DEFAULT_MAX_BODY = 2_000_000
MAX_ID = 256
# an uploaded file is one document: the single-document formats of ingest's registry, by extension
UPLOAD_FORMATS = {ext: fmt for ext, fmt in EXTENSIONS.items() if fmt in ("text", "html")}
_MAX_UPLOAD_FIELDS = 32

TechniqueId = Literal[TECHNIQUE_IDS]  # type: ignore[valid-type]
ReportFormat = Literal[tuple(WRITERS)]  # type: ignore[valid-type]  # formats.WRITERS: one registry for CLI and API
ModelName = Literal[tuple(NAMES)]  # type: ignore[valid-type]  # fast, accurate


# ----------------------------------------------------------------------------------------------------------
# settings


class SettingsError(PropscanError):
    """Settings the server refuses to start with (the CLI prints it as one line, exit 2)."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    api_key: str | None = field(default=None, repr=False)
    insecure_public: bool = False
    max_body: int = DEFAULT_MAX_BODY  # bytes per request body
    max_docs: int = 32  # documents per batch
    timeout: float = 30.0  # seconds per request: reading, queueing and work
    queue: int = 16  # jobs that may wait for a model slot, per process
    slots: int = 1  # jobs that run at once, per process
    model_dir: str | None = None
    allow_fetch: bool = False  # fetch {"url": ...} documents (public addresses only)
    header_timeout: float = 10.0  # seconds a connection has to send a request's line and headers
    max_connections: int = 512  # open connections per process before requests get 503

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, value: str) -> Settings:
        return cls(**json.loads(value))


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 and ::1 are loopback; every other name or address is not."""
    h = host.strip().lower()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_settings(s: Settings) -> list[str]:
    """Raise SettingsError for settings the server must not run with; return warnings worth printing."""
    limits = [
        (0 <= s.port <= 65535, f"--port must be 0..65535, not {s.port}"),
        (s.workers >= 1, f"--workers must be at least 1, not {s.workers}"),
        (s.max_body >= 1, f"--max-body must be a positive number of bytes, not {s.max_body}"),
        (s.max_docs >= 1, f"--max-docs must be at least 1, not {s.max_docs}"),
        (s.timeout > 0 and math.isfinite(s.timeout), f"--timeout must be a positive number of seconds, not {s.timeout}"),
        (s.queue >= 0, f"--queue must be 0 or more, not {s.queue}"),
        (s.header_timeout > 0 and math.isfinite(s.header_timeout), f"--header-timeout must be a positive number of seconds, not {s.header_timeout}"),
        (s.max_connections >= 1, f"--max-connections must be at least 1, not {s.max_connections}"),
        (s.slots >= 1, f"model slots must be at least 1, not {s.slots}"),
        (s.api_key is None or s.api_key.strip() != "", "--api-key / PROPSCAN_API_KEY is empty"),
    ]
    for ok, message in limits:
        if not ok:
            raise SettingsError(message)
    if s.model_dir is not None:  # a model folder that cannot load is a one-line error now, not a failed startup
        from propscan.pipeline.model import check

        try:
            check(s.model_dir)
        except PropscanError as e:
            raise SettingsError(f"--model {e}") from None
    warnings = []
    if not is_loopback(s.host):
        if not s.api_key and not s.insecure_public:
            raise SettingsError(
                f"refusing to listen on {s.host}: it is not a loopback address and no API key is set; "
                "set PROPSCAN_API_KEY (or --api-key), or pass --insecure-public to serve anyone who can reach it"
            )
        if not s.api_key:
            warnings.append(f"serving {s.host} without an API key (--insecure-public): anyone who can reach it can use it")
        warnings.append("plain HTTP: put a TLS-terminating proxy in front before sending an API key over a network")
    return warnings


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g|kib|mib|gib)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def parse_size(text: str) -> int:
    """``"2000000"``, ``"2MB"``, ``"512kB"``, ``"1MiB"`` -> bytes (kB/MB are decimal, KiB/MiB binary)."""
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"not a size in bytes: {text!r} (examples: 2000000, 2MB, 512kB, 1MiB)")
    unit = m.group(2).lower() if m.group(2) else None
    return int(float(m.group(1)) * _UNITS[unit])


def _human(n: int) -> str:
    if n >= 10**6:
        return f"{n / 10**6:g} MB"
    if n >= 1000:
        return f"{n / 1000:g} kB"
    return f"{n} bytes"


# ----------------------------------------------------------------------------------------------------------
# problems (RFC 9457)


class Problem(HTTPException):
    """An error answered as ``application/problem+json``. A subclass of HTTPException, so FastAPI and
    Starlette pass it through to the handler wherever it is raised (a body read, a dependency, a job)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(status, detail, headers)
        self.title = title or HTTPStatus(status).phrase
        self.kind = kind
        self.extra = extra or {}

    def response(self) -> JSONResponse:
        return problem_response(self.status_code, self.detail, title=self.title, kind=self.kind,
                                headers=self.headers, extra=self.extra)


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + kind if kind else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **(extra or {}),
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _short(text: str, n: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _loc(loc: tuple | list) -> str:
    parts = [p for p in loc if p != "body"] or list(loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


# ----------------------------------------------------------------------------------------------------------
# request and response models


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # optional, not nullable: no "default": null in the OpenAPI schema


Threshold = Annotated[
    float,
    Field(ge=0, le=1, allow_inf_nan=False, json_schema_extra=_no_default,
          description="The minimum confidence (a calibrated probability, 0..1) for every technique instead of the "
          "cutoffs tuned per technique: lower finds more spans, higher fewer."),
]


def _check_text(value: str | None, what: str) -> str | None:
    if value is None:
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the {what} holds an unpaired surrogate (\\ud800-\\udfff escape); not valid Unicode") from None
    if not value.strip():
        raise ValueError(f"the {what} is empty")
    return value


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: Threshold = None  # type: ignore[assignment]
    threshold_for: dict[TechniqueId, Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]] = Field(  # type: ignore[valid-type]
        None, json_schema_extra=_no_default,
        description="Minimum confidences for single techniques, e.g. {\"Slogans\": 0.2}; they replace the default "
        "(tuned, or threshold) for those techniques.",
    )
    techniques: list[TechniqueId] = Field(  # type: ignore[valid-type]
        None, min_length=1, max_length=4 * len(TECHNIQUE_IDS), json_schema_extra=_no_default,
        description="Keep only spans of these techniques (ids as in GET /v1/techniques); the article score "
        "and counts then count only these.",
    )
    clean: bool = Field(True, description="Remove scraping debris (share footers, repeated teasers...) before analysis.")
    model: ModelName = Field(
        None, json_schema_extra=_no_default,
        description="fast (MiniLM) or accurate (MPNet, where the server has it installed: see GET /v1/models); "
        "default: the server's model (fast unless started with --model).",
    )


    @field_validator("threshold_for", mode="before")
    @classmethod
    def _technique_names(cls, value: Any) -> Any:
        """Display names and aliases are accepted as keys, as on the command line."""
        if not isinstance(value, dict):
            return value
        try:
            return {resolve(str(k)): v for k, v in value.items()}
        except ValueError as e:
            raise ValueError(str(e)) from None


def _options(body: Options) -> Options:
    """The options part of an (already validated) request."""
    return Options.model_construct(threshold=body.threshold, threshold_for=body.threshold_for,
                                   techniques=body.techniques, clean=body.clean, model=body.model)


class DocumentIn(BaseModel):
    """One document: exactly one of ``text`` (plain text, analysed as given), ``html`` (a page; its main
    text is extracted as ``propscan analyze`` does for .html files) or ``url`` (a public web page, fetched
    by the server only when it runs with --allow-fetch)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["text"]}, {"required": ["html"]}, {"required": ["url"]}]},
    )

    id: str = Field(None, min_length=1, max_length=MAX_ID, json_schema_extra=_no_default,
                    description="Your id for the document, returned in document.id.")
    text: str = Field(None, json_schema_extra=_no_default, description="Plain text; offsets refer to it.")
    html: str = Field(None, json_schema_extra=_no_default, description="An HTML page; offsets refer to the extracted text.")
    url: str = Field(None, min_length=1, max_length=2048, json_schema_extra=_no_default,
                     description="An http(s) link to a public page, fetched and read like html (needs --allow-fetch).")

    @field_validator("text")
    @classmethod
    def _text_ok(cls, v: str | None) -> str | None:
        return _check_text(v, "text")

    @field_validator("html")
    @classmethod
    def _html_ok(cls, v: str | None) -> str | None:
        return _check_text(v, "html")

    @model_validator(mode="after")
    def _one_input(self) -> DocumentIn:
        if sum(x is not None for x in (self.text, self.html, self.url)) != 1:
            raise ValueError("give exactly one of text, html or url")
        return self


class AnalyzeRequest(DocumentIn, Options):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["text"]}, {"required": ["html"]}, {"required": ["url"]}]},
    )


def _batch_model(max_docs: int) -> type[BaseModel]:
    class BatchRequest(Options):
        documents: list[DocumentIn] = Field(
            ..., min_length=1, max_length=max_docs, description=f"1 to {max_docs} documents (--max-docs)."
        )

    return BatchRequest


Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Offset = Annotated[int, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvidenceIn(_Strict):
    start: Offset
    end: Offset
    weight: Probability


class RemovedIn(_Strict):
    kind: str
    start: Offset
    end: Offset
    reason: str


class SpanIn(_Strict):
    start: Offset
    end: Offset
    technique: TechniqueId  # type: ignore[valid-type]
    score: Probability
    text: str
    alternatives: dict[TechniqueId, Probability]  # type: ignore[valid-type]
    evidence: list[EvidenceIn] = Field(default_factory=list)  # 1.2; older analyses have none


class SentenceIn(_Strict):
    start: Offset
    end: Offset
    score: Probability


class ModelIn(_Strict):
    name: str
    version: str


class DocumentOut(_Strict):
    id: str
    text: str
    metadata: dict[str, Any]


class AnalysisIn(_Strict):
    """An analysis as returned by POST /v1/analyze (schema_version 1.2; 1.0 and 1.1 are read too)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["https://propscan.invalid/schema/analysis/1.0", "https://propscan.invalid/schema/analysis/1.1",
                     "https://propscan.invalid/schema/analysis/1.2"] = Field(alias="schema")
    schema_version: Literal["1.0", "1.1", "1.2"]
    model: ModelIn
    document: DocumentOut
    score: Probability
    threshold: Probability | None
    threshold_for: dict[TechniqueId, Probability] = Field(default_factory=dict)  # type: ignore[valid-type]
    passages: Annotated[int, Field(ge=0)] | None = None
    language: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)
    removed: list[RemovedIn] = Field(default_factory=list)
    counts: dict[TechniqueId, Annotated[int, Field(ge=1)]]  # type: ignore[valid-type]
    spans: list[SpanIn]
    sentences: list[SentenceIn]


def _analysis_components() -> dict[str, Any]:
    """The shipped JSON Schema (analysis.schema.json) as OpenAPI components: the single source of truth
    for the response, its ``$defs`` hoisted to ``Analysis<Name>`` so the references resolve."""
    schema = json.loads(resources.files("propscan").joinpath("schema/analysis.schema.json").read_text("utf-8"))
    defs = schema.pop("$defs", {})
    schema.pop("$schema", None)
    schema.pop("$id", None)  # an $id would change the base the component references resolve against
    names = {k: "Analysis" + k[0].upper() + k[1:] for k in defs}

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: ("#/components/schemas/" + names[v.rsplit("/", 1)[1]] if k == "$ref" and v.startswith("#/$defs/") else fix(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [fix(x) for x in node]
        return node

    out = {"Analysis": fix(schema)}
    out.update({names[k]: fix(v) for k, v in defs.items()})
    return out


PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "An error (RFC 9457 problem details).",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem (about:blank for a plain HTTP error)."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong, in one line."},
        "errors": {
            "type": "array",
            "description": "For validation errors: each failing field.",
            "items": {
                "type": "object",
                "properties": {"loc": {"type": "string"}, "msg": {"type": "string"}, "type": {"type": "string"}},
            },
        },
    },
}


# ----------------------------------------------------------------------------------------------------------
# the gate: a bounded queue in front of the model threads


class _Cancelled(Exception):
    pass


class Gate:
    """Admits at most ``slots + queue`` jobs at once and runs them on ``slots`` threads, in order."""

    def __init__(self, slots: int, queue: int):
        self.slots, self.queue = slots, queue
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="propscan-model")
        self._lock = threading.Lock()
        self._admitted = 0  # jobs waiting or running, including jobs whose request is gone
        self._seconds = 1.0  # moving average of a job's run time, for Retry-After

    @property
    def admitted(self) -> int:
        return self._admitted

    def retry_after(self) -> int:
        with self._lock:
            waiting = max(self._admitted - self.slots + 1, 1)
            return max(1, min(120, math.ceil(waiting * self._seconds / self.slots)))

    def _release(self, _fut: Any) -> None:
        with self._lock:
            self._admitted -= 1

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args, cancel)`` on a model thread; ``cancel`` is set when the request is abandoned."""
        with self._lock:
            full = self._admitted >= self.slots + self.queue
            if not full:
                self._admitted += 1
        if full:
            raise Problem(
                503,
                f"the server is busy: {self.slots} analysis running and {self.queue} waiting, the most it takes; "
                "retry after the number of seconds in Retry-After",
                title="Server busy",
                kind="busy",
                headers={"Retry-After": str(self.retry_after())},
            )
        cancel = threading.Event()

        def job() -> Any:
            if cancel.is_set():
                raise _Cancelled
            t0 = time.perf_counter()
            try:
                return fn(*args, cancel)
            finally:
                with self._lock:
                    self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - t0)

        try:
            fut = self._pool.submit(job)
        except BaseException:
            self._release(None)
            raise
        fut.add_done_callback(self._release)
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            cancel.set()  # the request timed out or went away: stop between documents,
            fut.cancel()  # or before starting at all if the job is still queued
            raise


# ----------------------------------------------------------------------------------------------------------
# the work (runs on a model thread)


@dataclass
class _State:
    settings: Settings
    model: Any = None
    gate: Gate | None = None
    page: tuple[bytes, str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get_model(self, name: str | None = None) -> Any:
        """The server's model, or the one a request names (fast, accurate), loaded once per process."""
        if name is not None and not (self.model is None and (self.settings.model_dir or "fast") == name):
            from propscan.pipeline.model import load

            with self.lock:  # the first request for the accurate model may build it (about a minute)
                return load(name)
        if self.model is None:
            with self.lock:
                if self.model is None:
                    from propscan.pipeline.model import load

                    self.model = load(self.settings.model_dir)
        return self.model


def _read_document(data: bytes, fmt: str, doc_id: str, max_bytes: int, meta: dict[str, Any], where: str = "") -> Document:
    """Bytes -> Document through ingest's own readers (decoding, HTML extraction, limits)."""
    from propscan.pipeline.ingest import read_document

    try:
        doc = read_document("-", input_format=fmt, stdin=io.BytesIO(data), max_bytes=max_bytes)
    except InputError as e:
        raise Problem(422, f"{where}{e.problem}", title="Unreadable document", kind="unreadable-document") from None
    metadata = {k: v for k, v in doc.metadata.items() if k != "path"}  # "<stdin>" means nothing here
    return Document(doc_id, doc.text, {**metadata, **meta})


def _document(item: DocumentIn, default_id: str, settings: Settings, where: str = "") -> Document:
    doc_id = item.id or default_id
    if item.url is not None:
        return _fetched_document(item.url, doc_id, settings, where)
    if item.html is not None:
        return _read_document(item.html.encode("utf-8"), "html", doc_id, settings.max_body, {}, where)
    return Document(doc_id, item.text or "", {"format": "text"})


def _fetched_document(url: str, doc_id: str, settings: Settings, where: str) -> Document:
    """A public page fetched for the client: only with --allow-fetch, never a loopback, private,
    link-local, multicast or reserved address (checked after DNS and at every redirect)."""
    from propscan.pipeline import fetch

    if not settings.allow_fetch:
        raise Problem(403, f"{where}this server does not fetch links; send the page's html instead, or start the "
                      "server with --allow-fetch", title="Fetching is off", kind="fetch-disabled")
    try:
        # the switch exists for the tests, whose pages are served on loopback
        page = fetch.fetch(url, allow_private=os.environ.get(FETCH_PRIVATE_ENV) == "1",
                           max_bytes=min(fetch.MAX_BYTES, 10 * settings.max_body))
    except fetch.RefusedAddress as e:
        raise Problem(403, f"{where}{e}", title="Address refused", kind="fetch-refused") from None
    except InputError as e:
        raise Problem(422, f"{where}{e}", title="Fetch failed", kind="fetch-failed") from None
    return _read_document(page.data, page.format, doc_id, settings.max_body, page.metadata, where)


def _analyze(state: _State, docs: list[Document], opts: Options, cancel: threading.Event) -> list[dict[str, Any]]:
    from propscan.pipeline.analyze import analyze
    from propscan.pipeline.decode import article_score

    try:
        model = state.get_model(opts.model)
    except PropscanError as e:
        raise Problem(422, str(e), title="Model unavailable", kind="model-unavailable") from None
    keep = set(opts.techniques) if opts.techniques else None
    out = []
    for doc in docs:
        if cancel.is_set():
            raise _Cancelled
        a = analyze(doc, model=model, threshold=opts.threshold, clean=opts.clean, threshold_for=opts.threshold_for)
        if keep is not None:
            a.spans = [s for s in a.spans if s.technique in keep]
            a.score = article_score(a.sentences, a.spans)
        out.append(a.to_dict())
    return out


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _analyze_one(state: _State, item: DocumentIn, opts: Options, cancel: threading.Event) -> bytes:
    doc = _document(item, "document", state.settings)
    return _dumps(_analyze(state, [doc], opts, cancel)[0])


def _analyze_batch(state: _State, items: list[DocumentIn], opts: Options, cancel: threading.Event) -> bytes:
    docs = []  # read every document first: a bad one fails the batch before any model work
    for k, item in enumerate(items):
        where = f"documents[{k}]" + (f" (id {item.id!r})" if item.id else "") + ": "
        docs.append(_document(item, f"document-{k + 1}", state.settings, where))
    return _dumps({"analyses": _analyze(state, docs, opts, cancel)})


def _analyze_upload(state: _State, name: str, data: bytes, doc_id: str | None, opts: Options, cancel: threading.Event) -> bytes:
    from pathlib import PurePosixPath

    from propscan.ptc import article_id_for

    suffix = PurePosixPath(name).suffix.lower()
    fmt = UPLOAD_FORMATS.get(suffix, "auto")
    meta = {"filename": name} if name else {}
    doc = _read_document(data, fmt, doc_id or (article_id_for(PurePosixPath(name)) if name else "upload"),  # type: ignore[arg-type]
                         state.settings.max_body, meta, f"{name or 'the file'}: ")
    return _dumps(_analyze(state, [doc], opts, cancel)[0])


def _render(body: dict[str, Any], fmt: str, cancel: threading.Event) -> str:
    from propscan.outputs import formats
    from propscan.outputs.report import validate_analysis

    try:
        a = Analysis.from_dict(body)
        validate_analysis(a)
    except (InputError, ValueError) as e:
        raise Problem(422, str(e), title="Invalid analysis", kind="invalid-analysis") from None
    return formats.WRITERS[fmt].write([a])


# ----------------------------------------------------------------------------------------------------------
# multipart uploads, parsed in memory


def _parse_multipart(body: bytes, content_type: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, bytes]]]:
    """-> (fields [(name, value)], files [(name, filename, data)]). Raises Problem(400) for a bad body."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise Problem(400, "the multipart/form-data body has no boundary", kind="bad-multipart")
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, str, bytes]] = []
    part: dict[str, Any] = {}
    header = [b"", b""]

    def begin() -> None:
        part.clear()
        part.update(data=bytearray(), disposition=b"")

    def data(buf: bytes, start: int, end: int) -> None:
        part["data"] += buf[start:end]

    def header_field(buf: bytes, start: int, end: int) -> None:
        header[0] += buf[start:end]

    def header_value(buf: bytes, start: int, end: int) -> None:
        header[1] += buf[start:end]

    def header_end() -> None:
        if header[0].lower() == b"content-disposition":
            part["disposition"] = header[1]
        header[0] = header[1] = b""

    def end() -> None:
        _, opts = parse_options_header(part["disposition"])
        if b"name" not in opts:
            raise Problem(400, 'a multipart part has no Content-Disposition "name"', kind="bad-multipart")
        name = opts[b"name"].decode("utf-8", "replace")
        if len(fields) + len(files) >= _MAX_UPLOAD_FIELDS:
            raise Problem(400, f"more than {_MAX_UPLOAD_FIELDS} form fields", kind="bad-multipart")
        if b"filename" in opts:
            files.append((name, opts[b"filename"].decode("utf-8", "replace"), bytes(part["data"])))
        else:
            fields.append((name, part["data"].decode("utf-8", "replace")))

    callbacks = {
        "on_part_begin": begin, "on_part_data": data, "on_part_end": end,
        "on_header_field": header_field, "on_header_value": header_value, "on_header_end": header_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except Problem:
        raise
    except Exception as e:  # the parser's own errors: a malformed body
        raise Problem(400, f"malformed multipart/form-data body ({_short(e, 100)})", kind="bad-multipart") from None
    return fields, files


def _base_name(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]  # browsers send a bare name; some tools a path
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:MAX_ID]


# ----------------------------------------------------------------------------------------------------------
# middleware: body limit, request timeout, security headers


_API_CSP = "default-src 'none'; frame-ancestors 'none'"


class _Guard:
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
                await reply(problem_response(400, f"Content-Length {_short(declared, 40)!r} is not a number of bytes", kind="bad-request"))
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
                        await reply(_too_many_documents(docs, self.settings.max_docs))
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


def _too_many_documents(n: int | str, limit: int) -> JSONResponse:
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
        f"the request body is {'more than ' if more else ''}{size:,} bytes; the limit is {limit:,} bytes ({_human(limit)}, --max-body)",
        title="Request body too large",
        kind="body-too-large",
    )


def _too_large(size: int, limit: int) -> JSONResponse:
    return _too_large_problem(size, limit).response()


# ----------------------------------------------------------------------------------------------------------
# the app


def _json_response(data: bytes) -> Response:
    return Response(data, media_type="application/json")


def _require_json(request: Request) -> None:
    ctype = request.headers.get("content-type", "")
    main = ctype.split(";", 1)[0].strip().lower()
    if main != "application/json" and not (main.startswith("application/") and main.endswith("+json")):
        raise Problem(
            415,
            f"send the request as application/json, not {_short(ctype, 60) or 'a body without Content-Type'}",
            title="Unsupported media type",
            kind="unsupported-media-type",
        )


def _auth(api_key: str | None) -> Callable[[Request], None]:
    expected = api_key.encode("utf-8") if api_key else None

    def require_key(request: Request) -> None:
        if expected is None:
            return
        given = request.headers.get("x-api-key")
        if given is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else ""
        # header values arrive as latin-1 text: back to the raw bytes, then a constant-time comparison
        if not hmac.compare_digest(given.encode("latin-1", "replace"), expected):
            raise Problem(
                401,
                "this server needs an API key: send Authorization: Bearer KEY or X-API-Key: KEY",
                title="API key required" if not given else "Wrong API key",
                kind="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="propscan"'},
            )

    return require_key


def _telemetry_off() -> dict[str, Any]:
    """FastAPI versions with built-in OpenTelemetry record request bodies: switch it off (user text)."""
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False,
                              "auto_configure": False}}
    return {}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("propscan")
    except Exception:
        return "0"


_ERRORS_POST_JSON = (400, 403, 413, 415, 422, 503, 504)
_ERRORS_POST_UPLOAD = (400, 413, 415, 422, 503, 504)


def create_app(model: Any = None, settings: Settings = Settings()) -> FastAPI:
    """The app. ``model``: an already loaded model (tests); by default each process loads the shipped
    (or ``settings.model_dir``) model once, at start-up."""
    check_settings(settings)
    state = _State(settings, model, Gate(settings.slots, settings.queue))
    gate = state.gate
    assert gate is not None

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        _log_resource_errors_once(asyncio.get_running_loop())
        if state.model is None:
            t0 = time.perf_counter()
            m = await anyio.to_thread.run_sync(state.get_model)
            log.info("propscan: model %s %s loaded in %.1f s (process %d)", m.name, m.version, time.perf_counter() - t0, os.getpid())
        yield

    app = FastAPI(
        title="propscan",
        version=_version(),
        description=(
            "Find propaganda-technique spans in news articles. Every analysis follows the JSON Schema "
            "`analysis.schema.json` (schema_version 1.1). Errors are RFC 9457 problem details. Nothing "
            "sent is stored."
        ),
        docs_url=None,  # the Swagger/ReDoc pages load their assets from a CDN: none served
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
        **_telemetry_off(),
    )
    app.state.propscan = state
    app.add_middleware(_Guard, settings=settings)
    secured = [Depends(_auth(settings.api_key))]
    json_only = [Depends(_require_json)]
    batch_model = _batch_model(settings.max_docs)

    # -------------------------------------------------------------------- errors

    @app.exception_handler(StarletteHTTPException)
    async def _http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc, Problem):
            return exc.response()
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
        path = _short(request.url.path, 200)
        if status == 404 and detail == "Not Found":
            detail = f"no such endpoint: {path} (the API is described at /openapi.json)"
        elif status == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            detail = f"{request.method} is not allowed on {path}" + (f"; use {allowed}" if allowed else "")
        return problem_response(status, detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        for e in errors:
            if e.get("type") == "json_invalid":
                where = e.get("loc", ("body", 0))[-1]
                why = (e.get("ctx") or {}).get("error", "not valid JSON")
                return problem_response(400, f"the body is not valid JSON: {why} (at character {where})",
                                        title="Invalid JSON", kind="invalid-json")
            if e.get("type") == "too_long" and tuple(e.get("loc", ())) == ("body", "documents"):
                n = (e.get("ctx") or {}).get("actual_length", "more")
                return _too_many_documents(n, settings.max_docs)
        rows = [{"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors]
        detail = "; ".join(f"{r['loc']}: {r['msg']}" for r in rows[:5]) + (f"; and {len(rows) - 5} more" if len(rows) > 5 else "")
        return problem_response(422, detail or "the request is not valid", title="Invalid request",
                                kind="invalid-request", extra={"errors": rows[:50]})

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("propscan: internal error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal error; the server log has the details", kind="internal-error")

    # -------------------------------------------------------------------- the page

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        if state.page is None:
            state.page = await anyio.to_thread.run_sync(_render_page, state)
        body, csp = state.page
        return Response(body, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": csp})

    # -------------------------------------------------------------------- the API

    @app.get("/healthz", tags=["service"], summary="Liveness: 200 while the process serves requests")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/techniques", tags=["reference"], dependencies=secured, summary="The 14 techniques")
    async def techniques() -> list[dict[str, Any]]:
        m = state.model or await anyio.to_thread.run_sync(state.get_model)
        rel = reliability(m.name, m.version)
        return [{"id": t.id, "name": t.name, "definition": t.definition, "example": t.example, "colour": t.colour,
                 "reliability": rel.get(t.id)} for t in TECHNIQUES]

    @app.get("/v1/model", tags=["reference"], dependencies=secured, summary="A model: name, version, dev figures",
             openapi_extra={"parameters": [{"name": "model", "in": "query", "required": False,
                                            "schema": {"type": "string", "enum": list(NAMES)},
                                            "description": "default: the server's model"}]})
    async def model_info(request: Request) -> dict[str, Any]:
        """The server's default model, or the one ``?model=`` names (described without loading it)."""
        model = request.query_params.get("model")
        if model is not None and model not in NAMES:
            raise Problem(422, f"model: {model!r} is not fast or accurate", title="Invalid request", kind="invalid-request")
        if model is None:
            m = state.model or await anyio.to_thread.run_sync(state.get_model)
            cfg = getattr(m, "config", {}) or {}
        else:
            from propscan.pipeline.model import check

            try:
                cfg = check(model)
            except PropscanError as e:
                raise Problem(404, str(e), title="No such model", kind="model-unavailable") from None
        keys = ("base_encoder", "quantized", "trained_on", "decoding", "cutoffs", "dev", "by_technique")
        return {"name": cfg.get("name"), "version": cfg.get("version"), "schema_version": SCHEMA_VERSION,
                **{k: cfg[k] for k in keys if k in cfg}}

    @app.get("/v1/models", tags=["reference"], dependencies=secured, summary="The models a request may name")
    async def models() -> list[dict[str, Any]]:
        """fast, and accurate where this server has it installed; ``default`` marks the one used when a
        request names none."""
        from propscan.pipeline.model import available, check

        default = settings.model_dir or "fast"
        configs = {n: check(n) for n in available()}
        return [{"id": n, "name": c.get("name"), "version": c.get("version"), "about": MODEL_ABOUT[n],
                 "default": n == default} for n, c in configs.items()]

    @app.post("/v1/analyze", tags=["analysis"], dependencies=secured + json_only,
              summary="Analyse one document (text or HTML)", response_class=Response)
    async def analyze_one(body: AnalyzeRequest) -> Response:
        return _json_response(await gate.run(_analyze_one, state, body, _options(body)))

    async def analyze_batch(body) -> Response:  # type: ignore[no-untyped-def]
        return _json_response(await gate.run(_analyze_batch, state, body.documents, _options(body)))

    # the body model is built for this app's --max-docs: set as a real class, not a string annotation
    analyze_batch.__annotations__["body"] = batch_model
    app.post("/v1/analyze/batch", tags=["analysis"], dependencies=secured + json_only,
             summary=f"Analyse up to {settings.max_docs} documents", response_class=Response)(analyze_batch)

    @app.post("/v1/analyze/upload", tags=["analysis"], dependencies=secured,
              summary="Analyse an uploaded .txt or .html file (multipart/form-data)", response_class=Response,
              openapi_extra={"requestBody": _upload_body()})
    async def analyze_upload(request: Request) -> Response:
        ctype = request.headers.get("content-type", "")
        if ctype.split(";", 1)[0].strip().lower() != "multipart/form-data":
            raise Problem(415, f"upload the file as multipart/form-data, not {_short(ctype, 60) or 'a body without Content-Type'}",
                          title="Unsupported media type", kind="unsupported-media-type")
        fields, files = _parse_multipart(await request.body(), ctype)
        uploads = [f for f in files if f[0] == "file"]
        if len(uploads) != 1:
            raise Problem(422, f"send exactly one file in the form field \"file\" (got {len(uploads)})",
                          title="Invalid request", kind="invalid-request")
        known = {"id", "threshold", "threshold_for", "clean", "techniques", "model"}
        unknown = sorted({n for n, _ in fields if n not in known} | {n for n, _, _ in files if n != "file"})
        if unknown:
            raise Problem(422, f"unknown form field(s): {', '.join(_short(n, 40) for n in unknown[:5])}",
                          title="Invalid request", kind="invalid-request")
        raw: dict[str, Any] = {}
        for name, value in fields:
            if name == "techniques":
                raw.setdefault("techniques", []).extend(v.strip() for v in value.split(",") if v.strip())
            elif name == "threshold_for":  # "Slogans=0.2,Doubt=0.3", as on the command line
                try:
                    raw.setdefault("threshold_for", {}).update(parse_cutoffs([v for v in value.split(",") if v.strip()]))
                except ValueError as e:
                    raise Problem(422, f"threshold_for: {e}", title="Invalid request", kind="invalid-request") from None
            else:
                raw[name] = value
        doc_id = raw.pop("id", None)
        if doc_id is not None and not (1 <= len(doc_id) <= MAX_ID):
            raise Problem(422, f"id: must be 1 to {MAX_ID} characters", title="Invalid request", kind="invalid-request")
        try:
            opts = Options.model_validate(raw)
        except Exception as e:
            errs = getattr(e, "errors", lambda: [])()
            detail = "; ".join(f"{_loc(x.get('loc', ()))}: {x.get('msg')}" for x in errs[:5]) or str(e)
            raise Problem(422, detail, title="Invalid request", kind="invalid-request") from None
        _, filename, data = uploads[0]
        name = _base_name(filename)
        suffix = os.path.splitext(name)[1].lower()
        if suffix in (".jsonl", ".ndjson", ".csv"):
            raise Problem(415, f"{name}: upload one article as .txt or .html; for corpora use POST /v1/analyze/batch",
                          title="Unsupported media type", kind="unsupported-media-type")
        return _json_response(await gate.run(_analyze_upload, state, name, data, doc_id, opts))

    @app.post("/v1/report", tags=["analysis"], dependencies=secured + json_only,
              summary="Render an analysis as the HTML report or as CSV rows (no model run)",
              response_class=Response)
    async def report(body: AnalysisIn, format: ReportFormat = Query("html", description="any output format of the command line: " + ", ".join(WRITERS))) -> Response:
        if len(body.spans) > MAX_REPORT_SPANS:
            raise Problem(413, f"the analysis has {len(body.spans):,} spans; a report takes at most {MAX_REPORT_SPANS:,}",
                          title="Too many spans", kind="too-many-spans")
        text = await gate.run(_render, body.model_dump(by_alias=True), format)
        if format != "html":
            return Response(text, media_type=f"{WRITERS[format].media_type}; charset=utf-8")
        from propscan.outputs.report import page_assets

        csp = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
               f"script-src {page_assets()['report_js_hash']}")
        return Response(text, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": csp})

    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    return app


def _upload_body() -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": ".txt (any common encoding) or .html; other names are sniffed."},
                        "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID},
                        "threshold": {"type": "number", "minimum": 0, "maximum": 1},
                        "threshold_for": {"type": "string", "description": "TECHNIQUE=P pairs, comma-separated, e.g. Slogans=0.2"},
                        "clean": {"type": "boolean", "default": True},
                        "techniques": {"type": "array", "items": {"$ref": "#/components/schemas/AnalysisTechnique"}},
                    },
                }
            }
        },
    }


def _openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    comps = schema.setdefault("components", {})
    schemas = comps.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(_analysis_components())
    schemas["Problem"] = PROBLEM_SCHEMA
    if settings.api_key:
        comps["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    problem = {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    ok = {
        "/v1/analyze": {"$ref": "#/components/schemas/Analysis"},
        "/v1/analyze/upload": {"$ref": "#/components/schemas/Analysis"},
        "/v1/analyze/batch": {
            "type": "object", "required": ["analyses"], "additionalProperties": False,
            "properties": {"analyses": {"type": "array", "items": {"$ref": "#/components/schemas/Analysis"}}},
        },
    }
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            codes: list[int] = []
            if method == "post":
                codes += list(_ERRORS_POST_UPLOAD if path.endswith("/upload") else _ERRORS_POST_JSON)
            elif path.startswith("/v1/") or path == "/healthz":
                codes += [504]
            if path == "/v1/model":  # ?model= not fast or accurate (422), or not in this install (404)
                codes += [404, 422]
            if path.startswith("/v1/") and settings.api_key:
                codes.append(401)
                op["security"] = [{"bearer": []}, {"apiKey": []}]
            for code in sorted(set(codes)):
                entry = {"description": HTTPStatus(code).phrase, **problem}
                if code == 503:
                    entry["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
                responses[str(code)] = entry
            if path in ok:
                responses["200"] = {"description": "The analysis", "content": {"application/json": {"schema": ok[path]}}}
            elif path == "/v1/report":
                responses["200"] = {
                    "description": "The analysis in the format asked for (default: the HTML report)",
                    "content": {w.media_type: {"schema": {"$ref": "#/components/schemas/Analysis"} if w.media_type == "application/json"
                                                   else {"type": "string"}} for w in WRITERS.values()},
                }
    app.openapi_schema = schema
    return schema


# ----------------------------------------------------------------------------------------------------------
# the page


def _render_page(state: _State) -> tuple[bytes, str]:
    """The web page (GET /): the report's CSS and look; its script and the report's script allowed by hash."""
    from markupsafe import Markup

    from propscan.outputs.report import page_assets, csp_hash, template_env, script_json

    assets = page_assets()
    env = template_env()
    js = env.get_template("web_script.html").render()
    css = env.get_template("web_style.html").render()
    assert "</script" not in js.lower() and "</style" not in css.lower()
    m = state.get_model()
    s = state.settings
    config = {
        "auth": bool(s.api_key),
        "maxBody": s.max_body,
        "maxBodyText": _human(s.max_body),
        "model": {"name": m.name, "version": m.version},
        "allowFetch": s.allow_fetch,
    }
    models = _page_models(s)
    html = env.get_template("web_page.html").render(
        models=models,
        css=assets["css"],
        web_css=Markup(css),
        js=Markup(js),
        config=script_json(config),
        model=config["model"],
        auth=bool(s.api_key),
        allow_fetch=s.allow_fetch,
        max_body=_human(s.max_body),
    )
    # srcdoc frames inherit this policy: the report shown in the frame needs its own script hash too
    csp = (
        "default-src 'none'; "
        f"script-src {csp_hash(js)} {assets['report_js_hash']}; "
        "style-src 'unsafe-inline'; img-src data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html.encode("utf-8"), csp


MODEL_ABOUT = {"fast": "MiniLM, quick; the default for folders and the API",
               "accurate": "MPNet, finds more and marks it better; a few seconds per article"}


def _page_models(s: Settings) -> list[dict[str, Any]]:
    """The models the page offers: fast and, where installed, accurate, which the page picks for a pasted
    article (one article: quality over speed). A server started with a model folder offers only that."""
    from propscan.pipeline.model import available

    if s.model_dir not in (None, "fast", "accurate"):
        return []
    names = available()
    default = s.model_dir or ("accurate" if "accurate" in names else "fast")
    return [{"id": n, "about": MODEL_ABOUT[n], "default": n == default} for n in names]


# ----------------------------------------------------------------------------------------------------------
# running


def _quiet_libraries() -> None:
    # trafilatura logs an ERROR line for every page it cannot parse: user input, not a server fault
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)


def _app_from_env() -> FastAPI:
    """uvicorn's factory in each worker process: the settings come from the parent through the environment."""
    _quiet_libraries()
    value = os.environ.get(SETTINGS_ENV)
    return create_app(settings=Settings.from_env(value) if value else Settings())


# A client must finish sending a request's line and headers --header-timeout seconds (default 10) after
# connecting or after its previous response; otherwise the connection is closed. uvicorn has no such
# timeout of its own (its keep-alive timer ends when the first byte arrives), so a slow-header
# ("slowloris") client could hold a connection, and a file descriptor, for ever. The value reaches
# the protocol, in every worker process, through this environment variable.
HEADER_TIMEOUT_ENV = "PROPSCAN_HEADER_TIMEOUT"
# Test-only: with --allow-fetch, also fetch loopback and private addresses (the tests' pages are local).
FETCH_PRIVATE_ENV = "PROPSCAN_TEST_FETCH_PRIVATE"
# Spans one /v1/report request may carry (413 beyond): far above any article's (the seed opinion piece
# has 32), low enough that rendering stays well under a second.
MAX_REPORT_SPANS = 20_000
# --max-connections (default 512) open connections per worker before new requests get 503 (uvicorn's
# limit_concurrency): a flood of idle or slow connections is shed instead of stalling the server
# (benchmarks/serve_load.py --scenario slow-headers: 300 connections, /healthz p95 5 ms; the header
# timeout frees them in 10 s).


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers (--header-timeout). Module-level:
    with --workers, uvicorn pickles the protocol class into each worker process."""

    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(float(os.environ.get(HEADER_TIMEOUT_ENV, "10")), self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.debug("propscan: closed a connection that sent no complete request headers in time")
            self.transport.close()

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the request's headers are in
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers have the same deadline

    def connection_lost(self, exc) -> None:  # type: ignore[no-untyped-def]
        self._disarm()
        super().connection_lost(exc)


def _log_resource_errors_once(loop: asyncio.AbstractEventLoop, every: float = 60.0) -> None:
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


def run(settings: Settings) -> None:
    """Serve with uvicorn (blocks until stopped). Raises SettingsError for refused settings."""
    import uvicorn

    check_settings(settings)
    os.environ[HEADER_TIMEOUT_ENV] = repr(settings.header_timeout)
    if settings.workers > 1 and not os.environ.get("PROPSCAN_THREADS"):
        # N processes each running onnxruntime: split the cores instead of oversubscribing them
        os.environ["PROPSCAN_THREADS"] = str(max(1, (os.cpu_count() or 1) // settings.workers))
    common: dict[str, Any] = dict(
        host=settings.host.strip("[]"),
        port=settings.port,
        server_header=False,
        timeout_graceful_shutdown=max(1, int(math.ceil(settings.timeout))),
        log_level="info",
        http=HeaderTimeoutH11,
        limit_concurrency=settings.max_connections,
    )
    if settings.workers == 1:
        _quiet_libraries()
        uvicorn.run(create_app(settings=settings), **common)
        return
    os.environ[SETTINGS_ENV] = settings.to_env()
    uvicorn.run("propscan.serve.app:_app_from_env", factory=True, workers=settings.workers, **common)
