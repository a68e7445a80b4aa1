"""The security suite (issue "Safe on the internet"; docs/security.md): each test replays an attack that worked
against a live server and shows it failing. Those shown against a live server run against a real gunicorn here,
started as the Docker image starts it (gunicorn.conf.py's gthread workers and timeouts), on the test database."""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

import pytest
from django.db import connections

from nexus_lab.benchmark import Gunicorn

ROOT = Path(__file__).resolve().parents[2]


def start_web(**env_overrides: str) -> Gunicorn:
    env = dict(os.environ)
    env.update(
        NEXUS_DB_NAME=str(connections["default"].settings_dict["NAME"]),  # the test database
        DEBUG="false",
        PYTHONUNBUFFERED="1",
        **env_overrides,
    )
    server = Gunicorn(root=ROOT, workers=2, env=env, as_deployed=True)
    server.start()
    try:
        server.wait_healthy()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker):
    """gunicorn in development mode (the default checkout) on the test database."""
    server = start_web()
    try:
        yield server
    finally:
        server.stop()


def call(port: int, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 30):
    """One request to 127.0.0.1:``port``; returns (status, headers, parsed JSON body or raw bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw
        return response.status, dict(response.getheaders()), parsed
    finally:
        conn.close()
