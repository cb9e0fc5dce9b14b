"""Running the app on uvicorn: worker processes, the header timeout, resource errors logged once."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
from typing import Any

import h11
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from propscan.atomic import problem
from propscan.serve.app import create_app
from propscan.serve.settings import SETTINGS_ENV, Settings, SettingsError, check_settings, log


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
# what each uvicorn worker process imports (--workers N > 1)
APP_FACTORY = "propscan.serve.server:_app_from_env"


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


def check_listen(host: str, port: int) -> None:
    """Refuse, in one line and before the model loads, an address this process cannot listen on (a port in
    use, a privileged port, an address not on this machine); uvicorn would log it and exit with code 3.
    Bound as uvicorn binds (SO_REUSEADDR), then released: only a race could tell the two apart."""
    if port == 0:  # any free port
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as e:
        raise SettingsError(f"cannot listen on {host}:{port}: {problem(e)}") from None


def run(settings: Settings) -> None:
    """Serve with uvicorn (blocks until stopped). Raises SettingsError for refused settings."""
    import uvicorn

    check_settings(settings)
    check_listen(settings.host.strip("[]"), settings.port)
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
    uvicorn.run(APP_FACTORY, factory=True, workers=settings.workers, **common)
