"""Celery tasks for polls. They take ids or nothing, and call services."""

import logging

from celery import shared_task

from .counting import deltas_fold, summary_refresh
from .services import poll_close_if_expired, polls_close_expired

logger = logging.getLogger(__name__)


# idempotent: closing an already-closed poll changes nothing
@shared_task(acks_late=True, reject_on_worker_lost=True)
def close_expired_polls() -> int:
    closed = polls_close_expired()
    if closed:
        logger.info("closed %d expired poll(s)", closed)
    return closed


@shared_task(acks_late=True, reject_on_worker_lost=True)
def close_poll(poll_id: int) -> bool:
    """Close one poll at its expiry (enqueued on commit by ``poll_create``). Idempotent."""
    closed = poll_close_if_expired(poll_id=poll_id)
    if closed:
        logger.info("closed poll %s at its expiry", poll_id, extra={"poll_id": poll_id})
    return closed


# idempotent: a refresh recomputes the whole view from the votes
@shared_task(acks_late=True, reject_on_worker_lost=True)
def refresh_vote_summary() -> float | None:
    """Refresh the ``summary`` counting strategy's materialised view (beat; see ``counting.py``).

    Returns the seconds the refresh took, or ``None`` when another refresh was already running."""
    took = summary_refresh()
    if took is None:
        logger.info("vote summary refresh skipped: another refresh is running")
    else:
        logger.info("vote summary refreshed in %.3f s", took)
    return took


# idempotent: a delta is deleted in the transaction that adds it to the counter, so a retried or killed fold
# counts nothing twice (acks_late: a fold lost with its worker is simply run again)
@shared_task(acks_late=True, reject_on_worker_lost=True)
def fold_vote_deltas() -> int | None:
    """Fold the ``delta`` counting strategy's pending votes into the counters (beat, every
    ``POLLS_DELTA_FOLD_SECONDS``; see ``counting.py``). Returns how many votes were folded, or ``None`` when
    another fold was running."""
    folded = deltas_fold()
    if folded:
        logger.info("folded %d pending vote(s) into the counters", folded)
    return folded
