"""Reads of the caching app: metrics now, and their history."""

from __future__ import annotations

from . import metrics
from .models import CacheMetricsSnapshot
from .store import REDIS_ERRORS, availability

HISTORY_DEFAULT, HISTORY_MAX = 60, 1440


def cache_metrics_latest_snapshot() -> CacheMetricsSnapshot | None:
    return CacheMetricsSnapshot.objects.order_by("-taken_at", "-id").first()


def cache_metrics_history(*, limit: int = HISTORY_DEFAULT) -> list[CacheMetricsSnapshot]:
    """The latest ``limit`` snapshots, newest first."""
    return list(CacheMetricsSnapshot.objects.order_by("-taken_at", "-id")[:limit])


def sample_of(snapshot: CacheMetricsSnapshot) -> metrics.Sample:
    return metrics.Sample(
        taken_at=snapshot.taken_at,
        redis_run_id=snapshot.redis_run_id,
        keyspace_hits=snapshot.keyspace_hits,
        keyspace_misses=snapshot.keyspace_misses,
        counters={str(k): int(v) for k, v in (snapshot.counters or {}).items()},
    )


def cache_metrics_current(*, history: int = HISTORY_DEFAULT) -> dict:
    """What ``GET /api/metrics/cache/`` answers: the window since the latest snapshot (or since the counters
    started, when there is none), the curriculum's since-boot figures, this process's view of Redis, and the
    recent snapshots."""
    snapshots = cache_metrics_history(limit=history)
    try:
        now = metrics.sample()
        current = metrics.window(sample_of(snapshots[0]) if snapshots else None, now)
        error = None
    except REDIS_ERRORS as exc:
        current, error = None, f"{type(exc).__name__}: {exc}"
    return {
        "redis_available": error is None,
        "error": error,
        "window": current,
        "since_boot": metrics.get_redis_cache_metrics() if error is None else None,
        "process": availability.snapshot(),
        "history": [
            {
                "taken_at": s.taken_at,
                "window_seconds": s.window_seconds,
                "hit_ratio": s.hit_ratio,
                "app_hit_ratio": s.app_hit_ratio,
                "keyspace_hits": s.keyspace_hits,
                "keyspace_misses": s.keyspace_misses,
                "window": s.window,
            }
            for s in snapshots
        ],
    }
