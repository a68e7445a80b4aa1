"""Celery tasks of the caching app. Not acks_late: a snapshot is not idempotent (it adds a row)."""

import logging

from celery import shared_task

from .services import cache_metrics_snapshot_create, cache_metrics_snapshots_prune

logger = logging.getLogger(__name__)


@shared_task
def snapshot_cache_metrics() -> int | None:
    """Beat, every minute: store the cache metrics window since the last snapshot; prune old snapshots.
    Returns the new snapshot's id (``None`` when Redis did not answer)."""
    snapshot = cache_metrics_snapshot_create()
    pruned = cache_metrics_snapshots_prune()
    if pruned:
        logger.info("pruned %d old cache metrics snapshot(s)", pruned)
    return snapshot.pk if snapshot else None
