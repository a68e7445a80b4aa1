"""Enqueue Celery tasks so that none is lost when the broker is down: the transactional outbox.

A service calls :func:`enqueue_on_commit` inside its transaction. That writes an ``OutboxMessage`` row in the
same transaction (so the task exists exactly when the write does) and, once the transaction commits, tries to
publish it at once. If the broker does not answer, the request still succeeds and the row stays pending; the
relay publishes pending rows later:

- the ``relay_outbox`` beat task, every ``NEXUS_OUTBOX_RELAY_SECONDS``;
- a worker that starts (``worker_ready``, see ``nexus_backend/core/tasks.py``) asks for one relay at once.

Delivery is at-least-once: a crash between the broker accepting a message and the database recording
``sent_at`` publishes it again. Tasks sent this way must be idempotent (they are: each takes ids and checks
state; docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from nexus_backend.celery import app

from .models import OutboxMessage

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args, eta: datetime | None = None, **kwargs) -> OutboxMessage:
    """Store ``task(*args, **kwargs)`` in the current transaction; publish it after commit (or later, by the relay).

    ``task`` is a Celery task (or its registered name). Outside a transaction the row is committed at once."""
    name = task if isinstance(task, str) else task.name
    with transaction.atomic():  # joins the caller's transaction; alone, it is one of its own
        message = OutboxMessage.objects.create(task=name, args=list(args), kwargs=kwargs, eta=eta)
    transaction.on_commit(lambda: relay(ids=[message.pk]), robust=True)
    return message


def broker_connection():
    """A connection for one relay. ``max_retries=0``: a broker that refuses connections fails the publish at once,
    instead of kombu retrying for the connect timeout (twice over) while a web request waits."""
    return app.connection_for_write(transport_options={"max_retries": 0})


def relay(*, ids: list[int] | None = None, limit: int = 500) -> int:
    """Publish pending messages (those in ``ids``, or the oldest ``limit``) and mark them sent.

    Rows are locked with ``SKIP LOCKED``: two relays never publish the same row. Stops at the first broker error
    (the rest would fail too) and leaves the rest pending. Returns how many were published."""
    published = 0
    with transaction.atomic(), contextlib.ExitStack() as stack:
        pending = OutboxMessage.objects.select_for_update(skip_locked=True).filter(sent_at__isnull=True)
        if ids is not None:
            pending = pending.filter(pk__in=ids)
        broker = None
        for message in pending.order_by("pk")[:limit]:
            try:
                if broker is None:
                    broker = stack.enter_context(broker_connection())
                app.send_task(
                    message.task,
                    args=message.args,
                    kwargs=message.kwargs,
                    eta=message.eta,
                    task_id=str(message.task_id),
                    connection=broker,
                    retry=False,
                )
            except Exception as exc:  # kombu raises several kinds (OperationalError, OSError, ...)
                message.attempts += 1
                message.last_error = f"{type(exc).__name__}: {exc}"[:500]
                message.save(update_fields=["attempts", "last_error"])
                logger.warning(
                    "outbox: the broker did not take %s (%s); it stays pending and is relayed later",
                    message,
                    message.last_error,
                )
                break
            message.sent_at = timezone.now()
            message.save(update_fields=["sent_at"])
            published += 1
    if published and ids is None:
        logger.info("outbox: relayed %d pending task(s)", published)
    return published


def prune(*, now: datetime | None = None) -> int:
    """Delete messages sent more than ``NEXUS_OUTBOX_KEEP_DAYS`` ago; pending ones are never deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.NEXUS_OUTBOX_KEEP_DAYS)
    deleted, _ = OutboxMessage.objects.filter(sent_at__lt=cutoff).delete()
    return deleted


def pending_count() -> int:
    return OutboxMessage.objects.filter(sent_at__isnull=True).count()
