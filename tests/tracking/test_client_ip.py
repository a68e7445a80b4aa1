"""Client IP resolution: REMOTE_ADDR, or X-Forwarded-For counted from the right by the trusted proxies (on this
machine: loopback peers only) or walked from the right through the trusted proxy networks."""

from __future__ import annotations

import ipaddress
import logging
import random

import pytest

from nexus_backend.tracking.client_ip import address_group, ipv6_text, normalize_ip, resolve
from nexus_backend.tracking.detection.clf import _Caches

CLIENT = "203.0.113.7"  # the real client
VICTIM = "198.51.100.99"  # an address an attacker would like to frame
PROXY1, PROXY2 = "10.0.0.1", "127.0.0.1"  # our proxies: PROXY1 faces the internet, PROXY2 (local) faces the app
LB1, LB2 = "10.1.0.1", "10.1.0.2"  # load balancers elsewhere, in NEXUS_TRUSTED_PROXY_NETWORKS
LB_NETWORKS = [ipaddress.ip_network("10.1.0.0/16")]


def through_proxies(trusted: int, client_sent: str | None) -> dict:
    """The META a request gets after crossing ``trusted`` proxies that each append the peer they saw."""
    entries = [client_sent] if client_sent else []
    peer = CLIENT
    for proxy in [PROXY1, PROXY2][2 - trusted :] if trusted else []:
        entries.append(peer)
        peer = proxy
    meta = {"REMOTE_ADDR": peer}
    if entries:
        meta["HTTP_X_FORWARDED_FOR"] = ", ".join(entries)
    return meta


@pytest.mark.parametrize("trusted", [0, 1, 2])
@pytest.mark.parametrize(
    "forged",
    [None, VICTIM, f"{VICTIM}, {VICTIM}", f"{VICTIM}, 127.0.0.1, {VICTIM}", "unknown", "", " , ,", "::1"],
)
def test_whatever_the_client_sends_the_resolved_address_is_its_own(trusted, forged):
    assert resolve(through_proxies(trusted, forged), trusted) == CLIENT


@pytest.mark.parametrize("trusted", [1, 2])
def test_the_left_most_entry_is_never_used(trusted):
    meta = through_proxies(trusted, VICTIM)
    assert meta["HTTP_X_FORWARDED_FOR"].split(",")[0].strip() == VICTIM
    assert resolve(meta, trusted) == CLIENT


def test_with_no_trusted_proxy_the_header_is_ignored():
    assert resolve({"REMOTE_ADDR": CLIENT, "HTTP_X_FORWARDED_FOR": VICTIM}, 0) == CLIENT


@pytest.mark.parametrize(
    ("meta", "trusted"),
    [
        ({"REMOTE_ADDR": PROXY2}, 1),  # header missing
        ({"REMOTE_ADDR": PROXY2, "HTTP_X_FORWARDED_FOR": CLIENT}, 2),  # shorter than the proxy chain
        ({"REMOTE_ADDR": PROXY2, "HTTP_X_FORWARDED_FOR": f"{VICTIM}, not-an-ip"}, 1),  # garbage where an IP must be
        ({"REMOTE_ADDR": PROXY2, "HTTP_X_FORWARDED_FOR": f"{VICTIM},"}, 1),  # empty entry
    ],
)
def test_a_header_that_does_not_fit_the_proxy_chain_falls_back_to_the_peer(meta, trusted):
    assert resolve(meta, trusted) == meta["REMOTE_ADDR"]


@pytest.mark.parametrize("trusted", [1, 2])
def test_a_peer_that_is_not_a_trusted_proxy_is_the_client_whatever_it_writes(trusted):
    """NEXUS_TRUSTED_PROXIES counts proxies on this machine: a peer elsewhere writing the header is not one."""
    assert resolve({"REMOTE_ADDR": CLIENT, "HTTP_X_FORWARDED_FOR": f"{VICTIM}, {VICTIM}"}, trusted) == CLIENT
    assert resolve({"REMOTE_ADDR": CLIENT, "HTTP_X_FORWARDED_FOR": VICTIM}, 0, LB_NETWORKS) == CLIENT


@pytest.mark.parametrize("forged", [None, VICTIM, f"{VICTIM}, {LB1}", "garbage, 10.1.9.9"])
def test_proxies_elsewhere_are_trusted_by_network_walking_from_the_right(forged):
    entries = ([forged] if forged else []) + [CLIENT, LB1]  # client -> LB1 -> LB2 -> app
    meta = {"REMOTE_ADDR": LB2, "HTTP_X_FORWARDED_FOR": ", ".join(entries)}
    assert resolve(meta, 0, LB_NETWORKS) == CLIENT


def test_a_local_proxy_behind_a_trusted_network_proxy_resolves_the_client():
    """client -> LB1 (a network proxy) -> nginx on this machine (NEXUS_TRUSTED_PROXIES=1) -> app."""
    meta = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": f"{VICTIM}, {CLIENT}, {LB1}"}
    assert resolve(meta, 1, LB_NETWORKS) == CLIENT
    assert resolve(meta, 1) == LB1  # without the network setting, the load balancer is the client


def test_a_proxied_looking_service_with_no_trusted_proxy_warns_once(caplog, monkeypatch):
    from nexus_backend.tracking import client_ip

    monkeypatch.setattr(client_ip, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="nexus_backend.tracking.client_ip"):
        public = "93.184.216.34"  # (the documentation ranges count as private for ipaddress)
        assert resolve({"REMOTE_ADDR": public, "HTTP_X_FORWARDED_FOR": VICTIM}, 0) == public  # public peer: silent
        assert "no trusted proxy is configured" not in caplog.text
        for _ in range(3):
            assert resolve({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": CLIENT}, 0) == "127.0.0.1"
    assert caplog.text.count("no trusted proxy is configured") == 1
    assert "NEXUS_TRUSTED_PROXY_NETWORKS" in caplog.text


def test_unusable_remote_addr_is_none():
    assert resolve({}, 0) is None
    assert resolve({"REMOTE_ADDR": ""}, 0) is None
    assert resolve({"REMOTE_ADDR": "garbage"}, 0) is None


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("203.0.113.7:51234", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("fe80::1%eth0", "fe80::1"),
        ("999.1.1.1", None),
        ("[2001:db8::1", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_ip(raw, normal):
    assert normalize_ip(raw) == normal


def test_ports_and_mapped_addresses_resolve_to_one_spelling():
    meta = {"REMOTE_ADDR": PROXY2, "HTTP_X_FORWARDED_FOR": "::ffff:203.0.113.7"}
    assert resolve(meta, 1) == CLIENT
    assert resolve({"REMOTE_ADDR": "[::ffff:203.0.113.7]:80"}, 0) == CLIENT


@pytest.mark.parametrize(
    ("ip", "group"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:198.51.100.9", "198.51.100.9"),
        ("not an address", None),
        (None, None),
    ],
)
def test_address_group_keys_ipv6_by_its_64(ip, group):
    assert address_group(ip) == group


def _by_ipaddress(text: str) -> tuple[str | None, str | None]:
    """What ``ipaddress`` alone makes of ``text``: its normal text and its address group (the reference)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None, None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.version == 4:
        return str(address), str(address)
    return str(address), str(ipaddress.IPv6Network((address, 64), strict=False))


def _spellings(rng: random.Random) -> list[str]:
    """IPv6 addresses written the ways people and servers write them, and near misses: zero runs of every length
    and place (the shortening rules), upper case, leading zeros, a misplaced or doubled "::", too many groups, a
    five-digit group, a stray character, embedded IPv4, IPv4-mapped and zone ids."""
    out = []
    for _ in range(3000):
        groups = [rng.choice([0, 0, 0, 1, 0xFFFF, rng.randrange(1 << 16)]) for _ in range(8)]
        if rng.random() < 0.2:
            groups[:6] = [0, 0, 0, 0, 0, 0xFFFF]  # mapped
        address = ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in groups))
        out += [address.compressed, address.exploded, address.compressed.upper(), ":".join(f"{g:x}" for g in groups)]
        hextets = [f"{g:x}" for g in groups]
        start, length = rng.randrange(8), rng.randrange(0, 5)
        out.append(":".join(hextets[:start]) + "::" + ":".join(hextets[start + length :]))  # right or wrong
        broken = list(address.compressed)
        position = rng.randrange(len(broken) + 1)
        broken.insert(position, rng.choice([":", "::", "0", "g", "12345", " ", ".", "%eth0"]))
        out.append("".join(broken))
        out.append(address.compressed + "%eth0")
        if rng.random() < 0.2:
            out.append(f"{':'.join(hextets[:6])}:{rng.randrange(256)}.{rng.randrange(256)}.1.2")
    return out + ["::", "::1", "1::", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8::", ":::", "1:::2", ""]


def test_the_fast_ipv6_reading_writes_what_ipaddress_writes():
    """IPv6 addresses are read by the C library (``client_ip._ipv6_packed``), ``ipaddress`` only for the rest: for
    every spelling, right or wrong, the normal text and the /64 are exactly what ``ipaddress`` alone gives."""
    rng = random.Random(64)
    spellings = _spellings(rng)
    parsers = _Caches()
    fast = 0
    for text in spellings:
        normal, group = _by_ipaddress(text)
        assert address_group(text) == group, text
        assert parsers.ip(text) == normal, text  # the log parsers' reading (address_text, cached)
        if "%" not in text and text == text.strip() and text.count(":") > 1:  # normalize_ip also cuts these
            assert normalize_ip(text) == normal, text
        fast += ipv6_text(text) is not None
    assert fast > len(spellings) // 3  # the fast path was taken for most well-formed addresses, not skipped


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("peer", "networks", "believed"),
    [
        ("127.0.0.1", [], True),  # the proxy on this machine (NEXUS_TRUSTED_PROXIES=1)
        (CLIENT, [], False),  # a client reaching the app directly
        (LB1, LB_NETWORKS, True),  # a load balancer in NEXUS_TRUSTED_PROXY_NETWORKS
        (CLIENT, LB_NETWORKS, False),
    ],
)
def test_only_a_trusted_proxy_can_say_a_request_came_over_https(settings, peer, networks, believed):
    """Django believes SECURE_PROXY_SSL_HEADER from whoever sends it; the tracking middleware drops it from a peer
    that is not a trusted proxy, so a direct client cannot dodge the HTTPS redirect or pass as secure."""
    from django.test import Client

    settings.NEXUS_TRUSTED_PROXIES, settings.NEXUS_TRUSTED_PROXY_NETWORKS = 1, networks
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    claims_https = Client().get("/api/polls/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_PROTO="https")
    assert claims_https.status_code == (200 if believed else 301)
    plain = Client().get("/api/polls/", REMOTE_ADDR=peer)
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
