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
from redis.commands.core import Script

from nexus_backend.infra.errors import REDIS_ERRORS

from . import keys
from .config import get_config

logger = logging.getLogger(__name__)


# KEYS: stats hash, then the version keys (epoch first).
# ARGV: value key base, namespace, count mode (1: hit/miss, 2: coalesced on a hit, 0: nothing), lock ttl ms
#       (0: do not lock), lock token.
# Returns {1, versions, value} on a hit, {0, versions, locked} on a miss.
READ_LUA = """
local versions = {}
for i = 2, #KEYS do
  versions[#versions + 1] = redis.call('GET', KEYS[i]) or '0'
end
local seen = table.concat(versions, '.')
local key = ARGV[1] .. ':' .. seen
local value = redis.call('GET', key)
if value then
  if ARGV[3] == '1' then
    redis.call('HINCRBY', KEYS[1], ARGV[2] .. ':hit', 1)
  elseif ARGV[3] == '2' then
    redis.call('HINCRBY', KEYS[1], ARGV[2] .. ':coalesced', 1)
  end
  return {1, seen, value}
end
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[1], ARGV[2] .. ':miss', 1)
end
local locked = 0
if ARGV[4] ~= '0' and redis.call('SET', key .. ':lock', ARGV[5], 'NX', 'PX', ARGV[4]) then
  locked = 1
end
return {0, seen, locked}
"""

# KEYS: stats hash, then the version keys (epoch first).
# ARGV: value key base, the versions the reader saw ('.'-joined), body, ttl ms (0: do not store), namespace,
#       lock token ('' if none), version ttl ms.
# Stores only if every version is still the one the reader saw: a write that committed after the reader read the
# database has bumped one, and the stale body is discarded. A counter still missing is seeded from the clock (so
# nothing is ever stored under a '0' that an expired counter could come back to). Returns 1 if stored.
STORE_LUA = """
local seen = {}
for v in string.gmatch(ARGV[2], '[^.]+') do seen[#seen + 1] = v end
local now = redis.call('TIME')
local fresh = now[1] .. string.format('%06d', now[2])
local current = {}
local same = true
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if not v then
    if seen[i - 1] == '0' then
      redis.call('SET', KEYS[i], fresh, 'PX', ARGV[7])
      v = fresh
    else
      same = false
    end
  elseif v ~= seen[i - 1] then
    same = false
  end
  current[#current + 1] = v
end
local oldkey = ARGV[1] .. ':' .. ARGV[2]
redis.call('HINCRBY', KEYS[1], ARGV[5] .. ':compute', 1)
local stored = 0
if not same then
  redis.call('HINCRBY', KEYS[1], ARGV[5] .. ':discarded', 1)
elseif ARGV[4] ~= '0' then
  redis.call('SET', ARGV[1] .. ':' .. table.concat(current, '.'), ARGV[3], 'PX', ARGV[4])
  stored = 1
end
if ARGV[6] ~= '' and redis.call('GET', oldkey .. ':lock') == ARGV[6] then
  redis.call('DEL', oldkey .. ':lock')
end
return stored
"""

# KEYS: lock key. ARGV: token. Releases the lock only if we still hold it.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: version keys to bump. ARGV: version ttl ms (0: no expiry).
# A missing counter is seeded from the server clock (microseconds) before the increment.
BUMP_LUA = """
local now = redis.call('TIME')
local fresh = now[1] .. string.format('%06d', now[2])
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('SET', KEYS[i], fresh)
  end
  redis.call('INCR', KEYS[i])
  if ARGV[1] ~= '0' then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
return #KEYS
"""

_scripts: dict[str, Script] = {}


def _script(name: str, source: str, conn) -> Script:
    script = _scripts.get(name)
    if script is None:
        script = _scripts[name] = Script(conn, source)  # sha1 computed once; EVALSHA, loaded on NOSCRIPT
    return script


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
