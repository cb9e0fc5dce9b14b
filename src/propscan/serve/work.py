"""A request's work, run on a model thread: documents from bodies, uploads and links; analyses; rendering."""

from __future__ import annotations

import io
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from propscan.document import Analysis, Document
from propscan.errors import InputError, PropscanError
from propscan.outputs import formats
from propscan.outputs.report import validate_analysis
from propscan.pipeline import fetch
from propscan.pipeline.analyze import analyze
from propscan.pipeline.decode import article_score
from propscan.pipeline.ingest import EXTENSIONS, read_document
from propscan.pipeline.model import load
from propscan.ptc import article_id_for
from propscan.serve.gate import Cancelled, Gate
from propscan.serve.problems import Problem
from propscan.serve.schemas import DocumentIn, Options
from propscan.serve.settings import Settings

# an uploaded file is one document: the single-document formats of ingest's registry, by extension
UPLOAD_FORMATS = {ext: fmt for ext, fmt in EXTENSIONS.items() if fmt in ("text", "html")}


# Test-only: with --allow-fetch, also fetch loopback and private addresses (the tests' pages are local).
FETCH_PRIVATE_ENV = "PROPSCAN_TEST_FETCH_PRIVATE"


@dataclass
class State:
    settings: Settings
    model: Any = None
    gate: Gate | None = None
    page: tuple[bytes, str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get_model(self, name: str | None = None) -> Any:
        """The server's model, or the one a request names (fast, accurate), loaded once per process."""
        if name is not None and not (self.model is None and (self.settings.model_dir or "fast") == name):
            with self.lock:  # the first request for the accurate model may build it (about a minute)
                return load(name)
        if self.model is None:
            with self.lock:
                if self.model is None:
                    self.model = load(self.settings.model_dir)
        return self.model


def _read_document(data: bytes, fmt: str, doc_id: str, max_bytes: int, meta: dict[str, Any], where: str = "") -> Document:
    """Bytes -> Document through ingest's own readers (decoding, HTML extraction, limits)."""
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


def _analyze(state: State, docs: list[Document], opts: Options, cancel: threading.Event) -> list[dict[str, Any]]:
    try:
        model = state.get_model(opts.model)
    except PropscanError as e:
        raise Problem(422, str(e), title="Model unavailable", kind="model-unavailable") from None
    keep = set(opts.techniques) if opts.techniques else None
    out = []
    for doc in docs:
        if cancel.is_set():
            raise Cancelled
        a = analyze(doc, model=model, threshold=opts.threshold, clean=opts.clean, threshold_for=opts.threshold_for)
        if keep is not None:
            a.spans = [s for s in a.spans if s.technique in keep]
            a.score = article_score(a.sentences, a.spans)
        out.append(a.to_dict())
    return out


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def analyze_one(state: State, item: DocumentIn, opts: Options, cancel: threading.Event) -> bytes:
    doc = _document(item, "document", state.settings)
    return _dumps(_analyze(state, [doc], opts, cancel)[0])


def analyze_batch(state: State, items: list[DocumentIn], opts: Options, cancel: threading.Event) -> bytes:
    docs = []  # read every document first: a bad one fails the batch before any model work
    for k, item in enumerate(items):
        where = f"documents[{k}]" + (f" (id {item.id!r})" if item.id else "") + ": "
        docs.append(_document(item, f"document-{k + 1}", state.settings, where))
    return _dumps({"analyses": _analyze(state, docs, opts, cancel)})


def analyze_upload(state: State, name: str, data: bytes, doc_id: str | None, opts: Options, cancel: threading.Event) -> bytes:
    from pathlib import PurePosixPath

    suffix = PurePosixPath(name).suffix.lower()
    fmt = UPLOAD_FORMATS.get(suffix, "auto")
    meta = {"filename": name} if name else {}
    doc = _read_document(data, fmt, doc_id or (article_id_for(PurePosixPath(name)) if name else "upload"),  # type: ignore[arg-type]
                         state.settings.max_body, meta, f"{name or 'the file'}: ")
    return _dumps(_analyze(state, [doc], opts, cancel)[0])


def render_report(body: dict[str, Any], fmt: str, cancel: threading.Event) -> str:
    try:
        a = Analysis.from_dict(body)
        validate_analysis(a)
    except (InputError, ValueError) as e:
        raise Problem(422, str(e), title="Invalid analysis", kind="invalid-analysis") from None
    return formats.WRITERS[fmt].write([a])
