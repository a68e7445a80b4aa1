"""Reads. Views, resolvers, tasks and notebooks call these; they hold no query logic of their own."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from nexus_backend.core.exceptions import NotFound

from .models import Option, Poll


def poll_list(*, active: bool | None = None, owner_id: int | None = None) -> QuerySet[Poll]:
    """Polls with their options and owner loaded in a fixed number of queries (no N+1)."""
    qs = Poll.objects.select_related("owner").prefetch_related("options")
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    if active is not None:
        now = timezone.now()
        open_q = Q(is_closed=False) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        qs = qs.filter(open_q) if active else qs.exclude(open_q)
    return qs


def poll_get(*, poll_id: int) -> Poll:
    try:
        return poll_list().get(pk=poll_id)
    except (Poll.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"Poll {poll_id} does not exist.") from None


@dataclass(frozen=True)
class OptionResult:
    id: int
    text: str
    votes: int


@dataclass(frozen=True)
class PollResults:
    poll: int
    question: str
    total_votes: int
    options: list[OptionResult]
    is_open: bool

    def as_dict(self) -> dict:
        return {
            "poll": self.poll,
            "question": self.question,
            "total_votes": self.total_votes,
            "is_open": self.is_open,
            "options": [o.__dict__ for o in self.options],
        }


def poll_results(*, poll_id: int) -> PollResults:
    """Votes per option, counted at read time with one ``COUNT ... GROUP BY`` query."""
    poll = poll_get(poll_id=poll_id)
    rows = (
        Option.objects.filter(poll_id=poll.pk)
        .annotate(vote_count=Count("votes"))  # "votes" is the reverse relation's name
        .order_by("position", "id")
        .values_list("id", "text", "vote_count")
    )
    options = [OptionResult(id=i, text=t, votes=v) for i, t, v in rows]
    return PollResults(
        poll=poll.pk,
        question=poll.question,
        total_votes=sum(o.votes for o in options),
        options=options,
        is_open=poll.is_open(),
    )
