"""Where the database, cache and broker are: read from the environment, or the embedded servers.

This is the only place that decides. ``settings/database.py`` calls :func:`resolve` once per process.

- ``DATABASE_URL`` set  -> that PostgreSQL. Unset -> the embedded one (started if needed).
- ``REDIS_URL`` set     -> that Redis. Unset -> the embedded one.
- ``CELERY_BROKER_URL`` -> that broker; unset -> the Redis above (database 1).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

import dj_database_url

from . import embedded


@dataclass(frozen=True)
class ServiceConfig:
    mode: str  # "embedded", "services" or "mixed"
    database: dict[str, Any]
    redis_url: str
    broker_url: str
    sources: dict = field(default_factory=dict)

    def describe(self) -> dict[str, str]:
        db = self.database
        where = db.get("HOST") or "localhost"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return {
            "database": f"postgresql://{db.get('USER') or ''}@{where}{port}/{db['NAME']}",
            "cache": self.redis_url,
            "broker": _hide_password(self.broker_url),
        }


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss") and parts.path in ("", "/"):
        return f"{url.rstrip('/')}/{db}"
    return url


BROKER_SCHEMES = ("amqp://", "amqps://", "pyamqp://", "redis://", "rediss://")


def resolve(env: Mapping[str, str] | None = None) -> ServiceConfig:
    env = os.environ if env is None else env
    sources: dict[str, str] = {}
    # `manage.py embedded stop|status` must look at the embedded servers without starting them.
    autostart = env.get("NEXUS_EMBEDDED_AUTOSTART", "1") != "0"

    database_url = env.get("DATABASE_URL", "").strip()
    if database_url:
        if not database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
            raise SystemExit(
                f"error: DATABASE_URL must be a PostgreSQL URL (postgres://user@host:port/name), got {database_url!r}"
            )
        # A DBConfig TypedDict; used as the plain settings dict it is.
        database = cast(dict[str, Any], dj_database_url.parse(database_url, conn_max_age=60, conn_health_checks=True))
        sources["database"] = "DATABASE_URL"
    else:
        pg = embedded.postgres_location() if not autostart else _embedded_or_exit(embedded.ensure_postgres)
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": embedded.DB_NAME,
            "USER": "postgres",
            "PASSWORD": "",
            "HOST": pg.socket_dir,
            "PORT": "",
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
        sources["database"] = "embedded"
    if env.get("NEXUS_DB_NAME"):  # used by tests to point subprocesses (workers) at the test database
        database["NAME"] = env["NEXUS_DB_NAME"]
    database.setdefault("OPTIONS", {})["connect_timeout"] = 5

    redis_url = env.get("REDIS_URL", "").strip()
    if redis_url:
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SystemExit(f"error: REDIS_URL must be a redis:// URL, got {redis_url!r}")
        sources["cache"] = "REDIS_URL"
    else:
        redis = embedded.redis_location() if not autostart else _embedded_or_exit(embedded.ensure_redis)
        redis_url = redis.url + "/0"
        sources["cache"] = "embedded"

    broker_url = env.get("CELERY_BROKER_URL", "").strip()
    if broker_url:
        if not broker_url.startswith(BROKER_SCHEMES):
            shown = _hide_password(broker_url)
            raise SystemExit(f"error: CELERY_BROKER_URL must be an amqp:// (RabbitMQ) or redis:// URL, got {shown!r}")
        sources["broker"] = "CELERY_BROKER_URL"
    else:
        broker_url = _with_db(redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url, 1)
        sources["broker"] = f"{sources['cache']} (Redis database 1)"

    embedded_parts = [k for k in ("database", "cache") if sources[k] == "embedded"]
    mode = "embedded" if len(embedded_parts) == 2 else ("services" if not embedded_parts else "mixed")
    return ServiceConfig(mode=mode, database=database, redis_url=redis_url, broker_url=broker_url, sources=sources)


def _embedded_or_exit(start):
    try:
        return start()
    except embedded.EmbeddedServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
