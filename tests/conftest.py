"""Shared fixtures: API clients, users, and polls made through the services (real rules, real PostgreSQL).

Every user made here has the password ``PASSWORD``."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from nexus_backend.polls import services
from nexus_backend.polls.models import Poll

PASSWORD = "correct-horse-battery-staple-42"
_serial = itertools.count(1)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@functools.cache
def _password_hash() -> str:
    """Hash PASSWORD once (with the real hasher) and reuse it: hashing per user would dominate the suite."""
    return make_password(PASSWORD)


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    def make(username: str | None = None, *, is_staff: bool = False):
        username = username or f"user{next(_serial)}"
        return get_user_model().objects.create(
            username=username, email=f"{username}@example.com", password=_password_hash(), is_staff=is_staff
        )

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def other_user(make_user):
    return make_user("bob")


@pytest.fixture
def staff_user(make_user):
    return make_user("staff", is_staff=True)


def bearer(user) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


@pytest.fixture
def client_for() -> Callable[[object], APIClient]:
    """An APIClient that sends a real JWT access token for ``user``."""

    def make(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=bearer(user))
        return client

    return make


@pytest.fixture
def auth_client(client_for, user) -> APIClient:
    return client_for(user)


@pytest.fixture
def make_poll(db, make_user) -> Callable[..., Poll]:
    """Create a poll through ``services.poll_create``; ``expired=True`` back-dates it so it has expired."""

    def make(
        *,
        owner=None,
        question: str | None = None,
        options: Sequence[str] = ("Yes", "No", "Maybe"),
        expires_at: datetime | None = None,
        description: str = "",
        expired: bool = False,
        created_at: datetime | None = None,
    ) -> Poll:
        owner = owner or make_user()
        poll = services.poll_create(
            owner=owner,
            question=question or f"Question {next(_serial)}?",
            options=list(options),
            expires_at=expires_at,
            description=description,
        )
        if expired or created_at:
            created = created_at or timezone.now() - timedelta(days=2)
            ends = timezone.now() - timedelta(minutes=1) if expired else poll.expires_at
            Poll.objects.filter(pk=poll.pk).update(created_at=created, expires_at=ends)
            poll.refresh_from_db()
        return poll

    return make


@pytest.fixture
def poll(make_poll, user) -> Poll:
    return make_poll(owner=user, question="Best pizza topping?", options=["Cheese", "Mushroom", "Pineapple"])


@pytest.fixture(autouse=True)
def _fresh_tracking_state():
    """Every test starts and ends with no rate-limit history, a block list reloaded from its own database and
    an empty request-log stream (nexus_lab.testing)."""
    from nexus_lab.testing import reset_tracking_state

    reset_tracking_state()
    yield
    reset_tracking_state()
