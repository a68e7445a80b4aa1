"""Writes of the caching app: metrics snapshots."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from . import metrics, selectors
from .models import CacheMetricsSnapshot
from .store import REDIS_ERRORS

logger = logging.getLogger(__name__)

SNAPSHOT_RETENTION = timedelta(days=7)


@transaction.atomic
def cache_metrics_snapshot_create() -> CacheMetricsSnapshot | None:
    """Sample the counters and store them with the window since the previous snapshot; ``None`` if Redis does
    not answer (the next snapshot's window then simply spans the gap)."""
    try:
        now = metrics.sample()
    except REDIS_ERRORS as exc:
        logger.warning("cache metrics snapshot skipped: Redis unavailable (%s)", exc)
        return None
    previous = selectors.cache_metrics_latest_snapshot()
    window = metrics.window(selectors.sample_of(previous) if previous else None, now)
    snapshot = CacheMetricsSnapshot.objects.create(
        taken_at=now.taken_at,
        redis_run_id=now.redis_run_id,
        keyspace_hits=now.keyspace_hits,
        keyspace_misses=now.keyspace_misses,
        counters=now.counters,
        window_seconds=window["seconds"],
        hit_ratio=window["redis"]["hit_ratio"],
        app_hit_ratio=window["application"]["hit_ratio"],
        window=window,
    )
    logger.info(
        "cache metrics: INFO hit ratio %s, application hit ratio %s over %s s",
        window["redis"]["hit_ratio"],
        window["application"]["hit_ratio"],
        window["seconds"],
    )
    return snapshot


def cache_metrics_snapshots_prune(*, now: datetime | None = None, keep: timedelta = SNAPSHOT_RETENTION) -> int:
    """Delete snapshots older than ``keep``; returns how many."""
    cutoff = (now or timezone.now()) - keep
    deleted, _ = CacheMetricsSnapshot.objects.filter(taken_at__lt=cutoff).delete()
    return deleted
