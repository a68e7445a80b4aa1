"""The request log's Redis side, shared by the recorder (writes), the flusher (reads) and the block list: the key
names (per cache prefix and database), the Redis client with short timeouts, the spool folder, and the ``COPY``
text line a record becomes (``escape``, ``valid_line``)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import redis
from django.conf import settings
from django.db import connections
from redis.backoff import NoBackoff
from redis.retry import Retry

FIELDS = 10  # request_id, ts, ip, method, path, status, duration_ms, user_id, user_agent, referrer
LIMITS = {"method": 16, "path": 2048, "user_agent": 512, "referrer": 1024}  # the RequestLog column sizes
_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": None})


# ------------------------------------------------------------------------------------------- names and clients


def _database() -> str:
    return str(connections["default"].settings_dict["NAME"])  # tests: the test database gets its own keys


def _key(suffix: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "nexus"
    return f"{prefix}:tracking:{_database()}:{suffix}"


def stream_key() -> str:
    return _key("requestlog")


def lost_key() -> str:
    return _key("requestlog-lost")


def blocklist_version_key() -> str:
    return _key("blocklist-version")


def spool_dir() -> Path:
    """One folder per database: records spooled for one database are never replayed into another's stream."""
    return Path(settings.NEXUS_REQUEST_LOG_SPOOL_DIR) / _database()


def new_redis_client() -> redis.Redis:
    """A client for the tracking keys: short timeouts and no retries, so an outage is noticed at once."""
    return redis.Redis.from_url(
        cast(str, settings.CACHES["default"]["LOCATION"]),  # the settings give one URL
        socket_timeout=2,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


def escape(value: str, limit: int) -> str:
    """COPY text format: backslash, tab, newline and carriage return escaped, NUL dropped, cut to ``limit``."""
    return value[:limit].translate(_ESCAPE)


def valid_line(line: str) -> bool:
    if line.count("\t") != FIELDS - 1:
        return False
    request_id = line[:32]
    return len(request_id) == 32 and line[32] == "\t" and all(c in "0123456789abcdef" for c in request_id)
