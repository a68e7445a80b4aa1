"""The client's IP address, resolved once per request and used by logging, the block list and rate limits.

The rule (django-ratelimit's and DRF's, DESIGN.md §8): with ``NEXUS_TRUSTED_PROXIES = 0`` (the default) the
client is ``REMOTE_ADDR``, the peer that opened the TCP connection, and ``X-Forwarded-For`` is ignored. With
``N`` trusted proxies in front of the app, each proxy appends the address of the peer it saw, so the last ``N``
entries of ``X-Forwarded-For`` were written by our proxies and the client is the ``N``-th entry counted from the
right. Everything to its left was sent by the client and may be forged; the left-most entry is never used.

When the header has fewer than ``N`` entries, or the chosen entry is not an IP address, the request did not come
through the proxy chain as configured: the address is ``REMOTE_ADDR`` (the one peer we actually saw), never
anything the client wrote. Addresses are normalised (``::ffff:1.2.3.4`` -> ``1.2.3.4``, ports, brackets and
IPv6 zone ids removed) so that logging, blocking and rate limiting agree on one spelling.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from django.conf import settings

logger = logging.getLogger(__name__)

# Set on the request by the middleware; read through client_ip().
ATTRIBUTE = "client_ip"
_UNSET = object()
_warned: set[str] = set()


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
    text = text.split("%", 1)[0]  # IPv6 zone id
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
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, IPV6_GROUP_PREFIX), strict=False))


def resolve(meta: dict, trusted_proxies: int) -> str | None:
    """The client address for a WSGI ``META`` dict, given how many proxies in front of the app are trusted."""
    remote = normalize_ip(meta.get("REMOTE_ADDR"))
    if trusted_proxies <= 0:
        return remote
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not forwarded:
        _warn_once("missing", "X-Forwarded-For is missing although NEXUS_TRUSTED_PROXIES=%s; using REMOTE_ADDR")
        return remote
    entries = forwarded.split(",")
    if len(entries) < trusted_proxies:
        _warn_once(
            "short",
            "X-Forwarded-For has fewer entries than NEXUS_TRUSTED_PROXIES=%s (a request that bypassed a proxy, "
            "or a proxy count set too high); using REMOTE_ADDR",
        )
        return remote
    chosen = normalize_ip(entries[-trusted_proxies])
    if chosen is None:
        _warn_once(
            "invalid",
            "the X-Forwarded-For entry written by a trusted proxy is not an IP address "
            "(NEXUS_TRUSTED_PROXIES=%s); using REMOTE_ADDR",
        )
        return remote
    return chosen


def _warn_once(kind: str, message: str) -> None:
    if kind not in _warned:
        _warned.add(kind)
        logger.warning(message, settings.NEXUS_TRUSTED_PROXIES)


def client_ip(request) -> str | None:
    """The resolved client address of ``request`` (a Django ``HttpRequest`` or a DRF ``Request``).

    The middleware resolves it once and stores it on the request; a request that did not pass through the
    middleware (a unit test with a request factory) is resolved here, once, the same way.
    """
    django_request = getattr(request, "_request", request)  # DRF wraps the HttpRequest
    value = getattr(django_request, ATTRIBUTE, _UNSET)
    if value is _UNSET:
        value = resolve(django_request.META, settings.NEXUS_TRUSTED_PROXIES)
        setattr(django_request, ATTRIBUTE, value)
    return value
