"""Writes. Each is one transaction; rules the database can enforce, it enforces (see models.py).

Each write also tells the cache what it changed (``nexus_backend.caching.invalidation``); the cache acts on it
after the transaction commits, so a client that wrote reads its write back."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from nexus_backend.caching import invalidation
from nexus_backend.core.exceptions import Conflict, DomainError, NotFound, PermissionDenied
from nexus_backend.core.faults import pause_point
from nexus_backend.core.outbox import enqueue_on_commit

from . import counting, selectors
from .models import VOTE_OPTION_IN_POLL_FK, Option, Poll, Vote

logger = logging.getLogger(__name__)

User = get_user_model()

MIN_OPTIONS, MAX_OPTIONS = 2, 20


class AlreadyVoted(Conflict):
    code = "already_voted"


class PollClosed(Conflict):
    code = "poll_closed"


# CharFields: their max_length is always set (the stubs type it as optional).
QUESTION_MAX = cast(int, Poll._meta.get_field("question").max_length)
DESCRIPTION_MAX = cast(int, Poll._meta.get_field("description").max_length)
OPTION_TEXT_MAX = cast(int, Option._meta.get_field("text").max_length)


def _clean_question(question: str) -> str:
    question = question.strip()
    if not question:
        raise DomainError("The question cannot be blank.", field="question")
    if len(question) > QUESTION_MAX:
        raise DomainError(f"The question can be at most {QUESTION_MAX} characters.", field="question")
    return question


def _clean_options(options: Sequence[str]) -> list[str]:
    cleaned = [str(o).strip() for o in options]
    if any(not o for o in cleaned):
        raise DomainError("Options cannot be blank.", field="options")
    if any(len(o) > OPTION_TEXT_MAX for o in cleaned):
        raise DomainError(f"Options can be at most {OPTION_TEXT_MAX} characters.", field="options")
    if not MIN_OPTIONS <= len(cleaned) <= MAX_OPTIONS:
        raise DomainError(f"A poll needs between {MIN_OPTIONS} and {MAX_OPTIONS} options.", field="options")
    if len({o.casefold() for o in cleaned}) != len(cleaned):
        raise DomainError("Options must be distinct.", field="options")
    return cleaned


def _clean_description(description: str) -> str:
    if len(description) > DESCRIPTION_MAX:
        raise DomainError(f"The description can be at most {DESCRIPTION_MAX} characters.", field="description")
    return description


def _check_expiry(expires_at: datetime | None, *, created_at: datetime) -> None:
    """Refused (400 on ``expires_at``): an expiry not after the poll's creation, or further ahead than
    ``NEXUS_POLL_MAX_LIFETIME_DAYS`` from now (each expiry is a scheduled task: year 9999 is not a poll)."""
    if expires_at is None:
        return
    if expires_at <= created_at:
        raise DomainError("expires_at must be later than the poll's creation time.", field="expires_at")
    days = settings.NEXUS_POLL_MAX_LIFETIME_DAYS
    if expires_at > timezone.now() + timedelta(days=days):
        raise DomainError(f"expires_at can be at most {days} days ahead.", field="expires_at")


@transaction.atomic
def poll_create(
    *, owner, question: str, options: Sequence[str], expires_at: datetime | None = None, description: str = ""
) -> Poll:
    question = _clean_question(question)
    description = _clean_description(description)
    texts = _clean_options(options)
    now = timezone.now()
    _check_expiry(expires_at, created_at=now)
    poll = Poll.objects.create(
        owner=owner, question=question, description=description, created_at=now, expires_at=expires_at
    )
    Option.objects.bulk_create([Option(poll=poll, text=t, position=i) for i, t in enumerate(texts)])
    if expires_at is not None:
        _schedule_close(poll.pk, expires_at)
    invalidation.poll_changed(poll_id=poll.pk)
    return poll


#: ``tasks.close_poll`` by its registered name: the tasks call the services, never the other way round.
CLOSE_POLL_TASK = "nexus_backend.polls.tasks.close_poll"


def _schedule_close(poll_id: int, when: datetime) -> None:
    """Ask Celery to close the poll at its expiry: through the outbox, so a broker that is down delays the task
    instead of losing it (``nexus_backend.core.outbox``). The minutely beat task closes expired polls too."""
    enqueue_on_commit(CLOSE_POLL_TASK, poll_id, eta=when)


def _check_can_edit(poll: Poll, user) -> None:
    if not (user.is_staff or poll.owner_id == user.pk):
        raise PermissionDenied("Only the poll's owner or staff can change it.")


@transaction.atomic
def poll_update(
    *,
    poll_id: int,
    user,
    question: str | None = None,
    description: str | None = None,
    expires_at: datetime | None = None,
    clear_expiry: bool = False,
    options: Sequence[str] | None = None,
) -> Poll:
    poll = Poll.objects.select_for_update().filter(pk=poll_id).first()
    if poll is None:
        raise NotFound(f"Poll {poll_id} does not exist.")
    _check_can_edit(poll, user)
    if question is not None:
        poll.question = _clean_question(question)
    if description is not None:
        poll.description = _clean_description(description)
    if clear_expiry:
        poll.expires_at = None
    elif expires_at is not None:
        _check_expiry(expires_at, created_at=poll.created_at)
        poll.expires_at = expires_at
        if expires_at > timezone.now():
            poll.is_closed = False
    if options is not None:
        texts = _clean_options(options)
        if poll.votes.exists():
            raise Conflict("Options cannot change once votes have been cast.", field="options")
        poll.options.all().delete()
        Option.objects.bulk_create([Option(poll=poll, text=t, position=i) for i, t in enumerate(texts)])
    poll.save()
    invalidation.poll_changed(poll_id=poll.pk)
    return poll


@transaction.atomic
def poll_delete(*, poll_id: int, user) -> None:
    poll = Poll.objects.filter(pk=poll_id).first()
    if poll is None:
        raise NotFound(f"Poll {poll_id} does not exist.")
    _check_can_edit(poll, user)
    poll.delete()
    invalidation.poll_changed(poll_id=poll_id)


# Constraint names the database reports on a refused vote, and what each means to the caller.
_VOTE_CONSTRAINTS = {
    "one_vote_per_user_per_poll": "already_voted",
    VOTE_OPTION_IN_POLL_FK: "option",
}


def _violated_constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def vote_cast(*, poll_id: int, option_id, user, strategy: str | None = None) -> Vote:
    """Record ``user``'s vote and count it, in one transaction.

    Refused, changing nothing: a poll that does not exist (:class:`NotFound`, 404), a closed or expired poll
    (:class:`PollClosed`, 409), an option that is missing or belongs to another poll (:class:`DomainError` on
    ``option``, 400), a second vote (:class:`AlreadyVoted`, 409). The last two are decided by the database (the
    composite foreign key ``vote_option_belongs_to_poll`` and the unique ``(poll, user)``), so concurrent attempts
    cannot slip past a check made in Python.

    The vote is counted in the same transaction, the way the API's strategy counts (``counting.vote_path``): with
    ``delta``, a pending row appended by the vote's own ``INSERT``; with ``counter``, ``F() + 1`` on the option.
    Either way a read right after the ``201`` includes the vote. ``strategy`` exists for measurements only:
    ``"count"`` or ``"summary"`` skip the counting to time what a vote would cost without it, leaving the poll's
    counters to :func:`counting.counters_rebuild`.
    """
    counts = counting.vote_path() if strategy is None else counting.get_strategy(strategy)
    try:
        option_id = int(option_id)
    except (TypeError, ValueError):
        raise DomainError("option must be the id of one of this poll's options.", field="option") from None
    try:
        with transaction.atomic():
            poll = Poll.objects.filter(pk=poll_id).only("id", "is_closed", "expires_at").first()
            if poll is None:
                raise NotFound(f"Poll {poll_id} does not exist.")
            if not poll.is_open():
                raise PollClosed("This poll is closed: it no longer accepts votes.")
            # The database refuses a foreign option too (vote_option_belongs_to_poll); asking first gives the
            # usual case a clear message without relying on parsing an error.
            if not Option.objects.filter(pk=option_id, poll_id=poll.pk).exists():
                raise DomainError(f"Option {option_id} is not an option of poll {poll.pk}.", field="option")
            vote = counting.vote_record(poll_id=poll.pk, option_id=option_id, user_id=user.pk, strategy=counts)
            pause_point("vote-before-commit")  # fault tests kill the web worker here (tests/faults)
            invalidation.votes_changed(poll_id=poll.pk)
            return vote
    except IntegrityError as exc:
        meaning = _VOTE_CONSTRAINTS.get(_violated_constraint(exc) or "")
        if meaning == "already_voted":
            raise AlreadyVoted("You have already voted in this poll.") from None
        if meaning == "option":  # e.g. the options were replaced between the check and the insert
            raise DomainError(f"Option {option_id} is not an option of poll {poll_id}.", field="option") from None
        raise


def poll_close_if_expired(*, poll_id: int, now: datetime | None = None) -> bool:
    """Close one poll if its expiry has passed; True when this call closed it (idempotent)."""
    now = now or timezone.now()
    with transaction.atomic():
        closed = bool(Poll.objects.filter(pk=poll_id, is_closed=False, expires_at__lte=now).update(is_closed=True))
        if closed:
            invalidation.poll_changed(poll_id=poll_id)
    return closed


def polls_close_expired(*, now: datetime | None = None) -> int:
    """Mark every poll whose expiry has passed as closed; returns how many changed (idempotent)."""
    with transaction.atomic():
        poll_ids = list(selectors.polls_due_to_close(now=now).values_list("pk", flat=True))
        closed = Poll.objects.filter(pk__in=poll_ids, is_closed=False).update(is_closed=True)
        invalidation.polls_changed(poll_ids=poll_ids)  # the cache needs to know which
    return closed
