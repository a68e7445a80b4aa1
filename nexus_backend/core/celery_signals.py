"""What Celery adds to logs and metrics, through its signals (connected by ``nexus_backend/celery.py``):

- **the request id follows the task**: ``before_task_publish`` (in the process that enqueues) copies the current
  request id into the message headers; in the worker ``task_prerun`` binds it (and the task's id and name) for the
  task's log records, and ``task_postrun`` unbinds them. A task enqueued by a task carries the same id on.
- **task outcomes**: ``task_success`` / ``task_failure`` / ``task_retry`` increment ``<task name>:<outcome>`` in a
  Redis hash. Workers are other processes (often other machines) than the web process that answers ``/metrics``;
  Redis is what both already share, so the scrape reads the hash (``prometheus.py``) instead of each worker
  exporting its own numbers.
- **worker logs**: the worker keeps Django's ``LOGGING`` (JSON or plain, with the ids) instead of Celery's own
  format; ``-l/--loglevel`` still sets how much Celery itself says.

Nothing here imports prometheus_client: gunicorn's master imports this module before it may (``multiproc.py``).
"""

from __future__ import annotations

import logging
import logging.config

from celery import signals
from django.conf import settings
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, connections
from django_redis import get_redis_connection

from nexus_backend.infra.errors import REDIS_ERRORS

from . import logs, request_id

logger = logging.getLogger(__name__)

#: The message header that carries the request id.
HEADER = "nexus_request_id"
OUTCOMES = ("success", "failure", "retry")


# --------------------------------------------------------------------------- the request id


def _publish(headers: dict | None = None, **_) -> None:
    rid = request_id.current()
    if rid and headers is not None:
        headers.setdefault(HEADER, rid)


def _prerun(task=None, task_id: str | None = None, **_) -> None:
    rid = request_id.sanitize(getattr(task.request, HEADER, None)) if task is not None else None
    request_id.bind(rid)
    logs.bind_task(task_id, getattr(task, "name", None))


def _postrun(**_) -> None:
    request_id.bind(None)
    logs.clear_task()


# --------------------------------------------------------------------------- task outcomes


def outcomes_key() -> str:
    """The Redis hash of task outcomes: under the cache's key prefix and the database name (the test database's
    counts stay apart from the development one's, like the cache statistics)."""
    database = connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]
    return caches["default"].make_key(f"metrics:{database}:celery_tasks")


def _redis():
    return get_redis_connection("default")


def task_outcome_record(task_name: str, outcome: str) -> None:
    """Count one outcome of ``task_name``. Never raises: a Redis outage costs the count, not the task."""
    try:
        _redis().hincrby(outcomes_key(), f"{task_name}:{outcome}", 1)
    except REDIS_ERRORS as exc:
        logger.warning("could not count %s of %s: %s: %s", outcome, task_name, type(exc).__name__, exc)


def task_outcomes() -> dict[tuple[str, str], int]:
    """``{(task name, outcome): count}`` since the counters started. Raises a Redis error when Redis is down."""
    counts: dict[tuple[str, str], int] = {}
    for field, value in _redis().hgetall(outcomes_key()).items():
        name, _, outcome = (field.decode() if isinstance(field, bytes) else field).rpartition(":")
        if name and outcome in OUTCOMES:
            counts[(name, outcome)] = int(value)
    return counts


def _success(sender=None, **_) -> None:
    task_outcome_record(sender.name, "success")


def _failure(sender=None, **_) -> None:
    task_outcome_record(sender.name, "failure")


def _retry(sender=None, **_) -> None:
    task_outcome_record(sender.name, "retry")


# --------------------------------------------------------------------------- worker logging


def _setup_logging(loglevel=None, **_) -> None:
    """A receiver here tells Celery not to install its own handlers: Django's ``LOGGING`` stays in force."""
    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger("celery").setLevel(loglevel)


def connect() -> None:
    signals.before_task_publish.connect(_publish, weak=False, dispatch_uid="nexus_request_id_publish")
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid="nexus_request_id_prerun")
    signals.task_postrun.connect(_postrun, weak=False, dispatch_uid="nexus_request_id_postrun")
    signals.task_success.connect(_success, weak=False, dispatch_uid="nexus_task_success")
    signals.task_failure.connect(_failure, weak=False, dispatch_uid="nexus_task_failure")
    signals.task_retry.connect(_retry, weak=False, dispatch_uid="nexus_task_retry")
    signals.setup_logging.connect(_setup_logging, weak=False, dispatch_uid="nexus_setup_logging")
