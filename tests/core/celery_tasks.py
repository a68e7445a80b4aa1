"""Tasks that only the tests' workers load (``--include tests.core.celery_tasks``): one that succeeds, one that
fails, one that retries once and then succeeds, so /metrics can be checked against outcomes known in advance."""

from __future__ import annotations

from celery import shared_task


class Boom(RuntimeError):
    pass


@shared_task(name="tests.core.celery_tasks.succeed")
def succeed() -> str:
    return "ok"


@shared_task(name="tests.core.celery_tasks.fail")
def fail() -> None:
    raise Boom("this task always fails")


@shared_task(name="tests.core.celery_tasks.retry_once", bind=True, max_retries=1, default_retry_delay=0)
def retry_once(self) -> int:
    if self.request.retries == 0:
        raise self.retry(exc=Boom("first attempt fails"), countdown=0)
    return self.request.retries
