"""Rate limits: failed logins per client address (IPv6: per /64) and per target account, whatever the request
carries; sign-ups per address; voting per user and per address. 429 + Retry-After + JSON; forged X-Forwarded-For
neither evades a limit nor gets someone else limited; the window is atomic under concurrency; Redis down -> fail
open."""

from __future__ import annotations

import threading

import pytest
from django.test import RequestFactory
from rest_framework.request import Request
from rest_framework.test import APIClient

from nexus_backend.tracking import throttles
from nexus_backend.tracking.recorder import RECORDER
from nexus_backend.tracking.stream import new_redis_client
from nexus_backend.tracking.throttles import LoginIPThrottle
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


def test_failed_logins_are_limited_to_5_per_minute_per_client_address():
    client = APIClient()
    statuses = [login(client, REMOTE_ADDR=ATTACKER).status_code for _ in range(5)]
    assert statuses == [401] * 5
    assert_throttled(login(client, REMOTE_ADDR=ATTACKER))
    assert_throttled(login(client, REMOTE_ADDR=ATTACKER))  # refused attempts do not extend the window...
    assert login(client, REMOTE_ADDR=INNOCENT).status_code == 401  # ...and other addresses are not affected


def test_a_successful_login_gives_its_slot_back(user):
    client = APIClient()
    good = {"username": "alice", "password": "correct-horse-battery-staple-42"}
    assert [login(client, body=good, REMOTE_ADDR=ATTACKER).status_code for _ in range(8)] == [200] * 8
    assert [login(client, REMOTE_ADDR=ATTACKER).status_code for _ in range(5)] == [401] * 5  # failures still count
    assert_throttled(login(client, REMOTE_ADDR=ATTACKER))


def test_a_bearer_token_on_the_login_changes_nothing(make_user):
    """It used to move the attempts to a per-user bucket: one address with 3 accounts got 30 tries, not 5."""
    accounts = [make_user() for _ in range(3)]
    statuses = []
    for attempt in range(6):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=bearer(accounts[attempt % 3]))
        statuses.append(login(client, REMOTE_ADDR=ATTACKER).status_code)
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    broken = APIClient()
    broken.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    assert_throttled(login(broken, REMOTE_ADDR=ATTACKER))


def test_failed_logins_are_limited_per_account_whatever_the_address(user):
    """10 failures for alice from 10 addresses lock her account: her right password gets 429 until they age out."""
    client = APIClient()
    wrong = {"username": "alice", "password": "not-her-password"}
    statuses = [login(client, body=wrong, REMOTE_ADDR=f"203.0.113.{i}").status_code for i in range(10)]
    assert statuses == [401] * 10
    right = {"username": "alice", "password": "correct-horse-battery-staple-42"}
    assert_throttled(login(client, body=right, REMOTE_ADDR=INNOCENT), max_wait=3600)
    assert_throttled(login(client, body={**wrong, "username": "ALICE"}, REMOTE_ADDR=INNOCENT), max_wait=3600)
    assert login(client, body={**wrong, "username": "bob"}, REMOTE_ADDR=INNOCENT).status_code == 401  # only alice


def test_attempts_refused_per_address_take_no_slot_in_the_accounts_window(user):
    """An attacker held back by the address limit cannot fill the victim's lockout window at the refusals' speed."""
    client = APIClient()
    wrong = {"username": "alice", "password": "not-her-password"}
    statuses = [login(client, body=wrong, REMOTE_ADDR=ATTACKER).status_code for _ in range(30)]
    assert statuses == [401] * 5 + [429] * 25
    right = {"username": "alice", "password": "correct-horse-battery-staple-42"}
    assert login(client, body=right, REMOTE_ADDR=INNOCENT).status_code == 200


def test_ipv6_addresses_of_one_64_share_one_login_limit():
    client = APIClient()
    rotating = [f"2001:db8:1:2::{i:x}" for i in range(1, 7)]
    statuses = [login(client, REMOTE_ADDR=ip).status_code for ip in rotating]
    assert statuses == [401] * 5 + [429]
    assert login(client, REMOTE_ADDR="2001:db8:1:3::1").status_code == 401  # the next /64 is someone else


def test_sign_up_is_limited_per_client_address(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "register_ip": "3/hour"},
    }
    client = APIClient()

    def register(name: str, ip: str):
        body = {"username": name, "email": f"{name}@example.com", "password": "a-long-passphrase-9"}
        return client.post("/api/auth/register/", body, format="json", REMOTE_ADDR=ip)

    assert [register(f"spam{i}", f"2001:db8:9:9::{i + 1:x}").status_code for i in range(3)] == [201] * 3
    assert_throttled(register("spam3", "2001:db8:9:9::ff"), max_wait=3600)
    assert register("honest", INNOCENT).status_code == 201


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
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login_ip": "2/hour"},
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
        throttle = LoginIPThrottle()
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
    throttle = LoginIPThrottle()
    assert all(throttle.allow_request(_throttle_request(ATTACKER), None) for _ in range(10))
    assert "rate limits are not enforced" in caplog.text
