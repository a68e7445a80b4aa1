"""GraphQL for polls (strawberry-graphql-django): the same selectors and services as the REST API.

Queries: ``polls(active)``, ``poll(id)``, ``results(pollId)``. Mutation: ``vote(pollId, optionId)``.
A refused operation is a GraphQL error whose ``extensions`` carry the same ``code`` the REST API answers
(``already_voted``, ``poll_closed``, ``not_found``, ``invalid`` with ``field``, ``not_authenticated``,
``throttled``: the REST vote rate limits apply to the mutation too).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from datetime import datetime
from typing import cast

import strawberry
import strawberry_django
from graphql import GraphQLError
from strawberry.types import Info

from nexus_backend.core.exceptions import DomainError, NotFound
from nexus_backend.tracking.throttles import VOTE_THROTTLES, throttles_check

from . import models, selectors, services


@contextmanager
def _as_graphql_errors():
    """Services speak :class:`DomainError`; GraphQL clients get its message and code in ``extensions``."""
    try:
        yield
    except DomainError as exc:
        extensions = {"code": exc.code, "status": exc.status_code}
        if exc.field:
            extensions["field"] = exc.field
        raise GraphQLError(exc.message, extensions=extensions) from exc


def _id(value: strawberry.ID, *, what: str, field: str | None = None) -> int:
    """A positive id written the one way (``4``: not ``04``, `` 4`` or ``+4``), as the REST paths take it."""
    text = str(value)
    number = int(text) if text.isascii() and text.isdigit() and not text.startswith("0") and len(text) <= 18 else 0
    if number <= 0:
        if field:
            raise DomainError(f"{what} must be a positive integer id, got {value!r}.", field=field)
        raise NotFound(f"{what} {value!r} does not exist.")
    return number


@strawberry_django.type(models.Option, name="Option")
class OptionType:
    id: strawberry.ID
    text: str


@strawberry_django.type(models.Poll, name="Poll")
class PollType:
    id: strawberry.ID
    question: str
    description: str
    created_at: datetime
    expires_at: datetime | None
    is_closed: bool
    options: list[OptionType]

    @strawberry_django.field(description="Accepts votes now: not closed and not expired.")
    def is_open(self, root: strawberry.Parent[models.Poll]) -> bool:
        return root.is_open()

    @strawberry_django.field(description="Id of the owning user.")
    def owner_id(self, root: strawberry.Parent[models.Poll]) -> strawberry.ID:
        return strawberry.ID(str(root.owner_id))

    @strawberry_django.field
    def owner_username(self, root: strawberry.Parent[models.Poll]) -> str:
        return root.owner.username


@strawberry.type(name="OptionResult")
class OptionResultType:
    id: strawberry.ID
    text: str
    votes: int


@strawberry.type(name="PollResults")
class PollResultsType:
    poll_id: strawberry.ID
    question: str
    total_votes: int
    is_open: bool
    options: list[OptionResultType]

    @classmethod
    def from_results(cls, results: selectors.PollResults) -> PollResultsType:
        return cls(
            poll_id=strawberry.ID(str(results.poll)),
            question=results.question,
            total_votes=results.total_votes,
            is_open=results.is_open,
            options=[
                OptionResultType(id=strawberry.ID(str(o.id)), text=o.text, votes=o.votes) for o in results.options
            ],
        )


@strawberry_django.type(models.Vote, name="Vote")
class VoteType:
    id: strawberry.ID
    created_at: datetime

    @strawberry_django.field
    def poll_id(self, root: strawberry.Parent[models.Vote]) -> strawberry.ID:
        return strawberry.ID(str(root.poll_id))

    @strawberry_django.field
    def option_id(self, root: strawberry.Parent[models.Vote]) -> strawberry.ID:
        return strawberry.ID(str(root.option_id))


@strawberry.type
class Query:
    @strawberry.field(description="Polls, newest first. `active: true` open ones only, `false` closed or expired.")
    def polls(self, active: bool | None = None, limit: int = 50, offset: int = 0) -> list[PollType]:
        with _as_graphql_errors():
            if not (1 <= limit <= 100) or offset < 0:
                raise DomainError("limit must be between 1 and 100 and offset at least 0.", field="limit")
            # A strawberry_django type resolves from its model instance (the typing its docs show).
            return cast(list[PollType], list(selectors.poll_list(active=active)[offset : offset + limit]))

    @strawberry.field(description="One poll by id.")
    def poll(self, id: strawberry.ID) -> PollType:
        with _as_graphql_errors():
            return cast(PollType, selectors.poll_get(poll_id=_id(id, what="Poll")))

    @strawberry.field(description="Votes per option, exact (per-option counters plus votes not yet folded in).")
    def results(self, poll_id: strawberry.ID) -> PollResultsType:
        with _as_graphql_errors():
            return PollResultsType.from_results(selectors.poll_results(poll_id=_id(poll_id, what="Poll")))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Vote for an option. Needs a JWT (`Authorization: Bearer …`) or a session.")
    def vote(self, info: Info, poll_id: strawberry.ID, option_id: strawberry.ID) -> VoteType:
        with _as_graphql_errors():
            user = info.context.request.user
            if not user.is_authenticated:
                raise NotAuthenticated("Authentication required: send `Authorization: Bearer <access token>`.")
            _check_vote_rate(info.context.request)
            vote = services.vote_cast(
                poll_id=_id(poll_id, what="Poll"),
                option_id=_id(option_id, what="optionId", field="option"),
                user=user,
            )
            return cast(VoteType, vote)


def _check_vote_rate(request) -> None:
    """The REST vote endpoint's rate limits (per user and per client address) apply to each vote mutation too."""
    _throttles, wait = throttles_check(request, VOTE_THROTTLES)
    if wait is not None:
        raise Throttled(f"Too many votes: try again in {math.ceil(wait)} s.")


class Throttled(DomainError):
    status_code = 429
    code = "throttled"


class NotAuthenticated(DomainError):
    status_code = 401
    code = "not_authenticated"
