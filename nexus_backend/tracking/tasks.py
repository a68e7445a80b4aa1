"""Celery tasks for request tracking: move request logs into PostgreSQL, prune old ones."""

from __future__ import annotations

import logging

from celery import shared_task

from . import flusher, services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)  # idempotent: request_id makes a repeated flush insert nothing twice
def flush_request_logs() -> dict:
    """Beat, every NEXUS_REQUEST_LOG_FLUSH_SECONDS: Redis stream (and spool files) -> RequestLog, with COPY."""
    return flusher.flush().as_dict()


@shared_task(acks_late=True)  # idempotent: deleting what is already gone deletes nothing
def prune_request_logs() -> int:
    """Beat, daily: delete request logs older than NEXUS_REQUEST_LOG_RETENTION_DAYS."""
    return services.request_log_prune()
