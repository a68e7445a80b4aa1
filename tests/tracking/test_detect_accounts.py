"""One account guessed from many addresses (rule ``account_campaign``): a failed login is recorded in the request
log under the account it named, and the hourly task flags every address whose logins on that account all failed.
A web server's log names no account, so replay has nothing for this rule (``login_campaign`` covers it there)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from nexus_backend.tracking import flusher
from nexus_backend.tracking.detection.services import detect_window
from nexus_backend.tracking.models import RequestLog, SuspiciousIP
from nexus_backend.tracking.recorder import RECORDER
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

HOUR = datetime(2025, 3, 3, 10, tzinfo=UTC)
WRONG = "not-the-password-at-all"


def login(username: str, password: str, ip: str) -> int:
    response = APIClient().post(
        "/api/auth/token/", {"username": username, "password": password}, format="json", REMOTE_ADDR=ip
    )
    return response.status_code


def logged_in_one_hour() -> list[RequestLog]:
    """Flush the request log and move its rows into one fixed hour (a test must not straddle a window)."""
    RECORDER.flush_buffer()
    flusher.flush()
    rows = list(RequestLog.objects.order_by("id"))
    for i, row in enumerate(rows):
        row.timestamp = HOUR + timedelta(seconds=10 + i)
    RequestLog.objects.bulk_update(rows, ["timestamp"])
    return rows


def detect() -> dict[str, SuspiciousIP]:
    detect_window(start=HOUR, end=HOUR + timedelta(hours=1), auto_block=False)
    return {row.ip_address: row for row in SuspiciousIP.objects.all()}


def test_a_failed_login_is_logged_under_the_account_it_named(make_user):
    victim = make_user("victim")
    assert login("victim", WRONG, "203.0.113.1") == 401
    assert login("nobody-has-this-name", WRONG, "203.0.113.2") == 401
    assert APIClient().post("/api/auth/token/", ["victim"], format="json", REMOTE_ADDR="203.0.113.3").status_code == 400
    assert login("victim", PASSWORD, "198.51.100.1") == 200
    rows = logged_in_one_hour()
    assert [(r.ip_address, r.status_code, r.user_id) for r in rows] == [
        ("203.0.113.1", 401, victim.pk),
        ("203.0.113.2", 401, None),  # no such account
        ("203.0.113.3", 400, None),  # not even a username
        ("198.51.100.1", 200, None),  # a success is not judged (and the token view authenticates nobody)
    ]


def test_addresses_guessing_one_account_are_flagged_together(make_user):
    make_user("victim")
    make_user("bystander")
    attackers = [f"203.0.113.{10 + i}" for i in range(3)]
    for ip in attackers:
        assert [login("victim", WRONG, ip) for _ in range(2)] == [401, 401]
    # the owner mistypes once from home, then gets in; someone else mistypes their own password twice
    assert [login("victim", WRONG, "198.51.100.7"), login("victim", PASSWORD, "198.51.100.7")] == [401, 200]
    assert [login("bystander", WRONG, "198.51.100.8") for _ in range(2)] == [401, 401]
    logged_in_one_hour()
    found = detect()
    for ip in attackers:
        assert "account_campaign" in found[ip].rules and found[ip].score >= 0.5
        assert found[ip].evidence["account_campaign"]["addresses"] == 4  # three attackers and the owner's address
    assert "198.51.100.7" not in found  # the owner logged in
    assert "198.51.100.8" not in found  # one address on its own account: a typo, not a campaign


def test_two_addresses_on_one_account_are_not_a_campaign(make_user):
    make_user("victim")
    for ip in ("203.0.113.20", "203.0.113.21"):
        assert [login("victim", WRONG, ip) for _ in range(2)] == [401, 401]
    logged_in_one_hour()
    assert detect() == {}


def test_the_rule_follows_its_parameters(make_user, tmp_path, settings):
    make_user("victim")
    for ip in ("203.0.113.30", "203.0.113.31", "203.0.113.32"):
        assert login("victim", WRONG, ip) == 401
    logged_in_one_hour()
    assert set(detect()) == {"203.0.113.30", "203.0.113.31", "203.0.113.32"}
    SuspiciousIP.objects.all().delete()
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  account_campaign:\n    min_addresses: 4\n")
    settings.NEXUS_DETECTION_RULES = str(rules)
    assert detect() == {}
