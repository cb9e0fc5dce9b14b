"""The server's settings (``propscan serve`` options), their checks, and sizes such as "2MB"."""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
from dataclasses import asdict, dataclass, field

from propscan.errors import PropscanError
from propscan.pipeline.model import check

log = logging.getLogger("uvicorn.error.propscan")  # printed by uvicorn's own log handlers


SETTINGS_ENV = "PROPSCAN_SERVE_SETTINGS"  # how `run` hands the settings to uvicorn's worker processes


DEFAULT_MAX_BODY = 2_000_000


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


def human_size(n: int) -> str:
    if n >= 10**6:
        return f"{n / 10**6:g} MB"
    if n >= 1000:
        return f"{n / 1000:g} kB"
    return f"{n} bytes"
