"""The read path against the real Redis: hits and misses, versioned invalidation, the race between a reader and a
write, TTL caps, stampede protection and the lock's fallbacks. Entries here use throwaway namespaces and bodies
computed by the test, so each property is checked on its own (the API tests check them end to end)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from nexus_backend.caching import config, invalidation, keys, store

from ..waiting import sleep_until
from .conftest import counters

pytestmark = pytest.mark.django_db


class Source:
    """A stand-in for the database: a value, and how many times it was read."""

    def __init__(self, value: str = "v1"):
        self.value = value
        self.reads = 0
        self.lock = threading.Lock()

    def compute(self, *, delay: float = 0.0, valid_until=None):
        def run():
            with self.lock:
                self.reads += 1
                body = self.value.encode()
            if delay:
                time.sleep(delay)
            return body, valid_until

        return run


def test_miss_then_hit_counts_each_lookup_once(conn, make_entry, namespace):
    entry, source = make_entry(), Source()
    first = store.read_through(entry, source.compute())
    second = store.read_through(entry, source.compute())
    assert (first.outcome, first.body) == ("miss", b"v1")
    assert (second.outcome, second.body) == ("hit", b"v1")
    assert source.reads == 1
    assert counters(conn, namespace.name) == {"miss": 1, "hit": 1, "compute": 1}


def test_a_bump_makes_the_next_read_recompute(conn, make_entry):
    entry, source = make_entry(), Source()
    store.read_through(entry, source.compute())
    source.value = "v2"
    store.bump(conn, entry.version_keys[1:])
    again = store.read_through(entry, source.compute())
    assert (again.outcome, again.body) == ("miss", b"v2")
    assert store.read_through(entry, source.compute()).outcome == "hit"


def test_a_write_during_the_recomputation_discards_the_stale_body(conn, make_entry, namespace):
    """The race: a reader reads the old data, the write commits and bumps, then the reader stores. Its body is
    discarded (the versions moved), so the next reader computes from the new data."""
    entry, source = make_entry(), Source("old")

    def stale_compute():
        body = source.value.encode()  # read before the write ...
        source.value = "new"  # ... the write commits ...
        store.bump(conn, entry.version_keys[1:])  # ... and invalidates, before the reader stores
        return body, None

    assert store.read_through(entry, stale_compute).body == b"old"  # this request's answer was true when read
    following = store.read_through(entry, source.compute())
    assert (following.outcome, following.body) == ("miss", b"new")
    assert counters(conn, namespace.name)["discarded"] == 1


def test_a_missing_version_counter_never_serves_an_old_value(conn, make_entry):
    """Counters that expired read as 0; nothing is ever stored under 0 (the store seeds the counter first)."""
    entry, source = make_entry(), Source()
    store.read_through(entry, source.compute())
    assert conn.get(entry.version_keys[1]) is not None  # seeded from the clock by the first store
    conn.delete(entry.version_keys[1])  # as if it had expired
    source.value = "v2"
    assert store.read_through(entry, source.compute()).body == b"v2"


def test_body_is_not_cached_past_its_valid_until(make_entry):
    entry, source = make_entry(), Source()
    gone = timezone.now() - timedelta(seconds=1)
    store.read_through(entry, source.compute(valid_until=gone))
    assert store.read_through(entry, source.compute(valid_until=gone)).outcome == "miss"
    soon = timezone.now() + timedelta(seconds=3)  # a generous window: a slow machine still reads before it ends
    store.read_through(entry, source.compute(valid_until=soon))
    assert store.read_through(entry, source.compute()).outcome == "hit"
    sleep_until(soon)
    assert store.read_through(entry, source.compute()).outcome == "miss"
    assert source.reads == 4


def test_ttl_from_the_namespace_and_overrides(conn, make_entry, namespace):
    entry = make_entry()
    store.read_through(entry, Source().compute())
    [versions] = [k for k in conn.scan_iter(f"{entry.base}:*") if not k.endswith(b":lock")]
    assert 55_000 < conn.pttl(versions) <= 60_000
    with config.configured(ttl={"poll_results": 1.5}):
        assert keys.poll_results_entry(poll_id=1).ttl == 1.5
    assert keys.poll_results_entry(poll_id=1).ttl == keys.POLL_RESULTS.ttl
    with pytest.raises(ValueError), config.configured(ttl={"poll_results": keys.VERSION_TTL + 1}):
        keys.poll_results_entry(poll_id=1)


def test_hundred_concurrent_misses_recompute_once(conn, make_entry, namespace):
    entry, source = make_entry(), Source("expensive")
    start = threading.Barrier(100)

    def read():
        start.wait(timeout=30)
        return store.read_through(entry, source.compute(delay=0.3))

    with ThreadPoolExecutor(max_workers=100) as pool:
        fetched = list(pool.map(lambda _: read(), range(100)))

    assert source.reads == 1
    assert {f.body for f in fetched} == {b"expensive"}
    outcomes = Counter(f.outcome for f in fetched)
    assert outcomes["miss"] == 1 and outcomes["miss"] + outcomes["coalesced"] + outcomes["hit"] == 100
    stats = counters(conn, namespace.name)
    assert stats["compute"] == 1
    assert stats.get("hit", 0) + stats["miss"] == 100  # every request counted once, at its first lookup
    assert stats["miss"] == outcomes["miss"] + outcomes["coalesced"]
    assert stats.get("coalesced", 0) == outcomes["coalesced"]


def lock_key(conn, entry: keys.Entry) -> str:
    """The lock a reader of ``entry`` would take now."""
    return entry.value_key([(conn.get(k) or b"0").decode() for k in entry.version_keys]) + ":lock"


def test_a_lock_holder_that_never_stores_is_taken_over(conn, make_entry):
    entry, source = make_entry(), Source()
    began = time.monotonic()
    conn.set(lock_key(conn, entry), "someone-else", px=1000)  # a reader that died while computing
    fetched = store.read_through(entry, source.compute())
    assert fetched.outcome == "miss" and fetched.body == b"v1"
    # It waited for the lock to expire (never earlier: it was set after `began`), then took it; the upper bound
    # only catches a reader that waits forever.
    assert 0.99 <= time.monotonic() - began < 30


def test_waiters_give_up_after_lock_wait(conn, make_entry):
    entry, source = make_entry(), Source()
    conn.set(lock_key(conn, entry), "stuck", px=60_000)
    with config.configured(lock_wait=1.0):
        began = time.monotonic()
        fetched = store.read_through(entry, source.compute())
    assert fetched.outcome == "miss" and 1.0 <= time.monotonic() - began < 30  # gave up after lock_wait, not before
    assert store.read_through(entry, source.compute()).outcome == "hit"  # it stored the value anyway


def test_a_failed_computation_releases_the_lock(conn, make_entry):
    entry, source = make_entry(), Source()

    def broken():
        raise RuntimeError("database says no")

    with pytest.raises(RuntimeError):
        store.read_through(entry, broken)
    assert not list(conn.scan_iter(f"{entry.base}:*:lock"))
    began = time.monotonic()
    with config.configured(lock_wait=10.0):
        assert store.read_through(entry, source.compute()).outcome == "miss"
    assert time.monotonic() - began < 5  # nobody waited for a lock (a waiter would wait the whole 10 s)


def test_disabled_cache_computes_every_time_and_stores_nothing(conn, make_entry, namespace):
    entry, source = make_entry(), Source()
    with config.configured(enabled=False):
        assert [store.read_through(entry, source.compute()).outcome for _ in range(3)] == ["off"] * 3
    assert source.reads == 3
    assert counters(conn, namespace.name) == {}
    assert not list(conn.scan_iter(f"{entry.base}:*"))


def test_a_transaction_reads_its_own_pending_writes_from_the_database(conn):
    """Inside the transaction that voted, the poll's results bypass the cache until commit; other entries don't."""
    results, other = keys.poll_results_entry(poll_id=987_001), keys.poll_results_entry(poll_id=987_002)
    source = Source()
    with transaction.atomic():
        invalidation.votes_changed(poll_id=987_001)
        assert store.read_through(results, source.compute()).outcome == "bypass"
        assert store.read_through(other, source.compute()).outcome == "miss"
        with pytest.raises(RuntimeError), transaction.atomic():  # a rolled-back savepoint drops its callbacks
            invalidation.votes_changed(poll_id=987_002)
            assert store.read_through(other, source.compute()).outcome == "bypass"
            raise RuntimeError
        assert store.read_through(other, source.compute()).outcome == "hit"


@pytest.mark.django_db(transaction=True)
def test_invalidation_happens_after_commit_and_not_after_rollback(conn):
    entry, source = keys.poll_results_entry(poll_id=987_003), Source()
    store.read_through(entry, source.compute())
    with pytest.raises(RuntimeError), transaction.atomic():
        invalidation.votes_changed(poll_id=987_003)
        raise RuntimeError
    assert store.read_through(entry, source.compute()).outcome == "hit"  # rolled back: nothing changed
    counter = keys.votes_changed_keys(987_003)[0]
    before = conn.get(counter)
    with transaction.atomic():
        invalidation.votes_changed(poll_id=987_003)
        assert conn.get(counter) == before  # not before the commit
    assert int(conn.get(counter)) == int(before) + 1
    assert store.read_through(entry, source.compute()).outcome == "miss"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("strategy", "detail_after", "results_after", "list_after"),
    [("precise", "hit", "miss", "hit"), ("global", "miss", "miss", "miss"), ("ttl", "hit", "hit", "hit")],
)
def test_what_a_vote_invalidates_under_each_strategy(strategy, detail_after, results_after, list_after):
    poll_id = 987_100 + ["precise", "global", "ttl"].index(strategy)
    entries = {
        "detail": keys.poll_detail_entry(poll_id=poll_id),
        "results": keys.poll_results_entry(poll_id=poll_id),
        "list": keys.poll_list_entry(params={"page": "1"}, origin=f"http://strategy-{strategy}"),
    }
    source = Source()
    with config.configured(invalidation=strategy):
        for entry in entries.values():
            store.read_through(entry, source.compute())
        invalidation.votes_changed(poll_id=poll_id)  # autocommit: runs at once
        after = {name: store.read_through(entry, source.compute()).outcome for name, entry in entries.items()}
    assert after == {"detail": detail_after, "results": results_after, "list": list_after}


@pytest.mark.django_db(transaction=True)
def test_a_poll_change_invalidates_its_detail_results_and_every_list_page():
    source = Source()
    mine = [keys.poll_detail_entry(poll_id=987_200), keys.poll_results_entry(poll_id=987_200)]
    pages = [keys.poll_list_entry(params={"page": str(p)}, origin="http://pages") for p in (1, 2)]
    others = [keys.poll_detail_entry(poll_id=987_201), keys.poll_results_entry(poll_id=987_201)]
    for entry in [*mine, *pages, *others]:
        store.read_through(entry, source.compute())
    invalidation.poll_changed(poll_id=987_200)
    assert [store.read_through(e, source.compute()).outcome for e in mine + pages] == ["miss"] * 4
    assert [store.read_through(e, source.compute()).outcome for e in others] == ["hit"] * 2


def test_list_keys_ignore_unknown_parameters_and_depend_on_the_origin():
    a = keys.poll_list_entry(params={"page": "2", "utm": "x"}, origin="http://a")
    b = keys.poll_list_entry(params={"page": "2"}, origin="http://a")
    c = keys.poll_list_entry(params={"page": "2"}, origin="http://b")
    assert a.base == b.base != c.base
    assert a.version_keys == (keys.epoch_key(keys.root()), keys.list_version_key(keys.root()))


def test_keys_are_per_database_and_prefixed_by_django(settings):
    from django.db import connection

    base = keys.root()
    assert base.startswith(f"{settings.CACHES['default']['KEY_PREFIX']}:1:caching:")
    assert base.endswith(connection.settings_dict["NAME"])
