"""The transactional outbox: Celery tasks a write asked for, stored in the write's own transaction.

See ``nexus_backend/core/outbox.py`` for how rows are written and relayed to the broker."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxMessage(models.Model):
    """One task to publish. Pending while ``sent_at`` is empty; the relay publishes it and sets ``sent_at``.

    ``task_id`` is the Celery task id: a message published twice (the broker took it, then the database failed to
    record that) carries the same id both times, so the duplicate is visible in the worker's log."""

    task_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.CharField(max_length=255, help_text="The task's registered name.")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    eta = models.DateTimeField(null=True, blank=True, help_text="Run no earlier than this.")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Publish attempts that failed.")
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [
            # The relay's only query: the pending rows in order. Sent rows (nearly all of them) stay out of it.
            models.Index(fields=["id"], condition=Q(sent_at__isnull=True), name="core_outbox_pending"),
            models.Index(fields=["sent_at"], name="core_outbox_sent_at"),
        ]

    def __str__(self) -> str:
        state = f"sent {self.sent_at:%Y-%m-%d %H:%M:%S}" if self.sent_at else "pending"
        return f"{self.task}{tuple(self.args)} [{state}]"
