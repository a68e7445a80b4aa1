"""Redis stopped and started again — a private redis-server of this test's own (the shared one is never touched).

The server keeps its data across the stop (RDB saved at shutdown), like a partition or a restart with
persistence: the entries cached before the outage are still there when it comes back, so a write made during the
outage must be replayed, or they would be served stale."""

from __future__ import annotations

import logging
import time

import pytest
from django.db import transaction

from nexus_backend.caching import invalidation, keys, metrics, store

pytestmark = pytest.mark.django_db(transaction=True)


def wait_past_retry_after() -> None:
    time.sleep(0.25)  # RETRY_AFTER is 0.2 s under the private_redis fixture


def test_reads_fall_back_to_the_database_and_recover(private_redis, caplog):
    entry = keys.poll_results_entry(poll_id=424_242)
    values = iter(["before", "during-1", "during-2", "during-3", "after"])

    def compute():
        return next(values).encode(), None

    assert store.read_through(entry, compute).outcome == "miss"  # "before" is cached
    private_redis.stop(save=True)

    with caplog.at_level(logging.WARNING, logger="nexus_backend.caching.store"):
        during = [store.read_through(entry, compute) for _ in range(3)]
    assert [(f.outcome, f.body) for f in during] == [
        ("degraded", b"during-1"),
        ("degraded", b"during-2"),
        ("degraded", b"during-3"),
    ]
    assert caplog.text.count("Redis cache unavailable") == 1  # one warning per outage, not per request
    assert store.availability.errors["degraded"] == 3 and not store.availability.snapshot()["available"]

    with transaction.atomic():  # a write during the outage
        invalidation.votes_changed(poll_id=424_242)
    assert store.availability.snapshot()["pending_invalidations"] == 1

    private_redis.start()  # comes back with "before" still cached
    wait_past_retry_after()
    with caplog.at_level(logging.WARNING, logger="nexus_backend.caching.store"):
        back = store.read_through(entry, compute)
    assert (back.outcome, back.body) == ("miss", b"after")  # the write was replayed: no stale "before"
    assert "available again" in caplog.text
    assert store.read_through(entry, compute).outcome == "hit"
    assert store.availability.snapshot() == {
        "available": True,
        "errors": {"read": 1, "degraded": 3},
        "pending_invalidations": 0,
    }
    counted = metrics.sample().counters
    assert counted["errors:degraded"] == 3 and counted["errors:read"] == 1  # flushed to the stats hash


def test_the_breaker_keeps_requests_off_a_dead_redis(private_redis, monkeypatch):
    entry = keys.poll_detail_entry(poll_id=424_243)
    private_redis.stop(save=False)
    calls = []
    real = store.connection

    def counting_connection(alias=None):
        calls.append(alias)
        return real(alias)

    monkeypatch.setattr(store, "connection", counting_connection)
    for _ in range(20):
        assert store.read_through(entry, lambda: (b"db", None)).outcome == "degraded"
    assert len(calls) == 1  # one attempt, then the breaker answers for retry_after seconds
    wait_past_retry_after()
    store.read_through(entry, lambda: (b"db", None))
    assert len(calls) == 2  # half-open: one more attempt (it failed: still down)


def test_too_many_failed_invalidations_bump_the_epoch(private_redis, monkeypatch):
    monkeypatch.setattr(store.Availability, "MAX_PENDING", 3)
    entry = keys.poll_list_entry(params={}, origin="http://epoch")
    store.read_through(entry, lambda: (b"old", None))
    private_redis.stop(save=True)
    for poll_id in range(10):
        invalidation.poll_changed(poll_id=900_000 + poll_id)  # autocommit: each runs at once and fails
    assert store.availability.pending_overflow
    private_redis.start()
    wait_past_retry_after()
    assert store.read_through(entry, lambda: (b"new", None)).body == b"new"


def test_the_api_answers_reads_and_votes_while_redis_is_down(private_redis, api_client, client_for, make_user, poll):
    results = f"/api/polls/{poll.pk}/results/"
    option = poll.options.first().pk
    assert api_client.get(results).headers["X-Cache"] == "miss"
    assert api_client.get(results).headers["X-Cache"] == "hit"  # total 0 is cached (and saved at shutdown)
    private_redis.stop(save=True)

    down = api_client.get(results)
    assert (down.status_code, down.headers["X-Cache"], down.json()["total_votes"]) == (200, "degraded", 0)
    voted = client_for(make_user()).post(f"/api/polls/{poll.pk}/vote/", {"option": option}, format="json")
    assert voted.status_code == 201
    assert api_client.get(results).json()["total_votes"] == 1
    for path in (f"/api/polls/{poll.pk}/", "/api/polls/"):
        response = api_client.get(path)
        assert (response.status_code, response.headers["X-Cache"]) == (200, "degraded")

    private_redis.start()  # back, still holding the results cached before the vote
    wait_past_retry_after()
    back = api_client.get(results)
    assert (back.headers["X-Cache"], back.json()["total_votes"]) == ("miss", 1)
    assert api_client.get(results).headers["X-Cache"] == "hit"
