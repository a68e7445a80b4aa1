"""Celery tasks for polls. They take ids or nothing, and call services."""

import logging

from celery import shared_task

from .services import polls_close_expired

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)  # idempotent: closing an already-closed poll changes nothing
def close_expired_polls() -> int:
    closed = polls_close_expired()
    if closed:
        logger.info("closed %d expired poll(s)", closed)
    return closed
