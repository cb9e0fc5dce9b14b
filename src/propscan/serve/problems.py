"""Errors as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

PROBLEM_BASE = "https://propscan.invalid/problems/"
PROBLEM_JSON = "application/problem+json"


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


def shorten(text: str, n: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def error_location(loc: tuple | list) -> str:
    parts = [p for p in loc if p != "body"] or list(loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


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
