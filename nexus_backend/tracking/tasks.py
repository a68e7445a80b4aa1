"""Celery tasks for request tracking: move request logs into PostgreSQL, prune old ones."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task

from . import flusher, services
from .detection.replay import aggregate_chunk
from .detection.services import detect_window

logger = logging.getLogger(__name__)


# idempotent: request_id makes a repeated flush insert nothing twice
@shared_task(acks_late=True, reject_on_worker_lost=True)
def flush_request_logs() -> dict:
    """Beat, every NEXUS_REQUEST_LOG_FLUSH_SECONDS: Redis stream (and spool files) -> RequestLog, with COPY."""
    return flusher.flush().as_dict()


# idempotent: deleting what is already gone deletes nothing
@shared_task(acks_late=True, reject_on_worker_lost=True)
def prune_request_logs() -> int:
    """Beat, daily: delete request logs older than NEXUS_REQUEST_LOG_RETENTION_DAYS."""
    return services.request_log_prune()


# idempotent: the same window upserts the same SuspiciousIP rows
@shared_task(acks_late=True, reject_on_worker_lost=True)
def detect_suspicious_ips(window_start: str | None = None, window_end: str | None = None) -> dict:
    """Beat, hourly: the detector over the last complete window of RequestLog -> SuspiciousIP (and auto-blocks)."""
    start = datetime.fromisoformat(window_start) if window_start else None
    end = datetime.fromisoformat(window_end) if window_end else None
    return detect_window(start=start, end=end).as_dict()


@shared_task
def replay_chunk(path: str, fmt: str, start_line: int, stop_line: int, rules_path: str | None = None) -> dict:
    """One chunk of a distributed replay: lines [start_line, stop_line) -> a partial per-IP aggregate (JSON)."""
    return aggregate_chunk(path, fmt, start_line, stop_line, rules_path)
