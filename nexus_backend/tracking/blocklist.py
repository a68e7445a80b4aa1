"""The block list as every web process sees it: an in-process set, no database query per request.

- The set is loaded from ``BlockedIP`` (one query) when the process first needs it, and again only when it is
  stale: after a change (a version counter in Redis, ``INCR``-ed when a change commits, polled every
  ``NEXUS_BLOCKLIST_REFRESH_SECONDS`` by the tracking thread of each process, see ``recorder``), or at the
  latest every ``NEXUS_BLOCKLIST_MAX_AGE_SECONDS`` (a safety net for a change made while Redis was down).
- The process that makes a change marks its own copy stale at once.
- Expiry is checked against the clock on every match, so an expired block stops applying without a reload.
- A lookup costs one dictionary probe per distinct prefix length in the list (a /32, a /24 and a /8: three).
- An IPv6 entry covers at least its /64 (``client_ip.address_group``): one subscriber owns the whole /64 and
  rotates through it for free, so blocking one of its addresses blocks them all.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError

from . import selectors
from .client_ip import IPV6_GROUP_PREFIX
from .networks import parse_network

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0  # after a failed load, how long to keep the loaded set before trying the database again


@lru_cache(maxsize=8192)
def _address(ip: str) -> tuple[int, int]:
    address = ipaddress.ip_address(ip)
    return address.version, int(address)


class BlockList:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (ip version, prefix length) -> {network address >> host bits: expiry (epoch seconds, inf = never)}
        self._tables: dict[tuple[int, int], dict[int, float]] = {}
        self.size = 0
        self.loaded_version: object = None  # the Redis version the loaded set corresponds to
        self.seen_version: object = None  # the latest version the tracking thread (or a change here) reported
        self._reload_due = 0.0  # monotonic time after which the set is reloaded anyway
        self._forced = True
        self._retry_at = 0.0

    # ----------------------------------------------------------------- staleness
    def needs_reload(self) -> bool:
        now = time.monotonic()
        if now < self._retry_at:  # the database failed a moment ago: keep the set we have, do not wait on it
            return False
        return self._forced or self.seen_version != self.loaded_version or now >= self._reload_due

    def mark_stale(self, version: object = None) -> None:
        """Reload before the next check (``version``: the Redis version the change produced, if known)."""
        if version is not None:
            self.seen_version = version
        self._forced = True
        self._retry_at = 0.0

    def version_seen(self, version: object) -> None:
        """Called by the tracking thread with the version it read from Redis."""
        self.seen_version = version

    def reset_empty(self) -> None:
        """Known to be empty (a test starts with an empty table): nothing to load, no query on the next request."""
        with self._lock:
            self._tables, self.size = {}, 0
            self.loaded_version = self.seen_version
            self._forced = False
            self._retry_at = 0.0
            self._reload_due = time.monotonic() + settings.NEXUS_BLOCKLIST_MAX_AGE_SECONDS

    # ----------------------------------------------------------------- loading
    def reload(self) -> None:
        """Load the active entries (one query). Runs on the request thread: it must see that thread's database."""
        target = self.seen_version
        try:
            rows = selectors.blocked_ip_active()
        except DatabaseError as exc:
            # Keep answering with the set already loaded (/health/ must still say "database down", not 500).
            self._retry_at = time.monotonic() + RETRY_SECONDS
            logger.warning("block list: cannot load it (%s); keeping the %d loaded entries", exc, self.size)
            return
        tables: dict[tuple[int, int], dict[int, float]] = {}
        for network_text, expires_at in rows:
            network = parse_network(network_text)
            if network.version == 6 and network.prefixlen > IPV6_GROUP_PREFIX:
                network = network.supernet(new_prefix=IPV6_GROUP_PREFIX)
            bits = network.max_prefixlen - network.prefixlen
            table = tables.setdefault((network.version, network.prefixlen), {})
            expiry = expires_at.timestamp() if expires_at else math.inf
            key = int(network.network_address) >> bits
            table[key] = max(expiry, table.get(key, 0.0))
        with self._lock:
            self._tables = tables
            self.size = sum(len(t) for t in tables.values())
            self.loaded_version = target
            self._forced = False
            self._reload_due = time.monotonic() + settings.NEXUS_BLOCKLIST_MAX_AGE_SECONDS

    # ----------------------------------------------------------------- matching
    def match(self, ip: str) -> bool:
        """Is ``ip`` (normalised text) inside an entry that has not expired?"""
        if not self.size:
            return False
        version, value = _address(ip)
        max_bits = 32 if version == 4 else 128
        now = time.time()
        for (table_version, prefixlen), table in self._tables.items():
            if table_version != version:
                continue
            expiry = table.get(value >> (max_bits - prefixlen))
            if expiry is not None and expiry > now:
                return True
        return False


BLOCKLIST = BlockList()
