"""Log records an operator can search: JSON lines (python-json-logger) or plain text, each stamped with the request id.

``settings.LOGGING`` is built by :func:`logging_config`: one console handler (stderr) whose :class:`ContextFilter`
adds ``request_id`` to every record (``null`` outside a request), and inside a Celery task also ``task_id`` and
``task_name`` (``celery_signals.py`` binds them). ``NEXUS_LOG_FORMAT=json`` writes one JSON object per line::

    {"timestamp": "2026-11-26T06:10:00.123+00:00", "level": "INFO", "logger": "nexus_backend.polls.tasks",
     "message": "closed poll 7 at its expiry", "request_id": "5c0e…", "task_id": "…", "task_name": "…"}

Fields passed with ``logger.info(..., extra={...})`` become JSON fields too.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

from . import request_id

FORMATS = ("json", "plain")

#: (task id, task name) of the Celery task running in this context.
_task: ContextVar[tuple[str, str] | None] = ContextVar("nexus_task", default=None)


def bind_task(task_id: str | None, task_name: str | None) -> None:
    _task.set((task_id or "", task_name or "") if task_id or task_name else None)


def clear_task() -> None:
    _task.set(None)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` (and ``task_id``/``task_name`` in a task) to each record; never drops one. Outside a
    request the id is ``missing`` (``null`` in JSON, ``-`` in plain text)."""

    def __init__(self, missing: str | None = None):
        super().__init__()
        self.missing = missing

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.current() or self.missing
        task = _task.get()
        if task is not None:
            record.task_id, record.task_name = task
        return True


def logging_config(*, log_format: str, root_level: str, app_level: str) -> dict:
    """The ``LOGGING`` dict for ``log_format`` (``json`` or ``plain``)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {log_format!r}")
    formatters = {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": ["levelname", "name", "message"],
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": True,  # ISO 8601, UTC
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "nexus_backend.core.logs.ContextFilter", "missing": None if log_format == "json" else "-"}
        },
        "formatters": {log_format: formatters[log_format]},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": root_level},
        "loggers": {
            "nexus_backend": {"level": app_level, "propagate": True},
            # Django's default config gives "django" a console handler of its own (with DEBUG on): every line would
            # be written twice, once not in this format. Its records go through the root handler only.
            "django": {"level": root_level, "handlers": [], "propagate": True},
        },
    }
