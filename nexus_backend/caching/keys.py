"""Every cache key, namespace and TTL of the caching app, in one place.

Layout (``<root>`` is Django's key prefix for the cache alias, then ``caching:<database name>``, e.g.
``nexus:1:caching:nexus``; the database name keeps the test database's entries apart from the development one's):

======================================  ==========================================================================
``<root>:epoch``                        version of everything (bumped by ``migrate``/``flush`` and the global
                                        strategy)
``<root>:list``                         version of every poll list page (bumped when any poll is created,
                                        changed, closed or deleted)
``<root>:poll:<id>``                    version of one poll (question, options, expiry, closed ...)
``<root>:poll:<id>:votes``              version of one poll's votes
``<root>:v:<namespace>:<ident>:<vers>`` a cached response body; ``<vers>`` are the versions it was computed at
``<value key>:lock``                    held by the one reader recomputing a missing value (stampede protection)
``<root>:stats``                        hash of per-namespace counters: ``<ns>:hit``, ``<ns>:miss``,
                                        ``<ns>:compute``, ``<ns>:coalesced``, ``<ns>:discarded``, ``errors:<kind>``
======================================  ==========================================================================

A write never deletes a value: it increments the versions the value's key is made of, so every later read looks
up a new key. A reader that computed from data older than the write stores under the old versions (the store
script checks them), so its result is never seen. Version counters missing from Redis read as ``0``; the first
write seeds a missing counter with the server's clock in microseconds before incrementing, so a counter that
expired (``VERSION_TTL``) never comes back to a number some old value was stored under.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, connections

from .config import get_config, on_reset


@dataclass(frozen=True)
class Namespace:
    name: str
    ttl: float  # seconds; a safety net: writes invalidate entries long before this (precise strategy)
    what: str


POLL_LIST = Namespace("poll_list", 60.0, "pages of GET /api/polls/ (filters, search, ordering, page)")
POLL_DETAIL = Namespace("poll_detail", 300.0, "GET /api/polls/{id}/")
POLL_RESULTS = Namespace("poll_results", 300.0, "GET /api/polls/{id}/results/")

NAMESPACES: dict[str, Namespace] = {ns.name: ns for ns in (POLL_LIST, POLL_DETAIL, POLL_RESULTS)}

#: Version counters live this long after their last increment. Must exceed every value TTL (see keys docstring).
VERSION_TTL = 7 * 24 * 3600.0
#: The query parameters a poll list page depends on; anything else is ignored (and cannot bust the cache).
LIST_PARAMS = ("active", "owner", "search", "ordering", "page", "page_size")
#: Counters kept per namespace in the stats hash.
COUNTERS = ("hit", "miss", "compute", "coalesced", "discarded")


def ttl_of(namespace: Namespace) -> float:
    """The namespace's TTL in seconds, after ``NEXUS_CACHE["TTL"]`` / ``configured(ttl=...)`` overrides."""
    ttl = float(get_config().ttl.get(namespace.name, namespace.ttl))
    if not 0 < ttl < VERSION_TTL:
        raise ValueError(f"TTL of {namespace.name} must be between 0 and {VERSION_TTL:.0f} s, got {ttl}")
    return ttl


# --------------------------------------------------------------------------- roots

_roots: dict[tuple[str, str], str] = {}
_roots_lock = threading.Lock()


def reset() -> None:
    with _roots_lock:
        _roots.clear()


on_reset(reset)  # a changed configuration (alias, CACHES) may change the roots


def root(alias: str | None = None) -> str:
    """``<KEY_PREFIX>:<VERSION>:caching:<database name>`` for the cache alias (Django's own key function)."""
    alias = alias or get_config().alias
    database = str(connections[DEFAULT_DB_ALIAS].settings_dict["NAME"])
    found = _roots.get((alias, database))
    if found is None:
        found = caches[alias].make_key(f"caching:{database}")
        with _roots_lock:
            _roots[(alias, database)] = found
    return found


def epoch_key(base: str) -> str:
    return f"{base}:epoch"


def list_version_key(base: str) -> str:
    return f"{base}:list"


def poll_version_key(base: str, poll_id: int) -> str:
    return f"{base}:poll:{int(poll_id)}"


def votes_version_key(base: str, poll_id: int) -> str:
    return f"{base}:poll:{int(poll_id)}:votes"


def stats_key(base: str) -> str:
    return f"{base}:stats"


def counter_field(namespace: str, counter: str) -> str:
    return f"{namespace}:{counter}"


# --------------------------------------------------------------------------- entries (what a read looks up)


@dataclass(frozen=True)
class Entry:
    namespace: Namespace
    base: str  # the value key without its versions suffix
    version_keys: tuple[str, ...]  # the epoch first
    stats_key: str
    ttl: float

    def value_key(self, versions: Iterable[str]) -> str:
        return f"{self.base}:{'.'.join(versions)}"


def _entry(namespace: Namespace, ident: str, version_keys: Iterable[str]) -> Entry:
    base = root()
    return Entry(
        namespace=namespace,
        base=f"{base}:v:{namespace.name}:{ident}",
        version_keys=(epoch_key(base), *version_keys),
        stats_key=stats_key(base),
        ttl=ttl_of(namespace),
    )


def poll_detail_entry(*, poll_id: int) -> Entry:
    base = root()
    return _entry(POLL_DETAIL, str(int(poll_id)), [poll_version_key(base, poll_id)])


def poll_results_entry(*, poll_id: int) -> Entry:
    base = root()
    return _entry(POLL_RESULTS, str(int(poll_id)), [poll_version_key(base, poll_id), votes_version_key(base, poll_id)])


def poll_list_entry(*, params: Mapping, origin: str) -> Entry:
    """A page of the poll list. ``params`` is the request's query dict (only ``LIST_PARAMS`` count); ``origin``
    is ``scheme://host``, which the page's ``next``/``previous`` links contain."""
    getlist = params.getlist if hasattr(params, "getlist") else (lambda k: [params[k]] if k in params else [])
    pairs = [(name, value) for name in LIST_PARAMS for value in getlist(name)]
    ident = hashlib.blake2b(f"{origin}?{urlencode(pairs)}".encode(), digest_size=12).hexdigest()
    return _entry(POLL_LIST, ident, [list_version_key(root())])


# --------------------------------------------------------------------------- what a write changes


def poll_changed_keys(poll_id: int) -> tuple[str, ...]:
    """A poll was created, edited, closed or deleted: its detail, its results and every list page."""
    base = root()
    return (poll_version_key(base, poll_id), list_version_key(base))


def votes_changed_keys(poll_id: int) -> tuple[str, ...]:
    """A vote was cast: that poll's results only (lists and details show no counts)."""
    return (votes_version_key(root(), poll_id),)


def everything_keys() -> tuple[str, ...]:
    return (epoch_key(root()),)
