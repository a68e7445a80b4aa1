"""Headless Chromium for the browser checks: find it, start it offline, open a page and record what it did.

Every page is opened in a fresh browser context that records each request, console error, uncaught exception
and HTTP error. A request to any host other than the app's own is aborted before it leaves (and recorded), so
"no request leaves the machine" holds even where the network is open; the assertion then names what tried.

The app is browsed as ``http://nexus.test:<port>/`` (Chromium maps that name to 127.0.0.1) rather than
``127.0.0.1``: pages that treat localhost specially (Swagger UI skips its online validator there, for one)
behave as they would under a real domain. ``--unsafely-treat-insecure-origin-as-secure`` makes that origin
count as secure, as HTTPS would in production (otherwise Chromium logs that it ignores the COOP header).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "browser"  # git-ignored; CI uploads it
APP_HOST = "nexus.test"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1", APP_HOST}
LOCAL_SCHEMES = {"data", "blob", "file", "about"}
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Offline: without these Chromium contacts Google (component updates, sync, field trials, QUIC probes).
OFFLINE_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def find_chromium() -> str | None:
    """``$CHROMIUM`` if set, else the first Chromium/Chrome on PATH (Debian: ``apt-get install chromium``)."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    for name in CANDIDATES:
        if found := shutil.which(name):
            return found
    return None


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and (parts.hostname or "") in {
        h.strip("[]") for h in LOCAL_HOSTS
    }


@dataclass
class Visit:
    """What one page did: every request, the ones that tried to leave the machine, and every error."""

    page: object
    requests: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.external, f"requests that tried to leave the machine: {self.external}"
        assert not self.errors, "errors in the browser:\n" + "\n".join(self.errors)

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


class Browser:
    """One headless Chromium process (Playwright's driver, the system's Chromium binary)."""

    def __init__(self, executable: str, *, app_port: int | None = None):
        from playwright.sync_api import sync_playwright

        args = list(OFFLINE_ARGS)
        if app_port is not None:
            args += [
                f"--host-resolver-rules=MAP {APP_HOST} 127.0.0.1",
                f"--unsafely-treat-insecure-origin-as-secure=http://{APP_HOST}:{app_port}",
            ]
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(executable_path=executable, args=args)
        except Exception:
            self._playwright.stop()
            raise
        self.version = self._browser.version

    def close(self) -> None:
        try:
            self._browser.close()
        finally:
            self._playwright.stop()

    @contextmanager
    def visit(
        self, url: str, *, name: str, ready: Callable[[object], None], full_page: bool = False, timeout_ms: int = 30_000
    ) -> Iterator[Visit]:
        """Open ``url``, wait for ``ready(page)`` (the page really rendered) and for the network to go quiet, then
        save ``artifacts/browser/<name>.png`` (``<name>-failed.png`` if the page never got ready)."""
        context = self._browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
        context.set_default_timeout(timeout_ms)
        page = context.new_page()
        visit = Visit(page)

        def on_request(request) -> None:
            visit.requests.append(request.url)

        def on_response(response) -> None:
            if response.status >= 400:
                visit.errors.append(f"HTTP {response.status}: {response.url}")

        def on_console(message) -> None:
            if message.type == "error":
                visit.errors.append(f"console error: {message.text} ({message.location.get('url', '')})")

        def block(route) -> None:
            visit.external.append(route.request.url)
            route.abort("blockedbyclient")

        def on_failed(request) -> None:
            if request.url not in visit.external:  # those are reported as external already
                visit.errors.append(f"request failed ({request.failure}): {request.url}")

        page.on("request", on_request)
        page.on("response", on_response)
        page.on("console", on_console)
        page.on("pageerror", lambda exc: visit.errors.append(f"uncaught exception: {exc}"))
        page.on("requestfailed", on_failed)
        context.route(lambda url: not is_local(url), block)
        try:
            try:
                page.goto(url)
                ready(page)
                page.wait_for_load_state("networkidle")
            except Exception as exc:
                visit.screenshot(f"{name}-failed", full_page=full_page)
                raise AssertionError(
                    f"{url} did not render: {str(exc).splitlines()[0]}\n"
                    f"requests that tried to leave the machine: {visit.external}\nerrors: {visit.errors}\n"
                    f"screenshot: {SCREENSHOTS / name}-failed.png"
                ) from exc
            visit.screenshot(name, full_page=full_page)
            (SCREENSHOTS / f"{name}-failed.png").unlink(missing_ok=True)  # from an earlier failed run
            yield visit
        finally:
            context.close()
