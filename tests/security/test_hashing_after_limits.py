"""A refused login or sign-up costs no password hash (the finding: four parallel sign-up clients raised a cached
GET from ~3 ms to ~0.4 s, because every attempt hashed). Counted, not timed: every hash goes through the first
hasher's ``encode`` (checking a password re-encodes it; an unknown username hashes a dummy password), and a spy
counts its calls while the real hasher runs."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import get_hasher
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ATTACKER = "198.51.100.66"


@pytest.fixture
def hashes(monkeypatch) -> list[str]:
    hasher = type(get_hasher())
    calls: list[str] = []
    real = hasher.encode

    def counted(self, password, salt, *args, **kwargs):
        calls.append(salt)
        return real(self, password, salt, *args, **kwargs)

    monkeypatch.setattr(hasher, "encode", counted)
    return calls


def test_a_login_refused_by_the_limits_costs_no_hash(user, hashes):  # the user (and its hash) first
    client = APIClient()
    body = {"username": "alice", "password": "not-her-password"}
    statuses = [
        client.post("/api/auth/token/", body, format="json", REMOTE_ADDR=ATTACKER).status_code for _ in range(9)
    ]
    assert statuses == [401] * 5 + [429] * 4
    assert len(hashes) == 5  # one per attempt that got through, none for the refusals


def test_a_sign_up_refused_by_the_limit_costs_no_hash(hashes, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "register_ip": "2/hour"},
    }
    client = APIClient()
    statuses = [
        client.post(
            "/api/auth/register/",
            {"username": f"new{i}", "email": f"new{i}@example.com", "password": "a-long-passphrase-9"},
            format="json",
            REMOTE_ADDR=ATTACKER,
        ).status_code
        for i in range(5)
    ]
    assert statuses == [201, 201, 429, 429, 429]
    assert len(hashes) == 2
