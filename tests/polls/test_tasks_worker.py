"""Celery tasks executed by a real worker process over the active broker (RabbitMQ in CI, embedded Redis
by default), against the test database."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from nexus_backend.polls import services, tasks
from nexus_backend.polls.models import Poll
from tests.celery_worker import Worker, default_queue, new_queue

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker_queue(tmp_path):
    """A real ``celery worker`` subprocess consuming a queue of its own (so no other worker steals the task)."""
    env = dict(os.environ, NEXUS_DB_NAME=connection.settings_dict["NAME"])
    worker = Worker(log=tmp_path / "worker.log", env=env, queue=new_queue(), pool="solo")
    with worker.running(), default_queue(worker.queue):
        yield worker.queue


def _expired_poll(owner, question="expired?"):
    now = timezone.now()
    return Poll.objects.create(
        owner=owner,
        question=question,
        created_at=now - timedelta(hours=2),
        expires_at=now - timedelta(hours=1),
    )


def test_close_expired_polls_runs_on_a_real_worker(worker_queue):
    owner = get_user_model().objects.create_user("task-owner", password="x-Strong-pass-123")
    expired = _expired_poll(owner)
    open_poll = services.poll_create(owner=owner, question="still open?", options=["a", "b"])

    result = tasks.close_expired_polls.apply_async(queue=worker_queue)
    assert result.get(timeout=90) == 1
    expired.refresh_from_db()
    open_poll.refresh_from_db()
    assert expired.is_closed and not open_poll.is_closed
    # idempotent: a second run closes nothing more
    assert tasks.close_expired_polls.apply_async(queue=worker_queue).get(timeout=60) == 0


def test_poll_create_enqueues_its_close_after_commit(worker_queue):
    owner = get_user_model().objects.create_user("task-owner2", password="x-Strong-pass-123")
    poll = services.poll_create(
        owner=owner,
        question="closes itself?",
        options=["a", "b"],
        expires_at=timezone.now() + timedelta(seconds=2),
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        poll.refresh_from_db()
        if poll.is_closed:
            break
        time.sleep(0.5)
    assert poll.is_closed, "close_poll, enqueued on commit with eta=expires_at, should have closed the poll"


def test_nothing_is_enqueued_when_the_transaction_rolls_back(worker_queue):
    from celery.signals import after_task_publish
    from django.db import transaction

    from nexus_backend.core.models import OutboxMessage

    owner = get_user_model().objects.create_user("task-owner3", password="x-Strong-pass-123")
    published = []

    def on_publish(sender=None, headers=None, **_):
        if sender == tasks.close_poll.name:
            published.append(headers["id"])

    after_task_publish.connect(on_publish)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.poll_create(
                owner=owner,
                question="rolled back",
                options=["a", "b"],
                expires_at=timezone.now() + timedelta(hours=1),
            )
            raise RuntimeError("abort")
        assert published == [] and not OutboxMessage.objects.exists()
        services.poll_create(
            owner=owner,
            question="committed",
            options=["a", "b"],
            expires_at=timezone.now() + timedelta(hours=1),
        )
        message = OutboxMessage.objects.get()  # written in the poll's transaction, published after its commit
        assert published == [str(message.task_id)] and message.sent_at is not None
    finally:
        after_task_publish.disconnect(on_publish)
