"""Headless Chromium for the report tests: Debian's /usr/bin/chromium driven by Playwright.

Never downloads a browser (no ``playwright install``): without /usr/bin/chromium (or without the
playwright package) the browser tests are skipped with a message, except under CI (the CI variable
set), where they fail, so a broken CI image cannot pass silently. ``make browser`` installs both.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from conftest import unavailable

CHROMIUM = Path(os.environ.get("PROPSCAN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parent / "output"


def _unavailable(why: str) -> None:
    unavailable(f"browser tests need {why}; run `make browser` (apt chromium + pip playwright)")


def require_browser() -> None:
    if not CHROMIUM.exists():
        _unavailable(f"Debian chromium at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package")


@contextmanager
def launch() -> Iterator["object"]:
    """Yield a Playwright Browser running the system Chromium headless."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class Recording:
    """What a page did that a test must see: dialogs (each dismissed), script and console errors, requests."""

    def record(self, page, requests_from=None) -> None:
        """Start recording ``page``; requests are read from ``requests_from`` (e.g. its context) if given."""
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        (requests_from or page).on("request", lambda r: self.requests.append(r.url))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()
