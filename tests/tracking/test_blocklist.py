"""The block list: 403 JSON for blocked addresses and networks, from an in-process set (no query per request),
invalidated on change, expiry honoured, not evaded nor abused with a forged X-Forwarded-For."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from nexus_backend.tracking import services
from nexus_backend.tracking.blocklist import BLOCKLIST
from nexus_backend.tracking.models import BlockedIP
from nexus_backend.tracking.recorder import RECORDER
from nexus_backend.tracking.stream import blocklist_version_key

from ..waiting import sleep_until
from .conftest import BARE, proxied

pytestmark = pytest.mark.django_db

ATTACKER, INNOCENT = "203.0.113.66", "198.51.100.7"


def status(web, ip: str | None = None, **meta) -> int:
    if ip is not None:
        meta["REMOTE_ADDR"] = ip
    return web.get(BARE, **meta).status_code


def test_a_blocked_address_gets_403_json_and_the_others_do_not(web):
    services.blocked_ip_block(ip_address=ATTACKER, reason="scanner")
    response = web.get(BARE, REMOTE_ADDR=ATTACKER)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Requests from your address are blocked.", "code": "ip_blocked"}
    assert status(web, INNOCENT) == 200
    # every path, not only the API
    assert web.post("/api/auth/token/", {}, REMOTE_ADDR=ATTACKER).status_code == 403
    assert web.get("/admin/login/", REMOTE_ADDR=ATTACKER).status_code == 403


@pytest.mark.parametrize(
    ("entry", "inside", "outside"),
    [
        ("203.0.113.0/24", ["203.0.113.0", "203.0.113.255"], ["203.0.112.255", "203.0.114.0"]),
        ("10.0.0.0/8", ["10.1.2.3", "10.255.255.255"], ["11.0.0.0", "9.255.255.255"]),
        ("2001:db8:abcd::/48", ["2001:db8:abcd::1", "2001:db8:abcd:ffff::9"], ["2001:db8:abce::1", "::1"]),
        # an IPv6 address blocks its /64 (one subscriber's: rotating through it must not escape the block)
        ("2001:db8::7", ["2001:db8::7", "2001:0db8:0:0::7", "2001:db8::8", "2001:db8::ffff:1"], ["2001:db8:0:1::7"]),
    ],
)
def test_addresses_and_cidr_networks(web, entry, inside, outside):
    services.blocked_ip_block(ip_address=entry)
    assert [status(web, ip) for ip in inside] == [403] * len(inside)
    assert [status(web, ip) for ip in outside] == [200] * len(outside)


def test_ipv4_mapped_ipv6_peer_is_matched_as_ipv4(web):
    services.blocked_ip_block(ip_address="203.0.113.0/24")
    assert status(web, "::ffff:203.0.113.9") == 403


def test_no_database_query_per_request(web, django_assert_num_queries):
    services.blocked_ip_block(ip_address=ATTACKER)
    services.blocked_ip_block(ip_address="10.0.0.0/8")
    services.blocked_ip_block(ip_address="2001:db8::/32")
    RECORDER.poll_blocklist(force=True)  # the tracking thread's view of the version is current
    assert status(web, INNOCENT) == 200  # the one load (one query) happens here
    with django_assert_num_queries(0):
        statuses = [status(web, ip) for ip in [ATTACKER, INNOCENT, "10.9.8.7", "2001:db8::1", "2001:db9::1"] * 20]
    assert statuses == [403, 200, 403, 403, 200] * 20


def test_an_expired_block_stops_applying_without_a_reload(web, django_assert_num_queries):
    expires_at = timezone.now() + timedelta(seconds=3)  # a generous window for the first request
    services.blocked_ip_block(ip_address=ATTACKER, expires_at=expires_at)
    RECORDER.poll_blocklist(force=True)
    assert status(web, ATTACKER) == 403
    sleep_until(expires_at)
    with django_assert_num_queries(0):
        assert status(web, ATTACKER) == 200


def test_blocks_that_expired_before_loading_are_not_loaded(web):
    BlockedIP.objects.create(ip_address=ATTACKER, expires_at=timezone.now() - timedelta(seconds=1))
    BLOCKLIST.mark_stale()
    assert status(web, ATTACKER) == 200
    assert BLOCKLIST.size == 0


def test_a_change_applies_to_the_next_request_in_this_process(web):
    assert status(web, ATTACKER) == 200
    services.blocked_ip_block(ip_address=ATTACKER)
    assert status(web, ATTACKER) == 403
    services.blocked_ip_unblock(ip_address=ATTACKER)
    assert status(web, ATTACKER) == 200


def test_a_change_made_by_another_process_arrives_through_the_version_key(web):
    RECORDER.poll_blocklist(force=True)
    assert status(web, ATTACKER) == 200
    # Another process: a row (no signal in this process) and the version bump its commit makes.
    BlockedIP.objects.bulk_create([BlockedIP(ip_address=ATTACKER)])
    assert status(web, ATTACKER) == 200  # this process does not know yet: no query per request
    RECORDER.client().incr(blocklist_version_key())
    RECORDER.poll_blocklist(force=True)  # what the tracking thread does every NEXUS_BLOCKLIST_REFRESH_SECONDS
    assert status(web, ATTACKER) == 403


def test_admin_style_bulk_changes_reach_the_block_list(web):
    row, _ = services.blocked_ip_block(ip_address=ATTACKER)
    assert status(web, ATTACKER) == 403
    assert services.blocked_ip_expire(ids=[row.pk]) == 1
    assert status(web, ATTACKER) == 200
    assert services.blocked_ip_extend(ids=[row.pk], by=timedelta(hours=1)) == 1
    assert status(web, ATTACKER) == 403


@pytest.mark.parametrize("trusted_proxies", [0, 1, 2], indirect=True)
@pytest.mark.parametrize("forged", [None, INNOCENT, f"{INNOCENT}, 127.0.0.1", "garbage"])
def test_a_forged_x_forwarded_for_does_not_evade_a_block(web, trusted_proxies, forged):
    services.blocked_ip_block(ip_address=ATTACKER)
    assert status(web, **proxied(ATTACKER, trusted_proxies, forged)) == 403


@pytest.mark.parametrize("trusted_proxies", [0, 1, 2], indirect=True)
def test_a_forged_x_forwarded_for_does_not_get_someone_else_blocked_or_unblocked(web, trusted_proxies):
    services.blocked_ip_block(ip_address=ATTACKER)
    # The innocent client is not blocked because someone put the attacker's address in a header...
    assert status(web, **proxied(INNOCENT, trusted_proxies, forged=ATTACKER)) == 200
    # ...and nobody, whatever they write, is treated as the blocked address except the attacker.
    assert status(web, **proxied(INNOCENT, trusted_proxies, forged=f"{ATTACKER}, {ATTACKER}")) == 200


def test_the_proxies_own_addresses_are_not_the_client_when_trusted(web, settings):
    settings.NEXUS_TRUSTED_PROXIES = 2
    services.blocked_ip_block(ip_address="10.0.0.0/24")  # the proxies' network: must not block everyone
    assert status(web, **proxied(INNOCENT, 2)) == 200


def test_if_the_database_cannot_load_the_list_the_loaded_one_is_kept(web, monkeypatch):
    from django.db import OperationalError

    from nexus_backend.tracking import selectors

    services.blocked_ip_block(ip_address=ATTACKER)
    assert status(web, ATTACKER) == 403
    calls = []

    def down(**kwargs):
        calls.append(1)
        raise OperationalError("connection refused")

    monkeypatch.setattr(selectors, "blocked_ip_active", down)
    BLOCKLIST.mark_stale()
    assert [status(web, ip) for ip in (ATTACKER, INNOCENT, ATTACKER)] == [403, 200, 403]  # no 500
    assert calls == [1]  # one attempt, then no query per request while it is down
