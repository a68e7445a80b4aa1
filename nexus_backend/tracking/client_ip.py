"""The client's IP address, resolved once per request and used by logging, the block list and rate limits.

The rule (django-ratelimit's and DRF's): ``X-Forwarded-For`` is read only when the peer that opened the TCP
connection (``REMOTE_ADDR``) is a proxy we trust; from any other peer the client is the peer, whatever it wrote.

- ``NEXUS_TRUSTED_PROXIES = N`` (default 0): ``N`` proxies on this machine, the last of them talking to the app
  over loopback. Each appends the address of the peer it saw, so the last ``N`` entries were written by our
  proxies and the client is the ``N``-th entry counted from the right. It applies to loopback peers only.
- ``NEXUS_TRUSTED_PROXY_NETWORKS``: the networks of proxies elsewhere (a load balancer in 10.0.0.0/8). A peer
  inside them is a proxy; walking the header from the right, entries inside them are proxies too, and the
  first one outside is the client.

Everything left of the chosen entry was sent by the client and may be forged. When the header is missing,
shorter than the proxy chain, or the chosen entry is not an IP address, the address is ``REMOTE_ADDR`` (the one
peer we actually saw), never anything the client wrote. With no trusted proxy configured, a request carrying
``X-Forwarded-For`` from a loopback or private peer logs a warning once: the service looks proxied, and every
client then shares the proxy's address. Addresses are normalised (``::ffff:1.2.3.4`` -> ``1.2.3.4``, ports,
brackets and IPv6 zone ids removed) so that logging, blocking and rate limiting agree on one spelling.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from functools import lru_cache
from typing import cast

from django.conf import settings

logger = logging.getLogger(__name__)

# Set on the request by the middleware; read through client_ip().
ATTRIBUTE = "client_ip"
_UNSET = object()
_warned: set[str] = set()


_MAPPED = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96, IPv4-mapped addresses
_HOST_BITS = bytes(8)


def _ipv6_packed(text: str) -> bytes | None:
    """The 16 bytes of ``text`` when it is a plain IPv6 address (hex groups and ``::``, no embedded IPv4, no zone,
    not IPv4-mapped), read by the C library instead of ``ipaddress`` (~30x faster: a replayed log can hold tens of
    thousands of them). ``None``: not such an address, and ``ipaddress`` decides. For these strings both read the
    same grammar, and ``inet_ntop`` writes what ``ipaddress`` writes (RFC 5952: lower case, the longest run of two
    or more zero groups shortened, the first of equal runs): ``tests/tracking/test_client_ip.py`` compares them."""
    if "." in text or "%" in text:
        return None
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        return None
    return None if packed[:12] == _MAPPED else packed


def ipv6_text(text: str) -> str | None:
    """``str(ipaddress.ip_address(text))`` for a plain IPv6 address (``_ipv6_packed``); ``None`` for anything else,
    and where the C library writes the last 32 bits as IPv4 (``::171.35.86.146``), which ``ipaddress`` does not."""
    packed = _ipv6_packed(text)
    if packed is None:
        return None
    out = socket.inet_ntop(socket.AF_INET6, packed)
    return None if "." in out else out


@lru_cache(maxsize=8192)
def normalize_ip(value: str | None) -> str | None:
    """The canonical text of an IP address, or ``None`` if ``value`` is not one.

    Accepts what servers and proxies write: ``1.2.3.4``, ``1.2.3.4:5678``, ``[2001:db8::1]:443``,
    ``2001:db8::1``, ``::ffff:1.2.3.4``, ``fe80::1%eth0``. Cached: the same few addresses repeat all day.
    """
    if not value:
        return None
    text = value.strip()
    if text.startswith("["):  # [v6] or [v6]:port
        end = text.find("]")
        if end == -1:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    return address_text(text.split("%", 1)[0])  # without an IPv6 zone id


def address_text(text: str) -> str | None:
    """The canonical text of a bare address (an IPv4-mapped IPv6 address as its IPv4), or ``None``: plain IPv6
    through the C library (:func:`ipv6_text`), anything else through ``ipaddress``. (The log parsers use it too.)"""
    fast = ipv6_text(text)
    if fast is not None:
        return fast
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


IPV6_GROUP_PREFIX = 64


@lru_cache(maxsize=8192)
def address_group(ip: str | None) -> str | None:
    """The key every per-address control uses for ``ip`` (a normalised address, as :func:`normalize_ip` gives).

    An IPv4 address is its own group. An IPv6 address is grouped by its /64 network, written in CIDR text
    (``2001:db8:1:2::/64``): one subscriber line or one cloud host owns a whole /64 and can rotate through it for
    free, so limits, blocks and detection keyed on the full /128 would see each rotation as a new client.
    ``None`` (no usable address) stays ``None``.
    """
    if not ip:
        return None
    packed = _ipv6_packed(ip)
    if packed is not None:  # the common IPv6 case, without an ipaddress object (host bits zero: never "x.y.z.w")
        return socket.inet_ntop(socket.AF_INET6, packed[:8] + _HOST_BITS) + "/64"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, IPV6_GROUP_PREFIX), strict=False))


@lru_cache(maxsize=1024)
def _is_loopback(ip: str) -> bool:
    """Cached: ``resolve`` and the middleware's ``X-Forwarded-Proto`` check both ask it of every request's peer."""
    return ipaddress.ip_address(ip).is_loopback


def _in_networks(ip: str, networks) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in network for network in networks)


def from_trusted_proxy(peer: str, trusted_proxies: int, trusted_networks=()) -> bool:
    """Whether ``peer`` (a normalised address) is a proxy trusted to write ``X-Forwarded-*`` headers: a loopback
    peer when ``NEXUS_TRUSTED_PROXIES`` > 0, or a peer inside ``NEXUS_TRUSTED_PROXY_NETWORKS``."""
    local = trusted_proxies > 0 and _is_loopback(peer)
    return local or bool(trusted_networks and _in_networks(peer, trusted_networks))


def resolve(meta: dict, trusted_proxies: int, trusted_networks=()) -> str | None:
    """The client address for a WSGI ``META`` dict.

    ``trusted_proxies`` (``NEXUS_TRUSTED_PROXIES``) counts the proxies on this machine: it applies only when the
    peer is a loopback address. ``trusted_networks`` (``NEXUS_TRUSTED_PROXY_NETWORKS``) are the networks of proxies
    elsewhere: a peer inside them is a proxy, and so is every ``X-Forwarded-For`` entry inside them, walking from
    the right. Any other peer is the client, whatever it wrote in the header.
    """
    remote = normalize_ip(meta.get("REMOTE_ADDR"))
    if remote is None:
        return None
    local_proxy = trusted_proxies > 0 and _is_loopback(remote)
    if not from_trusted_proxy(remote, trusted_proxies, trusted_networks):
        if not trusted_proxies and not trusted_networks and meta.get("HTTP_X_FORWARDED_FOR"):
            _warn_if_proxied(remote)
        return remote
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not forwarded:
        _warn_once("missing", "X-Forwarded-For is missing from a request sent by a trusted proxy; using REMOTE_ADDR")
        return remote
    entries = forwarded.split(",")
    hops = trusted_proxies if local_proxy else 1  # entries written by the proxies we know for sure
    if len(entries) < hops:
        _warn_once(
            "short",
            "X-Forwarded-For has fewer entries than NEXUS_TRUSTED_PROXIES (a request that bypassed a proxy, "
            "or a proxy count set too high); using REMOTE_ADDR",
        )
        return remote
    index = len(entries) - hops
    while True:
        chosen = normalize_ip(entries[index])
        if chosen is None:
            _warn_once(
                "invalid",
                "the X-Forwarded-For entry written by a trusted proxy is not an IP address; using REMOTE_ADDR",
            )
            return remote
        if index == 0 or not (trusted_networks and _in_networks(chosen, trusted_networks)):
            return chosen
        index -= 1  # written by another of our proxies: the client is further left


def _warn_if_proxied(peer: str) -> None:
    """X-Forwarded-For from a loopback or private peer with no trusted proxy configured: the service is most likely
    behind a proxy, and every client then shares the proxy's address (one client's limits lock out everybody)."""
    address = ipaddress.ip_address(peer)
    if address.is_loopback or address.is_private:
        _warn_once(
            "proxied",
            "requests from %s carry X-Forwarded-For but no trusted proxy is configured: behind a proxy every client "
            "shares its address; set NEXUS_TRUSTED_PROXIES (a proxy on this machine) or NEXUS_TRUSTED_PROXY_NETWORKS",
            peer,
        )


def _warn_once(kind: str, message: str, *args) -> None:
    if kind not in _warned:
        _warned.add(kind)
        logger.warning(message, *args)


def client_ip(request) -> str | None:
    """The resolved client address of ``request`` (a Django ``HttpRequest`` or a DRF ``Request``).

    The middleware resolves it once and stores it on the request; a request that did not pass through the
    middleware (a unit test with a request factory) is resolved here, once, the same way.
    """
    django_request = getattr(request, "_request", request)  # DRF wraps the HttpRequest
    value = getattr(django_request, ATTRIBUTE, _UNSET)
    if value is _UNSET:
        value = resolve(django_request.META, settings.NEXUS_TRUSTED_PROXIES, settings.NEXUS_TRUSTED_PROXY_NETWORKS)
        setattr(django_request, ATTRIBUTE, value)
    return cast("str | None", value)  # what resolve() gave, here or in the middleware
