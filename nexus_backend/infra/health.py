"""Is each service answering? Used by ``/health/`` and ``manage.py doctor``.

The broker check takes the Celery app from its caller (``nexus_backend.celery.app``): the app's module connects
the core's Celery signals, and infra, the bottom layer, imports nothing above it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from celery import Celery
from django.db import connection
from django_redis import get_redis_connection


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
        with connection.cursor() as cur:
            cur.execute("SELECT version()")
            return cur.fetchone()[0].split(" on ")[0]

    return _timed("database", run)


def check_cache() -> Check:
    def run():
        conn = get_redis_connection("default")
        conn.ping()
        return f"Redis {conn.info('server')['redis_version']}"

    return _timed("cache", run)


def check_broker(app: Celery) -> Check:
    def run():
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            return f"{conn.transport_cls} at {conn.as_uri()}"

    return _timed("broker", run)


def check_all(celery_app: Celery) -> list[Check]:
    return [check_database(), check_cache(), check_broker(celery_app)]
