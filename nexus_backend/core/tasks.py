"""Core Celery tasks: relay the outbox (``outbox.py``), on a schedule and when a worker starts."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

from . import outbox

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)  # idempotent: a sent row is never sent again
def relay_outbox() -> dict:
    """Beat, every NEXUS_OUTBOX_RELAY_SECONDS: publish the tasks the broker missed; prune old sent rows."""
    return {"relayed": outbox.relay(), "pruned": outbox.prune()}


@worker_ready.connect
def _relay_when_a_worker_starts(sender=None, **_) -> None:
    """A worker that starts has a broker that answers: relay what waited, now rather than at the next beat.

    Sent as a task to a queue this worker consumes (the worker's main process does no database work)."""
    queues = getattr(getattr(sender, "task_consumer", None), "queues", None) or []
    try:
        relay_outbox.apply_async(queue=queues[0].name if queues else None, retry=False)
    except Exception as exc:  # the beat task catches up
        logger.warning("outbox: could not ask for a relay at worker start (%s)", exc)
