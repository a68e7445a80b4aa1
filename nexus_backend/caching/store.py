"""The read path: read-through entries, one Redis round trip on a hit, one recomputation per cold key.

:func:`read_through` runs the ``READ`` Lua script: it reads the entry's version counters and the value stored
under them, and counts the lookup in the namespace's hit or miss counter, atomically, in one round trip. On a miss
the same call tries to take the key's lock (``SET NX PX``): the reader that gets it recomputes and stores (the
``STORE`` script stores only if the versions are still the ones it read, counts the computation and releases the
lock); every other reader polls for the value (not counted again) and, if the lock holder does not deliver within
``lock_wait``, computes itself.

When Redis does not answer, the read is served from the database (``X-Cache: degraded``), a warning is logged once
per outage, and the error is counted (in this process at once, in the stats hash when Redis is back). A circuit
breaker keeps requests off Redis for ``retry_after`` seconds instead of waiting for a timeout every time.
Invalidations that failed meanwhile are replayed when Redis answers again (see :mod:`.invalidation`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from django_redis import get_redis_connection

from nexus_backend.infra.errors import REDIS_ERRORS

from . import keys
from .config import get_config
from .scripts import BUMP_LUA, READ_LUA, RELEASE_LUA, STORE_LUA
from .scripts import script as _script

logger = logging.getLogger(__name__)


def connection(alias: str | None = None):
    """The raw redis-py client django-redis holds for the alias (the same pool the Django cache uses)."""
    return get_redis_connection(alias or get_config().alias)


# --------------------------------------------------------------------------- Redis availability


class Availability:
    """Per-process circuit breaker and error counts (each gunicorn worker has its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open_until = 0.0
        self.down_since: float | None = None
        self.errors: Counter[str] = Counter()  # since this process started: read, invalidate, store, degraded
        self.unflushed: Counter[str] = Counter()  # not yet added to the stats hash
        self.pending: set[str] = set()  # version keys whose bump failed, replayed on recovery
        self.pending_overflow = False

    MAX_PENDING = 10_000

    def usable(self) -> bool:
        """May this request talk to Redis? False while the breaker is open."""
        if self.down_since is None:
            return True
        if time.monotonic() < self.open_until:
            return False
        return self._recover()

    def failed(self, kind: str, exc: BaseException, *, retry_after: float | None = None) -> None:
        retry_after = get_config().retry_after if retry_after is None else retry_after
        with self._lock:
            self.errors[kind] += 1
            self.unflushed[f"errors:{kind}"] += 1
            self.open_until = time.monotonic() + retry_after
            first = self.down_since is None
            if first:
                self.down_since = time.monotonic()
        if first:
            logger.warning(
                "Redis cache unavailable (%s: %s): serving reads from the database, retrying in %.1f s",
                type(exc).__name__,
                str(exc)[:200],
                retry_after,
            )

    def degraded(self) -> None:
        with self._lock:
            self.errors["degraded"] += 1
            self.unflushed["errors:degraded"] += 1

    def remember(self, version_keys: tuple[str, ...]) -> None:
        with self._lock:
            if len(self.pending) + len(version_keys) > self.MAX_PENDING:
                self.pending_overflow = True  # replay bumps the epoch instead: everything is dropped
                self.pending.clear()
            else:
                self.pending.update(version_keys)

    def _recover(self) -> bool:
        """Half-open: replay the failed invalidations and flush the error counts; close the breaker if that
        worked. One thread tries; the others keep serving from the database until it has."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self.down_since is None:
                return True
            pending, overflow, unflushed = set(self.pending), self.pending_overflow, Counter(self.unflushed)
            try:
                conn = connection()
                if overflow:
                    pending = set(keys.everything_keys())
                if pending:
                    bump(conn, tuple(sorted(pending)))
                if unflushed:
                    pipe = conn.pipeline(transaction=False)
                    for name, count in unflushed.items():
                        pipe.hincrby(keys.stats_key(keys.root()), name, count)
                    pipe.execute()
                else:
                    conn.ping()
            except REDIS_ERRORS as exc:
                self.errors["recover"] += 1
                self.open_until = time.monotonic() + get_config().retry_after
                logger.debug("Redis still unavailable: %s", exc)
                return False
            outage = time.monotonic() - self.down_since
            self.pending -= pending
            self.pending_overflow = self.pending_overflow and not overflow
            self.unflushed -= unflushed
            self.down_since = None
            self.open_until = 0.0
            logger.warning(
                "Redis cache available again after %.1f s; replayed %s invalidation(s)%s",
                outage,
                len(pending),
                " (epoch bumped: too many to keep)" if overflow else "",
            )
            return True
        finally:
            self._lock.release()

    def snapshot(self) -> dict:
        return {
            "available": self.down_since is None,
            "errors": dict(self.errors),
            "pending_invalidations": len(self.pending),
        }


availability = Availability()


def reset_availability() -> None:
    """Forget this process's breaker state and counts (tests)."""
    Availability.__init__(availability)


# --------------------------------------------------------------------------- read through


@dataclass(frozen=True)
class Fetched:
    body: bytes
    outcome: str  # hit | miss | coalesced | bypass | off | degraded


#: compute() returns the JSON body and, optionally, the moment it stops being true (an expiry): it is cached
#: no longer than that.
Computed = tuple[bytes, datetime | None]


def _ttl_ms(entry: keys.Entry, valid_until: datetime | None) -> int:
    ttl = entry.ttl
    if valid_until is not None:
        ttl = min(ttl, (valid_until - timezone.now()).total_seconds())
    return max(0, int(ttl * 1000))


class Invalidation:
    """An ``on_commit`` callback that bumps version counters; the read path recognises it while it is pending."""

    __slots__ = ("version_keys", "reason")

    def __init__(self, version_keys: Iterable[str], reason: str):
        self.version_keys = frozenset(version_keys)
        self.reason = reason

    def __call__(self) -> None:
        ordered = tuple(sorted(self.version_keys))
        if not availability.usable():
            availability.remember(ordered)
            return
        try:
            bump(connection(), ordered)
        except REDIS_ERRORS as exc:
            availability.failed("invalidate", exc)
            availability.remember(ordered)

    def __repr__(self) -> str:
        return f"Invalidation({self.reason}: {', '.join(sorted(self.version_keys))})"


def _written_in_this_transaction(entry: keys.Entry) -> bool:
    """Inside a transaction that changed what this entry depends on, the cache (shared, committed state) is
    bypassed: the transaction reads its own writes from the database. The pending invalidations are the
    ``on_commit`` callbacks Django keeps (and drops with a rolled-back savepoint)."""
    conn = connections[DEFAULT_DB_ALIAS]
    if not conn.in_atomic_block or not conn.run_on_commit:
        return False
    wanted = set(entry.version_keys)
    return any(isinstance(item[1], Invalidation) and wanted & item[1].version_keys for item in conn.run_on_commit)


def read_through(entry: keys.Entry, compute: Callable[[], Computed]) -> Fetched:
    """The entry's body from Redis, or computed (once per cold key across processes) and stored."""
    config = get_config()
    if not config.enabled:
        return Fetched(compute()[0], "off")
    if _written_in_this_transaction(entry):
        return Fetched(compute()[0], "bypass")
    if not availability.usable():
        return _degraded(compute)
    token = uuid.uuid4().hex
    lock_ms = max(1, int(config.lock_ttl * 1000))
    try:
        conn = connection(config.alias)
        read = _script("read", READ_LUA, conn)
        args = [entry.base, entry.namespace.name, "1", str(lock_ms), token]
        found, seen, value = read(keys=[entry.stats_key, *entry.version_keys], args=args, client=conn)
    except REDIS_ERRORS as exc:
        availability.failed("read", exc)
        return _degraded(compute)
    if found:
        return Fetched(value, "hit")
    if value:  # we hold the lock
        return Fetched(_compute_and_store(conn, entry, seen, compute, token), "miss")

    # Someone else is recomputing: poll for the value (not counted again), take over if their lock expires.
    deadline = time.monotonic() + config.lock_wait
    delay = 0.002
    while time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)
        try:
            args = [entry.base, entry.namespace.name, "2", str(lock_ms), token]
            found, seen, value = read(keys=[entry.stats_key, *entry.version_keys], args=args, client=conn)
        except REDIS_ERRORS as exc:
            availability.failed("read", exc)
            return _degraded(compute)
        if found:
            return Fetched(value, "coalesced")
        if value:
            return Fetched(_compute_and_store(conn, entry, seen, compute, token), "miss")
    logger.warning("waited %.1f s for %s to be recomputed; computing it here", config.lock_wait, entry.base)
    return Fetched(_compute_and_store(conn, entry, seen, compute, ""), "miss")


def _compute_and_store(conn, entry: keys.Entry, seen: bytes | str, compute, token: str) -> bytes:
    seen = seen.decode() if isinstance(seen, bytes) else seen
    try:
        body, valid_until = compute()
    except BaseException:
        if token:
            _release(conn, entry.value_key(seen.split(".")) + ":lock", token)
        raise
    store = _script("store", STORE_LUA, conn)
    args = [
        entry.base,
        seen,
        body,
        str(_ttl_ms(entry, valid_until)),
        entry.namespace.name,
        token,
        str(int(keys.VERSION_TTL * 1000)),
    ]
    try:
        store(keys=[entry.stats_key, *entry.version_keys], args=args, client=conn)
    except REDIS_ERRORS as exc:
        availability.failed("store", exc)  # the body is still good: answer with it
    return body


def _release(conn, lock_key: str, token: str) -> None:
    try:
        _script("release", RELEASE_LUA, conn)(keys=[lock_key], args=[token], client=conn)
    except REDIS_ERRORS as exc:  # the lock expires by itself
        availability.failed("store", exc)


def _degraded(compute: Callable[[], Computed]) -> Fetched:
    availability.degraded()
    return Fetched(compute()[0], "degraded")


# --------------------------------------------------------------------------- write side helpers


def bump(conn, version_keys: tuple[str, ...]) -> None:
    """Increment version counters, seeding missing ones from the server clock first."""
    if version_keys:
        ttl_ms = str(int(keys.VERSION_TTL * 1000))
        _script("bump", BUMP_LUA, conn)(keys=list(version_keys), args=[ttl_ms], client=conn)
