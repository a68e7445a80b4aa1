"""The admin: block list changes (form, actions) reach the in-process block list; request logs are read-only
and their addresses can be blocked in one action."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.utils import timezone

from nexus_backend.tracking.models import BlockedIP, RequestLog

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.66"


@pytest.fixture
def admin_client(make_user) -> Client:
    admin = make_user("root", is_staff=True)
    admin.is_superuser = True
    admin.save()
    client = Client()
    client.force_login(admin)
    return client


def bare(ip: str) -> int:
    return Client().get("/bench/bare/", REMOTE_ADDR=ip).status_code


def test_add_through_the_admin_form_applies_at_once(admin_client):
    response = admin_client.post(
        "/admin/tracking/blockedip/add/", {"ip_address": " 203.0.113.0/24 ", "reason": "scan", "expires_at_0": ""}
    )
    assert response.status_code == 302, response.content[:2000]
    assert BlockedIP.objects.get().ip_address == "203.0.113.0/24"
    assert bare(ATTACKER) == 403


def test_the_admin_form_explains_a_bad_network(admin_client):
    response = admin_client.post("/admin/tracking/blockedip/add/", {"ip_address": "10.0.0.5/8", "reason": ""})
    assert response.status_code == 200
    assert b"has host bits set; did you mean 10.0.0.0/8?" in response.content
    assert not BlockedIP.objects.exists()


def test_actions_unblock_now_and_extend(admin_client):
    row = BlockedIP.objects.create(ip_address=ATTACKER)
    assert bare(ATTACKER) == 403
    url = "/admin/tracking/blockedip/"
    admin_client.post(url, {"action": "expire_now", "_selected_action": [row.pk]})
    assert bare(ATTACKER) == 200
    row.refresh_from_db()
    assert row.expires_at <= timezone.now()
    admin_client.post(url, {"action": "extend_one_day", "_selected_action": [row.pk]})
    assert bare(ATTACKER) == 403
    admin_client.post(url, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"})
    assert not BlockedIP.objects.exists()
    assert bare(ATTACKER) == 200


def test_block_the_addresses_of_selected_request_logs(admin_client):
    logs = [
        RequestLog.objects.create(
            request_id=uuid.uuid4(),
            ip_address=ip,
            timestamp=timezone.now(),
            method="GET",
            path="/wp-login.php",
            status_code=404,
            duration_ms=1.0,
        )
        for ip in (ATTACKER, ATTACKER, "2001:db8::66")
    ]
    response = admin_client.get("/admin/tracking/requestlog/")
    assert response.status_code == 200 and b"/wp-login.php" in response.content
    admin_client.post(
        "/admin/tracking/requestlog/", {"action": "block_addresses", "_selected_action": [r.pk for r in logs]}
    )
    assert sorted(BlockedIP.objects.values_list("ip_address", flat=True)) == ["2001:db8::66", ATTACKER]
    assert bare(ATTACKER) == 403 and bare("2001:db8::66") == 403
    assert admin_client.get(f"/admin/tracking/requestlog/{logs[0].pk}/change/").status_code == 200  # view only
