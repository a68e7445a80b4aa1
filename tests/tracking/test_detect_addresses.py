"""The detector's address shortcuts give what ``ipaddress`` gives: a canonical IPv4 address is its own normalised
form and address group (``clf.canonical_ipv4``), and an address group's span is read without an ``ip_network``
object (``derived._span``). Anything the shortcuts do not recognise goes through ``ipaddress`` as before."""

from __future__ import annotations

import ipaddress
import random

import pytest

from nexus_backend.tracking.client_ip import address_group
from nexus_backend.tracking.detection.clf import _Caches, canonical_ipv4
from nexus_backend.tracking.detection.derived import _span

ADDRESSES = ["1.2.3.4", "0.0.0.0", "255.255.255.255", "01.2.3.4", "1.2.3.04", "1.2.3", "1.2.3.4.5", " 1.2.3.4",
             "1.2.3.4 ", "256.1.1.1", "0x1.2.3.4", "1..2.3", "1.2.3.4/32", "", "a.b.c.d", "1.2.3.4\x00",
             "\u0661.\u0662.\u0663.\u0664", "::ffff:1.2.3.4", "2001:DB8::1", "2001:db8::1", "::1"]  # fmt: skip


def _normalised(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def _random_dotted(rng: random.Random) -> str:
    parts = ["0", "00", "1", "01", "9", "10", "99", "007", "255", "256", "-1", "+1", " 1", "1e1"]
    return ".".join(rng.choice(parts) for _ in range(rng.choice([3, 4, 4, 4, 5])))


def test_addresses_are_normalised_as_ipaddress_does():
    rng = random.Random(2)
    caches = _Caches()
    for text in ADDRESSES + [_random_dotted(rng) for _ in range(3000)]:
        assert caches.ip(text) == _normalised(text), text
        if canonical_ipv4(text):
            assert address_group(text) == text


@pytest.mark.parametrize(
    "key",
    [
        "2001:db8:1:2::/64",
        "10.0.0.0/8",
        "10.1.2.3/8",
        "::/0",
        "0.0.0.0/0",
        "2001:db8::1/128",
        "1.2.3.4/32",
        "::ffff:1.2.3.4/120",
        "203.0.113.7",
        "2001:db8::7",
    ],  # fmt: skip
)
def test_span_of_a_group_key(key):
    net = ipaddress.ip_network(key, strict=False)
    assert _span(key) == (net.version, int(net.network_address), int(net.broadcast_address))


def test_span_of_random_networks():
    rng = random.Random(3)
    for _ in range(2000):
        if rng.random() < 0.5:
            key = f"{ipaddress.IPv6Address(rng.getrandbits(128))}/{rng.randint(0, 128)}"
        else:
            key = f"{ipaddress.IPv4Address(rng.getrandbits(32))}/{rng.randint(0, 32)}"
        net = ipaddress.ip_network(key, strict=False)
        assert _span(key) == (net.version, int(net.network_address), int(net.broadcast_address)), key


def test_span_refuses_what_ipaddress_refuses():
    with pytest.raises(ValueError):
        _span("2001:db8::/129")
