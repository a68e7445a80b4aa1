"""Rate limits at the curriculum's rates: login 5/min anonymous (per client IP) and 10/min authenticated (per
user); voting per user and per client IP. 429 + Retry-After + JSON; forged X-Forwarded-For neither evades a
limit nor gets someone else limited; the window is atomic under concurrency; Redis down -> fail open."""

from __future__ import annotations

import threading

import pytest
from django.test import RequestFactory
from rest_framework.request import Request
from rest_framework.test import APIClient

from nexus_backend.tracking import throttles
from nexus_backend.tracking.recorder import RECORDER, new_redis_client
from nexus_backend.tracking.throttles import LoginAnonThrottle
from tests.conftest import bearer

from .conftest import proxied

pytestmark = pytest.mark.django_db

TOKEN = "/api/auth/token/"
ATTACKER, INNOCENT = "203.0.113.66", "198.51.100.7"
NOBODY = {"username": "nobody-at-all", "password": "wrong-password"}


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    """Login attempts for unknown users hash with the first hasher: make it cheap (the throttle is under test)."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


def login(client: APIClient, *, body=None, **meta):
    return client.post(TOKEN, body or NOBODY, format="json", **meta)


def assert_throttled(response, max_wait: int = 60):
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "throttled" and "throttled" in body["detail"]
    assert 1 <= int(response["Retry-After"]) <= max_wait


def test_anonymous_login_is_limited_to_5_per_minute_per_client_ip():
    client = APIClient()
    statuses = [login(client, REMOTE_ADDR=ATTACKER).status_code for _ in range(5)]
    assert statuses == [401] * 5
    assert_throttled(login(client, REMOTE_ADDR=ATTACKER))
    assert_throttled(login(client, REMOTE_ADDR=ATTACKER))  # refused attempts do not extend the window...
    assert login(client, REMOTE_ADDR=INNOCENT).status_code == 401  # ...and other addresses are not affected


def test_a_successful_login_counts_too(user):
    client = APIClient()
    good = {"username": "alice", "password": "correct-horse-battery-staple-42"}
    assert [login(client, body=good, REMOTE_ADDR=ATTACKER).status_code for _ in range(5)] == [200] * 5
    assert_throttled(login(client, body=good, REMOTE_ADDR=ATTACKER))


def test_authenticated_login_is_limited_to_10_per_minute_per_user(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    as_alice, as_bob = APIClient(), APIClient()
    as_alice.credentials(HTTP_AUTHORIZATION=bearer(alice))
    as_bob.credentials(HTTP_AUTHORIZATION=bearer(bob))
    assert [login(as_alice, REMOTE_ADDR=ATTACKER).status_code for _ in range(10)] == [401] * 10
    assert_throttled(login(as_alice, REMOTE_ADDR=INNOCENT))  # per user: a new address does not help
    assert login(as_bob, REMOTE_ADDR=ATTACKER).status_code == 401  # another user from the same address is fine
    # anonymous attempts from that address have their own window (5/min), untouched so far
    assert [login(APIClient(), REMOTE_ADDR=ATTACKER).status_code for _ in range(5)] == [401] * 5
    assert_throttled(login(APIClient(), REMOTE_ADDR=ATTACKER))


def test_an_invalid_bearer_token_on_login_counts_as_anonymous():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    assert [login(client, REMOTE_ADDR=ATTACKER).status_code for _ in range(5)] == [401] * 5
    assert_throttled(login(client, REMOTE_ADDR=ATTACKER))


@pytest.mark.parametrize("trusted_proxies", [0, 1, 2], indirect=True)
def test_a_forged_x_forwarded_for_neither_evades_the_limit_nor_frames_another_address(trusted_proxies):
    client = APIClient()
    forged = ["1.1.1.1", "2.2.2.2", f"{INNOCENT}, 3.3.3.3", INNOCENT, "garbage"]
    statuses = [login(client, **proxied(ATTACKER, trusted_proxies, f)).status_code for f in forged]
    assert statuses == [401] * 5
    assert_throttled(login(client, **proxied(ATTACKER, trusted_proxies, "4.4.4.4")))
    # The innocent address named in the forged headers has its full allowance.
    assert login(client, **proxied(INNOCENT, trusted_proxies)).status_code == 401
    # Writing the attacker's (throttled) address in a header does not get an innocent client refused either.
    assert login(client, **proxied(INNOCENT, trusted_proxies, ATTACKER)).status_code == 401


def test_votes_are_limited_per_user(poll, user, client_for):
    client = client_for(user)
    option = poll.options.first().pk
    url = f"/api/polls/{poll.pk}/vote/"
    statuses = [client.post(url, {"option": option}, format="json").status_code for _ in range(10)]
    assert statuses == [201] + [409] * 9
    assert_throttled(client.post(url, {"option": option}, format="json"))


def test_votes_are_limited_per_client_ip(settings, make_user, make_poll, client_for):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "vote_ip": "3/min"},
    }
    poll = make_poll()
    option = poll.options.first().pk
    url = f"/api/polls/{poll.pk}/vote/"
    voters = [client_for(make_user()) for _ in range(5)]
    statuses = [c.post(url, {"option": option}, format="json", REMOTE_ADDR=ATTACKER).status_code for c in voters[:4]]
    assert statuses == [201, 201, 201, 429]
    assert voters[4].post(url, {"option": option}, format="json", REMOTE_ADDR=INNOCENT).status_code == 201


def test_rates_come_from_settings(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login_anon": "2/hour"},
    }
    client = APIClient()
    assert [login(client, REMOTE_ADDR=ATTACKER).status_code for _ in range(2)] == [401, 401]
    assert_throttled(login(client, REMOTE_ADDR=ATTACKER), max_wait=3600)
    assert int(login(client, REMOTE_ADDR=ATTACKER)["Retry-After"]) > 3500


def _throttle_request(ip: str) -> Request:
    return Request(RequestFactory().post(TOKEN, REMOTE_ADDR=ip))


def test_the_window_is_atomic_under_concurrency():
    """DRF's stock throttle reads, edits and writes its history: 40 simultaneous attempts would all pass."""
    barrier = threading.Barrier(40)
    results: list[bool] = []

    def attempt():
        throttle = LoginAnonThrottle()
        request = _throttle_request(ATTACKER)
        barrier.wait()
        results.append(throttle.allow_request(request, None))

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 35 + [True] * 5


@pytest.fixture
def redis_down(monkeypatch, settings):
    """The tracking Redis client points at a port nobody listens on; restored afterwards."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"},
    }
    saved = RECORDER._client, RECORDER._down_until, RECORDER._failures
    RECORDER._client = new_redis_client()
    RECORDER._down_until, RECORDER._failures = 0.0, 0
    yield
    RECORDER._client, RECORDER._down_until, RECORDER._failures = saved


def test_when_redis_is_down_the_limit_fails_open_and_says_so(redis_down, caplog, monkeypatch):
    monkeypatch.setattr(throttles, "_last_warning", 0.0)
    throttle = LoginAnonThrottle()
    assert all(throttle.allow_request(_throttle_request(ATTACKER), None) for _ in range(10))
    assert "rate limits are not enforced" in caplog.text
