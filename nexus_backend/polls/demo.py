"""Demo data for learners, notebooks and ``make seed``: users, polls and votes drawn from a seeded generator.

Everything demo data owns is identified by a username prefix (``demo_`` by default; a notebook uses its own,
e.g. ``tour_``), so it can be rebuilt or removed without touching anyone else's rows. Writes go through the
services (``accounts.services.user_register``, ``poll_create``, ``vote_cast``, ``poll_delete``), like every other
caller.

``demo_seed`` is idempotent: the same arguments always leave the same users, polls, options and votes (row ids
and timestamps aside). Users are kept across runs because hashing passwords is the slow part; polls and votes
are rebuilt.
"""

from __future__ import annotations

import random
import re
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from nexus_backend.accounts.services import user_register

from . import services
from .models import Poll, Vote

User = get_user_model()

DEMO_PREFIX = "demo_"
DEMO_PASSWORD = "nexus-demo-votes-42"  # every demo user's password, so learners can log in as one
MAX_POLLS, MAX_USERS = 500, 5000

TOPICS: list[tuple[str, list[str]]] = [
    ("Which database should back a poll system?", ["PostgreSQL", "MySQL", "SQLite", "MongoDB"]),
    ("Where should vote counting happen?", ["In the database", "In Python", "In a Redis counter"]),
    ("Favourite API style?", ["REST", "GraphQL", "gRPC"]),
    ("Best message broker for Celery?", ["RabbitMQ", "Redis", "Amazon SQS"]),
    ("How long should an access token live?", ["5 minutes", "15 minutes", "1 hour", "1 day"]),
    ("What should a cache key include?", ["Version counter", "User id", "Query string", "Nothing else"]),
    ("Which test runner do you prefer?", ["pytest", "unittest", "nose2"]),
    ("How do you deploy Django?", ["gunicorn + nginx", "uvicorn", "Docker Compose", "A PaaS"]),
    ("Biggest cause of slow Django pages?", ["N+1 queries", "No indexes", "No caching", "Big templates"]),
    ("Which editor for notebooks?", ["JupyterLab", "VS Code", "PyCharm"]),
    ("How to stop duplicate votes?", ["Unique constraint", "Check in Python", "Rate limiting", "Cookies"]),
    ("Best time for the study group?", ["Morning", "Afternoon", "Evening", "Weekend"]),
]

_PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,20}_")


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(
            f"prefix must be a lowercase letter, up to 20 more letters/digits, then '_' (like 'demo_'), got {prefix!r}"
        )
    return prefix


def _check_count(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def _lock(prefix: str) -> None:
    """Serialise concurrent seeds/resets of one prefix (e.g. a notebook and ``make seed`` at once)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"nexus-demo:{prefix}"])


class DemoRefused(ValueError):
    """Demo data is never written or removed in production (its users share a published password)."""


def _refuse_in_production(action: str) -> None:
    if settings.PRODUCTION:
        raise DemoRefused(
            f"{action} is refused with NEXUS_ENV=production: demo users share a published password, and real "
            "users' names could match the demo prefix"
        )


def demo_usernames(*, users: int, prefix: str = DEMO_PREFIX) -> list[str]:
    return [f"{prefix}user{i:03d}" for i in range(1, users + 1)]


def _seeded_users(prefix: str):
    """Users named as the seed names them (``<prefix>user001`` ...): the only ones it removes. ``demo_alice``,
    made by hand or before the prefixes were reserved at sign-up, is never touched."""
    return User.objects.filter(username__regex=rf"^{re.escape(prefix)}user[0-9]{{3,}}$")


def _delete_polls(prefix: str, *, seeded_only: bool = False) -> int:
    owners = _seeded_users(prefix) if seeded_only else User.objects.filter(username__startswith=prefix)
    polls = list(Poll.objects.filter(owner__in=owners).select_related("owner"))
    for poll in polls:
        services.poll_delete(poll_id=poll.pk, user=poll.owner)
    return len(polls)


def demo_seed(*, seed: int = 7, polls: int = 6, users: int = 40, prefix: str = DEMO_PREFIX) -> dict:
    """Create (or rebuild) ``users`` demo users and ``polls`` polls with seeded votes; return a summary.

    Seeded users beyond ``users`` and every poll owned by a seeded user are removed first, so the result depends
    only on the arguments; a user the seed did not name (``demo_alice``) keeps everything. Each poll has its own
    turnout and option popularity, so charts have something to show. Refused (:class:`DemoRefused`) in
    production.
    """
    _refuse_in_production("demo seeding")
    _check_prefix(prefix)
    _check_count("seed", seed, 0, 2**31 - 1)
    _check_count("polls", polls, 1, MAX_POLLS)
    _check_count("users", users, 1, MAX_USERS)
    with transaction.atomic():  # all or nothing: a failed seed leaves the previous state
        _lock(prefix)
        return _seed(seed=seed, polls=polls, users=users, prefix=prefix)


def _seed(*, seed: int, polls: int, users: int, prefix: str) -> dict:
    rng = random.Random(seed)

    usernames = demo_usernames(users=users, prefix=prefix)
    _delete_polls(prefix, seeded_only=True)
    _seeded_users(prefix).exclude(username__in=usernames).delete()
    existing = {u.username: u for u in User.objects.filter(username__in=usernames)}
    created = 0
    people = []
    for name in usernames:
        user = existing.get(name)
        if user is None:
            user = user_register(username=name, email=f"{name}@example.com", password=DEMO_PASSWORD, reserved_ok=True)
            created += 1
        people.append(user)

    now = timezone.now()
    poll_ids: list[int] = []
    votes = 0
    for n in range(polls):
        question, options = TOPICS[n % len(TOPICS)]
        if n >= len(TOPICS):
            question = f"{question} (round {n // len(TOPICS) + 1})"
        owner = people[rng.randrange(len(people))]
        expires_in = rng.choice([None, None, 3, 7, 30])  # days; None = never expires
        poll = services.poll_create(
            owner=owner,
            question=question,
            options=options,
            expires_at=now + timedelta(days=expires_in) if expires_in else None,
            description=f"Demo poll {n + 1} (seed {seed}).",
        )
        poll_ids.append(poll.pk)
        option_ids = list(poll.options.order_by("position").values_list("pk", flat=True))
        weights = [rng.random() ** 2 + 0.05 for _ in option_ids]
        turnout = rng.uniform(0.35, 0.9)
        for voter in people:
            if rng.random() < turnout:
                option_id = rng.choices(option_ids, weights=weights)[0]
                services.vote_cast(poll_id=poll.pk, option_id=option_id, user=voter)
                votes += 1

    return {
        "prefix": prefix,
        "seed": seed,
        "users": len(people),
        "users_created": created,
        "polls": len(poll_ids),
        "poll_ids": poll_ids,
        "votes": votes,
    }


def demo_reset(*, prefix: str = DEMO_PREFIX) -> dict:
    """Delete every user whose username starts with ``prefix``, with their polls and votes (cascade): what a
    notebook does to start again from nothing. Refused (:class:`DemoRefused`) in production."""
    _refuse_in_production("demo reset")
    _check_prefix(prefix)
    with transaction.atomic():
        _lock(prefix)
        doomed = User.objects.filter(username__startswith=prefix)
        votes = Vote.objects.filter(user__in=doomed).count()
        polls = _delete_polls(prefix)
        users = doomed.count()
        doomed.delete()
    return {"prefix": prefix, "users": users, "polls": polls, "votes": votes}
