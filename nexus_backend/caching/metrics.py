"""Cache metrics: the curriculum's ``get_redis_cache_metrics()``, and what an operator needs beside it.

``get_redis_cache_metrics()`` reads ``keyspace_hits`` and ``keyspace_misses`` from Redis ``INFO``. Those counters
belong to the whole server, since it started: every client, every database (Celery's results, rate limits, another
checkout sharing the server), and every lookup — including the version counters this app reads before each value.
So beside it:

- :func:`sample` reads the INFO counters and this app's own counters (the stats hash, incremented by the read
  script in the same round trip as the lookup it counts) in one pipeline;
- :func:`window` turns two samples into deltas over the time between them: INFO-based and per-namespace hit
  ratios side by side, and the gap between them;
- :class:`measure` wraps a block of code in a window (the notebook and the tests use it).

A hit ratio over nothing is ``None`` (``null`` in JSON), not a number, except in ``get_redis_cache_metrics()``,
which keeps the curriculum's ``0``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone
from django_redis import get_redis_connection

from . import keys
from .config import get_config
from .store import REDIS_ERRORS, availability, connection

logger = logging.getLogger(__name__)

# counter in the stats hash -> its name in a window
_COUNTER_NAMES = {
    "hit": "hits",
    "miss": "misses",
    "compute": "computes",
    "coalesced": "coalesced",
    "discarded": "discarded",
}


def hit_ratio(hits: int, misses: int) -> float | None:
    total = hits + misses
    return hits / total if total > 0 else None


def get_redis_cache_metrics() -> dict:
    """Redis keyspace hits and misses from ``INFO`` (through django-redis) and ``hit_ratio = hits / (hits +
    misses)`` (``0`` when there were no lookups). Logged, and returned as a dict. Server-wide and since the
    server started: see :func:`window` for deltas and this app's own per-namespace counts."""
    try:
        info = get_redis_connection(get_config().alias).info("stats")
    except REDIS_ERRORS as exc:
        logger.warning("Redis cache metrics unavailable: %s: %s", type(exc).__name__, exc)
        return {"keyspace_hits": 0, "keyspace_misses": 0, "total_requests": 0, "hit_ratio": 0, "error": str(exc)}
    hits = int(info.get("keyspace_hits", 0))
    misses = int(info.get("keyspace_misses", 0))
    total_requests = hits + misses
    ratio = hits / total_requests if total_requests > 0 else 0
    metrics = {"keyspace_hits": hits, "keyspace_misses": misses, "total_requests": total_requests, "hit_ratio": ratio}
    logger.info("Redis cache metrics: %s", metrics)
    return metrics


@dataclass(frozen=True)
class Sample:
    """Cumulative counters at one moment: Redis INFO's and this app's stats hash."""

    taken_at: datetime
    redis_run_id: str
    keyspace_hits: int
    keyspace_misses: int
    counters: dict[str, int] = field(default_factory=dict)  # "poll_results:hit" -> n, "errors:read" -> n


def sample() -> Sample:
    """INFO server + INFO stats + the stats hash, in one pipeline (one round trip). Raises a Redis error if Redis
    does not answer."""
    pipe = connection().pipeline(transaction=False)
    pipe.info("server")
    pipe.info("stats")
    pipe.hgetall(keys.stats_key(keys.root()))
    server, stats, counters = pipe.execute()
    return Sample(
        taken_at=timezone.now(),
        redis_run_id=str(server.get("run_id", "")),
        keyspace_hits=int(stats.get("keyspace_hits", 0)),
        keyspace_misses=int(stats.get("keyspace_misses", 0)),
        counters={_text(k): int(v) for k, v in counters.items()},
    )


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def record(namespace: str, *, hits: int = 0, misses: int = 0) -> None:
    """Count lookups of another cache namespace (e.g. rate limits) in the same stats hash, so the metrics endpoint
    and the notebook show it beside the poll namespaces. Never raises."""
    try:
        pipe = connection().pipeline(transaction=False)
        stats = keys.stats_key(keys.root())
        if hits:
            pipe.hincrby(stats, keys.counter_field(namespace, "hit"), hits)
        if misses:
            pipe.hincrby(stats, keys.counter_field(namespace, "miss"), misses)
        pipe.execute()
    except REDIS_ERRORS as exc:
        availability.failed("metrics", exc)


def _delta(after: int, before: int) -> int:
    return after - before if after >= before else after  # a counter that went back was reset: count from zero


def namespaces_in(counters: dict[str, int]) -> list[str]:
    found = {name.split(":", 1)[0] for name in counters if ":" in name}
    found.discard("errors")
    return sorted(found | set(keys.NAMESPACES))


def window(before: Sample | None, after: Sample) -> dict:
    """Deltas between two samples (``before=None``: everything counted so far). If Redis restarted in between
    (its ``run_id`` changed), the counters started again from zero and ``after``'s values are the deltas."""
    restarted = before is not None and before.redis_run_id != after.redis_run_id
    base = None if before is None or restarted else before

    def delta(name: str) -> int:
        return _delta(after.counters.get(name, 0), base.counters.get(name, 0) if base else 0)

    hits = _delta(after.keyspace_hits, base.keyspace_hits if base else 0)
    misses = _delta(after.keyspace_misses, base.keyspace_misses if base else 0)
    namespaces: dict[str, dict[str, Any]] = {}  # counts (int) and "hit_ratio" (float or None) per namespace
    for ns in namespaces_in(after.counters):
        counts: dict[str, Any] = {
            plural: delta(keys.counter_field(ns, counter)) for counter, plural in _COUNTER_NAMES.items()
        }
        counts["hit_ratio"] = hit_ratio(counts["hits"], counts["misses"])
        namespaces[ns] = counts
    app_hits = sum(c["hits"] for c in namespaces.values())
    app_misses = sum(c["misses"] for c in namespaces.values())
    redis_ratio, app_ratio = hit_ratio(hits, misses), hit_ratio(app_hits, app_misses)
    errors = {name.split(":", 1)[1]: delta(name) for name in sorted(after.counters) if name.startswith("errors:")}
    return {
        "started_at": before.taken_at.isoformat() if before else None,
        "ended_at": after.taken_at.isoformat(),
        "seconds": round((after.taken_at - before.taken_at).total_seconds(), 3) if before else None,
        "redis": {"keyspace_hits": hits, "keyspace_misses": misses, "hit_ratio": redis_ratio, "restarted": restarted},
        "namespaces": namespaces,
        "application": {"hits": app_hits, "misses": app_misses, "hit_ratio": app_ratio},
        "ratio_gap": None if redis_ratio is None or app_ratio is None else app_ratio - redis_ratio,
        "errors": {name: count for name, count in errors.items() if count},
    }


class measure:
    """``with measure() as m: ...`` then ``m.result`` is the :func:`window` over the block."""

    def __init__(self) -> None:
        self.before: Sample | None = None
        self.after: Sample | None = None
        self.result: dict | None = None

    def __enter__(self) -> measure:
        self.before = sample()
        return self

    def __exit__(self, *exc_info) -> None:
        self.after = sample()
        self.result = window(self.before, self.after)
