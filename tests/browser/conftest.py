"""Fixtures for the browser checks: the Chromium binary (or a clear skip) and the app under a real gunicorn."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from .harness import APP_HOST, ROOT, Browser, find_chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(
            "browser checks skipped: no Chromium found (looked for $CHROMIUM, chromium, chromium-browser, "
            "google-chrome); install it with `apt-get install chromium` (Debian/Ubuntu)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser checks skipped: the playwright package is missing (make install)")
    return path


class AppServer:
    """The app served by gunicorn exactly as the Docker image serves it (DEBUG off, collected static files)."""

    def __init__(self, gunicorn):
        self.gunicorn = gunicorn
        self.port = gunicorn.port
        self.url = f"http://{APP_HOST}:{self.port}"  # what the browser opens
        self.loopback = f"http://127.0.0.1:{self.port}"  # what the test process fetches


@pytest.fixture(scope="module")
def app_server(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[AppServer]:
    """gunicorn on the test database (the tests using it are marked django_db, so that database exists)."""
    from django.core.management import call_command
    from django.db import connections
    from django.test import override_settings

    from nexus_lab.benchmark import Gunicorn

    # What the Dockerfile does (WhiteNoise serves the result), into a folder of this test's own.
    static_root = tmp_path_factory.mktemp("staticfiles")
    with override_settings(STATIC_ROOT=static_root):
        call_command("collectstatic", interactive=False, verbosity=0)
    env = dict(os.environ)
    env.update(
        NEXUS_STATIC_ROOT=str(static_root),
        DJANGO_SETTINGS_MODULE="nexus_backend.settings",
        NEXUS_DB_NAME=str(connections["default"].settings_dict["NAME"]),  # the test database
        DEBUG="false",
        ALLOWED_HOSTS=f"{APP_HOST},127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    server = Gunicorn(root=ROOT, workers=2, env=env, as_deployed=True)
    server.start()
    try:
        server.wait_healthy()
        yield AppServer(server)
    finally:
        server.stop()


@contextmanager
def _orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps an asyncio loop marked as running in this thread while the browser is open,
    and Django then refuses ORM calls (the test database fixtures' own among them) as "async". Nothing runs
    concurrently here, so allow them for as long as the browser is open (the notebooks' bootstrap does the same)."""
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="module")
def app_browser(chromium, app_server) -> Iterator[Browser]:
    with _orm_beside_playwright():
        browser = Browser(chromium, app_port=app_server.port)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def file_browser(chromium) -> Iterator[Browser]:
    with _orm_beside_playwright():
        browser = Browser(chromium)
        try:
            yield browser
        finally:
            browser.close()
