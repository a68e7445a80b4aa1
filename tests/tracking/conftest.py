"""Helpers for the tracking tests: requests from a chosen address, through a chosen number of proxies."""

from __future__ import annotations

import pytest
from django.test import Client

BARE = "/bench/bare/"
PROXIES = ["10.0.0.1", "10.0.0.2"]  # PROXIES[0] faces the internet, PROXIES[-1] talks to the app


def proxied(client_ip: str, trusted: int, forged: str | None = None) -> dict:
    """Request META for a client at ``client_ip`` that sent ``X-Forwarded-For: forged`` and crossed ``trusted``
    proxies, each appending the address of the peer it saw (what nginx's $proxy_add_x_forwarded_for does)."""
    entries = [forged] if forged else []
    peer = client_ip
    for proxy in PROXIES[:trusted]:
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
