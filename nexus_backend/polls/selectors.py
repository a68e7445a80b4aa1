"""Reads. Views, resolvers, tasks and notebooks call these; they hold no query logic of their own."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from nexus_backend.core.exceptions import NotFound

from . import counting
from .models import Poll


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


def polls_due_to_close(*, now=None) -> QuerySet[Poll]:
    """Open polls whose expiry has passed: what the minutely ``close_expired_polls`` task closes. The partial
    index ``poll_open_expires_idx`` holds only open polls with an expiry, so this reads a handful of entries."""
    return Poll.objects.filter(is_closed=False, expires_at__lte=now or timezone.now()).order_by()


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
    strategy: str = "count"  # which counting strategy produced the numbers (counting.STRATEGIES)

    def as_dict(self) -> dict:
        return {
            "poll": self.poll,
            "question": self.question,
            "total_votes": self.total_votes,
            "is_open": self.is_open,
            "options": [o.__dict__ for o in self.options],
        }


def poll_results(*, poll_id: int, strategy: str | None = None) -> PollResults:
    """Votes per option, counted by ``strategy`` (``count``, ``counter``, ``summary`` or ``delta``; ``counting.py``).
    ``None`` means the strategy the API uses (``counting.RESULTS_STRATEGY``: ``delta``, counter + pending deltas).

    Two queries: the poll, then its options with their votes."""
    counts = counting.get_strategy(strategy)
    try:
        poll = Poll.objects.only("id", "question", "is_closed", "expires_at").get(pk=poll_id)
    except (Poll.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"Poll {poll_id} does not exist.") from None
    options = [OptionResult(id=i, text=t, votes=v) for i, t, v in counts.option_counts(poll_id=poll.pk)]
    return PollResults(
        poll=poll.pk,
        question=poll.question,
        total_votes=sum(o.votes for o in options),
        options=options,
        is_open=poll.is_open(),
        strategy=counts.name,
    )
