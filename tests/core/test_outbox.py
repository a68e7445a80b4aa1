"""The transactional outbox (nexus_backend/core/outbox.py) against the real broker and PostgreSQL.

The broker-down case here points only the outbox's publishing connection at a closed port; the full outage (a
RabbitMQ node stopped and started under gunicorn and a worker) is tests/faults/test_broker_outage.py."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from celery.signals import after_task_publish
from django.db import transaction
from django.utils import timezone
from kombu import Connection

from nexus_backend.core import outbox
from nexus_backend.core.models import OutboxMessage
from nexus_backend.polls.tasks import close_poll

pytestmark = pytest.mark.django_db(transaction=True)
CLOSED_PORT = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens on port 1


@contextlib.contextmanager
def published():
    """The ids of the close_poll messages the broker accepted while inside the block."""
    seen: list[str] = []

    def on_publish(sender=None, headers=None, **_):
        if sender == close_poll.name:
            seen.append(headers["id"])

    after_task_publish.connect(on_publish)
    try:
        yield seen
    finally:
        after_task_publish.disconnect(on_publish)


@pytest.fixture
def broker_down(monkeypatch):
    """The outbox's broker connections go to a closed port while inside the block."""

    @contextlib.contextmanager
    def down():
        with monkeypatch.context() as patch:
            closed = lambda: Connection(CLOSED_PORT, transport_options={"max_retries": 0})  # noqa: E731
            patch.setattr(outbox, "broker_connection", closed)
            yield

    return down


def test_broker_down_keeps_the_task_pending_then_the_relay_sends_it_once(broker_down):
    with broker_down(), published() as seen, transaction.atomic():
        message = outbox.enqueue_on_commit(close_poll, 0, eta=timezone.now() + timedelta(hours=1))
    message.refresh_from_db()
    assert seen == [] and message.sent_at is None
    assert message.attempts == 1 and "Connection refused" in message.last_error
    assert outbox.pending_count() == 1

    with published() as seen:
        assert outbox.relay() == 1
        assert outbox.relay() == 0  # a sent row is never sent again
    message.refresh_from_db()
    assert seen == [str(message.task_id)] and message.sent_at is not None
    assert outbox.pending_count() == 0


def test_relay_sends_pending_rows_in_order_and_stops_at_the_first_broker_error(broker_down):
    rows = [OutboxMessage.objects.create(task=close_poll.name, args=[0]) for _ in range(3)]
    with broker_down():
        assert outbox.relay() == 0
    attempts = {m.pk: m.attempts for m in OutboxMessage.objects.all()}
    assert attempts == {rows[0].pk: 1, rows[1].pk: 0, rows[2].pk: 0}  # one failed attempt, the rest untouched
    with published() as seen:
        assert outbox.relay() == 3
    assert seen == [str(m.task_id) for m in rows]


def test_prune_deletes_old_sent_rows_only(settings):
    settings.NEXUS_OUTBOX_KEEP_DAYS = 7
    now = timezone.now()
    old_sent = OutboxMessage.objects.create(task=close_poll.name, args=[0], sent_at=now - timedelta(days=8))
    recent = OutboxMessage.objects.create(task=close_poll.name, args=[0], sent_at=now - timedelta(days=6))
    old_pending = OutboxMessage.objects.create(task=close_poll.name, args=[0], created_at=now - timedelta(days=30))
    assert outbox.prune(now=now) == 1
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {recent.pk, old_pending.pk}
    assert not OutboxMessage.objects.filter(pk=old_sent.pk).exists()
