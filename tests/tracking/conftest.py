"""Helpers for the tracking tests: requests from a chosen address, through a chosen number of proxies."""

from __future__ import annotations

import pytest
from django.test import Client

BARE = "/bench/bare/"
# PROXIES[0] faces the internet, PROXIES[-1] talks to the app over loopback (NEXUS_TRUSTED_PROXIES counts proxies
# on this machine: it applies to loopback peers only).
PROXIES = ["10.0.0.1", "127.0.0.1"]


def proxied(client_ip: str, trusted: int, forged: str | None = None) -> dict:
    """Request META for a client at ``client_ip`` that sent ``X-Forwarded-For: forged`` and crossed ``trusted``
    proxies, each appending the address of the peer it saw (what nginx's $proxy_add_x_forwarded_for does)."""
    entries = [forged] if forged else []
    peer = client_ip
    for proxy in PROXIES[len(PROXIES) - trusted :] if trusted else []:
        entries.append(peer)
        peer = proxy
    meta = {"REMOTE_ADDR": peer}
    if entries:
        meta["HTTP_X_FORWARDED_FOR"] = ", ".join(entries)
    return meta


@pytest.fixture
def web() -> Client:
    return Client()


@pytest.fixture
def trusted_proxies(settings, request):
    """Parametrize indirectly with 0, 1 or 2."""
    settings.NEXUS_TRUSTED_PROXIES = request.param
    return request.param
