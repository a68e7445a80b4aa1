"""Is each service answering? Used by ``/health/`` and ``manage.py doctor``."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    ms: float


def _timed(name, fn) -> Check:
    start = time.perf_counter()
    try:
        detail = fn()
        ok = True
    except Exception as exc:  # a health check reports every failure, it never raises
        detail, ok = f"{type(exc).__name__}: {exc}".strip()[:300], False
    return Check(name, ok, detail, round((time.perf_counter() - start) * 1000, 1))


def check_database() -> Check:
    def run():
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("SELECT version()")
            return cur.fetchone()[0].split(" on ")[0]

    return _timed("database", run)


def check_cache() -> Check:
    def run():
        from django_redis import get_redis_connection

        conn = get_redis_connection("default")
        conn.ping()
        return f"Redis {conn.info('server')['redis_version']}"

    return _timed("cache", run)


def check_broker() -> Check:
    def run():
        from nexus_backend.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            return f"{conn.transport_cls} at {conn.as_uri()}"

    return _timed("broker", run)


def check_all() -> list[Check]:
    return [check_database(), check_cache(), check_broker()]
