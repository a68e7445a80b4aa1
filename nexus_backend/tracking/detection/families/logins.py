"""Password guessing: failed logins from one address, a campaign of addresses failing once or twice each, and one
account guessed from many addresses."""

from __future__ import annotations

from ..aggregate import IPStats
from ..site import _only_failed_logins
from .base import Context, Hit, requests_of


def rule_auth_failures(s: IPStats, p: dict, c: Context) -> Hit | None:
    if s.auth_failures < p["min_failures"] or s.auth_failures < p["min_failure_ratio"] * s.auth_attempts:
        return None
    if s.requests - s.static - s.auth_attempts > p["max_other_per_attempt"] * s.auth_attempts:
        return None  # a few failed logins among hundreds of other requests: someone at work (a developer), not guessing
    return Hit(
        p["score"],
        f"{s.auth_failures} failed logins of {s.auth_attempts}",
        {"failures": s.auth_failures, "attempts": s.auth_attempts, "requests": requests_of(s, "login_failure")},
    )


def rule_login_campaign(s: IPStats, p: dict, c: Context) -> Hit | None:
    if not _only_failed_logins(s, p["max_other_requests"]):
        return None
    peers = c.site.failing_logins.get(c.key[0], 0)
    if peers < p["min_addresses"]:
        return None
    return Hit(
        p["score"],
        f"{s.auth_failures} failed login(s), nothing else, like {peers - 1} other address(es) in this window",
        {"failures": s.auth_failures, "addresses": peers, "requests": requests_of(s, "login_failure")},
    )


def rule_account_campaign(s: IPStats, p: dict, c: Context) -> Hit | None:
    addresses, account = c.accounts.get(c.key, (0, None))
    if addresses < p["min_addresses"] or s.auth_failures < s.auth_attempts:  # one that logged in is the owner
        return None
    return Hit(
        p["score"],
        f"{s.auth_failures} failed login(s), on an account that {addresses - 1} other address(es) failed on too",
        {"account": account, "addresses": addresses, "requests": requests_of(s, "login_failure")},
    )
