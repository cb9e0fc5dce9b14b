"""The web server: ``propscan serve`` -- a FastAPI app on uvicorn with a web page and a REST API.

``create_app(model=None, settings=Settings())`` builds the app; ``server.run(settings)`` serves it with uvicorn.

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
import hmac
import inspect
import os
import time
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any, Callable

import anyio
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from propscan.document import SCHEMA_VERSION
from propscan.errors import PropscanError
from propscan.outputs.formats import WRITERS
from propscan.outputs.report import page_assets
from propscan.pipeline.model import NAMES, available, check, reliability
from propscan.serve import work
from propscan.serve.gate import Gate
from propscan.serve.limits import (
    MAX_REPORT_SPANS,
    Guard,
    log_resource_errors_once,
    too_many_documents,
)
from propscan.serve.page import MODEL_ABOUT, render_page
from propscan.serve.problems import (
    PROBLEM_JSON,
    PROBLEM_SCHEMA,
    Problem,
    error_location,
    problem_response,
    shorten,
)
from propscan.serve.schemas import (
    MAX_ID,
    AnalysisIn,
    AnalyzeRequest,
    Options,
    ReportFormat,
    analysis_components,
    batch_request_model,
    checked_options,
)
from propscan.serve.settings import Settings, check_settings, log
from propscan.serve.uploads import base_name, parse_multipart
from propscan.serve.work import State, render_report
from propscan.techniques import TECHNIQUES, parse_cutoffs


def _json_response(data: bytes) -> Response:
    return Response(data, media_type="application/json")


def _require_json(request: Request) -> None:
    ctype = request.headers.get("content-type", "")
    main = ctype.split(";", 1)[0].strip().lower()
    if main != "application/json" and not (main.startswith("application/") and main.endswith("+json")):
        raise Problem(
            415,
            f"send the request as application/json, not {shorten(ctype, 60) or 'a body without Content-Type'}",
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
    state = State(settings, model, Gate(settings.slots, settings.queue))
    gate = state.gate
    assert gate is not None

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        log_resource_errors_once(asyncio.get_running_loop())
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
    app.add_middleware(Guard, settings=settings)
    secured = [Depends(_auth(settings.api_key))]
    json_only = [Depends(_require_json)]
    batch_model = batch_request_model(settings.max_docs)

    # -------------------------------------------------------------------- errors

    @app.exception_handler(StarletteHTTPException)
    async def _http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc, Problem):
            return exc.response()
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
        path = shorten(request.url.path, 200)
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
                return too_many_documents(n, settings.max_docs)
        rows = [{"loc": error_location(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors]
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
            state.page = await anyio.to_thread.run_sync(render_page, state)
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
        default = settings.model_dir or "fast"
        configs = {n: check(n) for n in available()}
        return [{"id": n, "name": c.get("name"), "version": c.get("version"), "about": MODEL_ABOUT[n],
                 "default": n == default} for n, c in configs.items()]

    @app.post("/v1/analyze", tags=["analysis"], dependencies=secured + json_only,
              summary="Analyse one document (text or HTML)", response_class=Response)
    async def analyze_one(body: AnalyzeRequest) -> Response:
        return _json_response(await gate.run(work.analyze_one, state, body, checked_options(body)))

    async def analyze_batch(body) -> Response:  # type: ignore[no-untyped-def]
        return _json_response(await gate.run(work.analyze_batch, state, body.documents, checked_options(body)))

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
            raise Problem(415, f"upload the file as multipart/form-data, not {shorten(ctype, 60) or 'a body without Content-Type'}",
                          title="Unsupported media type", kind="unsupported-media-type")
        fields, files = parse_multipart(await request.body(), ctype)
        uploads = [f for f in files if f[0] == "file"]
        if len(uploads) != 1:
            raise Problem(422, f"send exactly one file in the form field \"file\" (got {len(uploads)})",
                          title="Invalid request", kind="invalid-request")
        known = {"id", "threshold", "threshold_for", "clean", "techniques", "model"}
        unknown = sorted({n for n, _ in fields if n not in known} | {n for n, _, _ in files if n != "file"})
        if unknown:
            raise Problem(422, f"unknown form field(s): {', '.join(shorten(n, 40) for n in unknown[:5])}",
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
            detail = "; ".join(f"{error_location(x.get('loc', ()))}: {x.get('msg')}" for x in errs[:5]) or str(e)
            raise Problem(422, detail, title="Invalid request", kind="invalid-request") from None
        _, filename, data = uploads[0]
        name = base_name(filename)
        suffix = os.path.splitext(name)[1].lower()
        if suffix in (".jsonl", ".ndjson", ".csv"):
            raise Problem(415, f"{name}: upload one article as .txt or .html; for corpora use POST /v1/analyze/batch",
                          title="Unsupported media type", kind="unsupported-media-type")
        return _json_response(await gate.run(work.analyze_upload, state, name, data, doc_id, opts))

    @app.post("/v1/report", tags=["analysis"], dependencies=secured + json_only,
              summary="Render an analysis as the HTML report or as CSV rows (no model run)",
              response_class=Response)
    async def report(body: AnalysisIn, format: ReportFormat = Query("html", description="any output format of the command line: " + ", ".join(WRITERS))) -> Response:
        if len(body.spans) > MAX_REPORT_SPANS:
            raise Problem(413, f"the analysis has {len(body.spans):,} spans; a report takes at most {MAX_REPORT_SPANS:,}",
                          title="Too many spans", kind="too-many-spans")
        text = await gate.run(render_report, body.model_dump(by_alias=True), format)
        if format != "html":
            return Response(text, media_type=f"{WRITERS[format].media_type}; charset=utf-8")
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
    schemas.update(analysis_components())
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
