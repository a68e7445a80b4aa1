"""Polls, their options and votes. Every rule that is a fact about the data is enforced by PostgreSQL:

- one vote per user per poll (unique ``(poll, user)``);
- a vote's option belongs to the poll being voted on: a composite foreign key
  ``polls_vote (option_id, poll_id) -> polls_option (id, poll_id)``, which needs the unique ``(id, poll)`` on
  options (added with ``RunSQL`` in migration 0002, since Django has no composite foreign keys);
- a poll expires after it was created; questions and option texts are not blank; a counter is never negative;
- a cast vote is not edited (a trigger refuses ``UPDATE`` of its poll, option or user, migration 0003);
- ``Option.vote_count``, the denormalised counter the results endpoint reads, is incremented with ``F()`` in the
  vote's own transaction (``services.vote_cast``) and decremented by a statement-level trigger when votes are
  deleted (cascades from users, polls or the admin go around the services, never around the database).

Indexes match the real queries (see ``notebooks/01-schema-design.ipynb`` for their plans):

==============================  ===========================================================================
``vote_poll_option_idx``        results by poll: ``COUNT(*) ... WHERE poll_id = ? GROUP BY option_id``
                                (an index-only scan) and the composite foreign key's checks
``one_vote_per_user_per_poll``  "has this user voted here?" and the duplicate-vote guard
``polls_vote_option_id_*``      deleting an option (Django's cascade: ``DELETE ... WHERE option_id IN``)
``polls_vote_user_id_*``        a user's votes, and deleting a user
``option_text_unique_per_poll`` a poll's options (``WHERE poll_id = ?``); also no duplicate option texts
``poll_created_id_idx``         the poll list, newest first (``ORDER BY created_at DESC, id DESC LIMIT n``)
``poll_open_expires_idx``       open polls by expiry: the minutely ``close_expired_polls`` task and
                                ``?active=true`` (partial: closed polls, most of them, are not in it)
==============================  ===========================================================================

No index duplicates the leading column of another: ``vote.poll_id`` and ``option.poll_id`` get no index of their
own, because ``(poll, user)``, ``(poll, option)`` and ``(poll, text)`` already start with it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class Poll(models.Model):
    question = models.CharField(max_length=300)
    description = models.CharField(max_length=2000, blank=True, default="")  # bounded like every text field
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="polls")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    is_closed = models.BooleanField(default=False, help_text="Set by the close_expired_polls task or by hand.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=F("created_at")),
                name="poll_expires_after_creation",
            ),
            models.CheckConstraint(condition=Q(question__regex=r"\S"), name="poll_question_not_blank"),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="poll_created_id_idx"),
            models.Index(
                fields=["expires_at"],
                condition=Q(is_closed=False, expires_at__isnull=False),
                name="poll_open_expires_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.question

    def is_open(self, now=None) -> bool:
        now = now or timezone.now()
        return not self.is_closed and (self.expires_at is None or self.expires_at > now)


class Option(models.Model):
    # No index of its own: option_text_unique_per_poll (poll_id, text) starts with poll_id.
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="options", db_index=False)
    text = models.CharField(max_length=200)
    position = models.PositiveSmallIntegerField(default=0)
    vote_count = models.IntegerField(
        default=0,
        db_default=0,  # rows inserted outside Django (COPY, psql) start at zero too
        editable=False,
        help_text="Votes for this option, kept in step by services.vote_cast (F() + 1) and a delete trigger.",
    )

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["poll", "text"], name="option_text_unique_per_poll"),
            # Redundant as a key (id is unique already); it exists to be the target of the composite
            # foreign key polls_vote (option_id, poll_id) -> polls_option (id, poll_id).
            models.UniqueConstraint(fields=["id", "poll"], name="option_id_poll_unique"),
            models.CheckConstraint(condition=Q(text__regex=r"\S"), name="option_text_not_blank"),
            models.CheckConstraint(condition=Q(vote_count__gte=0), name="option_vote_count_not_negative"),
        ]

    def __str__(self) -> str:
        return self.text


class Vote(models.Model):
    # No index of its own: one_vote_per_user_per_poll and vote_poll_option_idx both start with poll_id.
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="votes", db_index=False)
    option = models.ForeignKey(Option, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="votes")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["poll", "user"], name="one_vote_per_user_per_poll"),
        ]
        indexes = [models.Index(fields=["poll", "option"], name="vote_poll_option_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} -> {self.option_id} (poll {self.poll_id})"


# Constraints and objects created with RunSQL (Django's model state does not describe them); the notebook,
# the services and the tests refer to them by these names.
VOTE_OPTION_IN_POLL_FK = "vote_option_belongs_to_poll"
VOTE_SUMMARY_VIEW = "polls_vote_summary"
VOTE_DELTA_TABLE = "polls_vote_delta"  # the "delta" counting strategy's pending votes (migration 0005)
