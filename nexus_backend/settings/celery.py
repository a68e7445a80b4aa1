"""Celery: broker, results, limits, the transactional outbox's relay, and every periodic task in one schedule."""

from __future__ import annotations

import os

from celery.schedules import crontab

from nexus_backend.infra.embedded import state_dir

from .database import SERVICES
from .env import env_float, env_int
from .polls import POLLS_DELTA_FOLD_SECONDS
from .tracking import NEXUS_REQUEST_LOG_FLUSH_SECONDS

CELERY_BROKER_URL = SERVICES.broker_url
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", SERVICES.redis_url)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"  # TIME_ZONE (base.py)
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_ALWAYS_EAGER = False

# Tasks a write asks for go through the transactional outbox (nexus_backend/core/outbox.py): a broker that is down
# delays them, never loses them. Tasks that are safe to run twice say so per task (acks_late=True,
# reject_on_worker_lost=True), so a worker killed mid-task has it delivered again.
NEXUS_OUTBOX_RELAY_SECONDS = env_float("NEXUS_OUTBOX_RELAY_SECONDS", 10.0, 1.0)
NEXUS_OUTBOX_KEEP_DAYS = env_int("NEXUS_OUTBOX_KEEP_DAYS", 7, 1)

CELERY_BEAT_SCHEDULE = {
    "close-expired-polls": {
        "task": "nexus_backend.polls.tasks.close_expired_polls",
        "schedule": crontab(minute="*"),
    },
    "fold-vote-deltas": {  # the "delta" counting strategy (nexus_backend/polls/counting.py)
        "task": "nexus_backend.polls.tasks.fold_vote_deltas",
        "schedule": POLLS_DELTA_FOLD_SECONDS,
        "options": {"expires": max(POLLS_DELTA_FOLD_SECONDS * 5, 5.0)},
    },
    "refresh-vote-summary": {  # the materialised-view counting strategy (nexus_backend/polls/counting.py)
        "task": "nexus_backend.polls.tasks.refresh_vote_summary",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "snapshot-cache-metrics": {
        "task": "nexus_backend.caching.tasks.snapshot_cache_metrics",
        "schedule": crontab(minute="*"),
    },
    "flush-request-logs": {
        "task": "nexus_backend.tracking.tasks.flush_request_logs",
        "schedule": NEXUS_REQUEST_LOG_FLUSH_SECONDS,
        "options": {"expires": NEXUS_REQUEST_LOG_FLUSH_SECONDS * 2},  # a backlog of flushes is pointless
    },
    "prune-request-logs": {
        "task": "nexus_backend.tracking.tasks.prune_request_logs",
        "schedule": crontab(hour=3, minute=17),
    },
    "detect-suspicious-ips": {
        "task": "nexus_backend.tracking.tasks.detect_suspicious_ips",
        "schedule": crontab(minute=5),  # hourly, once the last hour's request logs have been flushed
        "options": {"expires": 3000},
    },
    "relay-outbox": {
        "task": "nexus_backend.core.tasks.relay_outbox",
        "schedule": NEXUS_OUTBOX_RELAY_SECONDS,
        "options": {"expires": NEXUS_OUTBOX_RELAY_SECONDS * 2},  # one relay publishes every pending row
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(state_dir() / "celerybeat-schedule")
