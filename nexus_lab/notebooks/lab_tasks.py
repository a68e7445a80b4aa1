"""Tasks that only the lab's workers load (``celery worker --include nexus_lab.notebooks.lab_tasks``).

:func:`flaky` shows Celery's retries with exponential backoff on a task that fails a known number of times: each
attempt appends its start time to a Redis list, so notebook 04 measures the waits instead of assuming them."""

from __future__ import annotations

import time

from celery import shared_task

ATTEMPTS_TTL = 3600  # seconds the attempt log of one run is kept


class TransientError(RuntimeError):
    """A failure worth retrying (a timeout, a refused connection): ``flaky`` raises it on purpose."""


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def attempts(key: str) -> list[float]:
    """The start times (Unix seconds) of every attempt of the ``flaky`` run logged under ``key``."""
    return [float(t) for t in _redis().lrange(key, 0, -1)]


# idempotent: an attempt only appends its own start time, under the run's own key
@shared_task(
    name="nexus_lab.notebooks.lab_tasks.flaky",
    bind=True,
    autoretry_for=(TransientError,),
    retry_backoff=1,  # waits of 1, 2, 4, 8 ... seconds
    retry_backoff_max=60,
    retry_jitter=False,  # exact waits, so they can be checked; production tasks keep the jitter
    max_retries=5,
    acks_late=True,
)
def flaky(self, key: str, failures: int) -> int:
    """Fail the first ``failures`` attempts with :class:`TransientError`, then succeed; return the retries used."""
    client = _redis()
    client.rpush(key, f"{time.time():.6f}")
    client.expire(key, ATTEMPTS_TTL)
    if self.request.retries < failures:
        raise TransientError(f"attempt {self.request.retries + 1} of run {key} fails on purpose")
    return self.request.retries
