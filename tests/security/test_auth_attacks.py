"""The authentication attacks of the security review, replayed against a real gunicorn: each must fail.

The server trusts one proxy on this machine (``NEXUS_TRUSTED_PROXIES=1``, requests come from 127.0.0.1), so a
test plays clients at many addresses by writing the address that proxy would have appended to X-Forwarded-For.
Rates are the defaults: failed logins 5/min per address and 10/hour per account, sign-ups 10/hour per address.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from nexus_backend.tracking.detection.detector import aggregate_request_log
from nexus_backend.tracking.detection.rules import load_rules
from nexus_backend.tracking.detection.services import detect_window
from nexus_backend.tracking.models import BlockedIP
from tests.conftest import PASSWORD

from .live import live_server, logged, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

WRONG = "not-the-password-at-all"


@pytest.fixture(scope="module")
def live(django_db_setup, django_db_blocker):
    with live_server(NEXUS_TRUSTED_PROXIES="1") as server:
        yield server


def auth_failures(start) -> dict[str, tuple[int, int]]:
    """(login attempts, failed logins) per address as the detector's failed-login rule counts them since ``start``."""
    aggregator = aggregate_request_log(start=start, end=timezone.now(), rules=load_rules())
    counted: dict[str, tuple[int, int]] = {}
    for (_window, ip), stats in aggregator.stats.items():  # a run across the hour has two windows: add them up
        attempts, failures = counted.get(ip, (0, 0))
        counted[ip] = (attempts + stats.auth_attempts, failures + stats.auth_failures)
    return counted


def assert_refused_for(answer, *, at_least: int = 1):
    assert answer.status == 429, answer.body
    assert int(answer.headers["retry-after"]) >= at_least


def test_rotating_tokens_and_addresses_cannot_brute_force_an_account(live, make_user):
    """Finding: with 3 self-registered tokens, 30 x 401 and no 429, then the victim's right password logged in."""
    make_user("victim")
    tokens = [token_for(make_user()) for _ in range(3)]
    statuses = [
        live.login(
            "victim", WRONG, client_ip=f"198.51.100.{i + 1}", headers={"Authorization": f"Bearer {tokens[i % 3]}"}
        ).status
        for i in range(30)
    ]
    assert statuses == [401] * 10 + [429] * 20  # the account's window (10/hour), whatever the address or token
    # The victim's right password, from an address never seen, is refused for the lockout period.
    assert_refused_for(live.login("victim", PASSWORD, client_ip="192.0.2.200"), at_least=60)
    assert live.login("someone-else", WRONG, client_ip="192.0.2.200").status == 401  # other accounts unaffected


def test_bearer_tokens_from_one_address_do_not_lift_the_address_limit(live, make_user):
    tokens = [token_for(make_user()) for _ in range(3)]
    statuses = [
        live.login(f"guess{i}", WRONG, client_ip="198.51.100.77", headers={"Authorization": f"Bearer {tokens[i % 3]}"})
        for i in range(8)
    ]
    assert [a.status for a in statuses] == [401] * 5 + [429] * 3
    assert_refused_for(statuses[-1])


def test_one_clients_failures_do_not_lock_out_another_client_behind_the_same_proxy(live, make_user):
    """Finding (0 trusted proxies behind a proxy): five bad logins by one client locked another client out."""
    make_user("patient")
    assert [live.login("patient", WRONG, client_ip="198.51.100.5").status for _ in range(6)] == [401] * 5 + [429]
    assert live.login("patient", PASSWORD, client_ip="198.51.100.6").status == 200


def test_ipv6_clients_rotating_through_their_64_share_one_limit(live):
    """Finding: 10 addresses of one /64 each got a fresh login limit."""
    statuses = [live.login(f"probe{i}", WRONG, client_ip=f"2001:db8:5:6::{i + 1:x}").status for i in range(10)]
    assert statuses == [401] * 5 + [429] * 5
    assert live.login("probe", WRONG, client_ip="2001:db8:5:7::1").status == 401  # the next /64 is someone else


def test_sign_up_is_limited_per_address_and_per_64(live):
    """Finding: 30 accounts from one address in 6.7 s."""

    def register(name: str, ip: str) -> int:
        body = {"username": name, "email": f"{name}@example.com", "password": "a-long-passphrase-9"}
        return live.call("POST", "/api/auth/register/", json_body=body, client_ip=ip).status

    assert [register(f"spam{i}", "198.51.100.9") for i in range(12)] == [201] * 10 + [429] * 2
    assert [register(f"v6spam{i}", f"2001:db8:7:7::{i + 1:x}") for i in range(11)] == [201] * 10 + [429]
    assert get_user_model().objects.filter(username__contains="spam").count() == 20


def test_passwords_shorter_than_12_characters_are_refused(live):
    body = {"username": "shorty", "email": "shorty@example.com", "password": "Xq7#mPz2!kL"}  # 11, otherwise strong
    answer = live.call("POST", "/api/auth/register/", json_body=body, client_ip="198.51.100.10")
    assert answer.status == 400
    assert "at least 12 characters" in " ".join(answer.json()["password"])
    body["password"] += "w"
    assert live.call("POST", "/api/auth/register/", json_body=body, client_ip="198.51.100.10").status == 201


def test_token_responses_are_not_stored_by_any_cache(live, make_user):
    make_user("cached")
    obtained = live.login("cached", PASSWORD, client_ip="198.51.100.11")
    assert obtained.status == 200
    assert "no-store" in obtained.headers["cache-control"]
    refreshed = live.call(
        "POST", "/api/auth/token/refresh/", json_body={"refresh": obtained.json()["refresh"]}, client_ip="198.51.100.11"
    )
    assert refreshed.status == 200
    assert "no-store" in refreshed.headers["cache-control"]


def test_cross_site_text_posts_never_reach_the_login_and_429s_are_not_failures(live):
    """Finding: 20 cross-site `text/plain` POSTs got the address flagged and blocked (auto-block on)."""
    start = timezone.now()
    for _ in range(20):
        answer = live.call(
            "POST",
            "/api/auth/token/",
            body='{"username": "x", "password": "y"}',
            content_type="text/plain",
            client_ip="198.51.100.20",
        )
        assert answer.status == 415
    for kind in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        assert (
            live.call("POST", "/api/auth/token/", body="a=b", content_type=kind, client_ip="198.51.100.20").status
            == 415
        )
    # An address held back by the limit: 5 failures, then 15 refusals, which are neither attempts nor failures
    # (they never reached a password): the 5 real failures are what the detector judges.
    statuses = [live.login("nobody", WRONG, client_ip="198.51.100.21").status for _ in range(20)]
    assert statuses == [401] * 5 + [429] * 15
    rows = logged("/api/auth/token/", ips=["198.51.100.20", "198.51.100.21"], expect=42)
    assert len(rows) == 42
    counted = auth_failures(start)
    assert counted["198.51.100.20"] == (22, 0) and counted["198.51.100.21"] == (5, 5)  # (attempts, failures)
    result = detect_window(start=start, end=timezone.now(), auto_block=True)
    assert "198.51.100.20" not in result.flagged_ips  # the cross-site POSTs: nothing to judge, nothing blocked
    assert "198.51.100.21" in result.flagged_ips  # five wrong passwords in a row: a brute force, however limited
    assert list(BlockedIP.objects.values_list("ip_address", flat=True)) == ["198.51.100.21"]


def test_the_admin_login_is_limited_and_its_failures_are_logged_as_failures(live, make_user):
    """Finding: 30 wrong passwords on the admin login, 30 x 200, then the right one logged in."""
    start = timezone.now()
    make_user("boss", is_staff=True)
    form = live.call("GET", "/admin/login/", client_ip="198.51.100.30")
    csrf = form.cookies["csrftoken"]
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', form.body).group(1).decode()

    def attempt(password: str, ip: str):
        return live.call(
            "POST",
            "/admin/login/?next=/admin/",
            body=f"csrfmiddlewaretoken={token}&username=boss&password={password}&next=/admin/",
            content_type="application/x-www-form-urlencoded",
            client_ip=ip,
            headers={"Cookie": f"csrftoken={csrf}", "Referer": f"http://127.0.0.1:{live.server.port}/admin/login/"},
        )

    one_address = [attempt(WRONG, "198.51.100.31").status for _ in range(7)]
    assert one_address == [200] * 5 + [429] * 2  # the form again (Django's answer), then the address limit
    rotating = [attempt(WRONG, f"198.51.100.{40 + i}").status for i in range(23)]
    assert rotating == [200] * 5 + [429] * 18  # the account's 10 failures are used up
    assert_refused_for(attempt(PASSWORD, "192.0.2.201"), at_least=60)

    rows = logged("/admin/login/", ips=[f"198.51.100.{i}" for i in (30, 31, *range(40, 63))], expect=31)
    posts = [status for _ip, method, _path, status in rows if method == "POST"]
    assert posts == [401] * 5 + [429] * 2 + [401] * 5 + [429] * 18
    # ... which the detector counts as failed logins (the refusals are not).
    counted = auth_failures(start)
    assert counted["198.51.100.31"] == (5, 5)  # the 2 refusals are not attempts
    assert counted["198.51.100.40"] == (1, 1) and counted["198.51.100.62"] == (0, 0)
