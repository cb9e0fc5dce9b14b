"""Fetching: an http(s) URL -> the page's bytes, for ingest to extract like an .html file.

urllib3 (already installed with trafilatura) does the HTTP. One GET per URL, with a connect and a
read timeout, at most MAX_REDIRECTS redirects, a size cap counted while reading, a content-type
check and a plain User-Agent. Every failure is an InputError naming the URL and the reason in one
line: DNS, TLS, refused, timed out, 4xx/5xx, too large, not HTML, a scheme other than http(s),
credentials in the URL. Loopback, private and other non-public addresses are refused unless the
caller allows them: the CLI does (it fetches for the user at the keyboard); the server does not.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from propscan.errors import InputError

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
CONNECT_TIMEOUT = 10.0  # seconds
READ_TIMEOUT = 20.0  # seconds between bytes
MAX_REDIRECTS = 5
MAX_BYTES = 10_000_000  # of the page, before extraction (an article's HTML is rarely over 2 MB)
USER_AGENT = "propscan (propaganda-technique analysis; fetches the one page it was given)"
PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain")


class RefusedAddress(InputError):
    """The host is a loopback, private, link-local, multicast or reserved address (not fetched)."""


@dataclass
class Page:
    url: str  # the URL asked for
    final_url: str  # after redirects
    data: bytes
    content_type: str
    fetched: str  # UTC, ISO 8601
    redirected: bool = False

    @property
    def format(self) -> str:
        """How ingest reads the page: "html", or "text" for text/plain."""
        return "text" if self.content_type.startswith("text/plain") else "html"

    @property
    def metadata(self) -> dict[str, str]:
        """What a document read from this page records: its URL, where redirects led, when it was fetched."""
        meta = {"url": self.url}
        if self.redirected:
            meta["final_url"] = self.final_url
        meta["fetched"] = self.fetched
        return meta


def is_url(text: str) -> bool:
    return bool(URL.match(text))


def check_url(url: str) -> str:
    """The URL to fetch (an IDN host in punycode), or InputError for one that is not fetched."""
    try:
        parts = urlsplit(url.strip())
    except ValueError as e:
        raise InputError(url, f"not a valid URL ({e})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InputError(url, f"only http and https URLs are fetched, not {parts.scheme}://")
    if parts.username is not None or parts.password is not None:
        raise InputError(url, "a URL with a user name or password is not fetched")
    host = parts.hostname
    if not host:
        raise InputError(url, "no host in the URL")
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InputError(url, f"the host {host!r} is not a valid domain name") from None
    try:
        port = parts.port
    except ValueError:
        raise InputError(url, "the port in the URL is not a number from 0 to 65535") from None
    if ":" in ascii_host:  # an IPv6 address keeps its brackets
        ascii_host = f"[{ascii_host}]"
    netloc = ascii_host if port is None else f"{ascii_host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def check_address(url: str, host: str, port: int | None) -> None:
    """Refuse a host that resolves to a loopback, private, link-local, multicast or reserved address."""
    try:
        infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise InputError(url, f"cannot resolve {host} ({e.strerror})") from None
    for info in infos:
        addr = ipaddress.ip_address(info[4][0].split("%")[0])
        if not addr.is_global or addr.is_multicast:
            raise RefusedAddress(url, f"{host} is {addr}, not a public address: not fetched")


def fetch(url: str, allow_private: bool = True, max_bytes: int = MAX_BYTES) -> Page:
    """GET ``url``; InputError with the reason for every failure."""
    import urllib3

    target = check_url(url)
    http = urllib3.PoolManager(
        headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.5"},
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        retries=False,
    )
    current = target
    for _ in range(MAX_REDIRECTS + 1):
        if not allow_private:  # checked again at every redirect: a public URL may redirect inward
            parts = urlsplit(current)
            check_address(url, parts.hostname or "", parts.port)
        try:
            resp = http.request("GET", current, preload_content=False, redirect=False)
        except urllib3.exceptions.HTTPError as e:
            raise InputError(url, _why(e)) from None
        if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("location"):
            resp.release_conn()
            current = check_url(_join(current, resp.headers["location"]))
            continue
        return _page(url, current, resp, max_bytes, redirected=current != target)
    raise InputError(url, f"more than {MAX_REDIRECTS} redirects")


def _join(base: str, location: str) -> str:
    from urllib.parse import urljoin

    return urljoin(base, location)


def _page(url: str, final: str, resp, max_bytes: int, redirected: bool) -> Page:
    try:
        if resp.status >= 400:
            raise InputError(url, f"the server answered HTTP {resp.status} {resp.reason or ''}".rstrip())
        ctype = (resp.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype and ctype not in PAGE_TYPES:
            raise InputError(url, f"not a web page (content type {ctype}); propscan reads HTML and plain text")
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise InputError(url, f"the page is {int(declared):,} bytes; at most {max_bytes:,} are fetched")
        chunks, size = [], 0
        for chunk in resp.stream(1 << 16):
            size += len(chunk)
            if size > max_bytes:
                raise InputError(url, f"the page is larger than {max_bytes:,} bytes; at most that is fetched")
            chunks.append(chunk)
    except InputError:
        raise
    except Exception as e:  # a connection dropped mid-body, a read timeout
        raise InputError(url, _why(e)) from None
    finally:
        resp.release_conn()
    fetched = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Page(url, final, b"".join(chunks), ctype or "text/html", fetched, redirected)


def _why(e: Exception) -> str:
    """A urllib3 failure in a few words."""
    text = str(e)
    reason = getattr(e, "reason", None)
    if reason is not None:
        text = str(reason)
    low = text.lower()
    if "name or service not known" in low or "nodename nor servname" in low or "failed to resolve" in low \
            or "temporary failure in name resolution" in low or "no address associated" in low:
        return "cannot resolve the host name (DNS)"
    if "certificate" in low or "ssl" in low or "tls" in low:
        return f"TLS failed ({_short(text)})"
    if "timed out" in low or "timeout" in low:
        return "timed out"
    if "refused" in low:
        return "connection refused"
    return f"fetch failed ({_short(text)})"


def _short(text: str, n: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
